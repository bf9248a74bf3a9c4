"""Benchmark: qSNAP MD speed in LAMMPS for 2Jmax 4, 6, 8, 10 on 1 and 2 cores, next to the study's Table 2.

    python benchmarks/md_speed.py                        # ~2000-atom hcp Be, default steps per 2Jmax
    python benchmarks/md_speed.py --cores 1 2 4 --n-atoms 4000 --steps 4=200 6=100 8=40 10=20

Path: every measurement is an ``MDSpeed`` pyiron job (in a throw-away project and database) that runs a
pyiron_atomistics ``Lammps`` child job with ``pair_style snap`` through the package's LAMMPS resources, with
``job.server.cores`` MPI processes. The speed is LAMMPS' own performance figure (atom-timesteps per second, all
processes together) of a timed NVE run after velocities are drawn at 2 × 300 K; no NVT/NVE stability runs are
made here (``nvt_steps = nve_steps = 0``).

Coefficients: quadratic qSNAP (the study's settings, 120/496/1596/4278 coefficients) with tiny random values
(|β| ~ 1e-10 eV, β_0 = 0), so the atoms move almost freely and the cell keeps its density. The cost of
``pair_style snap`` per step depends on 2Jmax, the settings and the number of neighbours inside the cut-off, not
on the values of the coefficients (every term is evaluated whatever its weight), so a fitted model runs at the
same speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

#: the study's qSNAP MD speeds (Wood & Thompson 2018), atom-timesteps per second
TABLE2 = {4: 4e5, 6: 1e5, 8: 4e4, 10: 2e4}
DEFAULT_STEPS = {4: 100, 6: 50, 8: 20, 10: 10}


def _isolated_pyiron() -> Path:
    """Point pyiron at a temporary database and project folder (set before pyiron is imported)."""
    folder = Path(tempfile.mkdtemp(prefix="md_speed_benchmark_"))
    os.environ["PYIRONSQLFILE"] = str(folder / "pyiron.db")
    os.environ["PYIRONPROJECTPATHS"] = str(folder)
    os.environ["PYIRONPROJECTCHECKENABLED"] = "False"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return folder


def measure(project, twojmax: int, cores: int, n_atoms: int, steps: int, seed: int = 7) -> dict:
    """One MDSpeed job; returns its speed (atom-timesteps/s) and the actual cell size."""
    import numpy as np

    from pyiron_mlip_tradeoff.lammps import expected_coefficient_count

    rng = np.random.default_rng(seed + twojmax)
    beta = rng.normal(scale=1e-10, size=expected_coefficient_count(twojmax))
    beta[0] = 0.0
    job = project.create.job.MDSpeed(f"speed_2j{twojmax}_c{cores}")
    job.input.coefficients = beta
    job.input.twojmax = twojmax
    job.input.n_atoms = n_atoms
    job.input.steps = steps
    job.input.nvt_steps = 0
    job.input.nve_steps = 0
    job.input.cores = cores
    start = time.perf_counter()
    job.run()
    return {
        "speed": float(job.output.atom_steps_per_second),
        "n_atoms": int(job.output.n_atoms),
        "loop_seconds": float(job.output.loop_seconds),
        "procs": int(job.output.lammps_procs),
        "wall_seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--twojmax", type=int, nargs="+", default=[4, 6, 8, 10])
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--n-atoms", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary pyiron project")
    parser.add_argument("--steps", nargs="*", default=[], help="per-2Jmax steps as 2JMAX=STEPS (default "
                        + " ".join(f"{k}={v}" for k, v in DEFAULT_STEPS.items()) + ")")
    args = parser.parse_args(argv)
    steps = dict(DEFAULT_STEPS)
    for item in args.steps:
        key, value = item.split("=")
        steps[int(key)] = int(value)

    folder = _isolated_pyiron()
    from pyiron_atomistics import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers MDSpeed and the LAMMPS resources)

    project = Project(str(folder / "md_speed"))
    results: dict[tuple[int, int], dict] = {}
    for cores in args.cores:
        for twojmax in args.twojmax:
            results[twojmax, cores] = r = measure(project, twojmax, cores, args.n_atoms, steps[twojmax])
            print(f"  2Jmax {twojmax:2d}, {cores} core(s), {r['n_atoms']} atoms, {steps[twojmax]} steps: "
                  f"{r['speed']:.4g} atom-steps/s ({r['procs']} MPI procs, loop {r['loop_seconds']:.1f} s, job {r['wall_seconds']:.1f} s)",
                  flush=True)

    print(f"\nqSNAP MD speed, hcp Be, {next(iter(results.values()))['n_atoms']} atoms, MDSpeed/pyiron Lammps job, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    header = "| 2Jmax | steps | " + " | ".join(f"{c} core{'s' if c > 1 else ''} (atom-steps/s) | ratio to 2J4"
                                             for c in args.cores)
    header += " | Table 2 (atom-steps/s) | Table 2 ratio |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for twojmax in args.twojmax:
        cells = [f"{twojmax}", f"{steps[twojmax]}"]
        for cores in args.cores:
            speed = results[twojmax, cores]["speed"]
            base = results.get((4, cores), {}).get("speed")
            cells += [f"{speed:.3g}", f"{speed / base:.3f}" if base else "—"]
        ref = TABLE2.get(twojmax)
        cells += [f"{ref:.0e}" if ref else "—", f"{ref / TABLE2[4]:.3f}" if ref else "—"]
        print("| " + " | ".join(cells) + " |")
    if len(args.cores) > 1:
        first, last = args.cores[0], args.cores[-1]
        scaling = ", ".join(
            f"2J{t}: {results[t, last]['speed'] / results[t, first]['speed']:.2f}×" for t in args.twojmax
        )
        print(f"\nspeed-up {first} → {last} cores: {scaling}")
    if args.keep:
        print(f"pyiron project kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
