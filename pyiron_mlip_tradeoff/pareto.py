"""Non-dominated sets over trade-off tables and "cheapest recipe for this target" recommendations.

The tables are plain ``pandas.DataFrame`` objects with one row per fitted model (a grid point). Columns assumed by
:func:`recommend` (names configurable): ``training_level``, ``subset_size``, ``sampling``, ``repetition``,
``energy_weight``, ``force_weight``, ``twojmax``, ``n_train``, ``dft_seconds`` (DFT CPU seconds of the training
set, wall seconds where no CPU time is recorded), the errors of the validation and the test set against the
reference level — ``validation_energy_rmse``, ``validation_energy_rmse_shifted`` (meV/atom),
``validation_force_rmse`` (meV/Å) and the same ``test_*`` —, ``job_name`` (the fit job of the row), and optionally
``md_speed`` (measured MD speed, atom-timesteps/s).

Recommendations are judged over draws and chosen on validation data: a recipe (the :data:`RECIPE_COLUMNS`) is
drawn several times (repetitions, different training subsets); :func:`recommend` summarises the draws of each
recipe (median by default, the spread kept), picks the cheapest recipe whose summarised *validation* errors meet
the targets, and reports its *test* errors — which played no part in the choice — with their median and spread.

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


#: how :func:`summarize_repetitions` aggregates draws
SUMMARIES = ("median", "mean", "max")
#: the error names of a set (``<set>_<name>`` columns): meV/atom, meV/atom, meV/Å
ERROR_NAMES = ("energy_rmse", "energy_rmse_shifted", "force_rmse")


def spread(values) -> float:
    """The spread of a recipe's draws: the interquartile range (75th − 25th percentile), 0 for one draw, NaN for
    none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    q75, q25 = np.percentile(v, [75, 25])
    return float(q75 - q25)


def summarize_repetitions(
    table: pd.DataFrame, by: Sequence[str] = RECIPE_COLUMNS, how: str = "median"
) -> pd.DataFrame:
    """One row per recipe: numeric columns aggregated over the repetitions (draws) of the recipe.

    Args:
        table: one row per draw (fitted model).
        by: the recipe columns (those present are used).
        how: ``"median"`` (default: a typical draw), ``"mean"`` or ``"max"`` (worst case: a recipe that holds for
            every draw).

    Returns:
        One row per recipe with the aggregated numeric columns, ``<column>_spread`` (interquartile range over the
        draws, see :func:`spread`) for every error column (``validation_*``, ``test_*``, ``train_*``) and
        ``dft_seconds``, and ``n_repetitions``. With a ``job_name`` column, ``job_name`` is the fit job of the
        recipe's *representative draw*: the draw whose validation (else test) energy and force errors are closest to
        the recipe's medians (sum of relative distances; ties: the lower repetition).
    """
    if how not in SUMMARIES:
        raise ValueError(f"how must be one of {SUMMARIES}, got {how!r}")
    by = [c for c in by if c in table.columns]
    if not by:
        raise KeyError(f"none of the grouping columns are in the table; columns: {list(table.columns)}")
    numeric = [c for c in table.columns if c not in by and c != "repetition" and pd.api.types.is_numeric_dtype(table[c])]
    grouped = table.groupby(by, sort=True, dropna=False)
    out = grouped[numeric].agg(how)
    spread_columns = [c for c in numeric if c.startswith(("validation_", "test_", "train_")) or c == "dft_seconds"]
    for c in spread_columns:
        out[f"{c}_spread"] = grouped[c].agg(spread)
    out["n_repetitions"] = grouped.size()
    if "job_name" in table.columns:
        out["job_name"] = grouped.apply(_representative_job, include_groups=False)
    return out.reset_index()


def _closeness_columns(table: pd.DataFrame) -> list[str]:
    for prefix in ("validation", "test"):
        cols = [f"{prefix}_{name}" for name in ("energy_rmse", "force_rmse") if f"{prefix}_{name}" in table.columns]
        if cols:
            return cols
    return []


