"""Non-dominated sets over trade-off tables and "cheapest recipe for this target" recommendations.

The tables are plain ``pandas.DataFrame`` objects with one row per fitted model (a grid point). Columns assumed by
:func:`recommend` (names configurable): ``training_level``, ``subset_size``, ``sampling``, ``repetition``,
``energy_weight``, ``force_weight``, ``twojmax``, ``n_train``, ``dft_seconds`` (DFT CPU seconds of the training set, wall seconds where no CPU time is recorded),
``test_energy_rmse`` and ``test_energy_rmse_shifted`` (meV/atom against the top level), ``test_force_rmse`` (meV/Å),
and optionally ``md_speed`` (measured MD speed, atom-timesteps/s).

MD cost: until measured speeds are available, the cost of running a model is represented by a proxy, the number of
qSNAP columns (coefficients) for the row's 2Jmax (:func:`qsnap_column_count`; 120 / 496 / 1596 / 4278 for 2Jmax
4 / 6 / 8 / 10). Evaluation time of SNAP grows faster than this count, so the proxy only orders models correctly; it
is not a speed and cannot be compared with ``min_md_speed``.

Nothing in this module imports pyiron.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .descriptors import n_bispectrum_components, n_columns

__all__ = [
    "n_bispectrum_components",
    "qsnap_column_count",
    "add_md_cost_proxy",
    "pareto_front",
    "pareto_rows",
    "summarize_repetitions",
    "Recommendation",
    "recommend",
    "RECIPE_COLUMNS",
]

#: columns that define a recipe (what one would do to reproduce a grid point, apart from the random repetition)
RECIPE_COLUMNS = ("training_level", "subset_size", "sampling", "energy_weight", "force_weight", "twojmax")


# --------------------------------------------------------------------------------------------------------------
# MD cost proxy


def qsnap_column_count(twojmax: int, n_elements: int = 1, quadratic: bool = True, constant: bool = True) -> int:
    """Number of model coefficients (design-matrix columns) of a (q)SNAP potential.

    Per element: K linear components, K(K+1)/2 quadratic products when ``quadratic`` (quadraticflag 1), and one
    constant column when ``constant`` (bzeroflag 0 in the FitSNAP convention).

    Args:
        twojmax: 2Jmax.
        n_elements: number of element types, each with its own coefficient set.

    Returns:
        The column count, e.g. 120 / 496 / 1596 / 4278 for 2Jmax 4 / 6 / 8 / 10, one element, quadratic, constant.
        Used as the MD-cost proxy until measured MD speeds exist.
    """
    per_element = n_columns(_as_twojmax(twojmax), quadraticflag=int(quadratic), bzeroflag=0 if constant else 1)
    if n_elements < 1:
        raise ValueError(f"n_elements must be at least 1, got {n_elements}")
    return int(n_elements) * per_element


def _as_twojmax(value) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise ValueError(f"2Jmax must be a non-negative integer, got {value!r}")
    return int(value)


def add_md_cost_proxy(table: pd.DataFrame, column: str = "md_cost_proxy", twojmax_column: str = "twojmax",
                      n_elements: int = 1) -> pd.DataFrame:
    """Copy of ``table`` with a column holding the qSNAP column count of each row's 2Jmax (a proxy for MD cost:
    larger is slower; not a speed)."""
    if twojmax_column not in table.columns:
        raise KeyError(f"table has no {twojmax_column!r} column; columns: {list(table.columns)}")
    out = table.copy()
    cache: dict[int, int] = {}
    values = []
    for t in out[twojmax_column]:
        t = _as_twojmax(t)
        if t not in cache:
            cache[t] = qsnap_column_count(t, n_elements=n_elements)
        values.append(cache[t])
    out[column] = np.array(values, dtype=np.int64)
    return out


# --------------------------------------------------------------------------------------------------------------
# Pareto front


def _objective_matrix(table: pd.DataFrame, objectives: Sequence[str], minimize: bool | Mapping[str, bool]):
    objectives = list(objectives)
    if not objectives:
        raise ValueError("at least one objective is needed")
    missing = [c for c in objectives if c not in table.columns]
    if missing:
        raise KeyError(f"objective column(s) {missing} not in table; columns: {list(table.columns)}")
    if isinstance(minimize, Mapping):
        unknown = set(minimize) - set(objectives)
        if unknown:
            raise ValueError(f"minimize names column(s) {sorted(unknown)} that are not objectives {objectives}")
        signs = np.array([1.0 if minimize.get(c, True) else -1.0 for c in objectives])
    else:
        signs = np.full(len(objectives), 1.0 if minimize else -1.0)
    values = table[objectives].to_numpy(dtype=float) * signs
    return values


def pareto_front(
    table: pd.DataFrame, objectives: Sequence[str], minimize: bool | Mapping[str, bool] = True
) -> pd.Series:
    """Which rows are non-dominated (Pareto-optimal) in the given objectives.

    Row a dominates row b when a is at least as good as b in every objective and strictly better in at least one.
    Rows with identical objective values do not dominate each other, so duplicates on the front are all kept.
    Rows with a missing (NaN) objective are never on the front and dominate nothing.

    Args:
        table: one row per candidate.
        objectives: column names.
        minimize: True (all minimised), False (all maximised), or ``{column: bool}`` (columns not named are
            minimised).

    Returns:
        Boolean Series aligned with ``table.index`` (True = on the front); ``table[mask]`` gives the rows.

    Cost: O(n log n + n · front size · n_objectives): rows are visited in lexicographic order, where a dominating
    row always comes first, and each is compared only with the front found so far.
    """
    values = _objective_matrix(table, objectives, minimize)
    n = values.shape[0]
    mask = np.zeros(n, dtype=bool)
    valid = np.flatnonzero(~np.any(np.isnan(values), axis=1))
    if valid.size:
        sub = values[valid]
        order = np.lexsort(sub.T[::-1])  # first objective is the primary key
        front = np.empty((0, sub.shape[1]))
        for i in order:
            v = sub[i]
            if front.shape[0]:
                dominated = np.any(np.all(front <= v, axis=1) & np.any(front < v, axis=1))
                if dominated:
                    continue
            mask[valid[i]] = True
            front = np.vstack([front, v])
    return pd.Series(mask, index=table.index, name="pareto")


def pareto_rows(
    table: pd.DataFrame, objectives: Sequence[str], minimize: bool | Mapping[str, bool] = True
) -> pd.DataFrame:
    """The non-dominated rows of ``table``, sorted by the first objective (see :func:`pareto_front`)."""
    rows = table[pareto_front(table, objectives, minimize).to_numpy()]
    return rows.sort_values(list(objectives), kind="stable")


def summarize_repetitions(
    table: pd.DataFrame, by: Sequence[str] = RECIPE_COLUMNS, how: str = "mean"
) -> pd.DataFrame:
    """One row per recipe: numeric columns aggregated over repetitions (``mean``, ``median`` or ``max``).

    Recommending from single repetitions favours lucky random subsets; aggregating first (``max`` = worst case)
    gives recommendations that hold for a typical (or any) draw. Adds ``n_repetitions``.
    """
    if how not in ("mean", "median", "max"):
        raise ValueError(f"how must be 'mean', 'median' or 'max', got {how!r}")
    by = [c for c in by if c in table.columns]
    if not by:
        raise KeyError(f"none of the grouping columns are in the table; columns: {list(table.columns)}")
    numeric = [c for c in table.columns if c not in by and c != "repetition" and pd.api.types.is_numeric_dtype(table[c])]
    grouped = table.groupby(by, sort=True, dropna=False)
    out = grouped[numeric].agg(how)
    out["n_repetitions"] = grouped.size()
    return out.reset_index()


# --------------------------------------------------------------------------------------------------------------
# recommendation


@dataclass
class Recommendation:
    """The recommended recipe, or the closest point when the targets cannot all be met.

    Attributes:
        targets_met: whether ``row`` meets every target.
        message: a sentence for people: what was chosen, or which target(s) cannot be met and what is closest.
        row: the chosen table row.
        unmet_targets: names of the targets the chosen row misses (empty when ``targets_met``).
        unreachable_targets: targets that no row meets even on its own.
        targets: the targets given (name → limit).
        cost_column: the column minimised.
        training_level, subset_size, sampling, energy_weight, force_weight, twojmax: the recipe (None where the
            table has no such column).
        cost: the row's cost value.
    """

    targets_met: bool
    message: str
    row: pd.Series
    unmet_targets: tuple[str, ...] = ()
    unreachable_targets: tuple[str, ...] = ()
    targets: dict[str, float] = field(default_factory=dict)
    cost_column: str = "dft_seconds"
    training_level: object = None
    subset_size: object = None
    sampling: object = None
    energy_weight: object = None
    force_weight: object = None
    twojmax: object = None
    cost: float = float("nan")

    def recipe(self) -> dict[str, object]:
        """The recipe fields as a dict of plain Python values."""
        return {c: _plain(getattr(self, c)) for c in RECIPE_COLUMNS}


def _plain(value):
    """A numpy scalar as the Python number it holds (for printing and JSON); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class _Target:
    name: str
    column: str
    limit: float
    upper: bool  # True: value ≤ limit; False: value ≥ limit
    unit: str

    def violation(self, values: np.ndarray) -> np.ndarray:
        """Relative violation, 0 where met: (value − limit)/limit for upper bounds, (limit − value)/limit else."""
        v = (values - self.limit) / self.limit if self.upper else (self.limit - values) / self.limit
        return np.maximum(v, 0.0)

    def describe(self) -> str:
        op = "≤" if self.upper else "≥"
        return f"{self.name}: {self.column} {op} {self.limit:g}{(' ' + self.unit) if self.unit else ''}"


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _fmt(row: pd.Series, col: str, unit: str = "") -> str:
    if col not in row.index:
        return "?"
    v = row[col]
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}{(' ' + unit) if unit else ''}"
    return f"{v}{(' ' + unit) if unit else ''}"


