"""DFT precision levels: k-point density, plane-wave cutoff and smearing.

A *precision level* is one rung of the ladder of DFT settings that the same structures are computed at.
The k-point density follows VASP's ``KSPACING`` semantics: the number of divisions along reciprocal
vector ``b_i`` is ``max(1, ceil(|b_i| / kspacing))`` with ``|b_i|`` *including* the factor 2π, and the mesh
is Γ-centred (VASP ``KGAMMA = .TRUE.``).  ``kspacing=None`` means a Γ-only calculation.

The reference ladder is the six-level ladder of the study this package is built on (Be, VASP, PBE,
Methfessel–Paxton order 1, width 0.2 eV).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "PrecisionLevel",
    "REFERENCE_LADDER",
    "kpoint_mesh",
    "resolve_levels",
]

SMEARING_METHODS = ("methfessel-paxton", "gaussian", "fermi-dirac")


@dataclass(frozen=True)
class PrecisionLevel:
    """One DFT precision level.

    Attributes:
        level: integer label of the level (1 = cheapest in the reference ladder).
        kspacing: k-point spacing in 1/Å with VASP ``KSPACING`` semantics (2π included), or ``None`` for Γ only.
        cutoff: plane-wave cutoff in eV.
        smearing: occupation smearing method, one of ``methfessel-paxton``, ``gaussian``, ``fermi-dirac``.
        smearing_order: order of the Methfessel–Paxton smearing (ignored for the other methods).
        smearing_width: smearing width in eV.
    """

    level: int
    kspacing: float | None
    cutoff: float
    smearing: str = "methfessel-paxton"
    smearing_order: int = 1
    smearing_width: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.level, bool) or not isinstance(self.level, (int, np.integer)):
            raise TypeError(f"level must be an integer label, got {self.level!r}")
        object.__setattr__(self, "level", int(self.level))
        if self.kspacing is not None:
            if not np.isfinite(self.kspacing) or self.kspacing <= 0:
                raise ValueError(
                    f"level {self.level}: kspacing must be a positive number of 1/Å (or None for Γ only), "
                    f"got {self.kspacing!r}"
                )
            object.__setattr__(self, "kspacing", float(self.kspacing))
        if not np.isfinite(self.cutoff) or self.cutoff <= 0:
            raise ValueError(f"level {self.level}: plane-wave cutoff must be positive (eV), got {self.cutoff!r}")
        object.__setattr__(self, "cutoff", float(self.cutoff))
        if self.smearing not in SMEARING_METHODS:
            raise ValueError(f"level {self.level}: smearing must be one of {SMEARING_METHODS}, got {self.smearing!r}")
        if not np.isfinite(self.smearing_width) or self.smearing_width <= 0:
            raise ValueError(f"level {self.level}: smearing width must be positive (eV), got {self.smearing_width!r}")
        object.__setattr__(self, "smearing_width", float(self.smearing_width))

    @property
    def gamma_only(self) -> bool:
        """True when the level samples the Brillouin zone at Γ only."""
        return self.kspacing is None

    def kpoint_mesh(self, cell: np.ndarray) -> tuple[int, int, int]:
        """Γ-centred k-mesh of ``cell`` (3×3, Å) at this level; see :func:`kpoint_mesh`."""
        return kpoint_mesh(cell, self.kspacing)

    def to_dict(self) -> dict:
        """Plain dictionary (for HDF5 / JSON storage)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> PrecisionLevel:
        """Inverse of :meth:`to_dict`."""
        kspacing = data.get("kspacing")
        if kspacing is not None and not np.isfinite(kspacing):
            kspacing = None
        return cls(
            level=int(data["level"]),
            kspacing=None if kspacing is None else float(kspacing),
            cutoff=float(data["cutoff"]),
            smearing=str(data.get("smearing", "methfessel-paxton")),
            smearing_order=int(data.get("smearing_order", 1)),
            smearing_width=float(data.get("smearing_width", 0.2)),
        )

    def describe(self) -> str:
        """Short human-readable summary, e.g. ``'L3: k 0.75 1/Å, 400 eV'``."""
        k = "Γ only" if self.gamma_only else f"k {self.kspacing:g} 1/Å"
        return f"L{self.level}: {k}, {self.cutoff:g} eV"


#: The reference study's six-level ladder (k-spacing in 1/Å with 2π included, cutoff in eV).
REFERENCE_LADDER: dict[int, PrecisionLevel] = {
    1: PrecisionLevel(1, None, 300.0),
    2: PrecisionLevel(2, 1.00, 300.0),
    3: PrecisionLevel(3, 0.75, 400.0),
    4: PrecisionLevel(4, 0.50, 500.0),
    5: PrecisionLevel(5, 0.25, 700.0),
    6: PrecisionLevel(6, 0.10, 900.0),
}


def kpoint_mesh(cell: np.ndarray, kspacing: float | None) -> tuple[int, int, int]:
    """Γ-centred Monkhorst–Pack divisions for a cell with VASP ``KSPACING`` semantics.

    Args:
        cell: 3×3 array of lattice vectors (rows) in Å.
        kspacing: spacing in 1/Å, 2π included; ``None`` returns ``(1, 1, 1)`` (Γ only).

    Returns:
        ``(n1, n2, n3)`` with ``n_i = max(1, ceil(|b_i| / kspacing))`` and ``b = 2π (A^-1)^T``.
    """
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3):
        raise ValueError(f"cell must be 3×3, got shape {cell.shape}")
    volume = abs(np.linalg.det(cell))
    if volume < 1e-8:
        raise ValueError("cell has zero volume: k-point mesh undefined")
    if kspacing is None:
        return (1, 1, 1)
    if kspacing <= 0:
        raise ValueError(f"kspacing must be positive, got {kspacing}")
    reciprocal = 2.0 * math.pi * np.linalg.inv(cell).T
    lengths = np.linalg.norm(reciprocal, axis=1)
    # a tiny tolerance keeps exact multiples (|b|/kspacing = 4.0000000001) from rounding up by float noise
    return tuple(max(1, math.ceil(length / kspacing - 1e-9)) for length in lengths)


def resolve_levels(
    levels: Iterable[int | PrecisionLevel | Mapping], ladder: Mapping[int, PrecisionLevel] | None = None
) -> list[PrecisionLevel]:
    """Turn level numbers (looked up in ``ladder``, default the reference ladder) or levels into levels.

    Raises:
        ValueError: for an empty list, an unknown level number or duplicate labels.
    """
    ladder = REFERENCE_LADDER if ladder is None else ladder
    resolved: list[PrecisionLevel] = []
    for item in levels:
        if isinstance(item, PrecisionLevel):
            resolved.append(item)
        elif isinstance(item, Mapping):
            resolved.append(PrecisionLevel.from_dict(item))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if int(item) not in ladder:
                raise ValueError(f"unknown precision level {item!r}; the ladder defines levels {sorted(ladder)}")
            resolved.append(ladder[int(item)])
        else:
            raise TypeError(f"a level is a level number or a PrecisionLevel, got {item!r}")
    if not resolved:
        raise ValueError("no precision levels given")
    labels = [lv.level for lv in resolved]
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate precision level labels: {labels}")
    return resolved
