"""Benchmark: the per-point solve of the grid — triangular route vs the SVD route it replaces where it is safe.

    nice -n 10 python benchmarks/fast_solve.py --configs 2000 --twojmax 6   # --cache: where study_scale.py's pool is

On the study-sized benchmark pool of ``benchmarks/study_scale.py`` (SYNTHETIC labels, time only; its pool, dataset and
chunked descriptor cache must exist in ``--cache``), for training subsets of the given sizes drawn at random from the
training half of the pool: the statistics of each subset once, then the six weight ratios of the study solved

* by :func:`~pyiron_mlip_tradeoff.regression.fit_weights` (the package: triangular route where provably nothing
  would be dropped, SVD route elsewhere), and
* by the SVD route alone (``gelsd`` on the stacked weighted factors, what every fit did before the triangular
  route), the reference,

interleaved and repeated, one BLAS thread, median seconds per solve printed with their ratio. Also: how many of the
solves took the triangular route, the largest relative difference of coefficients and of the weighted training
residual norm (what the errors are computed from; not for a set with fewer rows than columns, which both fit exactly)
between the two, and where it stands, a plain SVD of the combined
factor (what ``LinearFit.singular_values`` costs when asked for on the triangular route) and one SVD per subset
shared by all weights (the alternative that was measured and not chosen), and how far the triangular route's bound
‖R‖_F ‖R⁻¹‖_F lies above the condition number σ_max / σ_min. The last line holds the figures as
``key=value``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

from pyiron_mlip_tradeoff.regression import (  # noqa: E402
    _combined_factor,
    _n_rows_weighted,
    _solve_stacked,
    _weighted_system,
    fit_weights,
)

RATIOS = (5.0, 10.0, 12.25, 50.0, 150.0, 300.0)


def _median_seconds(call, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def measure(stats, repeats: int) -> dict:
    """Both routes on one training set's statistics, for the six weight ratios, interleaved ``repeats`` times."""
    weights = [(r, 1.0, 0.0) for r in RATIOS]

    def svd_route():
        out = []
        for w in weights:
            a, b, _ = _weighted_system(stats, w)
            out.append(_solve_stacked(a, b, _n_rows_weighted(stats, w), None, None)[0])
        return out

    ours_s, svd_s = [], []
    for _ in range(repeats):  # interleaved, so load changes hit both
        t, fits = _median_seconds(lambda: fit_weights(stats, weights), 1)
        ours_s.append(t)
        t, betas = _median_seconds(svd_route, 1)
        svd_s.append(t)
    worst_beta = worst_res = 0.0
    for w, f, beta in zip(weights, fits, betas, strict=True):
        ours_beta = np.column_stack([f[lv].coefficients for lv in stats.levels])
        worst_beta = max(worst_beta, float(np.max(np.linalg.norm(ours_beta - beta, axis=0)
                                                  / np.linalg.norm(beta, axis=0))))
        a, b, _ = _weighted_system(stats, w)
        if a.shape[0] < a.shape[1]:  # fewer rows than columns: fitted exactly, the residual is rounding noise
            continue
        res_ours, res_ref = (np.linalg.norm(a @ x - b, axis=0) for x in (ours_beta, beta))
        worst_res = max(worst_res, float(np.max(np.abs(res_ours - res_ref) / res_ref)))
    p = stats.n_params
    bound_over_kappa = []  # ‖R‖_F ‖R⁻¹‖_F (the triangular route's bound) over σ_max / σ_min, from R's own SVD
    for w in weights:
        s = scipy.linalg.svdvals(np.triu(np.asarray(_combined_factor(stats, w))[:p, :p]), check_finite=False)
        bound_over_kappa.append(float(np.sqrt(np.sum(s**2) * np.sum(s**-2.0)) / (s[0] / s[-1])))
    r = np.triu(np.asarray(_combined_factor(stats, weights[0]))[:p, :p])
    return {
        "ours": statistics.median(ours_s) / len(weights), "svd": statistics.median(svd_s) / len(weights),
        "routes": [next(iter(f.values())).solver for f in fits], "worst_beta": worst_beta, "worst_res": worst_res,
        "bound_over_kappa": max(bound_over_kappa),
        "tpqrt": _median_seconds(lambda: _combined_factor(stats, weights[0]), repeats)[0],
        "svdvals": _median_seconds(lambda: scipy.linalg.svdvals(r, check_finite=False), repeats)[0],
        "shared": _median_seconds(lambda: scipy.linalg.svd(r, check_finite=False), repeats)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default=str(Path(__file__).resolve().parent / "_cache"),
                        help="folder of study_scale.py's pool, dataset and descriptor caches")
    parser.add_argument("--configs", type=int, default=2000)
    parser.add_argument("--twojmax", type=int, default=6)
    parser.add_argument("--sizes", default="10,100,999", help="training subset sizes (configurations), comma separated")
    parser.add_argument("--repeats", type=int, default=3, help="timings per solve (median)")
    args = parser.parse_args()

    from pyiron_mlip_tradeoff.dataset import LadderDataset
    from pyiron_mlip_tradeoff.descriptor_cache import ChunkedDescriptorCache
    from pyiron_mlip_tradeoff.fitting import labelled_blocks, statistics_from_blocks

    cache = Path(args.cache)
    stem = f"study_pool_{args.configs}_seed17_v1"
    dataset_path = cache / f"{stem}_n{args.configs}_dataset.h5"
    desc_path = cache / "descriptors" / f"{stem}_n{args.configs}_2j{args.twojmax}_c50"
    for path in (dataset_path, desc_path / "manifest.json"):
        if not path.is_file():
            raise SystemExit(f"{path} not found: run benchmarks/study_scale.py --configs {args.configs} --twojmax "
                             f"{args.twojmax} first (or point --cache to its cache)")
    dataset = LadderDataset.load(dataset_path)
    desc = ChunkedDescriptorCache(desc_path)
    print(f"pool {dataset_path.name} ({dataset.metadata.get('labels', '')}); 2Jmax {args.twojmax}, "
          f"p = {desc.n_columns}, {dataset.n_levels} levels")
    rng = np.random.default_rng(0)
    order = rng.permutation(dataset.n_configs // 2)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        stats = statistics_from_blocks(labelled_blocks(dataset, desc, np.sort(order[:size])),
                                       levels=tuple(dataset.levels))
        m = measure(stats, args.repeats)
        results.append(m)
        print(f"subset {size} configurations: per solve {1e3 * m['ours']:.1f} ms (fit_weights; routes "
              f"{', '.join(m['routes'])}) vs {1e3 * m['svd']:.1f} ms (SVD route): {m['svd'] / m['ours']:.1f}x; "
              f"combining the factors (?tpqrt) {1e3 * m['tpqrt']:.1f} ms, svdvals of R {1e3 * m['svdvals']:.1f} ms, "
              f"one full SVD per subset {1e3 * m['shared']:.1f} ms", flush=True)

    def mean_ms(key):
        return 1e3 * float(np.mean([m[key] for m in results]))

    speedup = sum(m["svd"] for m in results) / sum(m["ours"] for m in results)
    routes = [r for m in results for r in m["routes"]]
    print(f"solve_ms={mean_ms('ours'):.2f} svd_route_ms={mean_ms('svd'):.2f} speedup={speedup:.2f} "
          f"triangular={routes.count('triangular')}/{len(routes)} deflated={routes.count('deflated')}/{len(routes)} "
          f"max_rel_coefficient_diff={max(m['worst_beta'] for m in results):.1e} "
          f"max_rel_residual_diff={max(m['worst_res'] for m in results):.1e} tpqrt_ms={mean_ms('tpqrt'):.2f} "
          f"svdvals_ms={mean_ms('svdvals'):.2f} shared_svd_ms={mean_ms('shared'):.2f} "
          f"max_bound_over_condition={max(m['bound_over_kappa'] for m in results):.2f} "
          f"p={desc.n_columns} configs={args.configs} twojmax={args.twojmax}")


if __name__ == "__main__":
    main()
