"""qSNAP fits of a :class:`~pyiron_mlip_tradeoff.dataset.LadderDataset`: one fit, and the whole trade-off grid.

This module joins three pieces: the DFT labels of a ``LadderDataset`` (energies in eV per configuration, forces in
eV/Å, wall seconds per calculation), the qSNAP descriptor rows of :mod:`~pyiron_mlip_tradeoff.descriptors` (energy rows
already per atom) and the sufficient-statistics least squares of :mod:`~pyiron_mlip_tradeoff.regression`.

* :func:`fit_qsnap` — one weighted fit on chosen training configurations, with train and test errors against every
  level of the dataset (a :class:`FitResult`).
* :func:`run_grid` — the full factorial (training level × subset size × weight ratio × 2Jmax × sampling ×
  repetition). Descriptors are computed once per 2Jmax, the validation- and test-set statistics once per 2Jmax,
  the statistics of all nested subsets of a draw in ONE streamed pass over its largest subset (snapshots of one
  accumulator at every subset size, :func:`draw_statistics`), and every (level × weight) fit comes from those
  statistics: one least-squares solve per weight serves all training levels (back-substitution on the combined
  triangular factor when nothing would be dropped, else an SVD solve; ``regression._fit_pairs``), a small
  subset's factorisation is shared by all weights (``regression.fit_weights``), and the errors of all fits of one
  weight come from one matrix product per set. No dense matrix is ever formed.
  It yields one :class:`GridPoint` per grid point.

Every system FitSNAP fits: a model has ``elements`` (``element="Be"`` is the one-element shorthand); the labels lose
per-element reference energies (FitSNAP's −``[ESHIFT]``) and a reference potential's energy, forces and stress
(FitSNAP ``[REFERENCE]``, computed once per configuration by LAMMPS, :func:`target_offsets`) before fitting; stress
rows enter with a weight w_V (default 0: none, and every result is the energy + force fit of before, bit for bit);
each configuration's group (``dataset.groups``) may carry multipliers (g_E, g_F, g_V) of (w_E, w_F, w_V)
(FitSNAP ``[GROUPS]``), and errors come per group and for all configurations (``group == "*ALL"``). Fitted this way
through ``QSnapFit``, FitSNAP's InP example gives FitSNAP's published coefficients and RMSEs
(``benchmarks/inp_fit.py``, ``tests/test_inp_fit.py``).

Conventions: energies are fitted per atom (E_m / N_m, eV/atom); errors are reported in meV/atom (energy,
unshifted and shifted by the set's mean per-atom residual), meV/Å (force components) and GPa (stress components,
Voigt, in each cell's LAMMPS frame as FitSNAP has them). The errors quoted in
tables are against the *reference level*, the stand-in for converged DFT: an explicit ``reference_level``, by default
the dataset's most precise level by its DFT settings (:mod:`~pyiron_mlip_tradeoff.reference_level`).

Three sets of configurations (:func:`split_configurations`, :func:`dataset_split`): the *training pool* that
training subsets are drawn from, a *validation* set on which recipes are compared and chosen, and a *test* set used
only to report the chosen recipe's error. The default is a seeded 50/25/25 split by configuration whose training
pool is exactly the training half of the earlier 50/50 split (the same seed gives the same pool and draws).

Nothing in this module imports pyiron.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .dataset import LadderDataset
from .descriptors import (
    DescriptorSet,
    DescriptorStore,
    compute_descriptors,
    lammps_frame,
    resolve_elements,
    resolve_settings,
)
from .leverage import (
    DEFAULT_LEVERAGE_ENERGY_WEIGHT,
    check_ridge,
    check_sketch_columns,
    leverage_scores,
    ranking,
    repetition_rng,
)
from .reference import check_reference, reference_contributions
from .reference_level import resolve_reference_level
from .regression import (
    ALL_GROUPS,
    ConfigurationBlock,
    FitErrors,
    GroupedStatistics,
    LinearStatistics,
    errors,
    errors_many,
    fit,
    fit_weights,
    grouped_statistics,
    grouped_statistics_for_nested_subsets,
    statistics_for_nested_subsets,
    statistics_from_blocks,
)

__all__ = [
    "DEFAULT_WEIGHT_RATIOS",
    "DEFAULT_SPLIT",
    "SAMPLING_METHODS",
    "ERROR_COLUMNS",
    "TABLE_COLUMNS",
    "FitResult",
    "GridSpec",
    "GridPoint",
    "default_split",
    "complete_split",
    "split_configurations",
    "dataset_split",
    "resolve_split",
    "check_indices",
    "check_weight",
    "dataset_descriptors",
    "TargetOffsets",
    "target_offsets",
    "check_group_weights",
    "check_model_elements",
    "labelled_blocks",
    "errors_table",
    "fit_qsnap",
    "plan_grid",
    "run_grid",
    "draw_statistics",
]

#: the study's energy-to-force weight ratios w_E / w_F
DEFAULT_WEIGHT_RATIOS: tuple[float, ...] = (5.0, 10.0, 12.25, 50.0, 150.0, 300.0)
#: fractions of the training pool, the validation set and the test set in the default split by configuration
DEFAULT_SPLIT: tuple[float, float, float] = (0.5, 0.25, 0.25)
#: the error sets of a fit, in table order
ERROR_SETS = ("train", "validation", "test")
#: how training subsets are drawn: ∝ energy-row leverage, ∝ block leverage, uniformly at random
SAMPLING_METHODS: tuple[str, ...] = ("energy", "block", "random")
#: columns of :attr:`FitResult.errors`
ERROR_COLUMNS = ("set", "group", "reference_level", "energy_rmse", "energy_rmse_shifted", "energy_shift", "force_rmse",
                 "stress_rmse")
#: the ``group`` of the rows over all configurations of a set (FitSNAP's name)
ALL = ALL_GROUPS
#: columns of a grid table (:meth:`GridPoint.row`)
TABLE_COLUMNS = (
    "training_level", "subset_size", "sampling", "repetition", "weight_ratio", "energy_weight", "force_weight",
    "twojmax", "n_train", "n_columns", "rank", "dft_seconds", "reference_level", "validation_energy_rmse",
    "validation_energy_rmse_shifted", "validation_force_rmse", "validation_stress_rmse", "test_energy_rmse",
    "test_energy_rmse_shifted", "test_force_rmse", "test_stress_rmse", "train_energy_rmse",
    "train_energy_rmse_shifted", "train_force_rmse", "train_stress_rmse", "stress_weight",
)


# --------------------------------------------------------------------------------------------------------------
# input checks


def check_weight(name: str, value: object) -> float:
    """``value`` as a positive finite float; ``ValueError`` naming ``name`` otherwise (≤ 0, NaN, inf, not a number)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(w) or w <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return w


def check_indices(
    indices: Sequence[int] | np.ndarray | None, n_configs: int, name: str = "indices"
) -> np.ndarray:
    """Configuration indices as a non-empty int64 array with values in 0..n_configs−1 and no repeats.

    Raises:
        ValueError: empty, non-integer, repeated or out-of-range indices.
    """
    if indices is None:
        raise ValueError(f"{name} is missing: give at least one configuration index")
    arr = np.asarray(indices)
    if arr.dtype == object or arr.dtype.kind not in "iuf" or arr.dtype == bool:
        raise ValueError(f"{name} must be integer configuration indices, got {indices!r}")
    arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: give at least one configuration index")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
        raise ValueError(f"{name} must be integers, got {indices!r}")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n_configs)]
    if bad.size:
        raise ValueError(f"{name} has index {int(bad[0])} outside 0..{n_configs - 1} (the dataset has {n_configs} "
                         "configurations)")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{name} contains repeated configuration indices")
    return arr


def _check_level(dataset: LadderDataset, level, name: str = "training_level") -> int:
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)):
        raise ValueError(f"{name} must be an integer level label of the dataset {list(dataset.levels)}, got {level!r}")
    if int(level) not in dataset.levels:
        raise ValueError(f"{name} {level} is not in the dataset (levels {list(dataset.levels)})")
    return int(level)


def _check_complete(dataset: LadderDataset, indices: np.ndarray, name: str) -> None:
    failed = dataset.failed[:, indices].any(axis=0)
    if failed.any():
        bad = indices[failed]
        raise ValueError(
            f"{name} contains {bad.size} configuration(s) whose DFT calculation failed at some level "
            f"(first: {int(bad[0])}); leave them out or use dataset.drop_failed()"
        )


def _levels_present(dataset: LadderDataset, indices: np.ndarray) -> list[int]:
    """The levels at which none of ``indices`` is missing (data computed at only some levels, e.g. a planner's)."""
    present = ~dataset.missing[:, indices].any(axis=1)
    return [lv for lv, ok in zip(dataset.levels, present, strict=True) if ok]


def _require_level(dataset: LadderDataset, indices: np.ndarray, level: int, name: str) -> None:
    if level not in _levels_present(dataset, indices):
        bad = indices[dataset.missing[dataset.level_index(level), indices]]
        raise ValueError(f"{name} contains {bad.size} configuration(s) never computed at level {level} "
                         f"(first: {int(bad[0])}); give configurations that have it")


def _set_view(dataset: LadderDataset, indices: np.ndarray) -> LadderDataset:
    """``dataset`` itself, or — when some of ``indices`` are missing at some level — the dataset restricted to
    the levels they all have (errors of a set are then reported only against those levels)."""
    if not dataset.missing[:, indices].any():
        return dataset
    return dataset.select_levels(_levels_present(dataset, indices))


