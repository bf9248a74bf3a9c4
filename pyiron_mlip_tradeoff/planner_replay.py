"""Replay the planner on really computed DFT: a ``LadderDataset`` serves each request as if it had just been computed.

Nothing is faked: every energy, force and CPU second the planner sees was computed (the bundled Be ladder, 410
configurations × 6 levels); only the order and the choice of what to "compute" are the planner's. The dataset's
three-way split (:func:`~pyiron_mlip_tradeoff.fitting.dataset_split`) keeps its **test** set out of the planner's
candidate pool (training pool ∪ validation set of the split), and the recipes are judged on that test set at the
reference level.

* :class:`ReplayEngine` — serves a :class:`~pyiron_mlip_tradeoff.planner.Request` and counts the recorded seconds.
* :func:`run_plan` — a planner run to the end against an engine.
* :func:`grid_table` / :func:`true_cheapest` — the full trade-off grid on the same data and the cheapest recipe that
  meets the targets on the held-out test set (median over draws, ``pareto.recommend``): the "true answer" (or, on
  request, the grid's own choice on its validation set).
* :func:`grow_until_met` — the naive strategies: one fixed level (and weights), leverage subsets doubling until the
  validation errors meet the targets.
* :func:`recipe_test_errors` — a recipe refitted (``fitting.fit_qsnap``) and judged on the held-out test set.

Nothing here imports pyiron.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .dataset import LadderDataset
from .fitting import DEFAULT_WEIGHT_RATIOS, dataset_descriptors, dataset_split, fit_qsnap, plan_grid, run_grid
from .pareto import recommend
from .planner import Planner, PlannerTargets, Request, recipe_errors

__all__ = ["ReplayEngine", "replay_sets", "run_plan", "grid_table", "true_cheapest", "grow_until_met",
           "recipe_test_errors", "NaiveResult"]


def _timings(dataset: LadderDataset) -> np.ndarray:
    t = dataset.core_seconds if dataset.core_seconds is not None else dataset.seconds
    if t is None:
        raise ValueError("the dataset records no seconds: a replay counts recorded seconds")
    return t


@dataclass
class ReplayEngine:
    """Serves requests from ``dataset``; ``candidates[k]`` is the dataset index of pool position k.

    Attributes:
        spent: recorded seconds served so far (CPU seconds where recorded). served: (level, dataset index) pairs.
    """

    dataset: LadderDataset
    candidates: np.ndarray
    spent: float = 0.0
    served: list = field(default_factory=list)

    def __call__(self, request: Request) -> LadderDataset:
        idx = np.asarray(self.candidates, dtype=np.int64)[list(request.indices)]
        out = self.dataset.subset(idx).select_levels([request.level])
        self.spent += float(np.sum(_timings(self.dataset)[self.dataset.level_index(request.level), idx]))
        self.served.extend((request.level, int(i)) for i in idx)
        return out


def replay_sets(dataset: LadderDataset, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(candidates, test, grid_pool, grid_validation)``: the planner's candidate pool is the split's training
    pool plus its validation set (dataset indices, sorted); the test set is held out."""
    pool, validation, test = dataset_split(dataset, seed)
    return np.sort(np.concatenate([pool, validation])), test, pool, validation


def run_plan(dataset: LadderDataset, candidates: Sequence[int], targets: PlannerTargets,
             **planner_options) -> tuple[Planner, ReplayEngine]:
    """A :class:`Planner` over ``dataset.structures[candidates]`` with the dataset's ladder, run to the end."""
    candidates = np.asarray(candidates, dtype=np.int64)
    planner = Planner([dataset.structures[i] for i in candidates], dataset.level_settings, targets,
                      **planner_options)
    engine = ReplayEngine(dataset, candidates)
    while (request := planner.next_request()) is not None:
        planner.tell(request, engine(request))
    return planner, engine


def grid_table(dataset: LadderDataset, subset_sizes: Sequence[int], twojmax: Sequence[int] = (4, 6),
               weight_ratios: Sequence[float] = DEFAULT_WEIGHT_RATIOS, repetitions: int = 5, seed: int = 0,
               descriptors: Mapping[int, object] | None = None) -> pd.DataFrame:
    """The full grid (every level, block-leverage draws, default split with ``seed``) as a table."""
    spec = plan_grid(dataset, list(subset_sizes), twojmax=list(twojmax), weight_ratios=list(weight_ratios),
                     sampling=["block"], repetitions=repetitions, seed=seed, split_seed=seed)
    return pd.DataFrame([p.row() for p in run_grid(dataset, spec, descriptors=descriptors)])


