"""Benchmark: peak memory of streaming least-squares statistics vs holding the dense matrix, at InP size.

    python benchmarks/statistics_memory.py                  # p = 62 (linear SNAP, 2 elements, 2Jmax 6) and 992 (qSNAP)
    python benchmarks/statistics_memory.py --p 62 --dense-lstsq

SYNTHETIC ROWS, FOR MEMORY AND TIME ONLY: the rows and targets are random numbers generated one configuration at a
time (nothing here is a fit of real data). The sizes follow FitSNAP's InP example: 1,894 configurations, ~118,000 atoms
(62 atoms per configuration on average), so one energy row, 3·62 force rows and 6 stress rows per configuration
(~354,000 force rows in all), and p = 2 × (1 + 30) = 62 columns for linear SNAP at 2Jmax 6 (30 bispectrum components
per element plus a constant) or 2 × (1 + 30 + 465) = 992 for qSNAP.

Each measurement runs in its own subprocess and reports that process's peak RSS (``ru_maxrss``) and the RSS right after
start-up (interpreter + numpy + scipy + the package), for

(a) ours: ``StatisticsAccumulator`` over the configurations (energy, force and stress parts, L target columns), then
    one fit; for a quarter, a half, all and twice the configurations (memory must stay flat), and with the configurations
    spread over 10 groups (``GroupedAccumulator``: one set of factors per group);
(b) reference: the dense matrix of all rows (the same blocks written into one preallocated array, as the study's
    scripts hold it) and,
    with ``--dense-lstsq``, ``numpy.linalg.lstsq`` on it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

N_CONFIGS = 1894
ATOMS_PER_CONFIG = 62
N_GROUPS = 10


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _blocks(n_configs: int, p: int, n_levels: int, seed: int = 0):
    """SYNTHETIC blocks, one configuration at a time (random rows and targets; for memory and time only)."""
    from pyiron_mlip_tradeoff.regression import ConfigurationBlock

    rng = np.random.default_rng(seed)
    for _ in range(n_configs):
        nf = 3 * ATOMS_PER_CONFIG
        yield ConfigurationBlock(
            rng.normal(size=(1, p)), rng.normal(size=(1, n_levels)),
            rng.normal(size=(nf, p)), rng.normal(size=(nf, n_levels)),
            rng.normal(size=(6, p)), rng.normal(size=(6, n_levels)),
        )


def child(mode: str, n_configs: int, p: int, n_levels: int) -> dict:
    from pyiron_mlip_tradeoff import regression

    start_rss = _rss_mb()
    t0 = time.perf_counter()
    out: dict = {"mode": mode, "n_configs": n_configs, "p": p, "n_levels": n_levels}
    if mode == "ours":
        acc = regression.StatisticsAccumulator(levels=n_levels)
        for block in _blocks(n_configs, p, n_levels):
            acc.add(block)
        stats = acc.statistics()
        out["rows"] = stats.energy.n_rows + stats.force.n_rows + stats.stress.n_rows
        regression.fit_all_levels(stats, 100.0, 1.0, 10.0)
    elif mode == "ours_groups":
        acc = regression.GroupedAccumulator(levels=n_levels)
        for i, block in enumerate(_blocks(n_configs, p, n_levels)):
            acc.add(block, f"group{i % N_GROUPS}")
        grouped = acc.statistics()
        out["rows"] = sum(s.energy.n_rows + s.force.n_rows + s.stress.n_rows for s in grouped.groups.values())
        grouped.fit(100.0, 1.0, 10.0, group_weights={"group0": (2.0, 1.0, 0.5)})
    elif mode in ("dense", "dense_lstsq"):
        per_config = 1 + 3 * ATOMS_PER_CONFIG + 6
        a, y = np.empty((n_configs * per_config, p)), np.empty((n_configs * per_config, n_levels))
        for i, b in enumerate(_blocks(n_configs, p, n_levels)):  # filled in place: no second copy
            a[i * per_config : (i + 1) * per_config] = np.vstack([b.energy_rows, b.force_rows, b.stress_rows])
            y[i * per_config : (i + 1) * per_config] = np.vstack([b.energy_targets, b.force_targets, b.stress_targets])
        out["rows"] = a.shape[0]
        if mode == "dense_lstsq":
            np.linalg.lstsq(a, y[:, 0], rcond=None)
    else:
        raise ValueError(mode)
    out["seconds"] = time.perf_counter() - t0
    out["start_rss_mb"] = start_rss
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run(mode: str, n_configs: int, p: int, n_levels: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--configs", str(n_configs), "--p", str(p),
           "--levels", str(n_levels)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--p", type=int, nargs="*", default=[62, 992], help="model columns (default 62 and 992)")
    parser.add_argument("--levels", type=int, default=6, help="target columns (precision levels), default 6")
    parser.add_argument("--configs", type=int, default=N_CONFIGS, help="configurations (default 1894, InP)")
    parser.add_argument("--dense-lstsq", action="store_true", help="also time numpy.linalg.lstsq on the dense matrix")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.configs, args.p[0], args.levels)))
        return
    print("SYNTHETIC rows (random numbers), for memory and time only. "
          f"{args.configs} configurations × (1 energy + {3 * ATOMS_PER_CONFIG} force + 6 stress rows), "
          f"{args.levels} target columns; one subprocess per line.")
    print(f"{'p':>5} {'approach':<28} {'configs':>7} {'rows':>8} {'start MB':>9} {'peak MB':>8} {'peak-start':>10} "
          f"{'seconds':>8}")
    for p in args.p:
        runs = [("ours", n) for n in (args.configs // 4, args.configs // 2, args.configs, 2 * args.configs)]
        runs += [("ours_groups", args.configs), ("dense", args.configs)]
        if args.dense_lstsq:
            runs.append(("dense_lstsq", args.configs))
        results = {}
        for mode, n in runs:
            r = run(mode, n, p, args.levels)
            results[mode, n] = r
            label = {"ours": "(a) statistics + fit", "ours_groups": f"(a) {N_GROUPS} groups + fit",
                     "dense": "(b) dense matrix held", "dense_lstsq": "(b) dense matrix + lstsq"}[mode]
            print(f"{p:>5} {label:<28} {n:>7} {r['rows']:>8} {r['start_rss_mb']:>9.0f} {r['peak_rss_mb']:>8.0f} "
                  f"{r['peak_rss_mb'] - r['start_rss_mb']:>10.0f} {r['seconds']:>8.1f}")
        ours, dense = results["ours", args.configs], results["dense", args.configs]
        quarter = results["ours", args.configs // 4]
        def extra(r):
            return r["peak_rss_mb"] - r["start_rss_mb"]

        print(f"      ratio dense/ours: peak RSS {dense['peak_rss_mb'] / ours['peak_rss_mb']:.1f}×, above start-up "
              f"{extra(dense) / extra(ours):.1f}×; ours, twice the configurations / a quarter: peak RSS "
              f"{results['ours', 2 * args.configs]['peak_rss_mb'] / quarter['peak_rss_mb']:.2f}×")


if __name__ == "__main__":
    main()
