"""Benchmark: the trade-off grid from sufficient statistics vs the study's dense refit per grid point.

    python benchmarks/grid.py                           # bundled dataset, or a generated GPAW ladder (levels 1-3)
    python benchmarks/grid.py --dataset ladder.h5       # any LadderDataset file
    python benchmarks/grid.py --dense-budget 300        # time the dense reference for at most ~300 s, extrapolate

Grid: 2Jmax 6 (default), every level of the dataset, 6 weight ratios (5 … 300), 6 subset sizes (geometric up to the
training pool), sampling energy / block / random, 5 repetitions. Both approaches use the same descriptors (computed
once, cached in ``--cache``) and the same training subsets:

(a) reference (the study's scripts): per grid point, ``numpy.linalg.lstsq`` (an SVD) of the explicitly weighted dense
    training matrix, then a dense prediction over all training and test rows for the errors against every level;
(b) ours: ``fitting.run_grid`` — statistics once per subset, one SVD of a small stacked system per (subset, weight)
    shared by all training levels, errors from statistics. Separately: the cost of storing a point as a pyiron
    ``QSnapFit`` job (``TradeoffGrid._store_point`` + batched database inserts) in a temporary project.

It prints both times, the ratio, the largest relative RMSE disagreement, and the peak RSS of the fit stage (ours,
descriptors read from the HDF5 store) for the full dataset and for half of it, each in its own subprocess.
Set OPENBLAS_NUM_THREADS=1 for timings on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pyiron_mlip_tradeoff" / "benchmarks"


def get_dataset(path: str | None, cache: Path, n_structures: int):
    """The dataset and the path of a file holding it (generated and cached when no file or bundled data exists)."""
    from pyiron_mlip_tradeoff.dataset import LadderDataset

    if path is not None:
        print(f"dataset: {path}")
        return LadderDataset.load(path), Path(path)
    try:
        from pyiron_mlip_tradeoff.dataset import BUNDLED_PATH, load_bundled

        dataset = load_bundled()
        print(f"dataset: bundled ({BUNDLED_PATH})")
        return dataset, Path(BUNDLED_PATH)
    except (ImportError, FileNotFoundError):
        pass
    target = cache / f"generated_{n_structures}_L123.h5"
    if target.is_file():
        print(f"dataset: no bundled dataset; using the GPAW ladder generated earlier at {target}")
        return LadderDataset.load(target), target
    from pyiron_mlip_tradeoff.ladder import run_ladder
    from pyiron_mlip_tradeoff.structures import generate_structures

    print(f"dataset: no bundled dataset; generating a GPAW ladder (levels 1-3) over {n_structures} structures "
          f"(≤ 8 atoms) into {cache} — this takes a while once, then it is cached")
    structures, _ = generate_structures(n_structures, seed=2025, max_atoms=8)
    results = run_ladder(structures, [1, 2, 3], cache / f"ladder_{n_structures}", cores=os.cpu_count() or 1,
                         progress=True)
    dataset = results.to_dataset().drop_failed()
    dataset.save(target)
    return dataset, target


def make_spec(dataset, twojmax: int, repetitions: int):
    from pyiron_mlip_tradeoff.fitting import dataset_split, plan_grid

    pool = dataset_split(dataset, 0)[0].size  # the default training pool (50/25/25 split, seed 0)
    sizes = np.unique(np.round(np.geomspace(max(2, pool // 20), pool, 6)).astype(int)).tolist()
    return plan_grid(dataset, sizes, twojmax=[twojmax], sampling=["energy", "block", "random"],
                     repetitions=repetitions)


def run_ours(dataset, spec, descriptors) -> tuple[float, float, list]:
    """(wall seconds, CPU seconds of this process, grid points) of ``fitting.run_grid``."""
    from pyiron_mlip_tradeoff.fitting import run_grid

    start, cpu = time.perf_counter(), time.process_time()
    points = list(run_grid(dataset, spec, descriptors=descriptors))
    return time.perf_counter() - start, time.process_time() - cpu, points


def run_dense(dataset, spec, desc, points, budget: float, seed: int = 0) -> tuple[float, float, int, float]:
    """Time the dense reference on a random sample of points within ``budget`` seconds; return (extrapolated total
    wall seconds, extrapolated total CPU seconds, points timed, max relative disagreement of the test RMSEs over
    those points)."""
    from pyiron_mlip_tradeoff.fitting import labelled_blocks
    from pyiron_mlip_tradeoff.regression import concatenate_blocks

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the dense reference is test-only code
    from dense_reference import dense_errors

    levels = dataset.levels
    everything = concatenate_blocks(labelled_blocks(dataset, desc, np.arange(dataset.n_configs)))
    energy_rows, energy_targets = everything.energy_rows, everything.energy_targets
    force_rows, force_targets = everything.force_rows, everything.force_targets
    force_start = np.concatenate([[0], 3 * np.cumsum(dataset.n_atoms)])

    def rows_of(indices):
        f = np.concatenate([np.arange(force_start[i], force_start[i + 1]) for i in indices])
        return np.asarray(indices), f

    test_e, test_f = rows_of(spec.test_indices)
    order = np.random.default_rng(seed).permutation(len(points))
    worst, timed, elapsed, cpu = 0.0, 0, 0.0, 0.0
    for k in order:
        p = points[k]
        level, we, wf = p.key[0], p.key[4], p.key[5]
        j = levels.index(level)
        start, cpu_start = time.perf_counter(), time.process_time()
        tr_e, tr_f = rows_of(p.result.train_indices)
        a = np.vstack([we * energy_rows[tr_e], wf * force_rows[tr_f]])
        b = np.concatenate([we * energy_targets[tr_e, j], wf * force_targets[tr_f, j]])
        beta = np.linalg.lstsq(a, b, rcond=None)[0]
        from pyiron_mlip_tradeoff.regression import ConfigurationBlock

        test_block = ConfigurationBlock(energy_rows[test_e], energy_targets[test_e], force_rows[test_f],
                                        force_targets[test_f])
        train_block = ConfigurationBlock(energy_rows[tr_e], energy_targets[tr_e], force_rows[tr_f],
                                         force_targets[tr_f])
        e_test = dense_errors(test_block, beta, levels)
        dense_errors(train_block, beta, levels)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        timed += 1
        ours = p.result.errors[p.result.errors["set"] == "test"]
        for column in ("energy_rmse", "energy_rmse_shifted", "force_rmse"):
            ref = getattr(e_test, column)
            worst = max(worst, float(np.max(np.abs(ours[column].to_numpy() - ref) / np.abs(ref))))
        if elapsed > budget:
            break
    return elapsed * len(points) / timed, cpu * len(points) / timed, timed, worst


def replicate(dataset, times: int):
    """The dataset repeated ``times`` times (identical copies): more rows per subset for scaling runs only."""
    return dataset if times <= 1 else dataset.subset(np.tile(np.arange(dataset.n_configs), times))


def memory_child(dataset_path: str, fraction: float, cache: str, twojmax: int, repetitions: int, times: int) -> None:
    """Subprocess: peak RSS and peak traced allocations (numpy included) of the fit stage, descriptors read from
    the HDF5 store (printed as JSON)."""
    import tracemalloc

    from pyiron_mlip_tradeoff.dataset import LadderDataset
    from pyiron_mlip_tradeoff.fitting import dataset_descriptors, run_grid

    dataset = replicate(LadderDataset.load(dataset_path), times)
    if fraction < 1:
        dataset = dataset.subset(np.arange(int(round(fraction * dataset.n_configs))))
    spec = make_spec(dataset, twojmax, repetitions)
    store = dataset_descriptors(dataset, twojmax, cache_dir=cache)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start = time.perf_counter()
    n = sum(1 for _ in run_grid(dataset, spec, descriptors={twojmax: store}))
    seconds = time.perf_counter() - start
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n_configs": dataset.n_configs, "points": n, "seconds": seconds,
                      "peak_rss_mb": after / 1024, "before_fit_mb": before / 1024, "traced_mb": traced / 2**20}))


def bookkeeping(dataset_path: Path, spec, points, n_jobs: int) -> float:
    """ms per stored QSnapFit child, in a temporary pyiron project (its own SQLite database)."""
    tmp = tempfile.mkdtemp(prefix="grid_bench_pyiron_")
    os.environ["PYIRONSQLFILE"] = os.path.join(tmp, "pyiron.db")
    os.environ["PYIRONPROJECTPATHS"] = tmp
    os.environ["PYIRONPROJECTCHECKENABLED"] = "False"
    from pyiron_base import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers the jobs)
    from pyiron_mlip_tradeoff.jobs.grid import _insert_entries, point_job_name

    pr = Project(os.path.join(tmp, "bench"))
    grid = pr.create.job.TradeoffGrid("bench")
    grid.input.dataset = str(dataset_path)
    grid.save()
    start = time.perf_counter()
    entries = []
    for p in points[:n_jobs]:
        _, entry = grid._store_point(p, point_job_name(grid.job_name, p.key), spec)
        entries.append(entry)
        if len(entries) >= 50:
            _insert_entries(pr.db, entries)
            entries = []
    _insert_entries(pr.db, entries)
    seconds = time.perf_counter() - start
    assert len(pr.job_table()) == min(n_jobs, len(points)) + 1
    return 1e3 * seconds / min(n_jobs, len(points))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="LadderDataset file (default: bundled, else a generated GPAW ladder)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="folder for descriptors and generated data")
    parser.add_argument("--twojmax", type=int, default=6)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--n-structures", type=int, default=60, help="structures of a generated dataset")
    parser.add_argument("--dense-budget", type=float, default=900.0,
                        help="seconds the dense reference may run; beyond, it is timed on a random sample of points "
                             "and extrapolated (said so in the output)")
    parser.add_argument("--store-jobs", type=int, default=200, help="points stored as pyiron jobs for the bookkeeping")
    parser.add_argument("--replicate", type=int, default=1,
                        help="repeat the dataset this many times (identical copies) to see how both approaches scale "
                             "with the rows per subset; timings only, the copies make the test set leak")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the peak-memory subprocesses")
    parser.add_argument("--memory-child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.memory_child is not None:
        memory_child(args.dataset, args.memory_child, str(cache / "descriptors"), args.twojmax, args.repetitions,
                     args.replicate)
        return

    from pyiron_mlip_tradeoff.fitting import dataset_descriptors

    dataset, dataset_path = get_dataset(args.dataset, cache, args.n_structures)
    if args.replicate > 1:
        dataset = replicate(dataset, args.replicate)
        print(f"REPLICATED {args.replicate}× (identical copies) to scale the rows per subset; timings only")
    spec = make_spec(dataset, args.twojmax, args.repetitions)
    print(f"{dataset}; pool {spec.pool.size}, test {spec.test_indices.size}; grid: levels {list(spec.levels)} × "
          f"sizes {list(spec.subset_sizes)} × {len(spec.weight_ratios)} weights × 2Jmax {args.twojmax} × "
          f"{len(spec.sampling)} sampling × {spec.repetitions} repetitions = {spec.n_points} points")
    start = time.perf_counter()
    store = dataset_descriptors(dataset, args.twojmax, cache_dir=cache / "descriptors")
    desc = store.load()
    print(f"descriptors (p = {desc.n_columns}): {time.perf_counter() - start:.1f} s (cached in {store.path})")

    ours, ours_cpu, points = run_ours(dataset, spec, {args.twojmax: desc})
    print(f"(b) ours, statistics path:          {ours:9.2f} s wall, {ours_cpu:9.2f} s CPU  "
          f"({1e3 * ours / len(points):.2f} ms per point)")
    dense, dense_cpu, timed, worst = run_dense(dataset, spec, desc, points, args.dense_budget)
    note = "" if timed == len(points) else (
        f"  — EXTRAPOLATED from {timed} randomly chosen points of {len(points)} (budget {args.dense_budget:g} s)")
    print(f"(a) reference, dense lstsq per point: {dense:9.2f} s wall, {dense_cpu:9.2f} s CPU{note}")
    print(f"ratio (a)/(b): {dense / ours:.1f}× wall, {dense_cpu / ours_cpu:.1f}× CPU")
    print(f"largest relative test-RMSE disagreement over {timed} points (all levels, energy/shifted/force): "
          f"{worst:.2e}")

    for fraction in () if args.skip_memory else (1.0, 0.5):
        cmd = [sys.executable, __file__, "--memory-child", str(fraction), "--dataset", str(dataset_path),
               "--cache", str(cache), "--twojmax", str(args.twojmax), "--repetitions", str(args.repetitions),
               "--replicate", str(args.replicate)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        info = json.loads(out)
        print(f"fit stage, {info['n_configs']:4d} configurations ({fraction:.0%}): peak RSS {info['peak_rss_mb']:.0f} MB "
              f"(process before the fit stage {info['before_fit_mb']:.0f} MB); peak traced allocations of the fit "
              f"stage {info['traced_mb']:.1f} MB; {info['points']} points in {info['seconds']:.1f} s")

    ms = bookkeeping(dataset_path, spec, points, args.store_jobs)
    print(f"bookkeeping: {ms:.1f} ms per stored QSnapFit job ({min(args.store_jobs, len(points))} jobs, HDF5 + LAMMPS "
          "files + batched database inserts)")


if __name__ == "__main__":
    main()
