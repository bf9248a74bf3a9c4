"""Benchmark: the study's scale on one machine — a 20,000-configuration pool of 40–60-atom Be cells.

    nice -n 10 python benchmarks/study_scale.py --configs 2000 --twojmax 6 --draws 3
    python benchmarks/study_scale.py --configs 200                      # a quick look

Stages (issue 17, items 1–2; the grid stages come later and are printed as ``nan``):

1. **Pool** (cached in ``benchmarks/_cache/``, git-ignored): configuration i is a supercell of 40–60 atoms of one of
   400 cells drawn by the package's structure generator (:func:`~pyiron_mlip_tradeoff.structures.generate_candidates`,
   up to 16 atoms), strained (±2 %) and rattled (0.03 Å) with a generator seeded by i, so a pool of N is the first N
   configurations of every larger pool. Labels for six precision levels are **SYNTHETIC**: energies and forces of
   an analytic LAMMPS ``pair_style morse`` (not a Be model) plus level-dependent Gaussian noise. They exist to give
   later stages arrays of the study's shape, for time and memory only; never use them for any scientific claim.
2. **Descriptors vs FitSNAP** on a sample of the pool: FitSNAP 3.1.0.4's ``process_configs`` (run live through
   ``_fitsnap_compat``) against :func:`compute_descriptors`, both in one process with one BLAS thread, the sample
   processed in interleaved halves (ours, FitSNAP, ours, FitSNAP); energy and force rows checked to 1e-10 of each
   column's largest value. ``descriptors_vs_fitsnap`` = FitSNAP seconds / our seconds on that sample.
3. **Descriptors at scale**: :func:`compute_chunked_descriptors` — chunks of ``--chunk-size`` configurations,
   ``--workers`` chunks side by side, each streamed into its own file of a resumable cache — for N/4 and for N
   configurations, each in a fresh subprocess whose process tree (it and its workers) is sampled for resident
   memory every 0.1 s. Flat memory means the two peaks agree; ``peak_gb`` is the one at N. The rows of the sample
   of stage 2 are read back from the cache and must equal the in-memory ones exactly.

The last line holds the figures as ``key=value``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402

CACHE = Path(__file__).resolve().parent / "_cache"
POOL_FORMAT = 1
N_LEVELS = 6
N_SEED_CELLS = 400
#: SYNTHETIC labels: an analytic Morse pair potential (D0 eV, alpha 1/Å, r0 Å, cutoff Å), not a Be model
MORSE = (0.3, 1.4, 2.25, 5.0)
#: SYNTHETIC per-level noise: energy (eV/atom) and force (eV/Å) standard deviations of level 1..6 (6 = "converged")
LEVEL_NOISE = [(3e-2, 3e-1), (1e-2, 1e-1), (3e-3, 3e-2), (1e-3, 1e-2), (3e-4, 3e-3), (0.0, 0.0)]
SYNTHETIC_NOTE = ("SYNTHETIC labels: LAMMPS pair_style morse + level-dependent noise; for time and memory "
                  "benchmarks only, never for scientific claims")


# ---------------------------------------------------------------------------------------------------------------
# the pool
def _supercell_reps(n: int) -> tuple[int, int, int] | None:
    """The most compact repetition that brings an n-atom cell to 40–60 atoms."""
    best = None
    for a in range(1, 31):
        for b in range(1, a + 1):
            for c in range(1, b + 1):
                if 40 <= n * a * b * c <= 60 and (best is None or a - c < best[0] - best[2]):
                    best = (a, b, c)
    return best


def _configuration(i: int, seeds: list[Atoms], seed: int) -> Atoms:
    rng = np.random.default_rng([seed, i])
    while True:
        base = seeds[int(rng.integers(len(seeds)))]
        reps = _supercell_reps(len(base))
        if reps is not None:
            break
    axes = rng.permutation(3)
    atoms = base.repeat(tuple(int(r) for r in np.array(reps)[axes]))
    eps = rng.uniform(-0.02, 0.02, (3, 3))
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
    atoms.positions += rng.normal(scale=0.03, size=atoms.positions.shape)
    atoms.wrap()
    return atoms


def _morse_labels(structures: list[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC energies (eV) and forces (eV/Å, ASE frame) of an analytic Morse pair potential, by LAMMPS."""
    from pyiron_mlip_tradeoff.reference import _PairEvaluator

    d0, alpha, r0, cut = MORSE
    lines = [f"pair_style morse {cut}", f"pair_coeff 1 1 {d0} {alpha} {r0}"]
    energies, forces = np.empty(len(structures)), []
    with _PairEvaluator(lines, ["Be"]) as evaluator:
        for m, atoms in enumerate(structures):
            energies[m], f, _ = evaluator.compute(atoms)
            forces.append(f)
    return energies, np.concatenate(forces)