def true_cheapest(table: pd.DataFrame, targets: PlannerTargets, judged_on: str = "test"):
    """The grid's cheapest recipe meeting the targets (median over its draws): a
    :class:`~pyiron_mlip_tradeoff.pareto.Recommendation` whose ``cost`` is its training set's DFT seconds.

    ``judged_on="test"`` (default): on the held-out test set — the set the planner's recipes are judged on, so this
    is the cheapest recipe that really meets the targets there (an oracle: no user can choose on the test set).
    ``judged_on="validation"``: what the grid itself would recommend (``pareto.recommend`` on its validation set);
    on the bundled replay those recipes miss their targets on the test set.
    """
    return recommend(table, targets.max_energy_rmse, targets.max_force_rmse, max_twojmax=targets.max_twojmax,
                     select_on=judged_on)


@dataclass
class NaiveResult:
    """A naive strategy's outcome: the recipe it stopped at and the seconds it spent (validation + training)."""

    level: int
    n_train: int
    energy_weight: float
    twojmax: int
    indices: tuple[int, ...]
    validation_energy_rmse: float
    validation_force_rmse: float
    met: bool
    spent: float


def grow_until_met(dataset: LadderDataset, candidates: Sequence[int], planner: Planner, targets: PlannerTargets,
                   level: int, energy_weights: Sequence[float], start_size: int = 30,
                   test: Sequence[int] | None = None,
                   descriptors: Mapping[int, object] | None = None) -> NaiveResult:
    """Naive strategy: train at one ``level`` on the planner's leverage order, doubling the training set until a
    recipe (any 2Jmax of the planner, any of ``energy_weights``, the best on the planner's validation set, computed
    at the reference level) meets the targets with no margin. Spend: the validation set at the reference level +
    the training set at ``level``.

    ``test`` (dataset indices): stop instead when the recipe chosen on the validation set meets the targets on this
    held-out set (an oracle stop: what the strategy must spend to deliver a recipe that really meets them).
    ``met`` then says whether it did; ``validation_*`` stay the validation errors. ``descriptors``: {2Jmax:
    descriptors of the whole dataset} for the test-set refits (computed when not given)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    ref = planner.reference_level
    timings = _timings(dataset)
    validation = list(planner.validation_indices)
    val = dataset.subset(candidates[validation]).select_levels([ref])
    spent_val = float(np.sum(timings[dataset.level_index(ref), candidates[validation]]))
    order = list(planner.training_order)
    n = min(start_size, len(order))
    if test is not None and descriptors is None:
        descriptors = {tj: dataset_descriptors(dataset, tj) for tj in planner.twojmax_values}
    while True:
        train = order[:n]
        tr = dataset.subset(candidates[train]).select_levels([level])
        res = recipe_errors(planner._descriptors, tr, train, level, val, validation, ref, list(energy_weights),
                            {tj: [n] for tj in planner.twojmax_values})
        best = min(res.items(), key=lambda kv: max(kv[1][0] / targets.max_energy_rmse,
                                                   kv[1][1] / targets.max_force_rmse))
        (tj, _, ratio), (e, f, _) = best
        met = e <= targets.max_energy_rmse and f <= targets.max_force_rmse
        if test is not None:
            te, tf = recipe_test_errors(dataset, candidates, train, level, ratio, tj, test, ref, descriptors)
            met = te <= targets.max_energy_rmse and tf <= targets.max_force_rmse
        if met or n >= len(order):
            spent = spent_val + float(np.sum(timings[dataset.level_index(level), candidates[train]]))
            return NaiveResult(level, n, ratio, tj, tuple(train), e, f, met, spent)
        n = min(2 * n, len(order))


def recipe_test_errors(dataset: LadderDataset, candidates: Sequence[int], indices: Sequence[int], level: int,
                energy_weight: float, twojmax: int, test: Sequence[int], reference_level: int,
                descriptors: Mapping[int, object] | None = None) -> tuple[float, float]:
    """(energy meV/atom, force meV/Å) on the test set against the reference level of the recipe refitted with
    ``fitting.fit_qsnap`` on ``candidates[indices]``."""
    candidates = np.asarray(candidates, dtype=np.int64)
    desc = None if descriptors is None else descriptors.get(int(twojmax))
    if desc is None:
        desc = dataset_descriptors(dataset, int(twojmax))
    result = fit_qsnap(dataset, candidates[list(indices)], level, float(energy_weight), 1.0, int(twojmax),
                       test_indices=test, reference_level=reference_level, descriptors=desc)
    err = result.error("test")
    return err["energy_rmse"], err["force_rmse"]
