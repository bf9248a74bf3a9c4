"""Leverage where it can matter: the study's Fig. 6 on the real Fe data of FitSNAP (pool ≫ p).

The bundled Be pool (205 configurations) is too small to show what the study finds — leverage sampling needs about
ten times fewer configurations than random sampling to come near the full-pool error. This benchmark repeats the
comparison on FitSNAP's Fe example (``../shared/data/fitsnap_examples/Fe_Linear_NPJ2021/``, read with
``fitsnap_io.read_fitsnap``: 2,038 configurations of the input's groups, 18 atoms on average):

* split: the package's seeded 50/25/25 split by configuration (training pool, validation, test; seed 0);
* descriptors: qSNAP (quadratic terms and a constant column, as for Be) with the Fe input's radial settings
  (``rcutfac``, ``rfac0``, ``rmin0``, ``radelem``, ``wj``, ``switchflag``), 2Jmax 4 and 6 (p = 120 and 496);
* sampling: energy leverage, block leverage (energy rows weighted 150×, the package's default) and uniform random,
  ``--repetitions`` independent draws each (default 20), nested subsets of growing size drawn from the pool;
* fits: one weight ratio w_E/w_F (``--weight-ratio``, default 12.25, one of the study's), errors on the test set
  (meV/atom, meV/Å); statistics of a draw's nested subsets in one pass (the fits are not refolded in index order:
  a 1e-10 relative order dependence does not matter here).

It prints, per 2Jmax and method, the median test errors against training-set size and the number of configurations
each method needs for its median error to come within 5 % of the full-pool fit's error (and stay there), and writes
the figure to ``docs/figures/leverage_real_fe.png``.

    python benchmarks/leverage_real.py                         # 20 draws, 2Jmax 4 and 6: hours on 2 busy cores
    python benchmarks/leverage_real.py --twojmax 4 --repetitions 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pyiron_mlip_tradeoff.fitsnap_io import read_fitsnap
from pyiron_mlip_tradeoff.fitting import dataset_descriptors, dataset_split, labelled_blocks
from pyiron_mlip_tradeoff.leverage import leverage_scores, ranking, repetition_rng
from pyiron_mlip_tradeoff.regression import errors, fit, statistics_for_nested_subsets, statistics_from_blocks

METHODS = ("energy", "block", "random")
TOLERANCE = 0.05


def fe_input() -> Path:
    for root in (Path(__file__).resolve().parents[1] / ".." / "shared" / "data", Path("/work/shared/data")):
        path = root / "fitsnap_examples" / "Fe_Linear_NPJ2021" / "Fe-example.in"
        if path.is_file():
            return path.resolve()
    raise SystemExit("the Fe FitSNAP example is not there (../shared/data or /work/shared/data)")


def configurations_needed(median: pd.Series, tolerance: float = TOLERANCE) -> float:
    """Smallest size from which on every larger size's median error is within ``tolerance`` of the full pool's."""
    full = median.iloc[-1]
    bad = median.index[median > (1 + tolerance) * full]
    good = median.index[median.index > (bad.max() if len(bad) else 0)]
    return float(good.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--twojmax", type=int, nargs="+", default=[4, 6])
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--weight-ratio", type=float, default=12.25)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "pyiron_mlip_tradeoff_leverage_real"),
                        help="descriptor cache folder (reused by later runs)")
    parser.add_argument("--figure", default=str(Path(__file__).resolve().parents[1] / "docs" / "figures"
                                                / "leverage_real_fe.png"))
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the Fe input's spin reference potential is not used here
        setup = read_fitsnap(fe_input())
    dataset = setup.dataset
    fe = setup.job_input["descriptor_settings"]
    settings = {"rcutfac": fe["rcutfac"], "rfac0": fe["rfac0"], "rmin0": fe["rmin0"], "radelem": fe["radelem"][0],
                "wj": fe["wj"][0], "switchflag": int(fe["switchflag"]), "quadraticflag": 1, "bzeroflag": 0}
    pool, _, test = dataset_split(dataset)
    level = dataset.levels[0]
    sizes = [s for s in (10, 20, 40, 80, 160, 320, 640) if s < pool.size] + [int(pool.size)]
    print(f"Fe: {dataset.n_configs} configurations ({dataset.n_atoms.mean():.1f} atoms on average), pool "
          f"{pool.size}, test {test.size}; sizes {sizes}; w_E/w_F {args.weight_ratio:g}; {args.repetitions} draws")
    rows = []
    for tj in args.twojmax:
        start = time.perf_counter()
        desc = dataset_descriptors(dataset, tj, settings, element="Fe", cache_dir=args.cache)
        print(f"2Jmax {tj}: p = {desc.n_columns}, descriptors {time.perf_counter() - start:.0f} s", flush=True)
        test_stats = statistics_from_blocks(labelled_blocks(dataset, desc, test), levels=dataset.levels)
        for method in METHODS:
            if method == "random":
                scores = np.ones(pool.size)
            else:
                forces = method == "block"
                scores = leverage_scores(lambda d=desc, f=forces: d.iter_blocks(pool, forces=f), method).scores
            for rep in range(args.repetitions):
                rng = repetition_rng(0, rep)
                order = pool[ranking(scores, "uniform" if method == "random" else "proportional", rng)]
                blocks = labelled_blocks(dataset, desc, order[: sizes[-1]])
                for size, stats in statistics_for_nested_subsets(blocks, sizes, levels=dataset.levels):
                    beta = fit(stats, level, args.weight_ratio, 1.0).coefficients
                    e = errors(test_stats, beta)
                    rows.append({"twojmax": tj, "sampling": method, "repetition": rep, "subset_size": size,
                                 "test_energy_rmse": float(e.energy_rmse[0]), "test_force_rmse": float(e.force_rmse[0])})
            print(f"  {method}: {time.perf_counter() - start:.0f} s", flush=True)
    table = pd.DataFrame(rows)
    medians = table.groupby(["twojmax", "sampling", "subset_size"])[["test_energy_rmse", "test_force_rmse"]].median()
    pd.set_option("display.width", 200)
    print("\nmedian test errors (meV/atom, meV/Å):")
    print(medians.unstack("sampling").round(1).to_string())
    print(f"\nconfigurations needed to come within {TOLERANCE:.0%} of the full-pool error (median over draws):")
    needed = {}
    for (tj, method), group in medians.groupby(level=["twojmax", "sampling"]):
        for error in ("test_energy_rmse", "test_force_rmse"):
            needed[(tj, method, error)] = configurations_needed(group[error].droplevel([0, 1]))
    print(pd.Series(needed).unstack().to_string())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(args.twojmax), 2, figsize=(9, 3.4 * len(args.twojmax)), squeeze=False)
    for i, tj in enumerate(args.twojmax):
        for j, error in enumerate(("test_energy_rmse", "test_force_rmse")):
            ax = axes[i, j]
            for method in METHODS:
                stats = table[(table.twojmax == tj) & (table.sampling == method)].groupby("subset_size")[error]
                med = stats.median()
                line = ax.plot(med.index, med.values, "o-", label=method)[0]
                ax.fill_between(med.index, stats.min(), stats.max(), color=line.get_color(), alpha=0.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("training configurations")
            ax.set_ylabel("energy RMSE (meV/atom)" if j == 0 else "force RMSE (meV/Å)")
            ax.set_title(f"Fe, 2Jmax {tj}")
            ax.legend()
    fig.tight_layout()
    Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=120)
    print(f"\nfigure: {args.figure}")


if __name__ == "__main__":
    main()