class StudyPool:
    """The benchmark pool in an HDF5 file, read one slice of configurations at a time (``pool[a:b]``)."""

    def __init__(self, path: Path, n_configs: int | None = None) -> None:
        import h5py

        self.path = path
        with h5py.File(path, "r") as f:
            self.n_atoms_all = f["n_atoms"][()]
            self.note = str(f.attrs["labels"])
        self.n = len(self.n_atoms_all) if n_configs is None else int(n_configs)
        self.offsets = np.concatenate([[0], np.cumsum(self.n_atoms_all)])

    def __len__(self) -> int:
        return self.n

    def prefix(self, n: int) -> StudyPool:
        return StudyPool(self.path, n)

    def __getitem__(self, item):
        import h5py

        if isinstance(item, (int, np.integer)):
            return self[int(item) : int(item) + 1][0]
        a, b, step = item.indices(self.n)
        if step != 1:
            raise ValueError("only contiguous slices")
        o = self.offsets
        with h5py.File(self.path, "r") as f:
            numbers = f["numbers"][o[a] : o[b]]
            positions = f["positions"][o[a] : o[b]]
            cells = f["cells"][a:b]
        return [Atoms(numbers=numbers[o[i] - o[a] : o[i + 1] - o[a]], positions=positions[o[i] - o[a] : o[i + 1] - o[a]],
                      cell=cells[i - a], pbc=True) for i in range(a, b)]

    def labels(self, indices) -> tuple[np.ndarray, list[np.ndarray]]:
        """SYNTHETIC (energies (len, 6) eV, forces per configuration (N_m·3, 6) eV/Å) of the given configurations."""
        import h5py

        with h5py.File(self.path, "r") as f:
            energies = f["energies"][np.sort(indices)]
            forces = [f["forces"][3 * self.offsets[i] : 3 * self.offsets[i + 1]] for i in np.sort(indices)]
        return energies, forces


