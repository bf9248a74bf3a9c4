"""The reference level of a dataset: the precision level every "error against converged DFT" is measured against.

One rule for every job and function (fits, the grid, DFT-error tables, the command line): an explicit
``reference_level`` wins; otherwise it is the *most precise* level by its DFT settings — the densest k-mesh
(smallest k-point spacing; Γ only is the coarsest), and among levels with equally dense meshes the highest
plane-wave cutoff. Level labels are names, not a precision order: a ladder labelled 1, 2, 3 whose level 2 has the
densest k-mesh has reference level 2.

A ladder is *ambiguous*, and refused (give ``reference_level`` explicitly), when

* two levels have the same k-point spacing and the same cutoff (no setting tells them apart), or
* the level with the densest k-mesh has a lower cutoff than another level (one is more precise in k, the other in
  the basis: neither is "the most precise"), or
* some levels have recorded settings and others do not.

A dataset without any recorded settings (a ``LadderDataset`` built from plain integer labels) has nothing to rank by:
with one level that level is the reference; with several, the largest label is taken, the convention of the
study's ladder (1 = cheapest) — the only case where the label decides, and documented as such.

Nothing in this module imports pyiron.
"""

from __future__ import annotations

import math

import numpy as np

from .dataset import LadderDataset

__all__ = ["AmbiguousLadderError", "most_precise_level", "resolve_reference_level"]


class AmbiguousLadderError(ValueError):
    """The dataset's level settings do not single out one most precise level."""


def _describe(setting) -> str:
    k = "Γ only" if setting.kspacing is None else f"k-spacing {setting.kspacing:g} 1/Å"
    return f"level {setting.level} ({k}, cutoff {setting.cutoff:g} eV)"


def most_precise_level(dataset: LadderDataset) -> int:
    """Label of the dataset's most precise level by its settings (see the module docstring for the rule).

    Raises:
        AmbiguousLadderError: ties in both settings, a densest-k level with a lower cutoff than another level, or
            settings recorded for some levels only.
    """
    levels = [int(lv) for lv in dataset.levels]
    settings = getattr(dataset, "level_settings", {}) or {}
    known = [lv for lv in levels if lv in settings]
    if not known:
        return levels[0] if len(levels) == 1 else max(levels)
    if len(known) != len(levels):
        missing = [lv for lv in levels if lv not in settings]
        raise AmbiguousLadderError(
            f"the dataset records DFT settings for levels {known} but not for {missing}: the most precise level "
            "cannot be told; give reference_level explicitly"
        )

    def k_density(lv: int) -> float:  # larger = denser; Γ only is the coarsest
        spacing = settings[lv].kspacing
        return 0.0 if spacing is None else 1.0 / spacing

    # densest k-mesh first, then the highest cutoff
    ordered = sorted(levels, key=lambda lv: (k_density(lv), settings[lv].cutoff), reverse=True)
    best = ordered[0]
    s_best = settings[best]
    for other in ordered[1:]:
        s = settings[other]
        same_k = math.isclose(k_density(other), k_density(best), rel_tol=1e-12)
        if same_k and math.isclose(s.cutoff, s_best.cutoff, rel_tol=1e-12):
            raise AmbiguousLadderError(
                f"ambiguous ladder: {_describe(s_best)} and {_describe(s)} have the same k-mesh and cutoff; "
                "give reference_level explicitly"
            )
        if s.cutoff > s_best.cutoff:
            raise AmbiguousLadderError(
                f"ambiguous ladder: {_describe(s_best)} has the densest k-mesh but {_describe(s)} the higher "
                "cutoff, so neither is the most precise; give reference_level explicitly"
            )
    return int(best)


def resolve_reference_level(dataset: LadderDataset, reference_level: int | None = None,
                            name: str = "reference_level") -> int:
    """``reference_level`` checked against the dataset, or :func:`most_precise_level` when it is ``None``.

    Raises:
        ValueError: a level that is not an integer label of the dataset (the message names ``name`` and the
            dataset's levels).
        AmbiguousLadderError: ``None`` on an ambiguous ladder.
    """
    if reference_level is None:
        return most_precise_level(dataset)
    if isinstance(reference_level, (bool, np.bool_)) or not (
        isinstance(reference_level, (int, np.integer))
        or (isinstance(reference_level, (float, np.floating)) and float(reference_level).is_integer())
    ):
        raise ValueError(f"{name} must be an integer level label of the dataset {list(dataset.levels)}, "
                         f"got {reference_level!r}")
    if int(reference_level) not in dataset.levels:
        raise ValueError(f"{name} {reference_level} is not a level of the dataset (levels {list(dataset.levels)})")
    return int(reference_level)
