"""Benchmark: the study's scale on one machine — a 20,000-configuration pool of 40–60-atom Be cells.

    nice -n 10 python benchmarks/study_scale.py --configs 2000 --twojmax 6 --draws 2 --sampling energy
    nice -n 10 python benchmarks/study_scale.py --configs 20000 --draws 1 --reuse-descriptors --no-compare-storage
    python benchmarks/study_scale.py --configs 400 --draws 1 --slurm-draws 2   # a quick look, with SLURM

Stages:

1. **Pool** (cached in ``benchmarks/_cache/``, git-ignored, or in the folder ``--cache`` names, with its dataset and
   descriptor caches next to it): configuration i is a supercell of 40–60 atoms of one of
   400 cells drawn by the package's structure generator (:func:`~pyiron_mlip_tradeoff.structures.generate_candidates`,
   up to 16 atoms), strained (±2 %) and rattled (0.03 Å) with a generator seeded by i, so a pool of N is the first N
   configurations of every larger pool. Labels for six precision levels are **SYNTHETIC**: energies and forces of
   an analytic LAMMPS ``pair_style morse`` (not a Be model) plus level-dependent Gaussian noise. They exist to give
   later stages arrays of the study's shape, for time and memory only; never use them for any scientific claim.
2. **Descriptors vs FitSNAP** on a sample of the pool: FitSNAP 3.1.0.4's ``process_configs`` (run live through
   ``_fitsnap_compat``) against :func:`compute_descriptors`, both in one process with one BLAS thread, the sample
   processed in interleaved halves (ours, FitSNAP, ours, FitSNAP); energy and force rows checked to 1e-10 of each
   column's largest value. ``descriptors_vs_fitsnap`` = FitSNAP seconds / our seconds on that sample. The set-ups
   are left out of both times: FitSNAP's (``make_fitsnap``) and ours, the one-time loading of MPI and the LAMMPS
   library (which FitSNAP's set-up loads too); that loading is measured and the ratio with it counted is printed
   as well.
3. **Descriptors at scale**: :func:`compute_chunked_descriptors` — chunks of ``--chunk-size`` configurations,
   ``--workers`` chunks side by side, each streamed into its own file of a resumable cache — for N/4 and for N
   configurations, each in a fresh subprocess whose process tree (it and its workers) is sampled for resident
   memory every 0.1 s. Flat memory means the two peaks agree. The rows of the sample of stage 2 are read back from
   the cache and must equal the in-memory ones exactly. With ``--reuse-descriptors`` a complete cache of an earlier
   run is used and the figures that run recorded are printed, marked REUSED with the date and load of that run.
4. **The study's 3D-Pareto grid**: 6 levels × 12 subset sizes (100…9,990 for 20,000 configurations, scaled with
   the training pool of a smaller one) × the 6 weight ratios × ``--draws`` measured draws, as a ``TradeoffGrid`` job
   with ``point_storage = "table"`` reading the chunked cache (``descriptor_caches``) and the dataset file (opened
   with its forces and structures left in the file, as the job does), in a subprocess whose memory is sampled
   (``peak_gb``; also split into anonymous and file-backed resident memory, ``peak_anon_gb`` + ``peak_file_gb``,
   and the memory before ``grid.run()``). The grid's own timings (``output.stage_seconds``) split it into once-per-grid parts
   (validation and test statistics, leverage scores) and per-draw time; the study's 50 draws (10 at 2Jmax 8) are
   EXTRAPOLATED as once-per-grid + 50 × per-draw, said so in the output. ``vs_limit``: that grid time over 50 × one
   QR pass over a draw's largest subset, timed alone. ``ms_per_point``: bookkeeping (rows, coefficients, files) per
   point; kB per point from the files written. The leverage scores are exact unless ``--leverage-sketch R`` asks for
   sketched ones (an approximation, opt-in); the grid line and ``leverage=`` on the last line say which.
   ``chunks_kept_open=`` says whether a draw's pass kept the chunk files open (caches of at most
   ``--keep-chunks-open`` chunks, default ``descriptor_cache.KEPT_OPEN_FILES``; each open file holds memory).
5. **Comparisons** (another subprocess): both ways of keeping points (``"jobs"`` vs ``"table"``) on the same small
   grid (one draw, the two smallest sizes; ``--no-compare-storage`` leaves it out), and the study's dense approach
   — a weighted ``numpy.linalg.lstsq`` of a point's rows and a dense prediction of its test set — timed on three
   points of the first draw (the largest with at most ``--dense-rows`` rows), extrapolated to all points with the
   lstsq time linear in the rows (said so): ``vs_dense`` = that over our grid time; the largest relative
   disagreement of their test RMSEs with the grid's.
6. **SLURM** (``--slurm-draws K``, needs ``bash scripts/services.sh start``): the same grid of K draws as
   ``GridChunk`` queue jobs with a PostgreSQL database, in one chunk and in two, each started from an idle queue;
   ``slurm_speedup`` = the ratio of the two wall times, with the load average printed (a loaded machine is said to
   be loaded). Where the seconds went is printed from the grids' and chunks' timestamps: every step of the chunk
   that ended last, the time per draw and what each run paid besides its draws.

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
#: the grids' pyiron projects and JSON hand-overs (always here, also with ``--cache``)
WORK = CACHE / "work"
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


def build_pool(n_configs: int, seed: int = 17, cache: Path = CACHE) -> StudyPool:
    """The pool of ``n_configs`` configurations with SYNTHETIC labels, built once and cached in ``cache``."""
    import h5py

    from pyiron_mlip_tradeoff.structures import generate_candidates

    path = cache / f"study_pool_{n_configs}_seed{seed}_v{POOL_FORMAT}.h5"
    if path.is_file():
        return StudyPool(path)
    cache.mkdir(parents=True, exist_ok=True)
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
    from pyiron_mlip_tradeoff.descriptors import _lammps_instance, compute_descriptors

    # the one-time loading of MPI and the LAMMPS library (once per process) before either is timed: FitSNAP, timed
    # after ours, never paid it, and its own set-up (make_fitsnap) is not timed either; measured and printed
    start = time.perf_counter()
    _lammps_instance().close()  # imports mpi4py (libmpi) and lammps, loads liblammps
    t_setup = time.perf_counter() - start
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
    return {"ours_seconds": t_ours, "fitsnap_seconds": t_fs, "max_rel_diff": worst, "setup_seconds": t_setup,
            "energy_rows": np.concatenate(ours_e)}


# ---------------------------------------------------------------------------------------------------------------
# stage 3: the chunked descriptors in a subprocess, memory of its process tree sampled
def descriptor_stage(pool_path: str, n_configs: int, twojmax: int, chunk_size: int, workers: int) -> dict:
    """Run in the subprocess: a fresh chunked cache of the first ``n_configs`` configurations."""
    from pyiron_mlip_tradeoff.descriptor_cache import compute_chunked_descriptors

    pool = StudyPool(Path(pool_path), n_configs)
    name = f"{Path(pool_path).stem}_n{n_configs}_2j{twojmax}_c{chunk_size}"
    folder = Path(pool_path).parent / "descriptors"  # next to the pool
    shutil.rmtree(folder / name, ignore_errors=True)
    start = time.perf_counter()
    cache = compute_chunked_descriptors(folder, pool, twojmax, chunk_size=chunk_size,
                                        n_workers=workers, name=name)
    seconds = time.perf_counter() - start
    assert cache.complete
    return {"seconds": seconds, "cache": str(cache.path), "n_chunks": cache.n_chunks, "p": cache.n_columns}


def run_stage_measured(args, n_configs: int, pool_path: Path) -> dict:
    return run_measured([sys.executable, __file__, "--stage", "descriptors", "--pool", str(pool_path), "--configs",
                         str(n_configs), "--twojmax", str(args.twojmax), "--chunk-size", str(args.chunk_size),
                         "--workers", str(args.workers)])


# ---------------------------------------------------------------------------------------------------------------
# stage 4: the 3D-Pareto grid — statistics, fits and bookkeeping
#: the study's subset sizes (configurations), scaled down with the training pool of a smaller benchmark pool
STUDY_SIZES = np.unique(np.round(np.geomspace(100, 9990, 12)).astype(int))
STUDY_DRAWS = 50


def study_draws(twojmax: int) -> int:
    """Draws of the study's grid at this 2Jmax: 50, and 10 at 2Jmax 8 (as the issue asks)."""
    return 10 if twojmax >= 8 else STUDY_DRAWS


