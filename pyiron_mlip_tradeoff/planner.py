"""Plan before you spend: find the cheapest qSNAP recipe from a small pilot, then compute only that.

:class:`Planner` is the pyiron-free core of the ``RecipePlanner`` job. It asks for batches of DFT (:class:`Request`:
a stage, a precision level and positions in the candidate pool), is told their results (a ``LadderDataset``) and
decides the next batch from everything it was told, until it can recommend a recipe (training level, training
configurations, w_E/w_F, 2Jmax) that meets the targets on its validation set — or says why it cannot.

The plan, step by step (every choice is deterministic given the inputs and the results told so far, so a job that
replays its requests against finished children resumes exactly):

1. **Rank** the pool by block leverage (descriptors only, at the smallest 2Jmax tried; energy rows weighted by the
   study's 150) and draw one seeded leverage-proportional order (:func:`~pyiron_mlip_tradeoff.leverage.ranking`).
   Training sets are prefixes of this order, so they are nested and every configuration computed for a smaller set
   is reused by a larger one.
2. **Pilot** (stage ``"pilot"``): ``pilot_size`` configurations at every level, drawn uniformly (seeded) among the
   *cheap* ones (a-priori cost N_atoms · N_k^(1/3) at the reference level at most the pool's ``cheap_fraction``
   quantile). It gives each level's DFT error against the reference level (energy per atom, unshifted, and force
   components: the *floor* of a model trained at that level) and the
   :class:`~pyiron_mlip_tradeoff.cost_model.CostModel` (log-linear in atoms and k-points, shared exponents, one
   intercept per level). The pilot configurations are the core of the **validation set** (their reference-level
   calculations are reused); stage ``"validation"`` adds cheap configurations at the reference level only, up to
   ``validation_size`` (by default the validation set *is* the pilot: 6 configurations, no extra stage — on the
   bundled data the reference level costs about half of all six levels together, so every extra validation
   configuration is expensive, while the decision rests on cross-validation, below). Validation configurations are
   never trained on. They are drawn uniformly, not by leverage,
   because a validation set must represent the pool: leverage picks unusual configurations first, and such a
   validation set gave force errors far from the test set's on the bundled data.
3. **Learning curves** from nested subsets (prefixes) of the training data at the level being computed, every
   w_E/w_F and 2Jmax, errors against the reference level on the validation set, fitted with
   :func:`~pyiron_mlip_tradeoff.learning_curves.fit_learning_curve`: rmse(n)² = floor² + c² + a·n^(−b). The floor is
   the level's DFT error times the share of it a model trained there was measured to carry (κ, below); a curve
   measured at one level predicts another by swapping the floor. Only sizes with at least 1.5·p rows (p the number
   of qSNAP columns) enter, so a 2Jmax gets a curve once enough data exist. The fits are the package's statistics
   path (``regression.statistics_for_nested_subsets``, ``fit_weights``, ``errors_many`` on
   ``fitting.labelled_blocks``).
4. **Recommend**: for every level whose floor is below the targets and every (2Jmax, w_E/w_F) with curves, the
   smallest n whose upper prediction (``safety`` standard deviations of the curve fit above) meets both targets
   with the margin; its predicted cost is the cost model's seconds of the configurations not yet computed at that
   level. The cheapest wins.
5. **Execute**: the first training batch (stage ``"recipe"``, ``start_size`` configurations at the cheapest level
   whose floor is below the targets) measures the curves; then the recommended configurations at the recommended
   level (``"recipe"`` on a new level, ``"extend"`` on the same one; growth capped at doubling per step so a poor
   extrapolation cannot overspend). After every batch all recipes on the data at that level are fitted. The
   **estimate** of a recipe's error on new configurations is its ``cv_folds``-fold cross-validated error on the
   training data (many configurations, the rare hard ones included — a 12-configuration validation set alone misses
   them and was optimistic by up to 2–3× for young models; 10 folds, the default, train on 90 % of the set, so the
   estimate is less pessimistic than with 5 folds' 80 %, which on the bundled replay grew training sets by a
   further 10–25 % for nothing) plus, in quadrature, the increment the level's DFT error adds for
   this model (its pilot errors against the reference level minus against its own level; κ is that increment over
   the level's DFT error², median over recipes). The plan ends when a recipe's estimate times 1 + safety/√(2n)
   meets both targets and its validation errors are within 1 + safety/√(2m) above them (m values: configurations
   for energy, components/3 for forces), when the budget cannot pay the next batch, or when no level and size is
   predicted to reach the targets. Failed calculations are excluded (and logged), never requested again.

Units: errors in meV/atom (energy per atom, unshifted) and meV/Å (force components) against the reference level;
costs in the seconds the results record (CPU seconds where recorded, else wall seconds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from ase import Atoms

from .cost_model import CostModel, cost_features
from .dataset import LadderDataset
from .descriptors import compute_descriptors
from .fitting import check_weight, labelled_blocks
from .learning_curves import LearningCurve, fit_learning_curve
from .leverage import DEFAULT_LEVERAGE_ENERGY_WEIGHT, leverage_scores, ranking, repetition_rng
from .precision import PrecisionLevel
from .reference_level import most_precise_level
from .regression import errors_many, fit_weights, statistics_for_nested_subsets, statistics_from_blocks

__all__ = ["PlannerTargets", "Request", "RecipeChoice", "PlanReport", "Planner", "STAGES", "recipe_errors",
           "cross_validation_errors"]

#: request stages, in the order a plan goes through them
STAGES = ("pilot", "validation", "recipe", "extend")
#: the weight ratios w_E/w_F the planner tries by default (the study's, without the nearly-duplicate 12.25)
DEFAULT_ENERGY_WEIGHTS: tuple[float, ...] = (5.0, 10.0, 50.0, 150.0)
#: a-priori cost proxy before any DFT: N_atoms · N_k^(1/3) at the reference level (plane-wave DFT of small cells
#: grows about linearly with atoms and sub-linearly with k-points once the mesh is dense)
PROXY_KPOINT_EXPONENT = 1.0 / 3.0
#: rows per column a training size needs before it enters a learning curve
ROWS_PER_COLUMN = 1.5


def _positive(name: str, value, allow_none: bool = False) -> float | None:
    """``value`` as a positive finite float (``fitting.check_weight``), or None when allowed."""
    if value is None and allow_none:
        return None
    return check_weight(name, value)


def _count(name: str, value, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PlannerTargets:
    """What the potential must reach, against the reference level.

    Attributes:
        max_energy_rmse: energy RMSE per atom (unshifted), meV/atom.
        max_force_rmse: force-component RMSE, meV/Å.
        min_md_speed: optional lower bound on MD speed (atom-timesteps/s, as ``lammps.measure_md_speed`` and the
            ``md_speed`` column of grid tables); needs the planner's ``md_speeds`` per 2Jmax.
        max_twojmax: optional upper bound on 2Jmax.
    """

    max_energy_rmse: float
    max_force_rmse: float
    min_md_speed: float | None = None
    max_twojmax: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_energy_rmse", _positive("max_energy_rmse (meV/atom)", self.max_energy_rmse))
        object.__setattr__(self, "max_force_rmse", _positive("max_force_rmse (meV/Å)", self.max_force_rmse))
        object.__setattr__(self, "min_md_speed", _positive("min_md_speed (atom-timesteps/s)", self.min_md_speed,
                                                           allow_none=True))
        if self.max_twojmax is not None:
            object.__setattr__(self, "max_twojmax", _count("max_twojmax", self.max_twojmax, 1))


@dataclass(frozen=True)
class Request:
    """One batch of DFT the planner asks for: ``indices`` (positions in the candidate pool) at ``level``."""

    stage: str
    level: int
    indices: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"stage": self.stage, "level": self.level, "indices": list(self.indices)}


@dataclass(frozen=True)
class RecipeChoice:
    """A recipe: train at ``level`` on ``indices`` (pool positions) with w_E/w_F = ``energy_weight`` (w_F = 1) and
    ``twojmax``; with the learning curves' predicted errors (central and upper) and cost, and once fitted its
    validation errors and the estimated errors on new configurations (cross-validated plus the level increment;
    see the module docstring), all against the reference level in meV/atom and meV/Å."""

    level: int
    n_train: int
    energy_weight: float
    twojmax: int
    indices: tuple[int, ...] = ()
    predicted_energy_rmse: float = float("nan")
    predicted_energy_rmse_upper: float = float("nan")
    predicted_force_rmse: float = float("nan")
    predicted_force_rmse_upper: float = float("nan")
    predicted_cost: float = float("nan")
    validation_energy_rmse: float = float("nan")
    validation_force_rmse: float = float("nan")
    coefficients: np.ndarray | None = None
    estimated_energy_rmse: float = float("nan")
    estimated_force_rmse: float = float("nan")

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "coefficients"}
        out["indices"] = list(self.indices)
        return out


@dataclass
class PlanReport:
    """What the planner found and spent (see :meth:`Planner.report`).

    Attributes:
        finished: the plan asks for nothing more. targets_met: the recipe meets both targets within the margin on
            the validation set.
        recipe: the chosen recipe (achieved validation errors, coefficients), or None.
        first_recommendation: the recipe predicted from the first learning curves (before executing it).
        spent_seconds: DFT seconds per stage. total_seconds: their sum.
        whole_pool_reference_seconds: predicted (known where computed) seconds of the whole pool at the reference
            level; predicted_saving: that minus total_seconds.
        dft_errors: {level: (energy meV/atom, force meV/Å)} against the reference level on the pilot.
        cost_model: the fitted cost model. learning_curves: {(2Jmax, w_E/w_F): {"level", "energy", "force"}}.
        requests: every request with its outcome. messages: what happened, in words.
        test_energy_rmse, test_force_rmse: the recipe's errors on a test set given to :meth:`Planner.report`
            (meV/atom, meV/Å against the reference level; NaN without one).
    """

    finished: bool
    targets_met: bool
    recipe: RecipeChoice | None
    first_recommendation: RecipeChoice | None
    spent_seconds: dict[str, float]
    total_seconds: float
    whole_pool_reference_seconds: float
    predicted_saving: float
    dft_errors: dict[int, tuple[float, float]]
    cost_model: CostModel | None
    learning_curves: dict
    requests: list[dict]
    messages: list[str] = field(default_factory=list)
    validation_indices: tuple[int, ...] = ()
    reference_level: int = 0
    test_energy_rmse: float = float("nan")
    test_force_rmse: float = float("nan")


def recipe_errors(
    descriptors: Mapping[int, object],
    train: LadderDataset,
    train_rows: Sequence[int],
    level: int,
    validation: LadderDataset,
    validation_rows: Sequence[int],
    reference_level: int,
    energy_weights: Sequence[float],
    sizes: Mapping[int, Sequence[int]],
    validation_statistics: dict | None = None,
) -> dict[tuple[int, int, float], tuple[float, float, np.ndarray]]:
    """Validation errors of nested training prefixes for every 2Jmax and w_E/w_F (w_F = 1), by statistics.

    Args:
        descriptors: {2Jmax: descriptor set} over the candidate pool (``iter_blocks(rows)``).
        train: labels of the training configurations in fold order (at least ``level``); ``train_rows`` their
            positions in ``descriptors``.
        validation, validation_rows: the validation configurations (at least ``reference_level``).
        sizes: {2Jmax: increasing prefix sizes} to fit.
        validation_statistics: a dict caching the validation set's statistics per 2Jmax (filled when empty).

    Returns:
        {(2Jmax, n, w_E/w_F): (energy RMSE meV/atom, force RMSE meV/Å, coefficients)} against the reference level.
    """
    out = {}
    train_rows = np.asarray(train_rows, dtype=np.int64)
    validation_rows = np.asarray(validation_rows, dtype=np.int64)
    for tj, tj_sizes in sizes.items():
        if not len(tj_sizes):
            continue
        desc = descriptors[tj]
        cache = {} if validation_statistics is None else validation_statistics
        if tj not in cache:
            blocks = labelled_blocks(validation, desc, np.arange(validation.n_configs), validation_rows)
            cache[tj] = statistics_from_blocks(blocks, levels=tuple(validation.levels))
        vstats = cache[tj]
        tblocks = labelled_blocks(train, desc, np.arange(train.n_configs), train_rows)
        for n, stats in statistics_for_nested_subsets(tblocks, list(tj_sizes), levels=tuple(train.levels)):
            fits = fit_weights(stats, [(float(r), 1.0) for r in energy_weights])
            betas = np.column_stack([f[level].coefficients for f in fits])
            for r, beta, err in zip(energy_weights, betas.T, errors_many(vstats, betas), strict=True):
                e = err.for_level(reference_level)
                out[(int(tj), int(n), float(r))] = (e["energy_rmse"], e["force_rmse"], beta.copy())
    return out


def cross_validation_errors(
    descriptors: Mapping[int, object],
    train: LadderDataset,
    train_rows: Sequence[int],
    level: int,
    energy_weights: Sequence[float],
    twojmax_values: Sequence[int],
    folds: int = 10,
) -> dict[tuple[int, float], tuple[float, float]]:
    """K-fold cross-validation errors of the training set against its own level (no DFT beyond it).

    Configuration j of ``train`` (in its order) is in fold j mod K; each fold is predicted by the fit on the others
    (statistics merged, ``fit_weights``), and the squared errors are pooled over the folds (per configuration for
    energy, per component for forces).

    Returns:
        {(2Jmax, w_E/w_F): (energy RMSE meV/atom, force RMSE meV/Å)} against ``level``.
    """
    n = train.n_configs
    folds = min(int(folds), n)
    train_rows = np.asarray(train_rows, dtype=np.int64)
    out = {}
    for tj in twojmax_values:
        desc = descriptors[tj]
        parts = []
        for k in range(folds):
            pos = np.arange(k, n, folds)
            parts.append(statistics_from_blocks(labelled_blocks(train, desc, pos, train_rows[pos]),
                                                levels=tuple(train.levels)))
        sums = {r: [0.0, 0, 0.0, 0] for r in energy_weights}
        for k in range(folds):
            others = [parts[j] for j in range(folds) if j != k]
            stats = others[0].merge(*others[1:])
            fits = fit_weights(stats, [(float(r), 1.0) for r in energy_weights])
            betas = np.column_stack([f[level].coefficients for f in fits])
            for r, err in zip(energy_weights, errors_many(parts[k], betas), strict=True):
                e = err.for_level(level)
                acc = sums[r]
                acc[0] += e["energy_rmse"] ** 2 * err.n_configs
                acc[1] += err.n_configs
                acc[2] += e["force_rmse"] ** 2 * err.n_force_rows
                acc[3] += err.n_force_rows
        for r, (se, ne, sf, nf) in sums.items():
            out[(int(tj), float(r))] = (math.sqrt(se / ne), math.sqrt(sf / nf))
    return out


class Planner:
    """The planning core of ``RecipePlanner`` (see the module docstring for the plan).

    Args:
        pool: candidate structures (ASE ``Atoms``, periodic); no DFT yet.
        levels: the ladder, as ``PrecisionLevel`` objects or ``{label: PrecisionLevel}``; at least two levels.
        targets: :class:`PlannerTargets`.
        reference_level: the level errors are measured against (default: the most precise by its settings).
        budget_seconds: optional DFT budget (seconds of the unit the results record). A batch that the cost model
            says would overrun it is cut to what fits; the plan ends, saying so, when nothing fits. Before the pilot
            is done there is no cost model: without ``cost_prior`` the pilot is not priced (a budget below its
            cost stops the plan right after it).
        validation_size: validation configurations at the reference level (the pilot's included).
        pilot_size: configurations computed at every level (≥ 3).
        start_size: configurations of the first training batch.
        twojmax_values: 2Jmax values tried. energy_weights: w_E/w_F values tried (w_F = 1).
        seed: seed of the leverage-proportional order.
        md_speeds: {2Jmax: atom-timesteps/s} when ``targets.min_md_speed`` is given.
        safety: z of the margins (curve uncertainty and validation noise); 0 trusts the point estimates.
        cv_folds: folds of the cross-validated estimate (≥ 2; each fold's model trains on (K − 1)/K of the set).
        cheap_fraction: the pilot and validation configurations come from the cheapest this fraction of the pool
            (a-priori cost N_atoms × N_k at the reference level).
        cost_prior: a cost model from earlier calculations (``CostModel.from_dataset``); when given, a budget
            smaller than the pilot's predicted cost is refused before anything is computed.
        element, elements, descriptor_settings: the qSNAP model (as in ``fitting.fit_qsnap``).

    Raises:
        ValueError/TypeError: on any bad input, before anything is computed (see the tests for each case).
    """

    def __init__(
        self,
        pool: Sequence[Atoms],
        levels: Sequence[PrecisionLevel] | Mapping[int, PrecisionLevel],
        targets: PlannerTargets,
        *,
        reference_level: int | None = None,
        budget_seconds: float | None = None,
        validation_size: int = 6,
        pilot_size: int = 6,
        start_size: int = 30,
        twojmax_values: Sequence[int] = (4, 6),
        energy_weights: Sequence[float] = DEFAULT_ENERGY_WEIGHTS,
        seed: int = 0,
        md_speeds: Mapping[int, float] | None = None,
        safety: float = 1.0,
        cv_folds: int = 10,
        cheap_fraction: float = 0.5,
        cost_prior: CostModel | None = None,
        element: str = "Be",
        elements: Sequence[str] | None = None,
        descriptor_settings: Mapping | None = None,
    ) -> None:
        if not isinstance(targets, PlannerTargets):
            raise TypeError(f"targets must be PlannerTargets, got {type(targets).__name__}")
        self.targets = targets
        # the ladder
        items = list(levels.values()) if isinstance(levels, Mapping) else list(levels)
        if not all(isinstance(lv, PrecisionLevel) for lv in items):
            raise TypeError("levels must be PrecisionLevel objects (or a {label: PrecisionLevel} mapping)")
        labels = [lv.level for lv in items]
        if len(set(labels)) != len(labels):
            raise ValueError(f"duplicate precision level labels: {labels}")
        if len(items) < 2:
            raise ValueError(f"a ladder with {len(items)} level cannot be planned over: the planner needs at least "
                             "two precision levels (a cheaper one and the reference)")
        self.levels = {lv.level: lv for lv in items}
        ladder = SimpleNamespace(levels=tuple(labels), level_settings=self.levels)
        if reference_level is None:
            reference_level = most_precise_level(ladder)  # AmbiguousLadderError names the tie
        elif isinstance(reference_level, bool) or int(reference_level) not in self.levels:
            raise ValueError(f"reference_level {reference_level!r} is not a level of the ladder {labels}")
        self.reference_level = int(reference_level)
        # sizes and options
        self.pilot_size = _count("pilot_size", pilot_size, 3)
        self.validation_size = _count("validation_size", validation_size, 1)
        if self.validation_size < self.pilot_size:
            raise ValueError(f"validation_size ({validation_size}) must be at least pilot_size ({pilot_size}): the "
                             "pilot's configurations are the core of the validation set")
        self.start_size = _count("start_size", start_size, 2)
        self.seed = _count("seed", seed, 0)
        self.cv_folds = _count("cv_folds", cv_folds, 2)
        self.safety = float(safety)
        if not math.isfinite(self.safety) or self.safety < 0:
            raise ValueError(f"safety must be a finite number ≥ 0, got {safety!r}")
        self.cheap_fraction = _positive("cheap_fraction", cheap_fraction)
        if self.cheap_fraction > 1:
            raise ValueError(f"cheap_fraction must be in (0, 1], got {cheap_fraction!r}")
        self.budget_seconds = _positive("budget_seconds", budget_seconds, allow_none=True)
        self.energy_weights = tuple(_positive("energy weight ratio w_E/w_F", w) for w in energy_weights)
        if not self.energy_weights:
            raise ValueError("energy_weights is empty")
        tjs = []
        for tj in twojmax_values:
            if isinstance(tj, bool) or int(tj) != tj or tj < 2 or tj > 10 or int(tj) % 2:
                raise ValueError(f"twojmax values must be even integers in 2..10, got {tj!r}")
            tjs.append(int(tj))
        if not tjs or len(set(tjs)) != len(tjs):
            raise ValueError(f"twojmax_values must be distinct and not empty, got {list(twojmax_values)}")
        if targets.max_twojmax is not None:
            tjs = [tj for tj in tjs if tj <= targets.max_twojmax]
            if not tjs:
                raise ValueError(f"max_twojmax {targets.max_twojmax} excludes every 2Jmax tried "
                                 f"{list(twojmax_values)}")
        if targets.min_md_speed is not None:
            if not md_speeds:
                raise ValueError("targets.min_md_speed needs md_speeds {2Jmax: atom-timesteps/s} (measure them "
                                 "with lammps.measure_md_speed)")
            unknown = [tj for tj in tjs if tj not in md_speeds]
            if unknown:
                raise ValueError(f"md_speeds has no speed for 2Jmax {unknown}")
            tjs = [tj for tj in tjs if _positive(f"md_speeds[{tj}]", md_speeds[tj]) >= targets.min_md_speed]
            if not tjs:
                raise ValueError(f"no 2Jmax tried runs at min_md_speed {targets.min_md_speed:g} atom-timesteps/s "
                                 f"(md_speeds {dict(md_speeds)})")
        self.twojmax_values = tuple(sorted(tjs))
        # the pool
        self.pool = [s if isinstance(s, Atoms) else None for s in pool]
        for i, s in enumerate(self.pool):
            if s is None:
                raise TypeError(f"pool configuration {i} is not an ASE Atoms object")
            if len(s) == 0:
                raise ValueError(f"pool configuration {i} has no atoms")
            if not all(s.pbc) or abs(np.linalg.det(s.get_cell()[:])) < 1e-8:
                raise ValueError(f"pool configuration {i} is not a periodic cell with a volume")
        n = len(self.pool)
        if n < self.validation_size + self.start_size:
            raise ValueError(f"the pool has {n} configurations, fewer than the pilot/validation set "
                             f"({self.validation_size}, pilot {self.pilot_size} included) plus the first training "
                             f"batch ({self.start_size})")
        self._levels_by_cost = sorted(self.levels, key=self._precision_key)
        self.log_atoms, log_k = cost_features(self.pool, [self.levels[lv] for lv in self._levels_by_cost])
        self.log_k = {lv: log_k[j] for j, lv in enumerate(self._levels_by_cost)}
        self.n_atoms = np.array([len(s) for s in self.pool], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self.n_atoms)])
        # validation and pilot: leverage order among the a-priori cheap configurations
        proxy = self.log_atoms + PROXY_KPOINT_EXPONENT * self.log_k[self.reference_level]
        cheap = proxy <= np.quantile(proxy, self.cheap_fraction) + 1e-12
        self.cost_prior = cost_prior
        if cost_prior is not None and self.budget_seconds is not None:
            # the cheapest pilot the planner could choose, priced by the prior
            per_config = sum(cost_prior.predict(lv, self.log_atoms, self.log_k[lv]) for lv in self.levels)
            cheapest = float(np.sort(per_config)[: self.pilot_size].sum())
            if cheapest > self.budget_seconds:
                raise ValueError(f"budget_seconds {self.budget_seconds:g} is smaller than the cheapest possible pilot "
                                 f"({self.pilot_size} configurations at {len(self.levels)} levels: "
                                 f"{cheapest:.4g} s by the cost prior)")
        # descriptors (no DFT) and the leverage order
        self._elements = (element,) if elements is None else tuple(elements)
        self._descriptor_settings = dict(descriptor_settings or {})
        self._descriptors = {tj: compute_descriptors(self.pool, tj, elements=list(self._elements),
                                                     **self._descriptor_settings)
                             for tj in self.twojmax_values}
        # block leverage at the smallest 2Jmax tried: its p columns span the same physics and its QR is cheap
        low = min(self.twojmax_values)
        scores = leverage_scores(self._descriptors[low], "block", energy_weight=DEFAULT_LEVERAGE_ENERGY_WEIGHT).scores
        self.leverage = scores
        order = ranking(scores, "proportional", repetition_rng(self.seed, 0))
        # the validation set (pilot included) must represent the pool, so it is drawn uniformly (not by leverage,
        # which favours unusual configurations) among the a-priori cheap ones
        uniform = ranking(np.ones(n), "uniform", repetition_rng(self.seed, 1))
        validation = ([int(i) for i in uniform if cheap[i]] + [int(i) for i in uniform if not cheap[i]])
        validation = validation[: self.validation_size]
        self.validation_indices = tuple(validation)
        self.pilot_indices = tuple(validation[: self.pilot_size])
        chosen = set(validation)
        self.training_order = tuple(int(i) for i in order if int(i) not in chosen)
        # what was told
        n_levels = len(self.levels)
        self._row = {lv: j for j, lv in enumerate(self._levels_by_cost)}
        self._energy = np.full((n_levels, n), np.nan)
        self._forces = np.full((n_levels, int(self._offsets[-1]), 3), np.nan)
        self._done = np.zeros((n_levels, n), dtype=bool)
        self._failed = np.zeros((n_levels, n), dtype=bool)
        self._seconds = np.full((n_levels, n), np.nan)
        self._history: list[tuple[Request, dict]] = []
        self._pending: Request | None = None
        self._finished = False
        self._messages: list[str] = []
        self._recipe: RecipeChoice | None = None
        self._first_recommendation: RecipeChoice | None = None
        self._prediction: RecipeChoice | None = None
        self._curves: dict = {}
        self._cost_model: CostModel | None = None
        self._targets_met = False
        self._validation_cache: tuple = ((), {})
        self._cv_estimate = (float("nan"), float("nan"))
        self._kappa = (1.0, 1.0)

    # ----------------------------------------------------------------------------------------------------------
    # bookkeeping

    def _precision_key(self, label: int) -> tuple:
        lv = self.levels[label]
        return (0.0 if lv.kspacing is None else 1.0 / lv.kspacing, lv.cutoff)

    def _ok(self, level: int, indices) -> np.ndarray:
        return self._done[self._row[level], np.asarray(indices, dtype=np.int64)]

    def _untried(self, level: int, indices) -> list[int]:
        r = self._row[level]
        return [int(i) for i in indices if not (self._done[r, i] or self._failed[r, i])]

    @property
    def spent_seconds(self) -> dict[str, float]:
        """DFT seconds told so far, per stage."""
        out = dict.fromkeys(STAGES, 0.0)
        for request, outcome in self._history:
            out[request.stage] += outcome["seconds"]
        return out

    def _remaining_budget(self) -> float:
        if self.budget_seconds is None:
            return math.inf
        return self.budget_seconds - sum(self.spent_seconds.values())

    def _finish(self, message: str, met: bool = False) -> None:
        self._finished = True
        self._targets_met = met
        self._messages.append(message)

    # ----------------------------------------------------------------------------------------------------------
    # the protocol

    def next_request(self) -> Request | None:
        """The next batch of DFT to compute, or None when the plan is finished (same answer until :meth:`tell`)."""
        if self._pending is None and not self._finished:
            self._pending = self._next()
        return self._pending

    def tell(self, request: Request, results: LadderDataset) -> None:
        """Results of ``request``: a ``LadderDataset`` of exactly its configurations (in its order) with at least
        its level. Failed or missing calculations (or non-finite labels) are excluded and logged.

        Raises:
            ValueError: a request that is not the pending one, results of other configurations or without the
                level.
        """
        if self._pending is None or request != self._pending:
            raise ValueError(f"told results for {request!r}, but the planner is waiting for {self._pending!r}")
        if not isinstance(results, LadderDataset):
            raise TypeError(f"results must be a LadderDataset, got {type(results).__name__}")
        if request.level not in results.levels:
            raise ValueError(f"results have levels {list(results.levels)}, not the requested level {request.level}")
        if results.n_configs != len(request.indices):
            raise ValueError(f"results hold {results.n_configs} configurations, the request {len(request.indices)}")
        li = results.level_index(request.level)
        r = self._row[request.level]
        timings = results.core_seconds if results.core_seconds is not None else results.seconds
        offsets = results.atom_offsets
        seconds, failed = 0.0, []
        for j, i in enumerate(request.indices):
            s = results.structures[j]
            if len(s) != self.n_atoms[i] or not np.allclose(s.get_positions(), self.pool[i].get_positions(),
                                                            atol=1e-6):
                raise ValueError(f"result {j} is not pool configuration {i} (atoms or positions differ)")
            if timings is not None and np.isfinite(timings[li, j]):
                seconds += float(timings[li, j])
                self._seconds[r, i] = float(timings[li, j])
            forces = results.forces[li, offsets[j]:offsets[j + 1]]
            bad = (results.failed[li, j] or results.missing[li, j] or not np.isfinite(results.energy[li, j])
                   or not np.all(np.isfinite(forces)))
            if bad:
                self._failed[r, i] = True
                failed.append(int(i))
                continue
            self._energy[r, i] = results.energy[li, j]
            self._forces[r, self._offsets[i]:self._offsets[i + 1]] = forces
            self._done[r, i] = True
        if failed:
            self._messages.append(f"{request.stage} at level {request.level}: {len(failed)} calculation(s) failed "
                                  f"and are left out (pool configurations {failed})")
        self._history.append((request, {"seconds": seconds, "failed": failed}))
        self._pending = None

    # ----------------------------------------------------------------------------------------------------------
    # pilot, floors, cost model

    def _next(self) -> Request | None:
        for lv in self._levels_by_cost:
            todo = self._untried(lv, self.pilot_indices)
            if todo:
                return self._affordable(Request("pilot", lv, tuple(todo)))
        todo = self._untried(self.reference_level, self.validation_indices)
        if todo:
            self._fit_cost_model()
            return self._affordable(Request("validation", self.reference_level, tuple(todo)))
        self._fit_cost_model()
        return self._decide()

    def _affordable(self, request: Request, cut: bool = False) -> Request | None:
        """The request, or its longest affordable prefix (``cut``), or None (plan finished) within the budget."""
        left = self._remaining_budget()
        if math.isinf(left):
            return request
        costs = self._predicted_seconds(request.level, request.indices)
        if costs is None:  # no cost model yet (pilot): spend what is left
            return request if left > 0 else self._stop_for_budget(request, float("nan"))
        total = np.cumsum(costs)
        if total[-1] <= left:
            return request
        k = int(np.searchsorted(total, left, side="right"))
        if cut and k > 0:
            self._messages.append(f"budget: the {request.stage} batch at level {request.level} is cut from "
                                  f"{len(request.indices)} to {k} configurations ({left:.4g} s left)")
            return Request(request.stage, request.level, request.indices[:k])
        return self._stop_for_budget(request, float(total[-1]))

    def _stop_for_budget(self, request: Request, cost: float) -> None:
        self._finish(f"the budget cannot pay the next batch ({request.stage}, {len(request.indices)} configurations "
                     f"at level {request.level}, predicted {cost:.4g} s) with {self._remaining_budget():.4g} s "
                     "left: the plan stops here")
        return None

    def _fit_cost_model(self) -> None:
        ok = self._done | self._failed
        ok &= np.isfinite(self._seconds) & (np.nan_to_num(self._seconds) > 0)
        rows, cols = np.nonzero(ok)
        if rows.size == 0:
            return
        labels = np.array(self._levels_by_cost)[rows]
        log_k = np.array([self.log_k[self._levels_by_cost[r]][c] for r, c in zip(rows, cols, strict=True)])
        self._cost_model = CostModel.fit(self._levels_by_cost, labels, self.log_atoms[cols], log_k,
                                         self._seconds[rows, cols])

    def _predicted_seconds(self, level: int, indices) -> np.ndarray | None:
        """Seconds of ``indices`` at ``level``: recorded where computed, else the cost model's (None without)."""
        idx = np.asarray(indices, dtype=np.int64)
        known = self._seconds[self._row[level], idx]
        if np.all(np.isfinite(known)):
            return known
        model = self._cost_model or self.cost_prior
        if model is None:
            return None
        predicted = model.predict(level, self.log_atoms[idx], self.log_k[level][idx])
        return np.where(np.isfinite(known), known, predicted)

    def dft_errors(self) -> dict[int, tuple[float, float]]:
        """{level: (energy RMSE meV/atom, force RMSE meV/Å)} against the reference level, on the configurations
        computed at both (the pilot)."""
        ref = self._row[self.reference_level]
        out = {}
        for lv in self._levels_by_cost:
            r = self._row[lv]
            both = np.flatnonzero(self._done[r] & self._done[ref])
            if both.size == 0:
                continue
            de = (self._energy[r, both] - self._energy[ref, both]) / self.n_atoms[both] * 1000.0
            atoms = np.concatenate([np.arange(self._offsets[i], self._offsets[i + 1]) for i in both])
            df = (self._forces[r, atoms] - self._forces[ref, atoms]) * 1000.0
            out[lv] = (float(np.sqrt(np.mean(de**2))), float(np.sqrt(np.mean(df**2))))
        return out

    # ----------------------------------------------------------------------------------------------------------
    # fits and curves

    def _known(self, indices: Sequence[int], level: int) -> LadderDataset:
        idx = np.asarray(indices, dtype=np.int64)
        r = self._row[level]
        atoms = np.concatenate([np.arange(self._offsets[i], self._offsets[i + 1]) for i in idx])
        return LadderDataset([self.pool[i] for i in idx], self._energy[r, idx][None, :],
                             self._forces[r, atoms][None, :, :], levels=[self.levels[level]])

    def computed_dataset(self, wanted: Mapping[int, Sequence[int]]) -> tuple[LadderDataset, dict[int, int]]:
        """The calculations told so far that ``wanted`` ({level: pool indices}) asks for, as one ``LadderDataset``.

        Configurations in pool order, levels as wanted; a configuration not computed at a level is ``missing``
        there, a failed one ``failed``; seconds as told (CPU seconds where recorded). Also returns {pool index:
        its position in the dataset, -1 if absent}.
        """
        levels = sorted(int(lv) for lv in wanted)
        rows = [self._row[lv] for lv in levels]
        told = self._done | self._failed
        configs = sorted({int(i) for lv, r in zip(levels, rows, strict=True) for i in wanted[lv] if told[r, i]})
        idx = np.asarray(configs, dtype=np.int64)
        atoms = np.concatenate([np.arange(self._offsets[i], self._offsets[i + 1]) for i in idx] or [[]]).astype(int)
        position = dict.fromkeys(range(len(self.pool)), -1)
        position.update({i: k for k, i in enumerate(configs)})
        dataset = LadderDataset(
            [self.pool[i] for i in idx], self._energy[np.ix_(rows, idx)], self._forces[rows][:, atoms],
            levels=[self.levels[lv] for lv in levels], seconds=self._seconds[np.ix_(rows, idx)],
            failed=self._failed[np.ix_(rows, idx)], missing=~told[np.ix_(rows, idx)],
        )
        return dataset, position

    def _training_set(self, level: int) -> list[int]:
        r = self._row[level]
        return [i for i in self.training_order if self._done[r, i]]

    def _validation_set(self) -> list[int]:
        r = self._row[self.reference_level]
        return [i for i in self.validation_indices if self._done[r, i]]

    def _curve_sizes(self, train: Sequence[int]) -> dict[int, list[int]]:
        n = len(train)
        rows = 1.0 + 3.0 * float(np.mean(self.n_atoms[list(train)])) if n else 1.0
        sizes = {}
        for tj in self.twojmax_values:
            p = self._descriptors[tj].n_columns
            n_min = int(math.ceil(ROWS_PER_COLUMN * p / rows))
            if n >= max(n_min, 4) and n >= 1.4 * n_min:
                grid = np.unique(np.round(np.geomspace(n_min, n, 6)).astype(int))
                sizes[tj] = [int(s) for s in grid]
            else:
                sizes[tj] = [n]  # only the full set: achieved errors, no curve yet
        return sizes

    def _evaluate(self, level: int, train: Sequence[int]) -> dict:
        validation = self._validation_set()
        key = tuple(validation)
        if self._validation_cache[0] != key:
            self._validation_cache = (key, {})
        return recipe_errors(self._descriptors, self._known(train, level), train, level,
                             self._known(validation, self.reference_level), validation, self.reference_level,
                             self.energy_weights, self._curve_sizes(train), self._validation_cache[1])

    def _margins(self) -> tuple[float, float]:
        n_val = max(len(self._validation_set()), 1)
        n_force = max(3 * int(self.n_atoms[list(self._validation_set())].sum()) if self._validation_set() else 1, 1)
        # an RMSE over m independent values has a relative standard error of about 1/sqrt(2m)
        return 1.0 + self.safety / math.sqrt(2.0 * n_val), 1.0 + self.safety / math.sqrt(2.0 * n_force / 3.0)

    # ----------------------------------------------------------------------------------------------------------
    # decisions

    def _decide(self) -> Request | None:
        t = self.targets
        floors = self.dft_errors()
        m_e, m_f = self._margins()
        goal_e, goal_f = t.max_energy_rmse / m_e, t.max_force_rmse / m_f
        feasible = [lv for lv in self._levels_by_cost if lv in floors and floors[lv][0] < goal_e
                    and floors[lv][1] < goal_f]
        if not feasible:
            desc = ", ".join(f"L{lv} {e:.3g}/{f:.3g}" for lv, (e, f) in floors.items())
            self._finish(f"no level's DFT error against the reference level is below the targets with the "
                         f"validation margin ({goal_e:.3g} meV/atom, {goal_f:.3g} meV/Å): {desc}")
            return None
        work = [req for req, _ in self._history if req.stage in ("recipe", "extend")]
        if not work:
            level = feasible[0]
            indices = self._untried(level, self.training_order[: self.start_size])
            return self._affordable(Request("recipe", level, tuple(indices)), cut=True)
        current = work[-1].level
        train = self._training_set(current)
        if len(train) < 2:
            self._finish(f"fewer than two training configurations succeeded at level {current}")
            return None
        results = self._evaluate(current, train)
        n = len(train)
        cv = cross_validation_errors(self._descriptors, self._known(train, current), train, current,
                                     self.energy_weights, self.twojmax_values, self.cv_folds)
        increments = self._level_increments(current, {(tj, r): v[2] for (tj, size, r), v in results.items()
                                                      if size == n})
        # how much of the level's DFT error a model trained there really carries (the model averages part of the
        # level's scatter away): measured on the pilot, used to carry curves to the other levels
        fe, ff = floors[current]
        kappa = (float(np.clip(np.median([v[0] for v in increments.values()]) / fe**2, 0.0, 1.0)) if fe > 0 else 1.0,
                 float(np.clip(np.median([v[1] for v in increments.values()]) / ff**2, 0.0, 1.0)) if ff > 0 else 1.0)
        self._kappa = kappa
        m_cv = 1.0 + self.safety / math.sqrt(2.0 * n)
        best = None
        for (tj, size, ratio), (e, f, beta) in results.items():
            if size != n:
                continue
            # the estimate of the error on new configurations: the cross-validated error on the training data
            # (many configurations, the rare hard ones included) plus, in quadrature, the increment the level's
            # DFT error adds for this model (its pilot errors against the reference level minus against its own
            # level); the small validation set at the reference level must agree within its noise
            ie, if_ = increments[(tj, ratio)]
            ce, cf = math.sqrt(cv[(tj, ratio)][0] ** 2 + ie), math.sqrt(cv[(tj, ratio)][1] ** 2 + if_)
            score = max(ce * m_cv / t.max_energy_rmse, cf * m_cv / t.max_force_rmse,
                        e / (t.max_energy_rmse * m_e), f / (t.max_force_rmse * m_f))
            if best is None or score < best[0] - 1e-12:
                best = (score, tj, ratio, e, f, beta, ce, cf)
        score, tj, ratio, e, f, beta, ce, cf = best
        self._recipe = RecipeChoice(current, n, ratio, tj, tuple(train), validation_energy_rmse=e,
                                    validation_force_rmse=f, coefficients=beta, estimated_energy_rmse=ce,
                                    estimated_force_rmse=cf,
                                    **self._predicted_fields(current, n, tj, ratio))
        self._cv_estimate = (ce, cf)
        if score <= 1.0:
            self._finish(f"recipe found: level {current}, {n} training configurations, w_E/w_F {ratio:g}, 2Jmax {tj}: "
                         f"estimated errors {ce:.4g} meV/atom and {cf:.4g} meV/Å (cross-validated, with the level's "
                         f"DFT error) and validation errors {e:.4g} and {f:.4g} meet the targets "
                         f"({t.max_energy_rmse:g}, {t.max_force_rmse:g}) within the margins", met=True)
            return None
        goal_e, goal_f = t.max_energy_rmse / m_cv, t.max_force_rmse / m_cv
        eff = {lv: (floors[lv][0] * math.sqrt(kappa[0]), floors[lv][1] * math.sqrt(kappa[1])) for lv in floors}
        # learning curves at the current level, carried to every feasible level by its (effective) floor
        self._curves = {}
        for tj_ in self.twojmax_values:
            for r in self.energy_weights:
                pts = sorted((s, v) for (a, s, b), v in results.items() if a == tj_ and b == r)
                if len(pts) < 3:
                    continue
                sizes = [s for s, _ in pts]
                try:
                    ce = fit_learning_curve(sizes, [v[0] for _, v in pts], eff[current][0])
                    cf = fit_learning_curve(sizes, [v[1] for _, v in pts], eff[current][1])
                except ValueError:
                    continue
                self._curves[(tj_, r)] = {"level": current, "energy": ce, "force": cf}
        n_max = len(self.training_order)
        options = []
        for lv in feasible:
            for (tj_, r), c in self._curves.items():
                ce, cf = c["energy"].at_floor(eff[lv][0]), c["force"].at_floor(eff[lv][1])
                need = max(ce.size_needed(goal_e, self.safety), cf.size_needed(goal_f, self.safety))
                if not math.isfinite(need) or need > n_max:
                    continue
                size = max(int(math.ceil(need)), 2)
                todo = self._untried(lv, self.training_order[:size])
                cost = float(np.sum(self._predicted_seconds(lv, todo))) if todo else 0.0
                options.append((cost, self._levels_by_cost.index(lv), tj_, r, lv, size, ce, cf))
        if options:
            cost, _, tj_, r, lv, size, ce, cf = min(options, key=lambda o: o[:4])
            self._prediction = RecipeChoice(
                lv, size, r, tj_, predicted_energy_rmse=float(ce.predict(size)),
                predicted_energy_rmse_upper=float(ce.predict(size, self.safety)),
                predicted_force_rmse=float(cf.predict(size)),
                predicted_force_rmse_upper=float(cf.predict(size, self.safety)), predicted_cost=cost)
            if self._first_recommendation is None:
                self._first_recommendation = self._prediction
            if lv == current:
                size = min(max(size, n + max(2, n // 4)), 2 * n)
                stage = "extend"
            else:
                stage = "recipe"
        else:
            # no curve reaches the targets yet: more data at the current level, unless it is exhausted
            missing = [tj_ for tj_ in self.twojmax_values if not any(k[0] == tj_ for k in self._curves)]
            if n < n_max and (missing or n < 4 * self.start_size):
                lv, size, stage = current, min(2 * n, n_max), "extend"
                self._messages.append(f"no learning curve at level {current} reaches the targets with {n} "
                                      f"configurations (curves for 2Jmax {missing} need more data): doubling")
            else:
                why = ("the learning curves predict no level and training size of this pool that meets both"
                       if self._curves else "the pool is used up and too small for a learning curve (each 2Jmax "
                       f"needs about {ROWS_PER_COLUMN:g} rows per qSNAP column)")
                self._finish(f"the targets cannot be reached: at level {current} with {n} configurations the best "
                             f"validation errors are {e:.4g} meV/atom and {f:.4g} meV/Å, and {why}")
                return None
        indices = self._untried(lv, self.training_order[: min(size, n_max)])
        if not indices:
            self._finish(f"nothing left to compute at level {lv}: the targets are not met")
            return None
        return self._affordable(Request(stage, lv, tuple(indices)), cut=True)

    def _level_increments(self, level: int, betas: Mapping[tuple, np.ndarray]) -> dict[tuple, tuple[float, float]]:
        """{key: (ΔE², ΔF²)}: how much larger each model's squared errors are against the reference level than
        against its training level, on the pilot configurations computed at both (0 at the reference level)."""
        ref = self.reference_level
        both = [i for i in self.pilot_indices if self._done[self._row[level], i] and self._done[self._row[ref], i]]
        if level == ref or len(both) < 2:
            floors = self.dft_errors().get(level, (0.0, 0.0)) if level != ref else (0.0, 0.0)
            return {k: (floors[0] ** 2, floors[1] ** 2) for k in betas}
        idx = np.asarray(both, dtype=np.int64)
        atoms = np.concatenate([np.arange(self._offsets[i], self._offsets[i + 1]) for i in idx])
        r, rr = self._row[level], self._row[ref]
        data = LadderDataset([self.pool[i] for i in idx], np.stack([self._energy[r, idx], self._energy[rr, idx]]),
                             np.stack([self._forces[r, atoms], self._forces[rr, atoms]]),
                             levels=[self.levels[level], self.levels[ref]])
        out = {}
        by_tj: dict[int, list] = {}
        for key in betas:
            by_tj.setdefault(key[0], []).append(key)
        for tj, keys in by_tj.items():
            stats = statistics_from_blocks(labelled_blocks(data, self._descriptors[tj], np.arange(idx.size), idx),
                                           levels=(level, ref))
            for key, err in zip(keys, errors_many(stats, np.column_stack([betas[k] for k in keys])), strict=True):
                own, against_ref = err.for_level(level), err.for_level(ref)
                out[key] = (max(against_ref["energy_rmse"] ** 2 - own["energy_rmse"] ** 2, 0.0),
                            max(against_ref["force_rmse"] ** 2 - own["force_rmse"] ** 2, 0.0))
        return out

    def _predicted_fields(self, level: int, n: int, tj: int, ratio: float) -> dict:
        p = self._prediction
        if p is None or (p.level, p.twojmax, p.energy_weight) != (level, tj, ratio):
            return {}
        return {k: getattr(p, k) for k in ("predicted_energy_rmse", "predicted_energy_rmse_upper",
                                            "predicted_force_rmse", "predicted_force_rmse_upper", "predicted_cost")}

    # ----------------------------------------------------------------------------------------------------------
    # report

    def report(self, test: LadderDataset | None = None) -> PlanReport:
        """What the planner recommends, predicted and achieved, and what it spent (see :class:`PlanReport`).

        Args:
            test: optional held-out configurations with results at the reference level (never shown to the plan):
                the recipe's coefficients are judged on them.
        """
        spent = self.spent_seconds
        total = float(sum(spent.values()))
        whole = float("nan")
        costs = self._predicted_seconds(self.reference_level, np.arange(len(self.pool)))
        if costs is not None:
            whole = float(np.sum(costs))
        curves = {}
        for key, c in self._curves.items():
            curves[key] = {"level": c["level"], "energy": c["energy"].to_dict(), "force": c["force"].to_dict()}
        test_e = test_f = float("nan")
        if test is not None and self._recipe is not None and self._recipe.coefficients is not None:
            test_e, test_f = self._test_errors(test)
        return PlanReport(
            test_energy_rmse=test_e, test_force_rmse=test_f,
            finished=self._finished, targets_met=self._targets_met, recipe=self._recipe,
            first_recommendation=self._first_recommendation, spent_seconds=spent, total_seconds=total,
            whole_pool_reference_seconds=whole, predicted_saving=whole - total, dft_errors=self.dft_errors(),
            cost_model=self._cost_model, learning_curves=curves,
            requests=[{**req.to_dict(), "n": len(req.indices), **out} for req, out in self._history],
            messages=list(self._messages), validation_indices=self.validation_indices,
            reference_level=self.reference_level,
        )

    def _test_errors(self, test: LadderDataset) -> tuple[float, float]:
        if self.reference_level not in test.levels:
            raise ValueError(f"the test set has levels {list(test.levels)}, not the reference level "
                             f"{self.reference_level}")
        data = test.select_levels([self.reference_level]).drop_incomplete()
        if data.n_configs == 0:
            raise ValueError("the test set has no successful calculation at the reference level")
        kw = {"elements": list(self._elements)}
        desc = compute_descriptors(data.structures, self._recipe.twojmax, **kw, **self._descriptor_settings)
        stats = statistics_from_blocks(labelled_blocks(data, desc, np.arange(data.n_configs)),
                                       levels=(self.reference_level,))
        err = errors_many(stats, np.asarray(self._recipe.coefficients)[:, None])[0].for_level(self.reference_level)
        return err["energy_rmse"], err["force_rmse"]

    def learning_curve(self, twojmax: int, energy_weight: float) -> dict[str, LearningCurve] | None:
        """The last fitted curves of one (2Jmax, w_E/w_F): {"level", "energy", "force"}, or None."""
        return self._curves.get((int(twojmax), float(energy_weight)))