def _check_disjoint(train: np.ndarray, other: np.ndarray, name: str, train_name: str) -> None:
    common = np.intersect1d(train, other)
    if common.size:
        raise ValueError(f"{name} shares {common.size} configuration(s) with {train_name} (first: {int(common[0])}); "
                         "recipes chosen on a validation set that was trained on would not be honest")


def _check_overlap(train: np.ndarray, test: np.ndarray) -> None:
    common = np.intersect1d(train, test)
    if common.size:
        warnings.warn(
            f"{common.size} configuration(s) are in both the training and the test set (first: {int(common[0])}); "
            "the test errors are then not independent of the fit",
            UserWarning,
            stacklevel=3,
        )


def _settings_dict(settings) -> dict:
    if settings is None:
        return {}
    if hasattr(settings, "to_builtin"):
        settings = settings.to_builtin()
    if not isinstance(settings, Mapping):
        raise TypeError(f"descriptor_settings must be a dict of compute snap settings, got {type(settings).__name__}")
    return dict(settings)


def default_split(n_configs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 50/50 split of ``range(n_configs)`` by configuration: ``(train, test)``, each sorted.

    The training half gets ⌈n/2⌉ configurations. The same (n_configs, seed) always gives the same split.

    Raises:
        ValueError: for fewer than 2 configurations or a negative seed.
    """
    if isinstance(n_configs, bool) or int(n_configs) != n_configs or n_configs < 2:
        raise ValueError(f"a train/test split needs at least 2 configurations, got {n_configs!r}")
    if seed is None or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    order = np.random.default_rng([int(seed), 50_50]).permutation(int(n_configs))
    n_train = (int(n_configs) + 1) // 2
    return np.sort(order[:n_train]).astype(np.int64), np.sort(order[n_train:]).astype(np.int64)


def complete_split(dataset: LadderDataset, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`default_split` over the configurations whose DFT succeeded at every level (dataset indices).

    Identical to ``default_split(dataset.n_configs, seed)`` when nothing failed.
    """
    complete = np.flatnonzero(~dataset.failed.any(axis=0))
    train, test = default_split(complete.size, seed)
    return complete[train], complete[test]


def check_fractions(fractions) -> tuple[float, float, float]:
    """``(train, validation, test)`` fractions as three positive floats summing to 1; ``ValueError`` otherwise."""
    if hasattr(fractions, "to_builtin"):
        fractions = fractions.to_builtin()
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"split_fractions must be three numbers (training pool, validation, test), got "
                         f"{fractions!r}") from None
    if len(values) != 3:
        raise ValueError(f"split_fractions must be three numbers (training pool, validation, test), got {fractions!r}")
    if not all(np.isfinite(values)) or any(v <= 0 for v in values):
        raise ValueError(f"split_fractions {list(values)} leave a set empty: every fraction must be > 0")
    if abs(sum(values) - 1.0) > 1e-9:
        raise ValueError(f"split_fractions {list(values)} sum to {sum(values):g}, not 1")
    return values  # type: ignore[return-value]


def _split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Sizes of consecutive sets: ⌈f·n⌉ for all but the last, which gets the rest."""
    counts, left = [], n
    for f in fractions[:-1]:
        k = min(left, int(np.ceil(f * n - 1e-9)))
        counts.append(k)
        left -= k
    counts.append(left)
    return counts


def split_configurations(
    n_configs: int, fractions: Sequence[float] = DEFAULT_SPLIT, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded three-way split of ``range(n_configs)`` by configuration: ``(pool, validation, test)``, each sorted.

    The training pool gets ⌈f_train·n⌉ configurations, the validation set ⌈f_validation·n⌉, the test set the rest.
    The permutation is the one of :func:`default_split`, so with f_train = 0.5 the pool is exactly the training
    half of ``default_split(n_configs, seed)`` and validation ∪ test is its test half.

    Raises:
        ValueError: fractions that are not three positive numbers summing to 1, a set left empty, a negative seed.
    """
    f = check_fractions(fractions)
    if isinstance(n_configs, bool) or int(n_configs) != n_configs or n_configs < 3:
        raise ValueError(f"a training/validation/test split needs at least 3 configurations, got {n_configs!r}")
    if seed is None or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    n = int(n_configs)
    counts = _split_counts(n, f)
    if min(counts) < 1:
        raise ValueError(f"split_fractions {list(f)} of {n} configurations leave a set empty (sizes {counts})")
    order = np.random.default_rng([int(seed), 50_50]).permutation(n)
    a, b = counts[0], counts[0] + counts[1]
    return tuple(np.sort(part).astype(np.int64) for part in (order[:a], order[a:b], order[b:]))  # type: ignore