def study_sizes(n_configs: int) -> list[int]:
    """The 12 subset sizes 100…9,990 of a 20,000-configuration pool (training pool 10,000), scaled to this pool."""
    scale = min(1.0, (n_configs // 2) / 10_000)
    return sorted({max(2, int(round(s * scale))) for s in STUDY_SIZES})


def study_dataset(pool_path: Path, n_configs: int, lazy: bool = True):
    """The pool as a :class:`LadderDataset` (levels 1–6, SYNTHETIC labels), cached next to the pool; ``lazy``: its
    forces and structures left in the file (``LadderDataset.load(lazy=True)``, as the grid job opens it), so the
    stages do not hold the whole dataset in the processes whose memory is measured."""
    from pyiron_mlip_tradeoff.dataset import LadderDataset

    path = pool_path.parent / f"{pool_path.stem}_n{n_configs}_dataset.h5"
    if path.is_file():
        return LadderDataset.load(path, lazy=lazy), path
    pool = StudyPool(pool_path, n_configs)
    structures = pool[0:n_configs]
    energies, forces = pool.labels(np.arange(n_configs))
    forces = np.concatenate(forces).reshape(-1, 3, N_LEVELS).transpose(2, 0, 1)
    dataset = LadderDataset(structures, energies.T, forces, levels=list(range(1, N_LEVELS + 1)),
                            metadata={"labels": SYNTHETIC_NOTE})
    tmp = path.with_suffix(f".{os.getpid()}.tmp.h5")
    dataset.save(tmp)
    os.replace(tmp, path)
    return (LadderDataset.load(path, lazy=True) if lazy else dataset), path


def _pyiron_project(folder: Path):
    os.environ["PYIRONSQLFILE"] = str(folder / "pyiron.db")
    os.environ["PYIRONPROJECTPATHS"] = str(folder)
    os.environ["PYIRONPROJECTCHECKENABLED"] = "False"
    os.environ["PYIRONDISABLE"] = "False"
    from pyiron_base import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers the job classes)

    return Project(str(folder / "study"))


def _folder_bytes(path: Path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _grid_job(pr, name: str, dataset_path: Path, twojmax: int, sizes, sampling: str, draws: int, storage: str,
              cache: str, leverage_sketch: int | None = None):
    grid = pr.create.job.TradeoffGrid(name)
    grid.input.dataset = str(dataset_path)
    grid.input.levels = list(range(1, N_LEVELS + 1))
    grid.input.subset_sizes = [int(s) for s in sizes]
    grid.input.twojmax = [int(twojmax)]
    grid.input.sampling = [sampling]
    grid.input.repetitions = int(draws)
    grid.input.reference_level = N_LEVELS
    grid.input.point_storage = storage
    grid.input.descriptor_caches = {str(twojmax): str(cache)}
    grid.input.leverage_sketch = leverage_sketch
    return grid


def grid_stage(args) -> dict:
    """Run in a subprocess whose memory is sampled: the grid as a ``TradeoffGrid`` job (table storage) on the
    chunked descriptor cache, then — timed apart — what the grid time is made of."""
    from pyiron_mlip_tradeoff import descriptor_cache
    from pyiron_mlip_tradeoff.descriptor_cache import ChunkedDescriptorCache
    from pyiron_mlip_tradeoff.fitting import labelled_blocks, statistics_from_blocks
    from pyiron_mlip_tradeoff.jobs.grid_points import read_draw, stored_draws

    if args.keep_chunks_open is not None:
        descriptor_cache.KEPT_OPEN_FILES = args.keep_chunks_open

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pr = _pyiron_project(work)
    dataset, dataset_path = study_dataset(Path(args.pool), args.configs)
    cache = ChunkedDescriptorCache(args.desc_cache)
    grid = _grid_job(pr, "study", dataset_path, args.twojmax, study_sizes(args.configs), args.sampling, args.draws,
                     "table", args.desc_cache, args.leverage_sketch)
    before = _rss_parts(os.getpid())  # interpreter, libraries, pyiron, the dataset opened lazily
    start, cpu = time.perf_counter(), time.process_time()
    grid.run()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    table = grid.get_table()
    out = {"points": len(table), "grid_seconds": wall, "grid_cpu": cpu, "store_seconds": float(grid.output.store_seconds),
           "bytes": _folder_bytes(grid._points_dir()) + _folder_bytes(Path(grid.project_hdf5.file_name)),
           "p": int(cache.n_columns), "sizes": study_sizes(args.configs),
           "chunks_kept_open": cache.n_chunks <= descriptor_cache.KEPT_OPEN_FILES,
           "rss_before_grid_gb": before[0] / 1024**3, "anon_before_grid_gb": before[1] / 1024**3}
    # the parts as the grid timed them (fitting.run_grid(timings=…)): once per grid (validation and test
    # statistics, leverage scores of the pool) and per draw (the streamed passes); then the limit of the method, one
    # QR pass over each draw's largest subset, timed alone
    spec = grid._plan(dataset)[1]
    stages = dict(grid.output.stage_seconds)
    out["stages"] = stages
    out["sets_seconds"] = float(stages.get("sets", 0.0))
    out["leverage_seconds"] = float(stages.get("leverage", 0.0))
    limit, limit_cpu = [], []
    for path in stored_draws(grid._points_dir()).values():
        order = np.sort(read_draw(path)["subset_order"])
        t0, c0 = time.perf_counter(), time.process_time()
        statistics_from_blocks(labelled_blocks(dataset, cache, order), levels=tuple(dataset.levels))
        limit.append(time.perf_counter() - t0)
        limit_cpu.append(time.process_time() - c0)
    out["limit_seconds"], out["limit_cpu"] = limit, limit_cpu
    mine = table[(table.training_level == N_LEVELS - 1) & (table.weight_ratio == 50.0) & (table.repetition == 0)]
    out["rmse_of_size"] = {int(r.subset_size): (float(r.test_energy_rmse), float(r.test_force_rmse))
                           for r in mine.itertuples()}
    out["test_indices"] = spec.test_indices.tolist()
    out["orders"] = {path.name: read_draw(path)["subset_order"].tolist()
                     for path in stored_draws(grid._points_dir()).values()}
    return out


def compare_stage(args) -> dict:
    """Run in a subprocess: (1) the two ways of keeping points, measured on the same small grid (one draw, the two
    smallest sizes, all levels and weight ratios); (2) the study's dense approach on a sample of the big grid's
    points (dense weighted lstsq of the point's rows, dense prediction of the test set)."""
    from pyiron_mlip_tradeoff.descriptor_cache import ChunkedDescriptorCache
    from pyiron_mlip_tradeoff.fitting import labelled_blocks
    from pyiron_mlip_tradeoff.regression import concatenate_blocks

    grid_info = json.loads(Path(args.grid_json).read_text())
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pr = _pyiron_project(work)
    dataset, dataset_path = study_dataset(Path(args.pool), args.configs)
    sizes = study_sizes(args.configs)[:2]
    out = {}
    for storage in ("jobs", "table") if args.compare_storage else ():
        grid = _grid_job(pr, f"keep_{storage}", dataset_path, args.twojmax, sizes, "random", 1, storage,
                         args.desc_cache)
        grid.run()
        n = int(grid.output.n_points)
        if storage == "jobs":
            jobs = pr.job_table()
            names = set(jobs[jobs.hamilton == "QSnapFit"].job)
            size = sum(_folder_bytes(Path(pr.path) / f"{name}.h5") + _folder_bytes(Path(pr.path) / f"{name}_hdf5")
                       for name in names)
        else:
            size = _folder_bytes(grid._points_dir()) + _folder_bytes(Path(grid.project_hdf5.file_name))
        out[storage] = {"points": n, "ms_per_point": 1e3 * float(grid.output.store_seconds) / n,
                        "bytes_per_point": size / n}
    # the dense approach on a sample of points: the smallest, a middle and the largest subset size whose dense
    # matrix stays below --dense-rows rows, for draw 0 of the big grid; lstsq time scales with the rows (m p²), so
    # larger subsets are extrapolated linearly in their rows
    cache = ChunkedDescriptorCache(args.desc_cache)
    test = np.asarray(grid_info["test_indices"])
    (first_order,) = [np.asarray(v) for k, v in sorted(grid_info["orders"].items())][:1]
    rows_of = 1 + 3 * dataset.n_atoms
    candidates = [s for s in grid_info["sizes"] if rows_of[first_order[:s]].sum() <= args.dense_rows]
    sample = sorted({candidates[0], candidates[len(candidates) // 2], candidates[-1]})
    level, ratio = N_LEVELS - 1, 50.0
    sample_out, betas = [], []
    j = dataset.level_index(level)
    for size in sample:
        train = np.sort(first_order[:size])
        t0 = time.perf_counter()
        block = concatenate_blocks(labelled_blocks(dataset, cache, train))
        a = np.vstack([ratio * block.energy_rows, block.force_rows])
        b = np.concatenate([ratio * block.energy_targets[:, j], block.force_targets[:, j]])
        betas.append(np.linalg.lstsq(a, b, rcond=None)[0])
        fit_seconds = time.perf_counter() - t0
        del a, b, block
        sample_out.append({"size": int(size), "rows": int(rows_of[train].sum()), "fit_seconds": fit_seconds})
    # dense prediction of the test set (the study predicts every point's test set): streamed in slices of 200
    # configurations, all sampled models at once; each point is charged the whole pass
    beta = np.column_stack(betas)
    sq_e, sq_f, n_e, n_f = 0.0, 0.0, 0, 0
    t0 = time.perf_counter()
    for part in np.array_split(test, max(1, test.size // 200)):
        block = concatenate_blocks(labelled_blocks(dataset, cache, part))
        sq_e = sq_e + np.sum((block.energy_rows @ beta - block.energy_targets[:, [-1]]) ** 2, axis=0)
        sq_f = sq_f + np.sum((block.force_rows @ beta - block.force_targets[:, [-1]]) ** 2, axis=0)
        n_e, n_f = n_e + len(block.energy_rows), n_f + len(block.force_rows)
    predict_seconds = time.perf_counter() - t0
    for k, d in enumerate(sample_out):
        d["predict_seconds"] = predict_seconds
        d["test_energy_rmse"] = 1e3 * float(np.sqrt(sq_e[k] / n_e))  # meV/atom, vs level 6 as the table
        d["test_force_rmse"] = 1e3 * float(np.sqrt(sq_f[k] / n_f))  # meV/Å
    out["dense"] = sample_out
    out["dense_point"] = {"training_level": level, "weight_ratio": ratio}
    return out


def _idle_queue(pause: float = 3.0) -> None:
    """Wait until SLURM lists none of this user's jobs, then ``pause`` s more, so that both measurements start from
    an idle queue: SLURM's main scheduling loop runs at most every 2 s (``sched_min_interval``, the default), so a
    job submitted just after another one ended may wait up to 2 s before it starts."""
    from pyiron_mlip_tradeoff.jobs.queue import queue_ids_alive

    deadline = time.time() + 60
    while queue_ids_alive() and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(pause)


def slurm_stage(args) -> dict:
    """Run in a subprocess configured for SLURM + PostgreSQL: the same grid of ``--slurm-draws`` draws as
    ``GridChunk`` queue jobs, once in one chunk (one SLURM worker) and once in two (two side by side); wall time of
    ``grid.run()`` (the grid waits for its chunks) each time."""
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    pr = _pyiron_project(work)
    _, dataset_path = study_dataset(Path(args.pool), args.configs)
    out = {}
    for workers in (1, 2):
        _idle_queue()
        grid = _grid_job(pr, f"slurm_{workers}", dataset_path, args.twojmax, study_sizes(args.configs),
                         args.sampling, args.slurm_draws, "table", args.desc_cache, args.leverage_sketch)
        grid.server.queue = "local"
        grid.server.cores = 1
        grid.input.chunk_size = -(-args.slurm_draws // workers)
        grid.input.poll_interval = 2.0
        start = time.perf_counter()
        grid.run()
        out[str(workers)] = time.perf_counter() - start
        grid = pr.load(grid.job_name)
        if not grid.status.finished or len(grid.get_table()) != grid.output.n_points:
            raise RuntimeError(f"the SLURM grid with {workers} chunk(s) did not finish: {grid.status}")
        timeline = grid.output.get("master_timeline")  # None from a version of the package without timelines
        if timeline is not None:
            out[f"timeline_{workers}"] = {"master": dict(timeline), "events": grid.chunk_events()}
    return out


#: the steps of a chunk's life, in order: (name, from, to) of the timestamps the master and the chunk write
CHUNK_STEPS = (
    ("master: load and plan the grid", "run", "planned"),
    ("master: check the descriptors", "planned", "submitting"),
    ("master: submit (sbatch)", "submitting", "submitted"),
    ("queue: submitted -> process starts", "submitted", "process_start"),
    ("chunk: Python, imports, pyiron wrapper", "process_start", "run_static"),
    ("chunk: load the grid job", "run_static", "grid_loaded"),
    ("chunk: load the dataset", "compute_chunk", "dataset_loaded"),
    ("chunk: plan (validate) the grid", "dataset_loaded", "planned_chunk"),
    ("chunk: check the descriptor cache", "planned_chunk", "descriptors_checked"),
    ("chunk: once-per-grid parts (shared)", None, "shared_parts"),
    ("  of which computing test/validation stats", None, "sets"),
    ("  of which computing leverage scores", None, "leverage"),
    ("chunk: draws (passes, fits, files)", None, "draws"),
    ("chunk: output, status, event", "points_done", "finished"),
    ("master: notices the end (poll)", "finished", "noticed"),
    ("master: assemble the table", "chunks_done", "done"),
)


def chunk_timeline(timeline: dict) -> list[tuple[str, float]]:
    """Seconds of every step of :data:`CHUNK_STEPS` for the chunk that ended last, from the grid's timestamps
    (``output.master_timeline``) and its chunk events (``ended`` carries the chunk's own timestamps)."""
    master, events = timeline["master"], timeline["events"]
    ended = [e for e in events if e["event"] == "ended"]
    last = max(ended, key=lambda e: e["time"])
    chunk = {**last["timeline"], "planned_chunk": last["timeline"]["planned"]}
    noticed = max(e["time"] for e in events if e["event"] == "finished" and e["chunk"] == last["chunk"])
    stamps = {**master, **{k: v for k, v in chunk.items() if k != "planned"}, "noticed": noticed,
              "done": master["finished"]}
    stages = last.get("stage_seconds", {})
    steps = []
    for name, a, b in CHUNK_STEPS:
        if b == "draws":  # the rest of the chunk's loop over its points
            once = stages.get("shared_parts", stages.get("sets", 0.0) + stages.get("leverage", 0.0))
            seconds = float(stages.get("points", 0.0) - once)
        elif a is None:
            seconds = float(stages.get(b, 0.0))
        else:
            seconds = float(stamps[b] - stamps[a])
        steps.append((name, seconds))
    return steps


def run_slurm(args, pool_path: Path, cache_path: Path) -> dict | None:
    """The 1 vs 2 SLURM workers measurement, with the services of ``scripts/services.sh`` (None if they are down)."""
    import uuid

    from pyiron_mlip_tradeoff.cluster import postgres_connection, write_slurm_queue_config

    script = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"
    if subprocess.run(["bash", str(script), "status"], capture_output=True).returncode != 0:
        print("SLURM/PostgreSQL are not running (bash scripts/services.sh start): 1 vs 2 workers not measured")
        return None
    env = dict(os.environ)
    for line in subprocess.run(["bash", str(script), "env"], capture_output=True, text=True).stdout.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    table = f"jobs_bench_{uuid.uuid4().hex[:10]}"
    db = {k: v for k, v in env.items() if k.startswith("PYIRONSQ") or k == "PYIRONUSER"}
    db["PYIRONSQLTABLENAME"] = table
    resources = WORK / "slurm_resources"
    write_slurm_queue_config(resources / "queues", partition="local", queue="local",
                             environment={**db, "PYTHONPATH": env.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1",
                                          "OPENBLAS_NUM_THREADS": "1"})
    env.update(db, PYIRONRESOURCEPATHS=str(resources))
    cmd = [sys.executable, __file__, "--stage", "slurm", "--pool", str(pool_path), "--configs", str(args.configs),
           "--twojmax", str(args.twojmax), "--sampling", args.sampling, "--desc-cache", str(cache_path),
           "--slurm-draws", str(args.slurm_draws), "--work", str(WORK / "slurm")]
    load = os.getloadavg()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    try:
        with postgres_connection(env) as conn, conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')
    except Exception as err:  # the figures stand; the table is only left behind
        print(f"(could not drop the benchmark's job table {table}: {err})")
    if proc.returncode:
        sys.exit(f"SLURM stage failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load[0]
    return result


def print_chunk_overhead(slurm: dict, n_draws: int) -> None:
    """Where the seconds of the SLURM runs went (steps of the chunk that ended last), and the per-chunk overhead
    solved from the two wall times: T_k = overhead + (n_draws / k) × per-draw."""
    half = -(-n_draws // 2)  # draws of the larger of the two chunks
    if all(f"timeline_{k}" in slurm for k in (1, 2)):
        steps = {k: chunk_timeline(slurm[f"timeline_{k}"]) for k in (1, 2)}
        print("  steps of the last chunk to end, seconds (1 chunk | 2 chunks):")
        for (name, a), (_, b) in zip(steps[1], steps[2], strict=True):
            print(f"    {name:<42s} {a:7.2f} | {b:7.2f}")
        per_draw = dict(steps[1])["chunk: draws (passes, fits, files)"] / n_draws
        print(f"  per draw {per_draw:.2f} s (the 1-chunk run's draws); the rest of each wall time, what one chunk "
              f"pays besides its draws: 1 chunk {slurm['1'] - n_draws * per_draw:.1f} s, 2 chunks "
              f"{slurm['2'] - half * per_draw:.1f} s")
    per_draw = (slurm["1"] - slurm["2"]) / (n_draws - half)
    overhead = slurm["1"] - n_draws * per_draw
    print(f"  solved from the two wall times as if both paid the same: per draw {per_draw:.2f} s, per-chunk overhead "
          f"{overhead:.1f} s")


def _rss_parts(pid: int) -> tuple[int, int, int]:
    """Resident memory of a process in bytes: (total, anonymous, file-backed) — ``VmRSS``, ``RssAnon`` and
    ``RssFile`` + ``RssShmem`` of /proc/PID/status (file-backed pages are shared libraries and read or mapped files,
    which the kernel can drop; anonymous ones are the process's own data)."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["RssAnon"], fields["RssFile"] + fields["RssShmem"]


def run_measured(cmd: list[str]) -> dict:
    """Run a stage subprocess; its last stdout line is JSON; the peak resident memory of its process tree (sampled
    every 0.1 s) is added as ``peak_gb``, split into ``peak_anon_gb`` and ``peak_file_gb`` (anonymous and
    file-backed resident memory at the moment of that peak), with ``peak_anon_max_gb`` the largest anonymous part
    seen (it may peak at another moment)."""
    import tempfile

    import psutil

    sink = tempfile.TemporaryFile(mode="w+")  # not a pipe: a stage's JSON may be larger than a pipe's buffer
    proc = subprocess.Popen(cmd, stdout=sink, text=True)
    root = psutil.Process(proc.pid)
    peak, peak_parts, anon_max = 0, (0, 0, 0), 0
    while proc.poll() is None:
        try:
            parts = [_rss_parts(p.pid) for p in (root, *root.children(recursive=True))]
            total = tuple(sum(column) for column in zip(*parts, strict=True))
            if total[0] > peak:
                peak, peak_parts = total[0], total
            anon_max = max(anon_max, total[1])
        except (psutil.Error, OSError, KeyError):
            pass
        time.sleep(0.1)
    proc.wait()
    sink.seek(0)
    out = sink.read()
    if proc.returncode:
        sys.exit(f"stage failed: {' '.join(cmd)}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_gb"] = peak / 1024**3
    result["peak_anon_gb"], result["peak_file_gb"] = peak_parts[1] / 1024**3, peak_parts[2] / 1024**3
    result["peak_anon_max_gb"] = anon_max / 1024**3
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", type=int, default=20000, help="configurations in the pool (default 20000)")
    parser.add_argument("--twojmax", type=int, default=6)
    parser.add_argument("--draws", type=int, default=3,
                        help="draws measured (the study has 50; the rest is extrapolated and said so)")
    parser.add_argument("--sampling", default="block", choices=["energy", "block", "random"],
                        help="how training subsets are drawn (default block leverage, the study's)")
    parser.add_argument("--leverage-sketch", type=int, default=None, metavar="R",
                        help="sketched (approximate) leverage scores with R columns for leverage sampling (default: "
                             "exact; the output says which was used)")
    parser.add_argument("--keep-chunks-open", type=int, default=None, metavar="N",
                        help="keep the chunk files open during a draw's pass when the cache has at most N chunks "
                             "(default descriptor_cache.KEPT_OPEN_FILES; each open file holds memory)")
    parser.add_argument("--reuse-descriptors", action="store_true",
                        help="reuse a complete chunked cache of an earlier run of this benchmark and print the "
                             "descriptor figures it recorded (said so) instead of computing them again")
    parser.add_argument("--dense-rows", type=int, default=300_000,
                        help="largest dense matrix (rows) the study's approach is timed on; beyond, extrapolated")
    parser.add_argument("--skip-compare", action="store_true", help="leave out the dense and bookkeeping comparison")
    parser.add_argument("--no-compare-storage", dest="compare_storage", action="store_false",
                        help="leave out the jobs-vs-table bookkeeping comparison (it repeats the validation and "
                             "test statistics twice)")
    parser.add_argument("--slurm-draws", type=int, default=0,
                        help="draws of the 1 vs 2 SLURM workers measurement (0: not measured; needs "
                             "bash scripts/services.sh start)")
    parser.add_argument("--cache", help="folder of the pool, its dataset and its chunked descriptor caches (default benchmarks/_cache; e.g. another worktree's). With existing files and --reuse-descriptors nothing is written there; the grids' work folders stay in benchmarks/_cache/work")
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--desc-cache", help=argparse.SUPPRESS)
    parser.add_argument("--grid-json", help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, default=50, help="configurations per descriptor chunk")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="chunks side by side")
    parser.add_argument("--fitsnap-sample", type=int, default=40, help="configurations timed against FitSNAP")
    parser.add_argument("--stage", choices=["descriptors", "grid", "compare", "slurm"], help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage == "descriptors":
        print(json.dumps(descriptor_stage(args.pool, args.configs, args.twojmax, args.chunk_size, args.workers)))
        return
    if args.stage in ("grid", "compare", "slurm"):
        print(json.dumps({"grid": grid_stage, "compare": compare_stage, "slurm": slurm_stage}[args.stage](args)))
        return
    if args.configs < 8:
        sys.exit("--configs must be at least 8")

    pool = build_pool(args.configs, cache=Path(args.cache).resolve() if args.cache else CACHE)
    n_atoms = pool.n_atoms_all
    print(f"pool: {len(pool)} configurations, {n_atoms.min()}–{n_atoms.max()} atoms (mean {n_atoms.mean():.1f}), "
          f"{N_LEVELS} levels; {pool.note}")

    sample_idx = np.linspace(0, len(pool) - 1, min(args.fitsnap_sample, len(pool))).astype(int)
    cells = [pool[int(i)] for i in sample_idx]
    vs = versus_fitsnap(cells, args.twojmax)
    ratio = vs["fitsnap_seconds"] / vs["ours_seconds"]
    with_setup = vs["fitsnap_seconds"] / (vs["ours_seconds"] + vs["setup_seconds"])
    print(f"sample of {len(cells)}: ours {vs['ours_seconds']:.2f} s, FitSNAP process_configs "
          f"{vs['fitsnap_seconds']:.2f} s (one process each, set-ups left out): {ratio:.2f}x; with our one-time "
          f"loading of MPI and LAMMPS ({vs['setup_seconds']:.2f} s) counted: {with_setup:.2f}x; max relative row "
          f"difference {vs['max_rel_diff']:.1e}")
    if vs["max_rel_diff"] > 1e-10:
        sys.exit("rows differ from FitSNAP's by more than 1e-10")

    from pyiron_mlip_tradeoff.descriptor_cache import ChunkedDescriptorCache

    name = f"{pool.path.stem}_n{len(pool)}_2j{args.twojmax}_c{args.chunk_size}"
    record_path = pool.path.parent / f"descriptor_record_{name}.json"
    cache_path = pool.path.parent / "descriptors" / name
    reuse = (args.reuse_descriptors and record_path.is_file() and (cache_path / "manifest.json").is_file()
             and ChunkedDescriptorCache(cache_path).complete)
    if reuse:
        rec = json.loads(record_path.read_text())
        desc_seconds, desc_peak, desc_peak_q = rec["descriptor_seconds"], rec["peak_gb"], rec["peak_gb_quarter"]
        print(f"chunked descriptors REUSED: cache and figures recorded by the run that computed them (finished "
              f"{rec['finished']}, {rec['workers']} workers, load average then {rec['load'][0]:.1f}): {len(pool) // 4} "
              f"configs {rec['quarter_seconds']:.1f} s, peak {desc_peak_q:.3f} GB; {len(pool)} configs "
              f"{desc_seconds:.1f} s, peak {desc_peak:.3f} GB")
    else:
        small = run_stage_measured(args, max(1, len(pool) // 4), pool.path)
        shutil.rmtree(small["cache"], ignore_errors=True)  # measured for its memory only; the full cache stays
        full = run_stage_measured(args, len(pool), pool.path)
        desc_seconds, desc_peak, desc_peak_q = full["seconds"], full["peak_gb"], small["peak_gb"]
        rate = len(pool) / full["seconds"]
        print(f"chunked descriptors (2Jmax {args.twojmax}, p={full['p']}, chunks of {args.chunk_size}, "
              f"{args.workers} workers): {len(pool) // 4} configs {small['seconds']:.1f} s, peak {desc_peak_q:.3f} GB; "
              f"{len(pool)} configs {full['seconds']:.1f} s ({rate:.1f} configs/s), peak {desc_peak:.3f} GB")
        record_path.write_text(json.dumps({
            "configs": len(pool), "twojmax": args.twojmax, "chunk_size": args.chunk_size, "workers": args.workers,
            "descriptor_seconds": desc_seconds, "peak_gb": desc_peak, "peak_gb_quarter": desc_peak_q,
            "quarter_seconds": small["seconds"], "cache": full["cache"], "p": full["p"], "fitsnap_ratio": ratio,
            "fitsnap_sample": len(cells), "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "load": os.getloadavg()}))
    per_config_fs = vs["fitsnap_seconds"] / len(cells)
    print(f"FitSNAP (one process) at its sample speed would take {per_config_fs * len(pool):.0f} s for the pool: "
          f"{per_config_fs * len(pool) / desc_seconds:.2f}x our chunked run")
    cached = ChunkedDescriptorCache(cache_path).energy_rows(sample_idx)
    if not np.array_equal(cached, vs["energy_rows"]):
        sys.exit("rows read back from the chunked cache differ from the in-memory ones")
    print("sample rows read back from the chunked cache equal the in-memory rows exactly")

    # stage 4: the grid (memory of its process sampled), then the comparisons in a process of their own
    base = [sys.executable, __file__, "--pool", str(pool.path), "--configs", str(len(pool)), "--twojmax",
            str(args.twojmax), "--draws", str(args.draws), "--sampling", args.sampling, "--desc-cache",
            str(cache_path), "--dense-rows", str(args.dense_rows),
            *([] if args.leverage_sketch is None else ["--leverage-sketch", str(args.leverage_sketch)]),
            *([] if args.keep_chunks_open is None else ["--keep-chunks-open", str(args.keep_chunks_open)])]
    load_before = os.getloadavg()
    grid = run_measured([*base, "--stage", "grid", "--work", str(WORK / f"grid_{name}")])
    WORK.mkdir(parents=True, exist_ok=True)
    grid_json = WORK / f"grid_{name}.json"
    grid_json.write_text(json.dumps(grid))
    draws, study = args.draws, study_draws(args.twojmax)
    sizes = grid["sizes"]
    per_draw_points = grid["points"] // draws
    # per draw: the grid's loop over its points without the once-per-grid parts; once per grid: all the rest
    # (set statistics, leverage, loading the dataset, checking the cache, writing the table)
    stages = grid["stages"]
    per_draw = (stages["points"] - grid["sets_seconds"] - grid["leverage_seconds"]
                - stages.get("descriptors", 0.0)) / draws
    fixed = grid["grid_seconds"] - draws * per_draw
    grid_full = fixed + study * per_draw
    limit = float(np.mean(grid["limit_seconds"]))
    # the same in CPU seconds of the grid process (one BLAS thread): what the ratio to the limit is judged on, as
    # the wall seconds of a shared machine change with the load between the grid and the limit pass
    per_draw_cpu = (stages["points_cpu"] - stages["sets_cpu"] - stages.get("leverage_cpu", 0.0)
                    - stages.get("descriptors_cpu", 0.0)) / draws
    fixed_cpu = grid["grid_cpu"] - draws * per_draw_cpu
    limit_cpu = float(np.mean(grid["limit_cpu"]))
    vs_limit_cpu = (fixed_cpu + study * per_draw_cpu) / (study * limit_cpu)
    # what the once-per-grid parts alone allow: the ratio if every draw took exactly the limit pass
    vs_limit_floor = (fixed_cpu + study * limit_cpu) / (study * limit_cpu)
    vs_limit_50 = (fixed_cpu + STUDY_DRAWS * per_draw_cpu) / (STUDY_DRAWS * limit_cpu)
    leverage = "exact" if args.leverage_sketch is None else f"sketch{args.leverage_sketch}"
    how = "exact" if args.leverage_sketch is None else f"SKETCHED ({args.leverage_sketch} columns, approximate)"
    print(f"grid (2Jmax {args.twojmax}, p={grid['p']}, {args.sampling} sampling, {how} leverage scores): "
          f"{N_LEVELS} levels x {len(sizes)} "
          f"sizes {sizes[0]}..{sizes[-1]} x 6 weight ratios x {draws} draws = {grid['points']} points in "
          f"{grid['grid_seconds']:.1f} s (TradeoffGrid job, table storage; load average {load_before[0]:.1f} before); "
          f"peak memory {grid['peak_gb']:.3f} GB")
    print(f"  memory of the grid process: {grid['peak_gb']:.3f} GB at its peak = {grid['peak_anon_gb']:.3f} GB "
          f"anonymous + {grid['peak_file_gb']:.3f} GB file-backed (largest anonymous part {grid['peak_anon_max_gb']:.3f} "
          f"GB); before grid.run() (interpreter, libraries, pyiron, the dataset opened with its per-atom arrays left in "
          f"the file) {grid['rss_before_grid_gb']:.3f} GB, {grid['anon_before_grid_gb']:.3f} GB anonymous")
    print(f"  of which once per grid {fixed:.1f} s (validation+test statistics {grid['sets_seconds']:.1f} s, leverage "
          f"scores {grid['leverage_seconds']:.1f} s, the rest loading the dataset, checking the descriptor cache and "
          f"writing the table; as the grid timed them); per draw {per_draw:.1f} s")
    print(f"  bookkeeping: {grid['store_seconds']:.2f} s = {1e3 * grid['store_seconds'] / grid['points']:.3f} ms and "
          f"{grid['bytes'] / grid['points'] / 1024:.2f} kB per point")
    print(f"  limit of the method, one QR pass over each draw's largest subset timed alone: "
          f"{', '.join(f'{t:.1f}' for t in grid['limit_seconds'])} s; grid / sum = "
          f"{grid['grid_seconds'] / sum(grid['limit_seconds']):.2f}x measured")
    vs_limit = grid_full / (study * limit)
    print(f"  in CPU seconds of the grid process: once per grid {fixed_cpu:.1f} s (validation+test statistics "
          f"{stages.get('sets_cpu', 0.0):.1f} s, leverage scores {stages.get('leverage_cpu', 0.0):.1f} s), per draw "
          f"{per_draw_cpu:.1f} s = {per_draw_cpu / limit_cpu:.3f}x the limit, limit "
          f"{', '.join(f'{t:.1f}' for t in grid['limit_cpu'])} s")
    print(f"  the once-per-grid parts alone set a floor: with every draw at exactly the limit, {study} draws would be "
          f"{vs_limit_floor:.2f}x the limit (CPU); at {STUDY_DRAWS} draws the measured grid would be "
          f"{vs_limit_50:.2f}x")
    print(f"EXTRAPOLATED to the study's {study} draws ({study * per_draw_points} points) from the {draws} measured: "
          f"grid {grid_full:.0f} s (once-per-grid parts + {study} x the measured per-draw time), "
          f"{vs_limit:.2f}x the limit in wall seconds, {vs_limit_cpu:.2f}x in CPU seconds; end to end with the "
          f"descriptors {desc_seconds + grid_full:.0f} s")

    vs_dense, worst, ms_jobs = float("nan"), float("nan"), float("nan")
    if not args.skip_compare:
        cmp = run_measured([*base, "--stage", "compare", "--work", str(WORK / f"compare_{name}"),
                            "--grid-json", str(grid_json), *([] if args.compare_storage else ["--no-compare-storage"])])
        for storage in ("jobs", "table") if args.compare_storage else ():
            c = cmp[storage]
            print(f"keeping points as {storage!r}: {c['ms_per_point']:.2f} ms and {c['bytes_per_point'] / 1024:.1f} kB "
                  f"per point ({c['points']} points, the same small grid both ways)")
        ms_jobs = cmp["jobs"]["ms_per_point"] if args.compare_storage else float("nan")
        dense = cmp["dense"]
        largest = dense[-1]
        per_row = largest["fit_seconds"] / largest["rows"]
        predict = float(np.mean([d["predict_seconds"] for d in dense]))
        order = np.asarray(next(iter(sorted(grid["orders"].items())))[1])
        n_atoms = study_dataset(pool.path, len(pool))[0].n_atoms  # lazily opened: atom counts only
        rows = [int((1 + 3 * n_atoms[order[:s]]).sum()) for s in sizes]
        dense_draw = N_LEVELS * 6 * (sum(rows) * per_row + len(sizes) * predict)
        dense_full = study * dense_draw
        vs_dense = dense_full / grid_full
        for d in dense:
            ours = grid["rmse_of_size"][str(d["size"])]
            d["disagreement"] = max(abs(ours[0] - d["test_energy_rmse"]) / d["test_energy_rmse"],
                                    abs(ours[1] - d["test_force_rmse"]) / d["test_force_rmse"])
        worst = max(d["disagreement"] for d in dense)
        print("dense approach (weighted numpy lstsq of the point's rows + dense prediction of the test set), timed on "
              + "; ".join(f"size {d['size']} ({d['rows']} rows): fit {d['fit_seconds']:.2f} s, predict "
                          f"{d['predict_seconds']:.2f} s" for d in dense))
        print(f"  EXTRAPOLATED to all {study * per_draw_points} points (lstsq time linear in the rows, from the "
              f"largest sample): {dense_full:.0f} s = {vs_dense:.0f}x our grid; largest relative test-RMSE "
              f"disagreement (energy, force vs level {N_LEVELS}) {worst:.1e}")
    speedup, slurm_load = float("nan"), float("nan")
    if args.slurm_draws:
        slurm = run_slurm(args, pool.path, cache_path)
        if slurm is not None:
            speedup, slurm_load = slurm["1"] / slurm["2"], slurm["load"]
            print(f"SLURM, {args.slurm_draws} draws as GridChunk jobs (PostgreSQL database): 1 worker "
                  f"{slurm['1']:.1f} s, 2 workers {slurm['2']:.1f} s: speed-up {speedup:.2f}x (load average "
                  f"{slurm_load:.1f} before{'; the machine was LOADED' if slurm_load > 1.0 else ''})")
            print_chunk_overhead(slurm, args.slurm_draws)
    print(f"points={study * per_draw_points} seconds={desc_seconds + grid_full:.0f} vs_dense={vs_dense:.1f} "
          f"vs_limit={vs_limit_cpu:.2f} vs_limit_wall={vs_limit:.2f} vs_limit_per_draw={per_draw_cpu / limit_cpu:.3f} "
          f"vs_limit_floor={vs_limit_floor:.2f} peak_gb={grid['peak_gb']:.3f} "
          f"peak_anon_gb={grid['peak_anon_gb']:.3f} peak_file_gb={grid['peak_file_gb']:.3f} "
          f"ms_per_point={1e3 * grid['store_seconds'] / grid['points']:.3f} descriptors_vs_fitsnap={ratio:.2f} "
          f"configs={len(pool)} twojmax={args.twojmax} draws_measured={draws} draws_extrapolated={study} "
          f"grid_seconds_measured={grid['grid_seconds']:.1f} descriptor_seconds={desc_seconds:.1f} "
          f"kb_per_point={grid['bytes'] / grid['points'] / 1024:.2f} ms_per_point_as_jobs={ms_jobs:.2f} "
          f"max_test_rmse_disagreement={worst:.1e} load_before={load_before[0]:.1f} slurm_speedup={speedup:.2f} "
          f"slurm_load={slurm_load:.1f} leverage={leverage} chunks_kept_open={grid['chunks_kept_open']}")

if __name__ == "__main__":
    main()
