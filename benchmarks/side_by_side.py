"""Two single-threaded GPAW calculations side by side vs one at a time on 2 MPI ranks, on a 2-core machine.

The package runs every calculation of a ladder as its own single-threaded worker process, ``cores`` of them at
once. The alternative is to give each calculation all the cores through MPI and run them one after another. This
benchmark computes the same N rattled hcp Be cells (mixed sizes, seeded) at one precision level both ways and
compares the total time:

* (a) the package's way: ``run_ladder(..., cores=2)`` into a temporary unit store;
* (b) one calculation at a time, each launched as ``mpiexec -n 2 python -m pyiron_mlip_tradeoff.dft.worker``
  with an MPI-enabled GPAW build (``--mpi-gpaw``, a ``pip install --target`` folder put first on
  ``PYTHONPATH``; ``GPAW_MPI_BACKEND=cgpaw`` makes GPAW use its own MPI). The worker is the package's own, so
  the calculator settings (``gpaw_parameters``/``run_gpaw``) are exactly those of (a);
* (c) with ``--control``: the same as (b) on one rank, which separates the effect of the two builds from that
  of the parallelisation.

Both ways pay a Python/GPAW start-up per calculation, as a worker-per-calculation ladder would. Wall seconds are
measured around each whole mode; CPU seconds are the user+system time of all child processes (workers, mpiexec
and its ranks, MPI busy-waiting included). "Σ GPAW" adds up the calculations' own wall seconds (start-up
excluded; for MPI runs as seen by one rank). Energies of (b) and (c) are compared with (a) per atom; a wrong
build or setting shows up there. Run it on an otherwise idle machine: ratios are only meaningful between modes
measured in the same run. A Γ-only level (1) is skipped in (b): with one k-point GPAW splits the cell into domains,
which a build without ScaLAPACK cannot diagonalise in parallel.

    python benchmarks/side_by_side.py [--n 6] [--level 5] [--sizes 2 4 8] [--mpi-gpaw /work/gpaw_mpi] [--control]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.build import bulk

from pyiron_mlip_tradeoff.bundled import EMBEDDED_LADDER
from pyiron_mlip_tradeoff.dft.base import CalculationResult, structure_fingerprint
from pyiron_mlip_tradeoff.dft.worker import SINGLE_THREAD_ENV, task_dict
from pyiron_mlip_tradeoff.ladder import run_ladder

REPEATS = {2: (1, 1, 1), 4: (2, 1, 1), 8: (2, 2, 1), 16: (2, 2, 2)}


def be_cells(n: int, sizes: list[int]):
    """``n`` hcp Be cells, sizes taken from ``sizes`` in turn, cell ``i`` rattled by 0.05 Å with seed ``i``."""
    cells = []
    for i in range(n):
        atoms = bulk("Be", "hcp", a=2.29, c=3.58).repeat(REPEATS[sizes[i % len(sizes)]])
        atoms.positions += np.random.default_rng(i).normal(scale=0.05, size=atoms.positions.shape)
        cells.append(atoms)
    return cells


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mpi_env(mpi_gpaw: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SINGLE_THREAD_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(mpi_gpaw), env.get("PYTHONPATH", "")) if p)
    env["GPAW_MPI_BACKEND"] = "cgpaw"
    return env


def check_mpi_build(mpiexec: str, ranks: int, env: dict[str, str], mpi_gpaw: Path) -> None:
    """Stop unless ``ranks`` ranks of the MPI build start and each sees a world of that size."""
    probe = ("import numpy as np, gpaw; from gpaw.mpi import world; n = np.ones(1); world.sum(n); "
             "world.rank == 0 and print(world.size, int(n[0]), gpaw.__file__)")
    proc = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, timeout=300)
    seen = proc.stdout.split()
    ok = (proc.returncode == 0 and len(seen) == 3 and seen[0] == seen[1] == str(ranks)
          and seen[2].startswith(str(mpi_gpaw)))
    if not ok:
        sys.exit(f"the MPI GPAW build does not run on {ranks} rank(s):\n{proc.stdout}{proc.stderr[-3000:]}")


def run_mpi(structures, level, mpiexec: str, ranks: int, env: dict[str, str]) -> list[CalculationResult]:
    """Each structure in turn as one package worker under ``mpiexec -n ranks``."""
    results = []
    with tempfile.TemporaryDirectory(prefix="side_by_side_mpi_") as tmp:
        for i, atoms in enumerate(structures):
            task, out = Path(tmp) / f"task{i}.json", Path(tmp) / f"result{i}.json"
            fingerprint = structure_fingerprint(atoms, level, "gpaw", {})
            task.write_text(json.dumps(task_dict(atoms, level, "gpaw", {}, fingerprint)))
            proc = subprocess.run(
                [mpiexec, "-n", str(ranks), sys.executable, "-m", "pyiron_mlip_tradeoff.dft.worker", str(task),
                 str(out)], env=env, cwd=tmp, capture_output=True, text=True,
            )
            if proc.returncode != 0 or not out.exists():
                sys.exit(f"MPI calculation {i} failed (exit {proc.returncode}): {proc.stderr[-3000:]}")
            results.append(CalculationResult.from_dict(json.loads(out.read_text())))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="number of cells")
    parser.add_argument("--level", type=int, default=5, choices=sorted(EMBEDDED_LADDER),
                        help="embedded precision level")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8], choices=sorted(REPEATS),
                        help="cell sizes (atoms), used in turn")
    parser.add_argument("--mpi-gpaw", type=Path, default=Path("/work/gpaw_mpi"),
                        help="folder holding the MPI-enabled GPAW build (pip install --target)")
    parser.add_argument("--mpiexec", default=None, help="MPI launcher (default: the one beside this Python)")
    parser.add_argument("--ranks", type=int, default=2, help="MPI ranks for (b)")
    parser.add_argument("--control", action="store_true", help="also run (c): the MPI build on one rank")
    args = parser.parse_args()

    level = EMBEDDED_LADDER[args.level]
    structures = be_cells(args.n, args.sizes)
    n_atoms = np.array([len(a) for a in structures])
    print(f"{args.n} rattled Be cells of {', '.join(map(str, n_atoms))} atoms at {level.describe()}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    rows: dict[str, tuple[float, float, float, np.ndarray, np.ndarray]] = {}

    with tempfile.TemporaryDirectory(prefix="side_by_side_ladder_") as store:
        wall0, cpu0 = time.perf_counter(), children_cpu()
        ladder = run_ladder(structures, [level], store, cores=2)
        wall, cpu = time.perf_counter() - wall0, children_cpu() - cpu0
    if ladder.failed.any():
        sys.exit(f"side-by-side calculations failed: {[m for row in ladder.messages for m in row if m]}")
    rows["(a) 2 side by side, 1 thread each"] = (wall, cpu, float(np.sum(ladder.seconds)), ladder.energy[0],
                                                 ladder.forces[0])

    mpiexec = args.mpiexec or shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which(
        "mpiexec")
    if not (args.mpi_gpaw / "gpaw").is_dir():
        print(f"\nno MPI GPAW build in {args.mpi_gpaw}: skipping (b) and (c). Build one with mpi = True and "
              "compiler = 'mpicc' in its siteconfig and pip install --target that folder.")
    elif mpiexec is None:
        print("\nno mpiexec found: skipping (b) and (c)")
    else:
        env = mpi_env(args.mpi_gpaw.resolve())
        modes = [(f"(b) one at a time, MPI {args.ranks} ranks", args.ranks)]
        if level.gamma_only and args.ranks > 1:
            # one k-point leaves GPAW only domain decomposition, whose PPCG subspace step needs ScaLAPACK
            print(f"\nlevel {args.level} is Γ-only: GPAW would split the cell into domains, which this MPI build "
                  "(no ScaLAPACK) cannot do; skipping (b). Choose a level with k-points.")
            modes = []
        if args.control:
            modes.append(("(c) one at a time, MPI 1 rank", 1))
        for name, ranks in modes:
            check_mpi_build(mpiexec, ranks, env, args.mpi_gpaw.resolve())
            wall0, cpu0 = time.perf_counter(), children_cpu()
            results = run_mpi(structures, level, mpiexec, ranks, env)
            wall, cpu = time.perf_counter() - wall0, children_cpu() - cpu0
            failed = [r.error for r in results if r.failed]
            if failed:
                sys.exit(f"{name}: calculations failed: {failed}")
            rows[name] = (wall, cpu, sum(r.wall_seconds for r in results), np.array([r.energy for r in results]),
                          np.concatenate([r.forces for r in results]))

    ref_wall, ref_cpu, _, ref_energy, ref_forces = next(iter(rows.values()))
    print(f"\n{'mode':<38} {'wall s':>8} {'CPU s':>8} {'Σ GPAW s':>9} {'wall/(a)':>8} {'CPU/(a)':>8} "
          f"{'max|ΔE|/atom':>13} {'max|ΔF|':>9}")
    for name, (wall, cpu, gpaw_wall, energy, forces) in rows.items():
        d_energy = np.max(np.abs(energy - ref_energy) / n_atoms)
        d_forces = np.max(np.abs(forces - ref_forces))
        print(f"{name:<38} {wall:>8.1f} {cpu:>8.1f} {gpaw_wall:>9.1f} {wall / ref_wall:>8.2f} {cpu / ref_cpu:>8.2f} "
              f"{d_energy:>13.1e} {d_forces:>9.1e}")
    print("ΔE per atom in eV and ΔF in eV/Å against (a); ratios below 1 favour that mode over (a)")


if __name__ == "__main__":
    main()