def dataset_split(
    dataset: LadderDataset, seed: int = 0, fractions: Sequence[float] = DEFAULT_SPLIT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`split_configurations` over the configurations whose DFT succeeded at every level (dataset indices):
    ``(pool, validation, test)``."""
    complete = np.flatnonzero(~dataset.failed.any(axis=0))
    pool, validation, test = split_configurations(complete.size, fractions, seed)
    return complete[pool], complete[validation], complete[test]


def resolve_split(
    dataset: LadderDataset,
    validation_indices: Sequence[int] | None = None,
    test_indices: Sequence[int] | None = None,
    fractions: Sequence[float] = DEFAULT_SPLIT,
    seed: int = 0,
    train_pool: Sequence[int] | None = None,
    prefix: str = "",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training pool, validation set and test set of a job: ``(pool, validation, test)`` (dataset indices).

    Sets given explicitly are used as given; the others are cut from the remaining configurations whose DFT
    succeeded at every level, by the seeded permutation of :func:`split_configurations`, in the proportions of their
    ``fractions`` (nothing given: exactly :func:`dataset_split`). ``train_pool`` defaults to everything not in the
    validation or test set.

    Raises:
        ValueError: bad fractions or indices, a set left empty, configurations whose DFT failed, a validation set
            that overlaps the training pool or the test set, a test set overlapping the training pool.
    """
    f = check_fractions(fractions)
    seed = _as_int(seed, f"{prefix}split_seed", 0)
    if validation_indices is None and test_indices is None and train_pool is None:
        pool, validation, test = dataset_split(dataset, seed, f)
    else:
        given = {}
        for name, value in (("validation_indices", validation_indices), ("test_indices", test_indices),
                            ("train_pool", train_pool)):
            if value is not None:
                given[name] = check_indices(value, dataset.n_configs, prefix + name)
                _check_complete(dataset, given[name], prefix + name)
        names = list(given)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                common = np.intersect1d(given[a], given[b])
                if common.size:
                    raise ValueError(f"{prefix}{a} and {prefix}{b} share {common.size} configuration(s) (first: "
                                     f"{int(common[0])}); the training pool, validation and test sets must be "
                                     "disjoint")
        complete = np.flatnonzero(~dataset.failed.any(axis=0))
        rest = np.setdiff1d(complete, np.concatenate([given[n] for n in names]))
        rest = rest[np.random.default_rng([seed, 50_50]).permutation(rest.size)]
        order = ("train_pool", "validation_indices", "test_indices")
        missing = [n for n in order if n not in given]
        share = [f[order.index(n)] for n in missing]
        counts = _split_counts(rest.size, [x / sum(share) for x in share]) if missing else []
        start = 0
        for name, k in zip(missing, counts, strict=True):
            given[name] = np.sort(rest[start:start + k]).astype(np.int64)
            start += k
        pool, validation, test = (given[n] for n in order)
        for name, part in (("training pool", pool), ("validation set", validation), ("test set", test)):
            if part.size == 0:
                raise ValueError(f"the {name} is empty: {dataset.n_configs} configurations cannot be split into a "
                                 f"training pool, a validation and a test set as given")
    return pool, validation, test


# --------------------------------------------------------------------------------------------------------------
# descriptors and labelled blocks


def dataset_descriptors(
    dataset: LadderDataset,
    twojmax: int,
    descriptor_settings: Mapping | None = None,
    *,
    element: str = "Be",
    elements: Sequence[str] | None = None,
    virial: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> DescriptorStore | DescriptorSet:
    """Descriptors of every structure of ``dataset``: a cached HDF5 ``DescriptorStore`` in ``cache_dir`` (read by
    configuration, so memory does not grow with the dataset), or an in-memory ``DescriptorSet`` without one.
    ``virial`` adds the virial rows (needed for stress rows)."""
    settings = _settings_dict(descriptor_settings)
    kw = {"element": element} if elements is None else {"elements": list(elements)}
    if virial:
        kw["virial"] = True
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
        return DescriptorStore.open_or_compute(cache_dir, dataset.structures, int(twojmax), **kw, **settings)
    return compute_descriptors(dataset.structures, int(twojmax), **kw, **settings)


def check_model_elements(dataset: LadderDataset, element: str | None = None,
                         elements: Sequence[str] | None = None, name: str = "elements") -> tuple[str, ...]:
    """The model's element order (``elements``, or ``(element,)``, default Be), checked against the data.

    Raises:
        ValueError: naming ``name``, when the data hold an element the model does not list.
    """
    if hasattr(elements, "to_builtin"):
        elements = elements.to_builtin()
    names = resolve_elements(element, elements)
    missing = [e for e in dataset.elements if e not in names]
    if missing:
        raise ValueError(f"{name} {list(names)} does not list {missing}, which the data contain (data elements "
                         f"{list(dataset.elements)})")
    return names


def check_reference_energies(reference_energies: Mapping | None, elements: Sequence[str],
                             name: str = "reference_energies") -> dict[str, float]:
    """``{element: eV/atom}`` with every key among ``elements`` and finite values ({} for None)."""
    if hasattr(reference_energies, "to_builtin"):
        reference_energies = reference_energies.to_builtin()
    if reference_energies is None:
        return {}
    if not isinstance(reference_energies, Mapping):
        raise ValueError(f"{name} must be a dict {{element: eV/atom}}, got {reference_energies!r}")
    out = {}
    for key, value in reference_energies.items():
        if key not in elements:
            raise ValueError(f"{name} names {key!r}, which is not among the elements {list(elements)}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{key!r}] must be a number (eV/atom), got {value!r}") from None
        if not np.isfinite(v):
            raise ValueError(f"{name}[{key!r}] must be finite, got {value!r}")
        out[str(key)] = v
    return out


_GROUP_KEYS = ("energy", "force", "stress")


def check_group_weights(group_weights: Mapping | None, groups: Sequence[str],
                        name: str = "group_weights") -> dict[str, tuple[float, float, float]]:
    """Per-group multipliers (g_E, g_F, g_V) of (w_E, w_F, w_V), FitSNAP ``[GROUPS]`` semantics.

    Each value is either ``{"energy": g_E, "force": g_F, "stress": g_V}`` (missing keys: 1; the form of
    :func:`~pyiron_mlip_tradeoff.fitsnap_io.read_fitsnap`) or a sequence of three numbers. Groups not named keep
    (1, 1, 1).

    Raises:
        ValueError: naming the group and key, for a group not in ``groups``, an unknown key, or a multiplier that
            is negative, NaN or not a number.
    """
    if hasattr(group_weights, "to_builtin"):
        group_weights = group_weights.to_builtin()
    if group_weights is None:
        return {}
    if not isinstance(group_weights, Mapping):
        raise ValueError(f"{name} must be a dict {{group: {{'energy', 'force', 'stress'}}}}, got {group_weights!r}")
    known = set(map(str, groups))
    out = {}
    for group, value in group_weights.items():
        if str(group) not in known:
            raise ValueError(f"{name} names group {group!r}, which is not in the data (groups {sorted(known)})")
        if hasattr(value, "to_builtin"):
            value = value.to_builtin()
        if isinstance(value, Mapping):
            unknown = sorted(set(value) - set(_GROUP_KEYS))
            if unknown:
                raise ValueError(f"{name}[{group!r}]: unknown key(s) {unknown}; expected {list(_GROUP_KEYS)}")
            items = [(key, value.get(key, 1.0)) for key in _GROUP_KEYS]
        else:
            try:
                seq = list(value)
            except TypeError:
                raise ValueError(f"{name}[{group!r}] must be a dict or three numbers (g_E, g_F, g_V), "
                                 f"got {value!r}") from None
            if len(seq) != 3:
                raise ValueError(f"{name}[{group!r}] must be three numbers (g_E, g_F, g_V), got {value!r}")
            items = list(zip(_GROUP_KEYS, seq, strict=True))
        triple = []
        for key, g in items:
            if isinstance(g, (bool, np.bool_)):
                raise ValueError(f"{name}[{group!r}][{key!r}] must be a number, got {g!r}")
            try:
                g = float(g)
            except (TypeError, ValueError):
                raise ValueError(f"{name}[{group!r}][{key!r}] must be a number, got {g!r}") from None
            if not np.isfinite(g) or g < 0:
                raise ValueError(f"{name}[{group!r}][{key!r}] must be a non-negative finite number, got {g!r}")
            triple.append(g)
        out[str(group)] = tuple(triple)
    return out


@dataclass(frozen=True)
class TargetOffsets:
    """What the fit does not learn, per configuration: subtracted from the DFT labels before fitting.

    Attributes:
        energy: (n_configs,) eV per configuration: Σ over atoms of the per-element reference energies plus the
            reference potential's energy (NaN for configurations not computed).
        forces: (total_atoms, 3) eV/Å of the reference potential, or None (no reference potential).
        stress: (n_configs, 6) eV/Å³ (ASE sign, Voigt) of the reference potential, or None.
    """

    energy: np.ndarray
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None


def target_offsets(
    dataset: LadderDataset,
    elements: Sequence[str],
    reference_potential: Mapping | None = None,
    reference_energies: Mapping | None = None,
    indices: Sequence[int] | np.ndarray | None = None,
) -> TargetOffsets | None:
    """The parts of the labels the fit leaves out: per-element reference energies (FitSNAP's −ESHIFT, eV/atom)
    and a reference potential's energy, forces and stress (FitSNAP ``[REFERENCE]``, computed by LAMMPS once per
    configuration, see :mod:`~pyiron_mlip_tradeoff.reference`).

    Args:
        dataset: the data.
        elements: model element order (atom types of the reference ``pair_coeff`` lines).
        reference_potential: ``{"pair_style": …, "pair_coeff": […]}`` or None.
        reference_energies: ``{element: eV/atom}`` or None.
        indices: configurations to compute the reference potential for (default all); the others are NaN.

    Returns:
        :class:`TargetOffsets`, or None when there is nothing to subtract (the labels are fitted as they are).
    """
    energies = check_reference_energies(reference_energies, elements)
    if not energies and reference_potential is None:
        return None
    from ase.data import atomic_numbers

    per_number = np.zeros(max(atomic_numbers.values()) + 1)
    for el, e in energies.items():
        per_number[atomic_numbers[el]] = e
    atom_energy = per_number[dataset.numbers]
    offsets = dataset.atom_offsets
    energy = np.add.reduceat(atom_energy, offsets[:-1]) if atom_energy.size else np.zeros(dataset.n_configs)
    energy = np.where(dataset.n_atoms > 0, energy, 0.0)
    if reference_potential is None:
        return TargetOffsets(energy)
    idx = np.arange(dataset.n_configs) if indices is None else np.unique(np.asarray(indices, dtype=np.int64))
    contributions = reference_contributions([dataset.structures[i] for i in idx], elements, reference_potential)
    energy = energy.copy()
    energy[np.setdiff1d(np.arange(dataset.n_configs), idx)] = np.nan
    energy[idx] += contributions.energies
    forces = np.full((int(offsets[-1]), 3), np.nan)
    stress = np.full((dataset.n_configs, 6), np.nan)
    for k, i in enumerate(idx):
        forces[offsets[i]:offsets[i + 1]] = contributions.forces[k]
        stress[i] = contributions.stresses[k]
    return TargetOffsets(energy, forces, stress)


_VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


def rotate_voigt(values: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Voigt rows (6, …: xx yy zz yz xz xy) of a symmetric tensor in a frame with ``x_new = x @ rotation``."""
    v = np.asarray(values, dtype=float)
    tensor = np.empty((3, 3) + v.shape[1:])
    for k, (a, b) in enumerate(_VOIGT):
        tensor[a, b] = tensor[b, a] = v[k]
    rotated = np.einsum("ai,ab...,bj->ij...", rotation, tensor, rotation)
    return np.stack([rotated[a, b] for a, b in _VOIGT])


def _stress_targets(dataset: LadderDataset, i: int) -> np.ndarray | None:
    """(6, n_levels) stress of configuration i in eV/Å³, or None where some level has none."""
    if dataset.stress is None:
        return None
    values = dataset.stress[:, i, :]
    if not np.all(np.isfinite(values)):
        return None
    return values.T


def labelled_blocks(
    dataset: LadderDataset,
    descriptors: DescriptorSet | DescriptorStore,
    indices: Sequence[int] | np.ndarray,
    rows: Sequence[int] | None = None,
    *,
    offsets: TargetOffsets | None = None,
    stress: bool = False,
    stress_frame: str = "lammps",
) -> Iterator[ConfigurationBlock]:
    """One regression block per configuration: descriptor rows and the dataset's labels at every level.

    Args:
        dataset: labels (energies in eV are divided by N_m here; forces in eV/Å; stress in eV/Å³).
        descriptors: anything with ``iter_blocks(indices)`` yielding descriptor blocks (``DescriptorSet``,
            ``DescriptorStore``); with ``stress`` they must carry virial rows.
        indices: dataset configuration indices, in the order wanted.
        rows: positions of those configurations in ``descriptors`` (default: the same as ``indices``).
        offsets: what is subtracted from the labels first (:func:`target_offsets`); None: nothing.
        stress: add the 6 stress rows of every configuration whose stress is known at every level.
        stress_frame: the Cartesian frame of the stress components (rows and targets alike): ``"lammps"`` (the
            default, FitSNAP's) — each cell rotated to LAMMPS' restricted-triclinic frame (a along x, b in the xy
            plane) — or ``"input"`` (the structure's own frame). A rotation leaves the fit of a tensor unchanged
            only up to how the six Voigt components weigh the off-diagonal terms (once, not twice), so the frame
            matters, a little, for stress fits and stress RMSEs; FitSNAP fits and reports them in LAMMPS' frame.

    Yields:
        :class:`~pyiron_mlip_tradeoff.regression.ConfigurationBlock` with per-atom energy targets (eV/atom), force
        targets (eV/Å) and, with ``stress``, stress targets (eV/Å³, ASE sign), one target column per dataset level.
    """
    indices = np.asarray(indices, dtype=np.int64)
    rows = indices if rows is None else np.asarray(rows, dtype=np.int64)
    atom_offsets = dataset.atom_offsets
    n_levels = dataset.n_levels
    # the labels come from dataset.iter_config_forces: views in memory, or read a window at a time from the file of a
    # dataset loaded with lazy=True (memory then independent of the number of configurations)
    for i, block, config_forces in zip(indices, descriptors.iter_blocks(rows), dataset.iter_config_forces(indices),
                                       strict=True):
        n = int(dataset.n_atoms[i])
        if int(block.n_atoms) != n:
            raise ValueError(f"configuration {i}: descriptors have {block.n_atoms} atoms, the dataset {n}")
        a, b = atom_offsets[i], atom_offsets[i + 1]
        energy = dataset.energy[:, i]
        forces = config_forces.reshape(n_levels, 3 * n).T
        if offsets is not None:
            energy = energy - offsets.energy[i]
            if offsets.forces is not None:
                forces = forces - offsets.forces[a:b].reshape(3 * n)[:, None]
        stress_rows = stress_targets = None
        if stress:
            targets = _stress_targets(dataset, int(i))
            if targets is not None:
                if block.virial_rows is None:
                    raise ValueError(f"configuration {i}: stress rows need descriptors with virial rows")
                stress_rows = block.stress_rows
                stress_targets = targets
                if offsets is not None and offsets.stress is not None:
                    stress_targets = stress_targets - offsets.stress[i][:, None]
                if stress_frame == "lammps":
                    cell = dataset.config_cell(int(i))
                    rotation = lammps_frame(cell, np.zeros((0, 3)))[2]
                    stress_rows = rotate_voigt(stress_rows, rotation)
                    stress_targets = rotate_voigt(stress_targets, rotation)
        yield ConfigurationBlock(
            energy_rows=np.asarray(block.energy_row, dtype=float)[None, :],
            energy_targets=(energy / n)[None, :],
            force_rows=np.asarray(block.force_rows, dtype=float),
            force_targets=forces,
            stress_rows=stress_rows,
            stress_targets=stress_targets,
        )


# --------------------------------------------------------------------------------------------------------------
# one fit


def errors_table(sets: Mapping[str, FitErrors | Mapping[str, FitErrors]]) -> pd.DataFrame:
    """One row per (set, group, reference level): ``set``, ``group`` (``"*ALL"`` for all configurations of the
    set, else a group name), ``reference_level``, ``energy_rmse``, ``energy_rmse_shifted``, ``energy_shift``
    (meV/atom), ``force_rmse`` (meV/Å) and ``stress_rmse`` (GPa; NaN without stress rows).

    ``sets`` maps a set name to its :class:`FitErrors` (all configurations) or to ``{group: FitErrors}`` as
    :meth:`~pyiron_mlip_tradeoff.regression.GroupedStatistics.errors` returns it (``"*ALL"`` first in the table).
    """
    # one DataFrame built from whole columns (a grid makes one table per point, so this is kept cheap)
    labels, groups, errs = [], [], []
    for name, value in sets.items():
        if isinstance(value, FitErrors):
            items = [(ALL, value)]
        else:
            items = [(ALL, value[ALL])] + [(g, e) for g, e in value.items() if g != ALL]
        for group, e in items:
            labels.append(name)
            groups.append(group)
            errs.append(e)
    counts = [len(e.levels) for e in errs]
    data = {
        "set": np.repeat(np.array(labels, dtype=object), counts),
        "group": np.repeat(np.array(groups, dtype=object), counts),
        "reference_level": np.array([lv for e in errs for lv in e.levels], dtype=np.int64),
    }
    for name in ERROR_COLUMNS[3:]:
        data[name] = np.concatenate([np.ravel(getattr(e, name)) for e in errs]).astype(float, copy=False)
    return pd.DataFrame(data, copy=False)


@dataclass
class FitResult:
    """One fitted qSNAP model and its errors.

    Attributes:
        coefficients: (p,) β in eV per descriptor unit, column order of the descriptors (constant first).
        errors: DataFrame, one row per (set, reference level); see :func:`errors_table` (meV/atom, meV/Å). May be
            given as the mapping :func:`errors_table` takes (``{set: FitErrors or {group: FitErrors}}``): the
            DataFrame is then built on first access (a grid makes thousands of results and reads only
            :meth:`summary`, which takes the same numbers from the mapping).
        dft_seconds: DFT cost of the training configurations at the training level in seconds — CPU seconds
            where the dataset records them, else wall seconds (NaN when the dataset has no timings).
        n_train: number of training configurations.
        training_level, energy_weight, force_weight, twojmax: the recipe.
        reference_level: the level against which :meth:`summary` quotes errors (by default the dataset's most
            precise level by its settings; see :mod:`~pyiron_mlip_tradeoff.reference_level`).
        rank: numerical rank of the weighted design (number of singular values kept).
        train_indices, test_indices, validation_indices: configuration indices used.
    """

    coefficients: np.ndarray
    errors: pd.DataFrame  # a property (below): the table, built from the error sets on first access
    dft_seconds: float
    n_train: int
    training_level: int
    energy_weight: float
    force_weight: float
    twojmax: int
    reference_level: int
    rank: int
    train_indices: np.ndarray
    test_indices: np.ndarray | None = None
    settings: dict = field(default_factory=dict)
    validation_indices: np.ndarray | None = None
    stress_weight: float = 0.0
    elements: tuple[str, ...] = ("Be",)
    reference_potential: dict | None = None
    reference_energies: dict = field(default_factory=dict)
    group_weights: dict = field(default_factory=dict)

    def error(self, set_name: str = "test", reference_level: int | None = None, group: str = ALL) -> dict[str, float]:
        """``energy_rmse``, ``energy_rmse_shifted`` (meV/atom), ``force_rmse`` (meV/Å) and ``stress_rmse`` (GPa) of
        one set (all its configurations, or one ``group``) against one level (default the reference level); NaN
        when that set was not evaluated."""
        level = self.reference_level if reference_level is None else int(reference_level)
        e = self.errors
        rows = e[(e["set"] == set_name) & (e["reference_level"] == level) & (e["group"] == group)]
        keys = ("energy_rmse", "energy_rmse_shifted", "force_rmse", "stress_rmse")
        if rows.empty:
            return dict.fromkeys(keys, np.nan)
        row = rows.iloc[0]
        return {k: float(row[k]) for k in keys}

    def summary(self) -> dict[str, float]:
        """Flat scalars for tables: ``validation_*``, ``test_*`` and ``train_*`` errors against the reference level
        (NaN for a set that was not evaluated)."""
        keys = ("energy_rmse", "energy_rmse_shifted", "force_rmse", "stress_rmse")
        if self._errors is None:  # the very numbers the table would hold, without building it
            return _summary_of_sets(self._error_sets, self.reference_level, keys)
        # what error() gives for each set, from the columns as arrays
        e = self.errors
        base = (e["group"].to_numpy() == ALL) & (e["reference_level"].to_numpy() == self.reference_level)
        sets = e["set"].to_numpy()
        columns = {k: e[k].to_numpy() for k in keys}
        out = {}
        for set_name in ("validation", "test", "train"):
            where = np.flatnonzero(base & (sets == set_name))
            for key in keys:
                out[f"{set_name}_{key}"] = float(columns[key][where[0]]) if where.size else np.nan
        return out


def _errors_of_result(result: FitResult) -> pd.DataFrame:
    if result._errors is None:
        result._errors = errors_table(result._error_sets)
        result._error_sets = None
    return result._errors


def _set_errors_of_result(result: FitResult, value) -> None:
    if isinstance(value, pd.DataFrame):
        result._errors, result._error_sets = value, None
    else:
        result._errors, result._error_sets = None, dict(value)


FitResult.errors = property(_errors_of_result, _set_errors_of_result,
                            doc="DataFrame, one row per (set, group, reference level); see :func:`errors_table`.")


def _summary_of_sets(sets: Mapping, reference_level: int, keys: Sequence[str]) -> dict[str, float]:
    """:meth:`FitResult.summary` from the error sets: for each set the all-configurations errors against the
    reference level (the first such entry, as in the table), NaN for a set that was not evaluated."""
    out = {}
    for set_name in ("validation", "test", "train"):
        value = sets.get(set_name)
        e = value if value is None or isinstance(value, FitErrors) else value[ALL]
        where = [] if e is None else [i for i, lv in enumerate(e.levels) if lv == reference_level]
        for key in keys:
            out[f"{set_name}_{key}"] = float(np.ravel(getattr(e, key))[where[0]]) if where else np.nan
    return out


def _dft_seconds(dataset: LadderDataset, level: int, indices: np.ndarray) -> float:
    """DFT cost of ``indices`` at ``level`` in seconds: the CPU seconds of the calculations where the dataset
    records them (robust against a busy machine, comparable between levels), else their wall seconds."""
    timings = dataset.core_seconds if dataset.core_seconds is not None else dataset.seconds
    if timings is None:
        return float("nan")
    return float(np.sum(timings[dataset.level_index(level), indices]))


def _grouped(dataset: LadderDataset, group_weights: Mapping | None) -> bool:
    """Whether statistics are kept per group: the data have several groups, or group weights are given (a
    dataset of one group without group weights keeps the plain statistics, so those results are unchanged)."""
    return bool(group_weights) or len(set(dataset.groups.tolist())) > 1


def set_statistics(
    dataset: LadderDataset,
    descriptors,
    indices: np.ndarray,
    rows: np.ndarray | None = None,
    *,
    offsets: TargetOffsets | None = None,
    stress: bool = False,
    grouped: bool = False,
) -> LinearStatistics | GroupedStatistics:
    """Unweighted statistics of one configuration set (folded in the order given): plain, or per group of
    ``dataset.groups`` with ``grouped``."""
    blocks = labelled_blocks(dataset, descriptors, indices, rows, offsets=offsets, stress=stress)
    if grouped:
        return grouped_statistics(blocks, dataset.groups[np.asarray(indices, dtype=np.int64)].tolist(),
                                  levels=tuple(dataset.levels))
    return statistics_from_blocks(blocks, levels=tuple(dataset.levels))


def _present(stats: GroupedStatistics, group_weights: Mapping | None) -> dict:
    """The group weights of the groups present in ``stats`` (a subset need not hold every group)."""
    return {g: w for g, w in (group_weights or {}).items() if g in stats.groups}


def _fit_statistics(stats, level, weights, group_weights, rcond, ridge):
    if isinstance(stats, GroupedStatistics):
        group_weights = _present(stats, group_weights)
        if group_weights:
            return stats.fit(*weights, group_weights=group_weights, rcond=rcond, ridge=ridge)[level]
        return fit(stats.all, level, *weights, rcond=rcond, ridge=ridge)
    return fit(stats, level, *weights, rcond=rcond, ridge=ridge)


def _set_errors(stats, beta):
    return stats.errors(beta) if isinstance(stats, GroupedStatistics) else errors(stats, beta)


def fit_qsnap(
    dataset: LadderDataset,
    train_indices: Sequence[int] | np.ndarray,
    training_level: int,
    energy_weight: float,
    force_weight: float = 1.0,
    twojmax: int = 6,
    descriptor_settings: Mapping | None = None,
    test_indices: Sequence[int] | np.ndarray | None = None,
    rcond: float | None = None,
    ridge: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    element: str = "Be",
    descriptors: DescriptorSet | DescriptorStore | None = None,
    validation_indices: Sequence[int] | np.ndarray | None = None,
    reference_level: int | None = None,
    elements: Sequence[str] | None = None,
    stress_weight: float = 0.0,
    reference_potential: Mapping | None = None,
    reference_energies: Mapping[str, float] | None = None,
    group_weights: Mapping | None = None,
    offsets: TargetOffsets | None = None,
) -> FitResult:
    """Fit qSNAP coefficients to one precision level of ``dataset`` on the given training configurations.

    Minimises Eq. 1 of the study plus a stress term, Σ_m [w_E² (Ê_m − E_m)²/N_m² + Σ_i w_F² (F̂_mi − F_mi)²
    + Σ_v w_V² (σ̂_mv − σ_mv)²], each row's weight multiplied by its group's (g_E, g_F, g_V) (FitSNAP
    ``[GROUPS]``), from sufficient statistics (see :mod:`~pyiron_mlip_tradeoff.regression`). The targets lose the
    per-element reference energies and the reference potential's energy, forces and stress first (FitSNAP
    ``[ESHIFT]``, ``[REFERENCE]``). Errors (unweighted) on the training set and on the validation and test sets
    (if given) against every level of the dataset, for all configurations of a set (group ``"*ALL"``) and, when
    the data have several groups, per group.

    Args:
        dataset: structures and labels.
        train_indices: training configurations (dataset indices).
        training_level: level label whose energies/forces are fitted.
        energy_weight: w_E > 0 (on per-atom energy residuals, eV/atom).
        force_weight: w_F > 0 (on force residuals, eV/Å).
        twojmax: qSNAP 2Jmax (even, ≤ 10).
        descriptor_settings: ``compute snap`` settings overriding the study's (see ``descriptors.resolve_settings``;
            ``radelem``/``wj`` one value or one per element).
        test_indices: test configurations; None or empty: no test errors. Overlap with the training set gives a
            warning.
        rcond: SVD cut-off relative to the largest singular value (None: numpy ``lstsq``'s default on the full
            weighted matrix; FitSNAP's SVD solver uses 1e-13).
        ridge: Tikhonov λ instead of the SVD cut-off.
        cache_dir: folder of the descriptor cache (descriptors of *all* dataset structures, shared with later fits);
            None: descriptors of the used configurations only, in memory.
        element: chemical symbol of a one-element model (shorthand for ``elements=[element]``).
        descriptors: precomputed descriptors of all dataset structures (``DescriptorSet``/``DescriptorStore``; with
            virial rows when ``stress_weight`` > 0).
        validation_indices: validation configurations (errors reported as set ``"validation"``); must not overlap
            the training set.
        reference_level: level the summary errors are quoted against (default: the most precise level by the
            dataset's settings, :func:`~pyiron_mlip_tradeoff.reference_level.most_precise_level`).
        elements: the model's elements in order (LAMMPS types 1, 2, …); must include every element of the data.
        stress_weight: w_V ≥ 0 on stress residuals in eV/Å³ (default 0: no stress rows, no stress errors).
        reference_potential: ``{"pair_style": …, "pair_coeff": […]}`` whose energy, forces and stress are subtracted
            from the labels (computed once per used configuration by LAMMPS).
        reference_energies: ``{element: eV/atom}`` subtracted from total energies per atom of that element.
        group_weights: ``{group: {"energy": g_E, "force": g_F, "stress": g_V}}`` (or three numbers) multiplying
            (w_E, w_F, w_V) for that group's rows.
        offsets: precomputed :func:`target_offsets` (then ``reference_potential``/``reference_energies`` only
            document the model).

    Returns:
        :class:`FitResult`.

    Raises:
        ValueError/TypeError: bad weights, a level not in the dataset, empty, repeated or out-of-range indices,
            configurations with failed DFT, a validation set overlapping the training set, an invalid 2Jmax or
            setting, data elements missing from ``elements``, group weights naming unknown groups or negative/NaN,
            an unloadable reference pair style, a reference level not in the dataset or an ambiguous ladder —
            all before any descriptor is computed.
    """
    level = _check_level(dataset, training_level)
    reference = resolve_reference_level(dataset, reference_level)
    we = check_weight("energy_weight", energy_weight)
    wf = check_weight("force_weight", force_weight)
    wv = _check_stress_weight(stress_weight)
    names = check_model_elements(dataset, None if elements is not None else element, elements)
    settings = _settings_dict(descriptor_settings)
    resolved = resolve_settings(twojmax, settings, len(names))
    energies = check_reference_energies(reference_energies, names)
    gw = check_group_weights(group_weights, dataset.group_names)
    if reference_potential is not None and offsets is None:
        check_reference(reference_potential, names)
    train = check_indices(train_indices, dataset.n_configs, "train_indices")
    if test_indices is not None and np.size(test_indices) == 0:
        test_indices = None
    test = None if test_indices is None else check_indices(test_indices, dataset.n_configs, "test_indices")
    _check_complete(dataset, train, "train_indices")
    _require_level(dataset, train, level, "train_indices")
    if test is not None:
        _check_complete(dataset, test, "test_indices")
        _require_level(dataset, test, reference, "test_indices")
        _check_overlap(train, test)
    validation = None
    if validation_indices is not None and np.size(validation_indices):
        validation = check_indices(validation_indices, dataset.n_configs, "validation_indices")
        _check_complete(dataset, validation, "validation_indices")
        _require_level(dataset, validation, reference, "validation_indices")
        _check_disjoint(train, validation, "validation_indices", "the training set")
    use_stress = wv > 0
    if use_stress and dataset.stress is None:
        raise ValueError("stress_weight > 0, but the dataset has no stresses")
    kw = {"element": names[0]} if elements is None else {"elements": list(names)}
    if use_stress:
        kw["virial"] = True

    used = np.unique(np.concatenate([x for x in (train, validation, test) if x is not None]))
    if descriptors is None and cache_dir is None:
        descriptors = compute_descriptors([dataset.structures[i] for i in used], int(twojmax), **kw, **settings)
        position = np.full(dataset.n_configs, -1, dtype=np.int64)
        position[used] = np.arange(used.size)
    else:
        if descriptors is None:
            descriptors = dataset_descriptors(dataset, twojmax, settings, element=names[0],
                                              elements=None if elements is None else names, virial=use_stress,
                                              cache_dir=cache_dir)
        if descriptors.n_configs != dataset.n_configs:
            raise ValueError(f"descriptors cover {descriptors.n_configs} configurations, the dataset {dataset.n_configs}")
        position = np.arange(dataset.n_configs)
    if offsets is None:
        offsets = target_offsets(dataset, names, reference_potential, energies, used)

    grouped = _grouped(dataset, gw)
    common = {"offsets": offsets, "stress": use_stress, "grouped": grouped}
    # folded in configuration-index order: the fit does not depend on the order the indices are given in
    folded = np.sort(train)
    train_stats = set_statistics(_set_view(dataset, folded), descriptors, folded, position[folded], **common)
    result = _fit_statistics(train_stats, level, (we, wf, wv), gw, rcond, ridge)
    sets = {"train": _set_errors(train_stats, result.coefficients)}
    for name, part in (("validation", validation), ("test", test)):
        if part is not None:
            stats = set_statistics(_set_view(dataset, part), descriptors, part, position[part], **common)
            sets[name] = _set_errors(stats, result.coefficients)
    return FitResult(
        coefficients=np.asarray(result.coefficients, dtype=float),
        errors=errors_table(sets),
        dft_seconds=_dft_seconds(dataset, level, train),
        n_train=int(train.size),
        training_level=level,
        energy_weight=we,
        force_weight=wf,
        twojmax=int(twojmax),
        reference_level=reference,
        rank=int(result.rank),
        train_indices=train,
        test_indices=test,
        settings=resolved,
        validation_indices=validation,
        stress_weight=wv,
        elements=tuple(names),
        reference_potential=None if reference_potential is None else dict(reference_potential),
        reference_energies=energies,
        group_weights={g: list(t) for g, t in gw.items()},
    )


def _check_stress_weight(value) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"stress_weight must be a non-negative number, got {value!r}")
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"stress_weight must be a non-negative number, got {value!r}") from None
    if not np.isfinite(w) or w < 0:
        raise ValueError(f"stress_weight must be a non-negative finite number, got {value!r}")
    return w


# --------------------------------------------------------------------------------------------------------------
# the grid


PointKey = tuple  # (training_level, subset_size, sampling, repetition, energy_weight, force_weight, twojmax)


@dataclass(frozen=True)
class GridSpec:
    """A validated trade-off grid (see :func:`plan_grid`).

    Attributes:
        levels: training levels. subset_sizes: increasing numbers of training configurations.
        weight_ratios: w_E / w_F values; force_weight: w_F (energy weight = ratio × w_F).
        twojmax: 2Jmax values. sampling: methods among :data:`SAMPLING_METHODS`. repetitions: draws per method.
        seed: seed of the subset draws. pool: configurations subsets are drawn from (the training pool).
        test_indices: test set (reported only). validation_indices: validation set (recipes are chosen on it).
        descriptor_settings: ``compute snap`` overrides. leverage_energy_weight: w_E/w_F inside block leverage.
        rcond, ridge: solver options (see :func:`~pyiron_mlip_tradeoff.regression.fit`). element: chemical symbol.
        reference_level: the level errors are quoted against. leverage_ridge: λ / s_max² of ridge leverage
            (``None``: automatic, see :func:`~pyiron_mlip_tradeoff.leverage.leverage_scores`).
        stress_weight: w_V (0: no stress rows). elements: the model's elements (None: ``(element,)``).
        reference_potential, reference_energies: subtracted from the labels (see :func:`fit_qsnap`).
        group_weights: ``{group: (g_E, g_F, g_V)}`` multipliers.
        leverage_sketch: ``None`` (exact leverage scores) or r, the columns of sketched (approximate) scores (see
            :func:`~pyiron_mlip_tradeoff.leverage.leverage_scores`).
    """

    levels: tuple[int, ...]
    subset_sizes: tuple[int, ...]
    weight_ratios: tuple[float, ...]
    force_weight: float
    twojmax: tuple[int, ...]
    sampling: tuple[str, ...]
    repetitions: int
    seed: int
    pool: np.ndarray
    test_indices: np.ndarray
    descriptor_settings: dict
    leverage_energy_weight: float = DEFAULT_LEVERAGE_ENERGY_WEIGHT
    rcond: float | None = None
    ridge: float | None = None
    element: str = "Be"
    validation_indices: np.ndarray | None = None
    reference_level: int | None = None
    leverage_ridge: float | None = None
    stress_weight: float = 0.0
    elements: tuple[str, ...] | None = None
    reference_potential: dict | None = None
    reference_energies: dict = field(default_factory=dict)
    group_weights: dict = field(default_factory=dict)
    leverage_sketch: int | None = None

    @property
    def model_elements(self) -> tuple[str, ...]:
        """The model's element order (``elements``, else ``(element,)``)."""
        return tuple(self.elements) if self.elements is not None else (self.element,)

    @property
    def n_points(self) -> int:
        """Number of grid points."""
        return (len(self.levels) * len(self.subset_sizes) * len(self.weight_ratios) * len(self.twojmax)
                * len(self.sampling) * self.repetitions)

    def keys(self) -> Iterator[PointKey]:
        """Every point's key, in the order :func:`run_grid` computes them."""
        for tj in self.twojmax:
            for sampling in self.sampling:
                for rep in range(self.repetitions):
                    for size in self.subset_sizes:
                        for ratio in self.weight_ratios:
                            for level in self.levels:
                                yield (level, size, sampling, rep, ratio * self.force_weight, self.force_weight, tj)


def _as_list(value, name: str) -> list:
    if value is None:
        raise ValueError(f"{name} is missing")
    if hasattr(value, "to_builtin"):
        value = value.to_builtin()
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return [value]
    if isinstance(value, Mapping):
        raise ValueError(f"{name} must be a list, got a dict")
    out = list(np.asarray(value, dtype=object).reshape(-1)) if isinstance(value, np.ndarray) else list(value)
    if not out:
        raise ValueError(f"{name} is empty: the grid would have zero points")
    return out


def _as_int(value, name: str, minimum: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        ok = float(value).is_integer()
    except (TypeError, ValueError):
        ok = False
    if not ok or int(value) < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def plan_grid(
    dataset: LadderDataset,
    subset_sizes: Sequence[int],
    levels: Sequence[int] | None = None,
    weight_ratios: Sequence[float] = DEFAULT_WEIGHT_RATIOS,
    twojmax: Sequence[int] | int = (6,),
    sampling: Sequence[str] | str = SAMPLING_METHODS,
    repetitions: int = 1,
    seed: int = 0,
    test_indices: Sequence[int] | None = None,
    split_seed: int = 0,
    force_weight: float = 1.0,
    descriptor_settings: Mapping | None = None,
    leverage_energy_weight: float = DEFAULT_LEVERAGE_ENERGY_WEIGHT,
    rcond: float | None = None,
    ridge: float | None = None,
    element: str = "Be",
    train_pool: Sequence[int] | None = None,
    validation_indices: Sequence[int] | None = None,
    split_fractions: Sequence[float] = DEFAULT_SPLIT,
    reference_level: int | None = None,
    leverage_ridge: float | None = None,
    stress_weight: float = 0.0,
    elements: Sequence[str] | None = None,
    reference_potential: Mapping | None = None,
    reference_energies: Mapping[str, float] | None = None,
    group_weights: Mapping | None = None,
    leverage_sketch: int | None = None,
) -> GridSpec:
    """Validate a grid and return its :class:`GridSpec` (nothing is computed).

    Args:
        dataset: the data.
        subset_sizes: training subset sizes (configurations); each ≤ the pool size.
        levels: training levels (default all of the dataset's).
        weight_ratios: w_E / w_F values (default the study's 5, 10, 12.25, 50, 150, 300).
        twojmax: one or several 2Jmax.
        sampling: ``"energy"`` / ``"block"`` (∝ leverage, without replacement) and/or ``"random"`` (uniform).
        repetitions: independent draws per sampling method (the subsets of one draw are nested).
        seed: seed of the draws; repetition r uses ``leverage.repetition_rng(seed, r)`` like ``LeverageSelection``.
        test_indices: test configurations, only reported (default: from :func:`resolve_split`).
        split_seed: seed of the default split.
        force_weight: w_F (default 1).
        descriptor_settings: ``compute snap`` overrides.
        leverage_energy_weight: w_E / w_F of the energy row in block leverage (the study: 150).
        rcond, ridge: solver options.
        element: chemical symbol.
        train_pool: configurations to draw training subsets from.
        validation_indices: configurations recipes are compared on.
        split_fractions: (training pool, validation, test) fractions of the seeded split by configuration for the
            sets not given (default 50/25/25); see :func:`resolve_split`.
        reference_level: level the errors are quoted against (default: the most precise by its settings).
        leverage_ridge: λ / s_max² > 0 of ridge leverage for leverage sampling (default ``None``: plain leverage
            unless the pool's rows are all independent, see :func:`~pyiron_mlip_tradeoff.leverage.leverage_scores`).
        stress_weight: w_V ≥ 0 on stress residuals in eV/Å³, the same for every point (default 0: no stress rows).
        elements: the model's elements in order (default ``(element,)``).
        reference_potential, reference_energies: subtracted from the labels (see :func:`fit_qsnap`).
        group_weights: per-group multipliers of (w_E, w_F, w_V) (see :func:`check_group_weights`).
        leverage_sketch: ``None`` (default): exact leverage scores. r ≥ 1: sketched scores for leverage sampling,
            an approximation (relative standard deviation at most √(2/r) per configuration) whose second pass over
            the pool costs about r / p of the exact one (see :func:`~pyiron_mlip_tradeoff.leverage.leverage_scores`).

    Raises:
        ValueError/TypeError: any invalid entry, an empty list (a grid with zero points), sizes beyond the pool,
            a training level not in the dataset, configurations whose DFT failed, bad split fractions or
            overlapping sets, a reference level not in the dataset or an ambiguous ladder.
    """
    if dataset.n_configs < 3:
        raise ValueError(f"the dataset has {dataset.n_configs} configuration(s); a grid needs a training pool, a "
                         "validation and a test set")
    reference = resolve_reference_level(dataset, reference_level)
    names = check_model_elements(dataset, None if elements is not None else element, elements)
    wv = _check_stress_weight(stress_weight)
    if wv > 0 and dataset.stress is None:
        raise ValueError("stress_weight > 0, but the dataset has no stresses")
    energies = check_reference_energies(reference_energies, names)
    gw = check_group_weights(group_weights, dataset.group_names)
    if reference_potential is not None:
        check_reference(reference_potential, names)
    levels_list = list(dataset.levels) if levels is None else _as_list(levels, "levels")
    levels_t = tuple(_check_level(dataset, lv, "training level") for lv in levels_list)
    if len(set(levels_t)) != len(levels_t):
        raise ValueError(f"levels contains duplicates: {list(levels_t)}")
    ratios = tuple(check_weight("weight ratio w_E/w_F", r) for r in _as_list(weight_ratios, "weight_ratios"))
    if len(set(ratios)) != len(ratios):
        raise ValueError(f"weight_ratios contains duplicates: {list(ratios)}")
    wf = check_weight("force_weight", force_weight)
    settings = _settings_dict(descriptor_settings)
    tjs = []
    for tj in _as_list(twojmax, "twojmax"):
        if isinstance(tj, (float, np.floating)) and float(tj).is_integer():
            tj = int(tj)
        resolve_settings(tj, settings, len(names))  # raises for an odd, negative, too large or non-integer 2Jmax
        tjs.append(int(tj))
    if len(set(tjs)) != len(tjs):
        raise ValueError(f"twojmax contains duplicates: {tjs}")
    methods = tuple(str(s) for s in _as_list(sampling, "sampling"))
    unknown = [s for s in methods if s not in SAMPLING_METHODS]
    if unknown:
        raise ValueError(f"unknown sampling method(s) {unknown}; choose from {SAMPLING_METHODS}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"sampling contains duplicates: {list(methods)}")
    reps = _as_int(repetitions, "repetitions", 1)
    seed = _as_int(seed, "seed", 0)

    pool, validation, test = resolve_split(dataset, validation_indices, test_indices, split_fractions,
                                           _as_int(split_seed, "split_seed", 0), train_pool)

    sizes = sorted(_as_int(s, "subset size", 1) for s in _as_list(subset_sizes, "subset_sizes"))
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"subset_sizes contains duplicates: {sizes}")
    if sizes[-1] > pool.size:
        raise ValueError(f"subset size {sizes[-1]} is larger than the training pool ({pool.size} configurations)")
    lev_w = check_weight("leverage_energy_weight", leverage_energy_weight)
    lev_ridge = None if leverage_ridge is None else check_ridge(leverage_ridge)
    sketch = check_sketch_columns(leverage_sketch)
    if ridge is not None:
        check_weight("ridge", ridge)
    if rcond is not None and not (np.isfinite(float(rcond)) and 0 <= float(rcond) < 1):
        raise ValueError(f"rcond must be None or in [0, 1), got {rcond!r}")
    return GridSpec(levels_t, tuple(sizes), ratios, wf, tuple(tjs), methods, reps, seed, pool, test, settings,
                    lev_w, rcond, ridge, element, validation, reference, lev_ridge, wv,
                    None if elements is None else names,
                    None if reference_potential is None else dict(reference_potential), energies, gw, sketch)


@dataclass
class GridPoint:
    """One computed grid point.

    Attributes:
        key: (training_level, subset_size, sampling, repetition, energy_weight, force_weight, twojmax).
        weight_ratio: w_E / w_F.
        sampling, repetition, subset_size: how the training set was drawn.
        result: the fit (coefficients, error table, cost).
        n_columns: number of qSNAP columns p.
    """

    key: PointKey
    weight_ratio: float
    sampling: str
    repetition: int
    subset_size: int
    result: FitResult
    n_columns: int

    def row(self) -> dict:
        """The point as a table row (columns :data:`TABLE_COLUMNS`; errors vs the reference level in meV/atom,
        meV/Å)."""
        r = self.result
        return {
            "training_level": r.training_level,
            "subset_size": self.subset_size,
            "sampling": self.sampling,
            "repetition": self.repetition,
            "weight_ratio": self.weight_ratio,
            "energy_weight": r.energy_weight,
            "force_weight": r.force_weight,
            "twojmax": r.twojmax,
            "n_train": r.n_train,
            "n_columns": self.n_columns,
            "rank": r.rank,
            "dft_seconds": r.dft_seconds,
            "reference_level": r.reference_level,
            **r.summary(),
            "stress_weight": r.stress_weight,
        }


def _subset_order(spec: GridSpec, sampling: str, repetition: int, scores: dict) -> np.ndarray:
    """Pool configurations in draw order for (sampling, repetition); subsets are prefixes. ``scores``: the pool's
    leverage scores by sampling method (from :func:`_once_per_grid_parts`)."""
    rng = repetition_rng(spec.seed, repetition)
    if sampling == "random":
        return spec.pool[ranking(np.ones(spec.pool.size), "uniform", rng)]
    return spec.pool[ranking(scores[sampling], "proportional", rng)]


def run_grid(
    dataset: LadderDataset,
    spec: GridSpec,
    *,
    cache_dir: str | os.PathLike | None = None,
    descriptors: Mapping[int, object] | None = None,
    skip: Callable[[PointKey], bool] | Iterable[PointKey] | None = None,
    on_skip: Callable[[PointKey], None] | None = None,
    timings: dict | None = None,
    once_per_grid: Callable[[int, dict[str, Callable[[], object]]], Mapping[str, object]] | None = None,
) -> Iterator[GridPoint]:
    """Compute every point of a validated grid from sufficient statistics; yields one :class:`GridPoint` each.

    Per 2Jmax: descriptors of all configurations (from ``descriptors[twojmax]``, else the cache in ``cache_dir``, else
    in memory) and the validation- and test-set statistics, once. Per (sampling, repetition): the leverage scores of
    the pool (once per sampling method) give a ranking whose prefixes are the subsets; the statistics of all of them
    come from one streamed pass over the largest (:func:`draw_statistics`: each segment between two subset sizes
    folded in configuration-index order, snapshots at every size), so a draw costs one QR pass over its largest
    subset, not one per size. A point equals the standalone fit of its set (``fit_qsnap``, which folds the set in
    index order in one go) up to rounding of the order of cond × eps. Per (subset, weight ratio): one least-squares
    solve of the stacked weighted factors (at most as many rows as the subset has, at most 2p + 1) shared by all
    training levels — by back-substitution on their combined triangular factor when that is provably
    well-conditioned against the cut-off, else by SVD (``regression._fit_pairs``); for a subset with fewer rows
    than p the factorisation is also shared by all weight ratios. Errors on the subset and on the test set from their
    statistics, all training levels of a weight in one product.

    Args:
        dataset: the data.
        spec: from :func:`plan_grid`.
        cache_dir: descriptor cache folder (HDF5 stores read configuration by configuration, so memory stays
            bounded by the statistics, O(p²·levels)).
        descriptors: ``{twojmax: DescriptorSet or DescriptorStore}`` of all dataset structures, to reuse.
        skip: keys (or a predicate) of points already done: they are not yielded, and subsets whose points are all
            done are not even accumulated.
        on_skip: called with every skipped key (e.g. to advance a progress bar).
        timings: a dict that gets the wall seconds of the parts added up as they run: ``"descriptors"``, ``"sets"``
            (validation and test statistics), ``"leverage"`` (leverage scores of the pool) and ``"subsets"`` (the
            streamed passes over the draws), and the CPU seconds of this process of each as ``"<name>_cpu"``; the
            rest of the time is fits, errors and whatever the caller does with the points.
        once_per_grid: called per 2Jmax as ``once_per_grid(twojmax, parts)`` with the functions of that 2Jmax's
            once-per-grid parts (``"test"``, ``"validation"``: set statistics; ``"leverage_<sampling>"``: leverage
            scores of the pool, for each leverage sampling with points to do); returns the value of every part. By
            default each is called here; a chunked grid passes one that shares them among its chunks.

    Yields:
        :class:`GridPoint` in the order of :meth:`GridSpec.keys` (skipped points left out).
    """
    if skip is None:
        def is_done(key):
            return False
    elif callable(skip):
        is_done = skip
    else:
        done = set(skip)

        def is_done(key):
            return key in done

    reference = resolve_reference_level(dataset, spec.reference_level)
    use_stress = spec.stress_weight > 0
    grouped = _grouped(dataset, spec.group_weights)
    offsets, offsets_done = None, False
    for tj in spec.twojmax:
        keys_tj = [k for k in spec.keys() if k[6] == tj]
        if all(is_done(k) for k in keys_tj):
            for k in keys_tj:
                if on_skip is not None:
                    on_skip(k)
            continue
        clock = _Clock(timings)
        desc = None if descriptors is None else descriptors.get(tj)
        if desc is None:
            with clock("descriptors"):
                desc = dataset_descriptors(dataset, tj, spec.descriptor_settings, element=spec.element,
                                           elements=spec.elements, virial=use_stress, cache_dir=cache_dir)
        if desc.n_configs != dataset.n_configs:
            raise ValueError(f"descriptors for 2Jmax {tj} cover {desc.n_configs} configurations, the dataset "
                             f"{dataset.n_configs}")
        p = int(desc.n_columns)
        if offsets is None and not offsets_done:
            offsets = target_offsets(dataset, spec.model_elements, spec.reference_potential, spec.reference_energies)
            offsets_done = True
        common = {"offsets": offsets, "stress": use_stress, "grouped": grouped}
        parts = _once_per_grid_parts(dataset, spec, desc, tj, common, is_done, clock)
        values = once_per_grid(tj, parts) if once_per_grid is not None else {k: f() for k, f in parts.items()}
        test_stats, validation_stats = values["test"], values.get("validation")
        scores: dict[str, np.ndarray] = {k.removeprefix("leverage_"): np.asarray(v) for k, v in values.items()
                                         if k.startswith("leverage_")}
        for sampling in spec.sampling:
            for rep in range(spec.repetitions):
                todo = {}
                for size in spec.subset_sizes:
                    keys = [(lv, size, sampling, rep, r * spec.force_weight, spec.force_weight, tj)
                            for r in spec.weight_ratios for lv in spec.levels]
                    pending = [k for k in keys if not is_done(k)]
                    if on_skip is not None:
                        for k in keys:
                            if k not in pending:
                                on_skip(k)
                    if pending:
                        todo[size] = set(pending)
                if not todo:
                    continue
                with clock("leverage"):
                    order = _subset_order(spec, sampling, rep, scores)
                # one streamed pass over the draw: the statistics of every nested subset are snapshots of one
                # accumulator, taken at every subset size of the grid up to the largest one still wanted (also at
                # sizes already done, so a point's numbers do not depend on what was skipped)
                largest = max(todo)
                sizes = [s for s in spec.subset_sizes if s <= largest]
                for size, stats in clock.iterate("subsets", draw_statistics(dataset, desc, order, sizes, **common)):
                    if size in todo:
                        yield from _points_for_subset(dataset, spec, stats, test_stats, validation_stats,
                                                      order[:size], todo[size], sampling, rep, tj, p, reference)


def _once_per_grid_parts(dataset: LadderDataset, spec: GridSpec, desc, tj: int, common: dict, is_done,
                         clock: _Clock) -> dict[str, Callable[[], object]]:
    """The functions of a 2Jmax's once-per-grid parts (see :func:`run_grid`'s ``once_per_grid``), each timed;
    the leverage scores (a pass over the whole pool, the largest part) first."""
    def timed(name, compute):
        def call():
            with clock(name):
                return compute()
        return call

    parts = {}
    for sampling in spec.sampling:
        if sampling == "random" or all(is_done(k) for k in spec.keys() if k[6] == tj and k[2] == sampling):
            continue
        kind = sampling  # "energy" or "block"

        def scores(kind=kind):
            return leverage_scores(lambda: desc.iter_blocks(spec.pool, forces=kind == "block"), kind,
                                   energy_weight=spec.leverage_energy_weight, rcond=None,
                                   ridge=spec.leverage_ridge, sketch_columns=spec.leverage_sketch,
                                   sketch_seed=spec.seed).scores

        parts[f"leverage_{sampling}"] = timed("leverage", scores)
    parts["test"] = timed("sets", lambda: set_statistics(dataset, desc, spec.test_indices, **common))
    if spec.validation_indices is not None:
        parts["validation"] = timed("sets", lambda: set_statistics(dataset, desc, spec.validation_indices, **common))
    return parts


class _Clock:
    """Adds wall seconds of named parts to a dict (nothing without one)."""

    def __init__(self, timings: dict | None) -> None:
        self.timings = timings

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            if self.timings is not None:
                self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
                self.timings[f"{name}_cpu"] = self.timings.get(f"{name}_cpu", 0.0) + time.process_time() - cpu

    def iterate(self, name: str, items: Iterable) -> Iterator:
        """The items of ``items``, with the time spent producing them (not consuming them) counted as ``name``."""
        items = iter(items)
        while True:
            with self(name):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item


def draw_statistics(
    dataset: LadderDataset,
    descriptors,
    order: np.ndarray,
    sizes: Sequence[int],
    *,
    offsets: TargetOffsets | None = None,
    stress: bool = False,
    grouped: bool = False,
) -> Iterator[tuple[int, LinearStatistics | GroupedStatistics]]:
    """Statistics of the nested subsets ``order[:n]`` for every n in ``sizes``, in one streamed pass.

    The configurations between two consecutive sizes (``order[a:b]``) are folded in configuration-index order: the
    statistics at each size are those of its set whatever the draw's order inside a segment, and the descriptor
    rows are read in file order (a chunked cache opens each chunk file once per segment, not once per
    configuration). Memory: one accumulator, O(k²) for k = p + levels + 1, independent of the subset sizes.

    A fit from these statistics equals the standalone fit of the same set (:func:`fit_qsnap`, folded in index
    order in one go) up to the rounding of the different fold order: relative differences of the order of the
    condition number × machine epsilon (``tests/test_fitting.py`` checks both against dense SVD least squares).

    Args:
        dataset, descriptors: labels and descriptor rows of every configuration of the dataset.
        order: dataset indices in draw order (at least ``max(sizes)`` of them).
        sizes: strictly increasing subset sizes.
        offsets, stress, grouped: as for :func:`set_statistics`.

    Yields:
        ``(size, statistics)``, one per size, each independent of later ones.
    """
    order = np.asarray(order, dtype=np.int64)
    sizes = [int(s) for s in sizes]
    bounds = [0, *sizes]
    segments = [np.sort(order[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def blocks():
        for segment in segments:
            yield from labelled_blocks(dataset, descriptors, segment, offsets=offsets, stress=stress)

    levels = tuple(dataset.levels)
    # a store read segment by segment keeps its files open for the pass (else each segment reopens every chunk)
    keep = getattr(descriptors, "kept_open", None)
    with keep() if keep is not None else contextlib.nullcontext():
        if grouped:
            groups = dataset.groups[np.concatenate(segments)].tolist()
            yield from grouped_statistics_for_nested_subsets(blocks(), groups, sizes, levels=levels)
        else:
            yield from statistics_for_nested_subsets(blocks(), sizes, levels=levels)


def _errors_many(stats, betas: np.ndarray) -> list:
    """:func:`errors_many` for plain statistics; for grouped ones, per fit ``{"*ALL": …, group: …}``."""
    if not isinstance(stats, GroupedStatistics):
        return errors_many(stats, betas)
    per = {ALL: errors_many(stats.all, betas)}
    for name, st in stats.groups.items():
        if st.n_configs:
            per[name] = errors_many(st, betas)
    return [{name: e[j] for name, e in per.items()} for j in range(betas.shape[1])]


def _points_for_subset(
    dataset: LadderDataset, spec: GridSpec, stats, test_stats, validation_stats, train: np.ndarray, pending: set, sampling: str, rep: int, tj: int,
    p: int, reference: int,
) -> Iterator[GridPoint]:
    size = int(train.size)
    train_sorted = np.sort(train)
    seconds = {lv: _dft_seconds(dataset, lv, train) for lv in spec.levels}
    wf = spec.force_weight
    todo = []
    for ratio in spec.weight_ratios:
        we = ratio * wf
        wanted = [lv for lv in spec.levels if (lv, size, sampling, rep, we, wf, tj) in pending]
        if wanted:
            todo.append((ratio, we, wanted))
    # one least-squares solve per weight for all training levels (sharing the factorisation of a small subset),
    # then the errors of all wanted fits in one matrix product per set
    weights = [(we, wf, spec.stress_weight) for _, we, _ in todo]
    if isinstance(stats, GroupedStatistics):
        if _present(stats, spec.group_weights):
            all_fits = stats.fit_weights(weights, group_weights=_present(stats, spec.group_weights),
                                         rcond=spec.rcond, ridge=spec.ridge)
        else:
            all_fits = fit_weights(stats.all, weights, rcond=spec.rcond, ridge=spec.ridge)
    else:
        all_fits = fit_weights(stats, weights, rcond=spec.rcond, ridge=spec.ridge)
    for (ratio, we, wanted), fits in zip(todo, all_fits, strict=True):
        betas = np.column_stack([fits[lv].coefficients for lv in wanted])
        train_errors, test_errors = _errors_many(stats, betas), _errors_many(test_stats, betas)
        validation_errors = None if validation_stats is None else _errors_many(validation_stats, betas)
        for j, lv in enumerate(wanted):
            sets = {"train": train_errors[j]}
            if validation_errors is not None:
                sets["validation"] = validation_errors[j]
            sets["test"] = test_errors[j]
            result = FitResult(
                coefficients=fits[lv].coefficients, errors=sets, dft_seconds=seconds[lv], n_train=size,
                training_level=int(lv), energy_weight=we, force_weight=wf, twojmax=int(tj),
                reference_level=reference, rank=int(fits[lv].rank), train_indices=train_sorted.copy(),
                test_indices=spec.test_indices, validation_indices=spec.validation_indices,
                stress_weight=spec.stress_weight, elements=spec.model_elements,
                reference_potential=spec.reference_potential, reference_energies=dict(spec.reference_energies),
                group_weights={g: list(t) for g, t in spec.group_weights.items()},
            )
            yield GridPoint((lv, size, sampling, rep, we, wf, tj), float(ratio), sampling, rep, size, result, p)