def _describe_row(row: pd.Series, cost: str, energy: str, force: str) -> str:
    parts = []
    if "training_level" in row.index:
        parts.append(f"level {row['training_level']}")
    if "subset_size" in row.index:
        s = f"{row['subset_size']} configurations"
        if "sampling" in row.index:
            s += f" ({row['sampling']} sampling)"
        parts.append(s)
    if "energy_weight" in row.index and "force_weight" in row.index:
        parts.append(f"w_E={_fmt(row, 'energy_weight')}, w_F={_fmt(row, 'force_weight')}")
    if "twojmax" in row.index:
        parts.append(f"2Jmax {row['twojmax']}")
    perf = [f"energy {_fmt(row, energy, 'meV/atom')}", f"force {_fmt(row, force, 'meV/Å')}", f"{cost} {_fmt(row, cost)}"]
    return ", ".join(parts) + " → " + ", ".join(perf)


def recommend(
    table: pd.DataFrame,
    max_energy_rmse: float | None = None,
    max_force_rmse: float | None = None,
    min_md_speed: float | None = None,
    max_twojmax: int | None = None,
    cost: str = "dft_seconds",
    *,
    energy_column: str = "test_energy_rmse",
    force_column: str = "test_force_rmse",
    md_speed_column: str = "md_speed",
    twojmax_column: str = "twojmax",
) -> Recommendation:
    """The cheapest row meeting every given target, or the closest row and which targets are out of reach.

    Args:
        table: trade-off table (one row per fitted model; see the module docstring for the columns).
        max_energy_rmse: upper bound on ``energy_column`` (default the test energy RMSE vs the top level), meV/atom.
            Pass ``energy_column="test_energy_rmse_shifted"`` to target the shifted error.
        max_force_rmse: upper bound on ``force_column``, meV/Å.
        min_md_speed: lower bound on measured MD speed (``md_speed_column``, atom-timesteps/s). Needs that column:
            the column-count proxy is not a speed; without measurements use ``max_twojmax``.
        max_twojmax: upper bound on 2Jmax (the MD-cost proxy: fewer qSNAP columns run faster).
        cost: column to minimise among the rows that meet the targets (default the training set's DFT seconds).

    Returns:
        A :class:`Recommendation`. When some rows meet all targets: the one with the lowest cost, ties broken by
        the lower energy error, then the lower force error, then table order. Otherwise the "closest" row: the one
        whose largest relative violation over the targets (e.g. (E − max_E)/max_E) is smallest (ties: cost, then
        energy error); the message names the targets it misses and those that no row meets on its own.

    Raises:
        ValueError: for non-positive or non-finite targets, an empty table, or no row with the needed values.
        KeyError: for a missing column.
    """
    if len(table) == 0:
        raise ValueError("the table is empty: nothing to recommend")
    targets: list[_Target] = []
    if max_energy_rmse is not None:
        targets.append(_Target("max_energy_rmse", energy_column, _positive("max_energy_rmse", max_energy_rmse),
                               True, "meV/atom"))
    if max_force_rmse is not None:
        targets.append(_Target("max_force_rmse", force_column, _positive("max_force_rmse", max_force_rmse),
                               True, "meV/Å"))
    if min_md_speed is not None:
        if md_speed_column not in table.columns:
            raise KeyError(
                f"min_md_speed needs measured MD speeds in a {md_speed_column!r} column, which the table lacks; "
                "until speeds are measured, limit the model size with max_twojmax (the column-count proxy)"
            )
        targets.append(_Target("min_md_speed", md_speed_column, _positive("min_md_speed", min_md_speed),
                               False, "atom-timesteps/s"))
    if max_twojmax is not None:
        limit = _as_twojmax(max_twojmax)
        if limit == 0:
            raise ValueError("max_twojmax must be a positive integer, got 0")
        targets.append(_Target("max_twojmax", twojmax_column, float(limit), True, ""))
    needed = [cost, energy_column, force_column] + [t.column for t in targets]
    missing = sorted({c for c in needed if c not in table.columns})
    if missing:
        raise KeyError(f"table lacks column(s) {missing}; columns: {list(table.columns)}")

    values = {c: table[c].to_numpy(dtype=float) for c in set(needed)}
    usable = np.ones(len(table), dtype=bool)
    for c in needed:
        usable &= np.isfinite(values[c])
    if not usable.any():
        raise ValueError(f"no row has finite values in all of {sorted(set(needed))}")

    violations = np.zeros((len(table), len(targets)))
    for k, t in enumerate(targets):
        violations[:, k] = t.violation(values[t.column])
    violations[~usable] = np.inf
    feasible = usable & np.all(violations == 0.0, axis=1)
    met_alone = usable[:, None] & (violations == 0.0)
    unreachable = tuple(t.name for k, t in enumerate(targets) if not met_alone[:, k].any())
    positions = np.arange(len(table))

    if feasible.any():
        idx = positions[feasible]
        # lexsort: last key is primary
        order = np.lexsort((idx, values[force_column][idx], values[energy_column][idx], values[cost][idx]))
        best = idx[order[0]]
        met = True
    else:
        worst = violations.max(axis=1) if targets else np.zeros(len(table))
        idx = positions[usable]
        order = np.lexsort((idx, values[energy_column][idx], values[cost][idx], worst[idx]))
        best = idx[order[0]]
        met = False

    row = table.iloc[best]
    unmet = tuple(t.name for k, t in enumerate(targets) if violations[best, k] > 0)
    desc = _describe_row(row, cost, energy_column, force_column)
    if met:
        cond = "; ".join(t.describe() for t in targets) if targets else "no targets given"
        message = f"Cheapest recipe meeting all targets ({cond}): {desc}."
    else:
        lines = ["No row meets all targets."]
        if unreachable:
            best_vals = []
            for t in targets:
                if t.name in unreachable:
                    col = values[t.column][usable]
                    b = col.min() if t.upper else col.max()
                    best_vals.append(f"{t.describe()} (best available {b:.4g})")
            lines.append("Unreachable by any row: " + "; ".join(best_vals) + ".")
        else:
            lines.append("Each target is reachable on its own, but not together.")
        missed = "; ".join(
            f"{t.describe()} (has {values[t.column][best]:.4g})" for k, t in enumerate(targets) if t.name in unmet
        )
        lines.append(f"Closest point (largest relative violation {violations[best].max():.1%}): {desc}; misses {missed}.")
        message = " ".join(lines)

    def get(col):
        return row[col] if col in row.index else None

    return Recommendation(
        targets_met=met,
        message=message,
        row=row,
        unmet_targets=unmet,
        unreachable_targets=unreachable,
        targets={t.name: t.limit for t in targets},
        cost_column=cost,
        training_level=get("training_level"),
        subset_size=get("subset_size"),
        sampling=get("sampling"),
        energy_weight=get("energy_weight"),
        force_weight=get("force_weight"),
        twojmax=get("twojmax"),
        cost=float(values[cost][best]),
    )