def representative_position(draws: pd.DataFrame) -> int:
    """Position (0-based, in ``draws``) of the draw closest to the median of its recipe: smallest sum over the
    validation (else test) energy and force errors of |value − median| / median; ties: the first."""
    cols = _closeness_columns(draws)
    if not cols or len(draws) == 1:
        return 0
    values = draws[cols].to_numpy(dtype=float)
    median = np.nanmedian(values, axis=0)
    scale = np.where(np.abs(median) > 0, np.abs(median), 1.0)
    distance = np.nansum(np.abs(values - median) / scale, axis=1)
    distance[~np.isfinite(values).all(axis=1)] = np.inf
    return int(np.argmin(distance))


def _representative_job(draws: pd.DataFrame) -> object:
    if "repetition" in draws.columns:
        draws = draws.sort_values("repetition", kind="stable")
    return draws["job_name"].iloc[representative_position(draws)]


# --------------------------------------------------------------------------------------------------------------
# recommendation


@dataclass
class Recommendation:
    """The recommended recipe, or the closest one when the targets cannot all be met.

    Recipes are judged over their draws (repetitions) and chosen on the *validation* errors; the *test* errors are
    reported only (see :func:`recommend`).

    Attributes:
        targets_met: whether the chosen recipe meets every target (on its summarised validation errors).
        message: a sentence for people: what was chosen, how many draws meet the targets on the validation and the
            test set, or which target(s) cannot be met and what is closest.
        row: the chosen table row — for a summarised choice the recipe's summary (medians, ``*_spread``,
            ``n_repetitions``, and ``job_name`` of the representative draw).
        unmet_targets: names of the targets the chosen recipe misses (empty when ``targets_met``).
        unreachable_targets: targets that no recipe meets even on its own.
        targets: the targets given (name → limit).
        cost_column: the column minimised.
        training_level, subset_size, sampling, energy_weight, force_weight, twojmax: the recipe (None where the
            table has no such column).
        cost: the chosen recipe's cost (for ``dft_seconds``: median DFT CPU seconds of its training sets).
        validation_errors, test_errors: ``{error name: {"median", "spread", "min", "max", "n_draws"}}`` over the
            recipe's draws for ``energy_rmse``, ``energy_rmse_shifted`` (meV/atom) and ``force_rmse`` (meV/Å);
            spread = interquartile range. Empty when the table has no such columns.
        fit_job: the ``QSnapFit`` job name of the representative draw (closest to the recipe's median), or None
            when the table has no ``job_name`` column.
        draw: the representative draw's own table row.
        n_draws: draws of the chosen recipe.
        draws_meeting_validation, draws_meeting_test: how many of them meet every error/size target on the
            validation and on the test set (the speed target is one value per 2Jmax).
        summarize: how draws were summarised (``None``: single draws were ranked).
        select_on: the set recipes were chosen on (``"validation"``).
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
    validation_errors: dict[str, dict[str, float]] = field(default_factory=dict)
    test_errors: dict[str, dict[str, float]] = field(default_factory=dict)
    fit_job: object = None
    draw: pd.Series | None = None
    n_draws: int = 1
    draws_meeting_validation: int | None = None
    draws_meeting_test: int | None = None
    summarize: str | None = "median"
    select_on: str = "validation"

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


def _error_statistics(draws: pd.DataFrame, prefix: str) -> dict[str, dict[str, float]]:
    out = {}
    for name in ERROR_NAMES:
        column = f"{prefix}_{name}"
        if column not in draws.columns:
            continue
        v = draws[column].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        out[name] = {"median": float(np.median(v)), "spread": spread(v), "min": float(v.min()),
                     "max": float(v.max()), "n_draws": int(v.size)}
    return out


def _choose(table: pd.DataFrame, targets: list[_Target], cost: str, energy_column: str, force_column: str):
    """The core of :func:`recommend` on one table: (position, met, unmet, unreachable, violations, values)."""
    needed = [cost, energy_column, force_column] + [t.column for t in targets]
    missing = sorted({c for c in needed if c not in table.columns})
    if missing:
        hint = ""
        if any(c.startswith("validation_") for c in missing):
            hint = (" (a table without validation errors comes from a grid run before the three-way split: run the "
                    "grid again, or pass select_on='test' to choose on the test set knowingly)")
        raise KeyError(f"table lacks column(s) {missing}{hint}; columns: {list(table.columns)}")
    values = {c: table[c].to_numpy(dtype=float) for c in set(needed)}
    usable = np.ones(len(table), dtype=bool)
    for c in needed:
        usable &= np.isfinite(values[c])
    if not usable.any():
        hint = ""
        if not np.isfinite(values[cost]).any():
            hint = (f"; the cost column {cost!r} has no value at all" + (
                " (a dataset without DFT timings, e.g. one read from extended XYZ or a TrainingContainer, has no "
                "DFT seconds): pass another cost, e.g. cost='n_train'" if cost == "dft_seconds" else ""))
        raise ValueError(f"no row has finite values in all of {sorted(set(needed))}{hint}")

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
        best, met = int(idx[order[0]]), True
    else:
        worst = violations.max(axis=1) if targets else np.zeros(len(table))
        idx = positions[usable]
        order = np.lexsort((idx, values[energy_column][idx], values[cost][idx], worst[idx]))
        best, met = int(idx[order[0]]), False
    unmet = tuple(t.name for k, t in enumerate(targets) if violations[best, k] > 0)
    return best, met, unmet, unreachable, violations, values, usable


def _draws_meeting(draws: pd.DataFrame, targets: list[_Target], prefix: str, select_on: str) -> int | None:
    """How many draws meet every target, with the error targets read from ``prefix`` columns."""
    ok = np.ones(len(draws), dtype=bool)
    for t in targets:
        column = t.column
        if column.startswith(select_on + "_"):
            column = prefix + column[len(select_on):]
        if column not in draws.columns:
            return None
        v = draws[column].to_numpy(dtype=float)
        ok &= np.isfinite(v) & (t.violation(np.nan_to_num(v, nan=np.inf)) == 0.0)
    return int(ok.sum())


def recommend(
    table: pd.DataFrame,
    max_energy_rmse: float | None = None,
    max_force_rmse: float | None = None,
    min_md_speed: float | None = None,
    max_twojmax: int | None = None,
    cost: str = "dft_seconds",
    *,
    summarize: str | None = "median",
    select_on: str = "validation",
    energy_column: str | None = None,
    force_column: str | None = None,
    md_speed_column: str = "md_speed",
    twojmax_column: str = "twojmax",
) -> Recommendation:
    """The cheapest recipe meeting every given target, judged over its draws on the validation set, or the closest
    recipe and which targets are out of reach.

    Args:
        table: trade-off table (one row per fitted model, i.e. per draw; see the module docstring for the columns).
        max_energy_rmse: upper bound on the energy RMSE (``energy_column``, default ``<select_on>_energy_rmse``,
            vs the reference level), meV/atom. Pass ``energy_column="validation_energy_rmse_shifted"`` to target the
            shifted error.
        max_force_rmse: upper bound on ``force_column`` (default ``<select_on>_force_rmse``), meV/Å.
        min_md_speed: lower bound on measured MD speed (``md_speed_column``, atom-timesteps/s). Needs that column:
            the column-count proxy is not a speed; without measurements use ``max_twojmax``.
        max_twojmax: upper bound on 2Jmax (the MD-cost proxy: fewer qSNAP columns run faster).
        cost: column to minimise among the recipes that meet the targets (default the training set's DFT seconds).
        summarize: ``"median"`` (default), ``"mean"`` or ``"max"``: first summarise the draws of each recipe
            (:func:`summarize_repetitions`) and choose among recipes; ``None``: rank single draws (a lucky draw
            can then win — only for comparison).
        select_on: the set whose errors choose (default ``"validation"``; the test set is reported, never used to
            choose, unless you pass ``"test"`` knowingly).

    Returns:
        A :class:`Recommendation`. When some recipes meet all targets: the one with the lowest cost, ties broken by
        the lower energy error, then the lower force error, then table order. Otherwise the "closest" recipe: the one
        whose largest relative violation over the targets (e.g. (E − max_E)/max_E) is smallest (ties: cost, then
        energy error); the message names the targets it misses and those that no recipe meets on its own. The
        message also says how many of the recipe's draws meet the targets on the validation and on the test set.

    Raises:
        ValueError: for non-positive or non-finite targets, an unknown ``summarize`` or ``select_on``, an empty
            table, or no row with the needed values.
        KeyError: for a missing column.
    """
    if len(table) == 0:
        raise ValueError("the table is empty: nothing to recommend")
    if summarize is not None and summarize not in SUMMARIES:
        raise ValueError(f"summarize must be one of {SUMMARIES} or None, got {summarize!r}")
    if select_on not in ("validation", "test", "train"):
        raise ValueError(f"select_on must be 'validation', 'test' or 'train', got {select_on!r}")
    energy_column = f"{select_on}_energy_rmse" if energy_column is None else energy_column
    force_column = f"{select_on}_force_rmse" if force_column is None else force_column
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

    recipe_columns = [c for c in RECIPE_COLUMNS if c in table.columns]
    summarized = summarize is not None and bool(recipe_columns)
    candidates = summarize_repetitions(table, how=summarize) if summarized else table
    best, met, unmet, unreachable, violations, values, usable = _choose(candidates, targets, cost, energy_column,
                                                                        force_column)
    row = candidates.iloc[best]
    if summarized:
        mask = np.ones(len(table), dtype=bool)
        for c in recipe_columns:
            mask &= (table[c] == row[c]).to_numpy()
        draws = table[mask]
        if "repetition" in draws.columns:
            draws = draws.sort_values("repetition", kind="stable")
        draw = draws.iloc[representative_position(draws)]
    else:
        draws = table.iloc[[best]]
        draw = row
    n_draws = len(draws)
    meeting_validation = _draws_meeting(draws, targets, select_on, select_on)
    meeting_test = _draws_meeting(draws, targets, "test", select_on) if select_on != "test" else meeting_validation
    noun = "recipe" if summarized else "row"
    how = f"the {summarize} over {n_draws} draw(s)" if summarized else "a single draw"
    desc = _describe_row(row, cost, energy_column, force_column)
    if met:
        cond = "; ".join(t.describe() for t in targets) if targets else "no targets given"
        message = f"Cheapest {noun} meeting all targets ({cond}) on {how}: {desc}."
    else:
        lines = [f"No {noun} meets all targets."]
        if unreachable:
            best_vals = []
            for t in targets:
                if t.name in unreachable:
                    col = values[t.column][usable]
                    b = col.min() if t.upper else col.max()
                    best_vals.append(f"{t.describe()} (best available {b:.4g})")
            lines.append(f"Unreachable by any {noun}: " + "; ".join(best_vals) + ".")
        else:
            lines.append("Each target is reachable on its own, but not together.")
        missed = "; ".join(
            f"{t.describe()} (has {values[t.column][best]:.4g})" for k, t in enumerate(targets) if t.name in unmet
        )
        lines.append(f"Closest {noun} (largest relative violation {violations[best].max():.1%}): {desc}; misses "
                     f"{missed}.")
        message = " ".join(lines)
    if summarized and targets:
        parts = []
        if meeting_validation is not None:
            parts.append(f"{meeting_validation} of {n_draws} draws meet the targets on the {select_on} set")
        if meeting_test is not None and select_on != "test":
            parts.append(f"{meeting_test} of {n_draws} on the test set")
        if parts:
            message += " " + ", ".join(parts) + "."
            if met and meeting_validation is not None and meeting_validation < n_draws:
                message += (f" The {summarize} meets them, but only some draws do: a new draw of this recipe may "
                            "miss them.")
    test_errors = _error_statistics(draws, "test")
    if test_errors and select_on != "test":
        e, f = test_errors.get("energy_rmse"), test_errors.get("force_rmse")
        if e is not None and f is not None:
            message += (f" Test set (reported, not used to choose): energy {e['median']:.4g} meV/atom (spread "
                        f"{e['spread']:.2g}), force {f['median']:.4g} meV/Å (spread {f['spread']:.2g}).")

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
        validation_errors=_error_statistics(draws, "validation"),
        test_errors=test_errors,
        fit_job=_plain(draw["job_name"]) if "job_name" in draw.index else None,
        draw=draw,
        n_draws=n_draws,
        draws_meeting_validation=meeting_validation,
        draws_meeting_test=meeting_test,
        summarize=summarize if summarized else None,
        select_on=select_on,
    )
