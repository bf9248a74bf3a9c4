"""Figures of a trade-off grid table (``TradeoffGrid.get_table()`` or rows of ``fitting.run_grid``).

Analogues of the study's figures:

* :func:`plot_weight_tradeoff` — Fig. 4/5: test energy error vs test force error across the weight ratios w_E/w_F,
  one curve per training level, one panel per 2Jmax;
* :func:`plot_subset_size` — Fig. 6: test error vs training-set size, leverage sampling vs random, median and
  min–max spread over repetitions;
* :func:`plot_pareto` — Fig. 7/8: Pareto fronts of test error vs DFT seconds of the training set, coloured by
  training level.

Every function takes the table, returns the matplotlib ``Figure`` and saves it when ``path`` is given. The Agg
backend is used, so no display is needed. Errors are in meV/atom (energy) and meV/Å (force), against the
table's reference level. Nothing in this module imports pyiron.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .pareto import pareto_front  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_weight_tradeoff", "plot_subset_size", "plot_pareto"]

_LABELS = {
    "test_energy_rmse": "test energy RMSE (meV/atom)",
    "test_energy_rmse_shifted": "test energy RMSE, shifted (meV/atom)",
    "test_force_rmse": "test force RMSE (meV/Å)",
    "dft_seconds": "DFT time of the training set (s)",
    "subset_size": "training configurations",
}


def _require(table: pd.DataFrame, columns: Sequence[str]) -> None:
    if len(table) == 0:
        raise ValueError("the table is empty: nothing to plot")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise KeyError(f"table lacks column(s) {missing}; columns: {list(table.columns)}")


def _colours(levels) -> dict:
    cmap = plt.get_cmap("viridis")
    levels = sorted(levels)
    return {lv: cmap(i / max(len(levels) - 1, 1)) for i, lv in enumerate(levels)}


def _save(fig, path):
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return fig


def plot_weight_tradeoff(
    table: pd.DataFrame,
    energy: str = "test_energy_rmse",
    force: str = "test_force_rmse",
    subset_size: int | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 4/5 analogue: energy vs force test error along the weight ratios, per training level and 2Jmax.

    Points of one curve are the weight ratios (labelled w_E/w_F), averaged over sampling methods and repetitions,
    at ``subset_size`` (default: the largest in the table).
    """
    _require(table, ["training_level", "twojmax", "subset_size", "energy_weight", "force_weight", energy, force])
    size = table["subset_size"].max() if subset_size is None else subset_size
    data = table[table["subset_size"] == size].copy()
    if data.empty:
        raise ValueError(f"no rows with subset_size {size}")
    data["ratio"] = data["energy_weight"] / data["force_weight"]
    twojmaxes = sorted(data["twojmax"].unique())
    colours = _colours(data["training_level"].unique())
    fig, axes = plt.subplots(1, len(twojmaxes), figsize=(5 * len(twojmaxes), 4), squeeze=False)
    for ax, tj in zip(axes[0], twojmaxes, strict=True):
        sub = data[data["twojmax"] == tj]
        for level, group in sub.groupby("training_level"):
            mean = group.groupby("ratio")[[energy, force]].mean().sort_index()
            ax.plot(mean[force], mean[energy], "o-", color=colours[level], label=f"level {level}")
            for ratio, row in mean.iterrows():
                ax.annotate(f"{ratio:g}", (row[force], row[energy]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xlabel(_LABELS.get(force, force))
        ax.set_ylabel(_LABELS.get(energy, energy))
        ax.set_title(f"2Jmax {tj}, {size} configurations (labels: w_E/w_F)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_subset_size(
    table: pd.DataFrame,
    error: str = "test_energy_rmse",
    training_level: int | None = None,
    weight_ratio: float | None = None,
    twojmax: int | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 6 analogue: test error vs training-set size per sampling method (median, min–max band over
    repetitions).

    Restricted to one training level, weight ratio and 2Jmax (defaults: the reference level where the table has a
    ``reference_level`` column and trains on it, else the largest training level; the first ratio; the largest 2Jmax
    in the table).
    """
    _require(table, ["training_level", "subset_size", "sampling", "energy_weight", "force_weight", "twojmax", error])
    data = table.copy()
    data["ratio"] = data["energy_weight"] / data["force_weight"]
    if training_level is not None:
        level = training_level
    elif "reference_level" in data.columns and data["reference_level"].iloc[0] in set(data["training_level"]):
        level = data["reference_level"].iloc[0]
    else:
        level = data["training_level"].max()
    ratio = sorted(data["ratio"].unique())[0] if weight_ratio is None else weight_ratio
    tj = data["twojmax"].max() if twojmax is None else twojmax
    data = data[(data["training_level"] == level) & np.isclose(data["ratio"], ratio) & (data["twojmax"] == tj)]
    if data.empty:
        raise ValueError(f"no rows for level {level}, w_E/w_F {ratio}, 2Jmax {tj}")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for sampling, group in data.groupby("sampling"):
        stats = group.groupby("subset_size")[error].agg(["median", "min", "max"]).sort_index()
        line = ax.plot(stats.index, stats["median"], "o-", label=str(sampling))[0]
        ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_LABELS["subset_size"])
    ax.set_ylabel(_LABELS.get(error, error))
    ax.set_title(f"level {level}, w_E/w_F {ratio:g}, 2Jmax {tj}")
    ax.legend(title="sampling")
    fig.tight_layout()
    return _save(fig, path)


def plot_pareto(
    table: pd.DataFrame,
    errors: Sequence[str] = ("test_energy_rmse", "test_force_rmse"),
    cost: str = "dft_seconds",
    path: str | os.PathLike | None = None,
) -> Figure:
    """Fig. 7/8 analogue: every grid point (faint) and the Pareto front of each error vs ``cost``, coloured by
    training level; front points are those no other point beats in both the error and the cost."""
    _require(table, ["training_level", cost, *errors])
    colours = _colours(table["training_level"].unique())
    fig, axes = plt.subplots(1, len(errors), figsize=(5.5 * len(errors), 4), squeeze=False)
    for ax, error in zip(axes[0], errors, strict=True):
        front = pareto_front(table, [cost, error]).to_numpy()
        for level, group in table.groupby("training_level"):
            ax.scatter(group[cost], group[error], s=8, alpha=0.25, color=colours[level])
        on = table[front].sort_values(cost)
        ax.step(on[cost], on[error], where="post", color="0.4", lw=1)
        for level, group in on.groupby("training_level"):
            ax.scatter(group[cost], group[error], s=40, color=colours[level], edgecolor="k", label=f"level {level}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(_LABELS.get(cost, cost))
        ax.set_ylabel(_LABELS.get(error, error))
        ax.legend(title="on the front", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