def build_pool(n_configs: int, seed: int = 17) -> StudyPool:
    """The pool of ``n_configs`` configurations with SYNTHETIC labels, built once and cached."""
    import h5py

    from pyiron_mlip_tradeoff.structures import generate_candidates

    path = CACHE / f"study_pool_{n_configs}_seed{seed}_v{POOL_FORMAT}.h5"
    if path.is_file():
        return StudyPool(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    seeds, _ = generate_candidates(N_SEED_CELLS, seed=seed, max_atoms=16)
    structures = [_configuration(i, seeds, seed) for i in range(n_configs)]
    energies, forces = _morse_labels(structures)
    n_atoms = np.array([len(a) for a in structures])
    rng = np.random.default_rng([seed, 999])
    level_e = np.stack([energies + s_e * np.sqrt(n_atoms) * rng.standard_normal(n_configs) for s_e, _ in LEVEL_NOISE], 1)
    flat = forces.reshape(-1)
    level_f = np.stack([flat + s_f * rng.standard_normal(flat.size) for _, s_f in LEVEL_NOISE], 1)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with h5py.File(tmp, "w") as f:
        f["n_atoms"] = n_atoms
        f["numbers"] = np.concatenate([a.numbers for a in structures])
        f["positions"] = np.concatenate([a.positions for a in structures])
        f["cells"] = np.array([a.cell[:] for a in structures])
        f["energies"] = level_e
        f["forces"] = level_f
        f.attrs["labels"] = SYNTHETIC_NOTE
        f.attrs["levels"] = json.dumps(LEVEL_NOISE)
    os.replace(tmp, path)
    print(f"pool built in {time.perf_counter() - start:.1f} s: {path}", flush=True)
    return StudyPool(path)


# ---------------------------------------------------------------------------------------------------------------
# stage 2: ours vs FitSNAP on a sample
def _rotation(atoms) -> np.ndarray:
    from fitsnap3lib.scrapers.ase_funcs import get_apre

    return np.linalg.inv(atoms.cell[:]) @ get_apre(atoms.cell[:])


def versus_fitsnap(cells: list[Atoms], twojmax: int) -> dict:
    from pyiron_mlip_tradeoff._fitsnap_compat import fitsnap_data, fitsnap_settings, make_fitsnap
    from pyiron_mlip_tradeoff.descriptors import compute_descriptors

    t_ours = t_fs = 0.0
    ours_e, ours_f, fs_e, fs_f = [], [], [], []
    for part in np.array_split(np.arange(len(cells)), 2):
        sample = [cells[i] for i in part]
        start = time.perf_counter()
        ours = compute_descriptors(sample, twojmax)
        t_ours += time.perf_counter() - start
        fs = make_fitsnap(fitsnap_settings(twojmax))
        data = fitsnap_data(sample)
        start = time.perf_counter()
        fs.process_configs(data)  # timed alone, as in descriptors_inp.py (set-up and scraper excluded)
        t_fs += time.perf_counter() - start
        out = {"a": np.array(fs.pt.shared_arrays["a"].array, copy=True),
               "row_type": np.asarray(fs.pt.fitsnap_dict["Row_Type"])}
        del fs, data
        ours_e.append(ours.energy_rows)
        fs_e.append(out["a"][out["row_type"] == "Energy"])
        fs_f.append(out["a"][out["row_type"] == "Force"])
        o = ours.force_offsets
        for k, atoms in enumerate(sample):  # ours in the ASE frame, FitSNAP's in its rotated LAMMPS frame
            rows = ours.force_rows[o[k] : o[k + 1]].reshape(len(atoms), 3, -1)
            ours_f.append(np.einsum("naj,ab->nbj", rows, _rotation(atoms)).reshape(3 * len(atoms), -1))
    worst = 0.0
    for a, b in ((np.concatenate(ours_e), np.concatenate(fs_e)), (np.concatenate(ours_f), np.concatenate(fs_f))):
        scale = np.abs(b).max(axis=0)
        scale[scale == 0] = 1.0
        worst = max(worst, float((np.abs(a - b) / scale).max()))
    return {"ours_seconds": t_ours, "fitsnap_seconds": t_fs, "max_rel_diff": worst,
            "energy_rows": np.concatenate(ours_e)}


# ---------------------------------------------------------------------------------------------------------------
# stage 3: the chunked descriptors in a subprocess, memory of its process tree sampled
def descriptor_stage(pool_path: str, n_configs: int, twojmax: int, chunk_size: int, workers: int) -> dict:
    """Run in the subprocess: a fresh chunked cache of the first ``n_configs`` configurations."""
    from pyiron_mlip_tradeoff.descriptor_cache import compute_chunked_descriptors

    pool = StudyPool(Path(pool_path), n_configs)
    name = f"{Path(pool_path).stem}_n{n_configs}_2j{twojmax}_c{chunk_size}"
    shutil.rmtree(CACHE / "descriptors" / name, ignore_errors=True)
    start = time.perf_counter()
    cache = compute_chunked_descriptors(CACHE / "descriptors", pool, twojmax, chunk_size=chunk_size,
                                        n_workers=workers, name=name)
    seconds = time.perf_counter() - start
    assert cache.complete
    return {"seconds": seconds, "cache": str(cache.path), "n_chunks": cache.n_chunks, "p": cache.n_columns}


def run_stage_measured(args, n_configs: int, pool_path: Path) -> dict:
    import psutil

    cmd = [sys.executable, __file__, "--stage", "descriptors", "--pool", str(pool_path), "--configs", str(n_configs),
           "--twojmax", str(args.twojmax), "--chunk-size", str(args.chunk_size), "--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
            peak = max(peak, total)
        except psutil.Error:
            pass
        time.sleep(0.1)
    out, _ = proc.communicate()
    if proc.returncode:
        sys.exit(f"descriptor stage for {n_configs} configurations failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_gb"] = peak / 1024**3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=20000, help="configurations in the pool (default 20000)")
    parser.add_argument("--twojmax", type=int, default=6)
    parser.add_argument("--draws", type=int, default=3, help="draws per grid point (grid stages: not yet)")
    parser.add_argument("--chunk-size", type=int, default=50, help="configurations per descriptor chunk")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="chunks side by side")
    parser.add_argument("--fitsnap-sample", type=int, default=40, help="configurations timed against FitSNAP")
    parser.add_argument("--stage", choices=["descriptors"], help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "descriptors":
        print(json.dumps(descriptor_stage(args.pool, args.configs, args.twojmax, args.chunk_size, args.workers)))
        return
    if args.configs < 8:
        sys.exit("--configs must be at least 8")

    pool = build_pool(args.configs)
    n_atoms = pool.n_atoms_all
    print(f"pool: {len(pool)} configurations, {n_atoms.min()}–{n_atoms.max()} atoms (mean {n_atoms.mean():.1f}), "
          f"{N_LEVELS} levels; {pool.note}")

    sample_idx = np.linspace(0, len(pool) - 1, min(args.fitsnap_sample, len(pool))).astype(int)
    cells = [pool[int(i)] for i in sample_idx]
    vs = versus_fitsnap(cells, args.twojmax)
    ratio = vs["fitsnap_seconds"] / vs["ours_seconds"]
    print(f"sample of {len(cells)}: ours {vs['ours_seconds']:.2f} s, FitSNAP process_configs "
          f"{vs['fitsnap_seconds']:.2f} s (one process each): {ratio:.2f}x; max relative row difference "
          f"{vs['max_rel_diff']:.1e}")
    if vs["max_rel_diff"] > 1e-10:
        sys.exit("rows differ from FitSNAP's by more than 1e-10")

    small = run_stage_measured(args, max(1, len(pool) // 4), pool.path)
    shutil.rmtree(small["cache"], ignore_errors=True)  # measured for its memory only; the full cache stays
    full = run_stage_measured(args, len(pool), pool.path)
    rate = len(pool) / full["seconds"]
    print(f"chunked descriptors (2Jmax {args.twojmax}, p={full['p']}, chunks of {args.chunk_size}, "
          f"{args.workers} workers): {len(pool) // 4} configs {small['seconds']:.1f} s, peak {small['peak_gb']:.3f} GB; "
          f"{len(pool)} configs {full['seconds']:.1f} s ({rate:.1f} configs/s), peak {full['peak_gb']:.3f} GB")
    per_config_fs = vs["fitsnap_seconds"] / len(cells)
    print(f"FitSNAP (one process) at its sample speed would take {per_config_fs * len(pool):.0f} s for the pool: "
          f"{per_config_fs * rate:.2f}x our chunked run")

    from pyiron_mlip_tradeoff.descriptor_cache import ChunkedDescriptorCache

    cached = ChunkedDescriptorCache(full["cache"]).energy_rows(sample_idx)
    if not np.array_equal(cached, vs["energy_rows"]):
        sys.exit("rows read back from the chunked cache differ from the in-memory ones")
    print("sample rows read back from the chunked cache equal the in-memory rows exactly")
    # grid figures (issue 17 items 3/4) are not measured yet
    print(f"configs={len(pool)} twojmax={args.twojmax} draws={args.draws} descriptor_seconds={full['seconds']:.1f} "
          f"descriptors_vs_fitsnap={ratio:.2f} peak_gb={full['peak_gb']:.3f} peak_gb_quarter={small['peak_gb']:.3f} "
          "grid_seconds=nan grid_peak_gb=nan  # grid figures: not measured yet")


if __name__ == "__main__":
    main()
