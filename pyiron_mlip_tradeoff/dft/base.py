"""What every DFT engine returns for one (structure, precision level) calculation, and input checks.

Units: energy eV, forces eV/Å, stress eV/Å³ (Voigt xx, yy, zz, yz, xz, xy, ASE sign convention),
times in seconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from ase import Atoms

from ..precision import PrecisionLevel

__all__ = [
    "CalculationResult", "InputError", "check_structures", "initial_magnetic_moments", "structure_fingerprint",
    "MIN_DISTANCE",
]

#: atoms closer than this (Å) are rejected before any DFT starts
MIN_DISTANCE = 0.5


class InputError(ValueError):
    """Invalid ladder input, raised before any DFT calculation starts."""


@dataclass
class CalculationResult:
    """Result of one DFT calculation.

    Attributes:
        energy: free (force-consistent) energy in eV — the energy whose derivative the forces are.
        energy_zero_width: energy extrapolated to zero smearing width in eV (engine's estimate), NaN if unknown.
        forces: (N, 3) forces in eV/Å.
        stress: (6,) Voigt stress in eV/Å³, NaN if not computed.
        wall_seconds: wall time of the calculation itself (not the Python start-up) in s.
        core_seconds: CPU time used (user + system) in s.
        kmesh: Γ-centred k-point divisions.
        scf_iterations: number of SCF iterations (-1 if unknown).
        engine, engine_version: which code computed it.
        error: ``None`` for success, else the engine's message; values are NaN then.
    """

    energy: float
    forces: np.ndarray
    stress: np.ndarray
    wall_seconds: float
    core_seconds: float
    kmesh: tuple[int, int, int]
    scf_iterations: int = -1
    energy_zero_width: float = float("nan")
    engine: str = ""
    engine_version: str = ""
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @classmethod
    def failure(cls, n_atoms: int, kmesh: Sequence[int], message: str, wall_seconds: float = float("nan"),
                core_seconds: float = float("nan"), engine: str = "", engine_version: str = "") -> CalculationResult:
        """A failed calculation: NaN values and the error message."""
        return cls(
            energy=float("nan"),
            forces=np.full((n_atoms, 3), np.nan),
            stress=np.full(6, np.nan),
            wall_seconds=wall_seconds,
            core_seconds=core_seconds,
            kmesh=tuple(int(k) for k in kmesh),
            engine=engine,
            engine_version=engine_version,
            error=message or "unknown error",
        )

    def checked(self, n_atoms: int) -> CalculationResult:
        """This result, or a failed one with the reason when a "successful" result lacks what every stored
        calculation must have: a finite energy, finite (``n_atoms`` × 3) forces and its wall time."""
        if self.failed:
            return self
        problems = []
        if not np.isfinite(self.energy):
            problems.append("no energy")
        forces = np.asarray(self.forces, dtype=float)
        if forces.shape != (n_atoms, 3) or not np.isfinite(forces).all():
            problems.append(f"no finite forces for its {n_atoms} atoms (got shape {forces.shape})")
        if not np.isfinite(self.wall_seconds) or self.wall_seconds < 0:
            problems.append("no timing (wall seconds)")
        if not problems:
            return self
        return CalculationResult.failure(
            n_atoms, self.kmesh, f"{self.engine or 'engine'} returned " + ", ".join(problems),
            wall_seconds=self.wall_seconds, core_seconds=self.core_seconds, engine=self.engine,
            engine_version=self.engine_version,
        )

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (NaN written as null)."""
        data = asdict(self)
        data["forces"] = np.asarray(self.forces, dtype=float).tolist()
        data["stress"] = np.asarray(self.stress, dtype=float).tolist()
        data["kmesh"] = list(self.kmesh)
        return _nan_to_none(data)

    @classmethod
    def from_dict(cls, data: dict) -> CalculationResult:
        def num(x):
            return float("nan") if x is None else float(x)

        forces = np.array([[num(v) for v in row] for row in data["forces"]], dtype=float).reshape(-1, 3)
        return cls(
            energy=num(data["energy"]),
            forces=forces,
            stress=np.array([num(v) for v in data["stress"]], dtype=float),
            wall_seconds=num(data["wall_seconds"]),
            core_seconds=num(data["core_seconds"]),
            kmesh=tuple(int(k) for k in data["kmesh"]),
            scf_iterations=int(data.get("scf_iterations", -1)),
            energy_zero_width=num(data.get("energy_zero_width")),
            engine=data.get("engine", ""),
            engine_version=data.get("engine_version", ""),
            error=data.get("error"),
            extra=data.get("extra") or {},
        )


def _nan_to_none(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


def initial_magnetic_moments(atoms: Atoms) -> np.ndarray | None:
    """The structure's initial magnetic moments (μB per atom, collinear), or ``None`` when all are zero."""
    moments = np.asarray(atoms.get_initial_magnetic_moments(), dtype=float)
    if moments.ndim != 1:
        raise InputError("non-collinear initial magnetic moments are not supported; give one moment per atom")
    return moments if np.any(moments != 0) else None


def _structure_digest(atoms: Atoms) -> hashlib._Hash:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(atoms.get_atomic_numbers(), dtype=np.int64).tobytes())
    digest.update(np.round(np.ascontiguousarray(atoms.get_positions(), dtype=float), 10).tobytes())
    digest.update(np.round(np.ascontiguousarray(atoms.get_cell()[:], dtype=float), 10).tobytes())
    digest.update(np.ascontiguousarray(atoms.get_pbc(), dtype=bool).tobytes())
    return digest


def structure_fingerprint(atoms: Atoms, level: PrecisionLevel, engine: str, options: dict | None = None) -> str:
    """Hash of everything that determines a calculation: the structure (species, positions, cell, periodicity and,
    when set, initial magnetic moments), the level's *settings* (k-spacing, cutoff, smearing — not its number, so
    the same settings under another level number are the same calculation), the engine and its options.

    It is the key of a calculation in a unit store: any ladder that asks for the same calculation finds it.
    """
    digest = _structure_digest(atoms)
    settings = {k: v for k, v in level.to_dict().items() if k != "level"}
    payload: list = [settings, engine, options or {}]
    moments = initial_magnetic_moments(atoms)
    if moments is not None:
        payload.append(np.round(moments, 6).tolist())
    digest.update(json.dumps(payload, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


def legacy_fingerprint(atoms: Atoms, level: PrecisionLevel, engine: str, options: dict | None = None) -> str:
    """The fingerprint earlier versions stored (level number included, no magnetic moments); used only to adopt
    calculations of stores written in the old layout (``units/c<config>_L<level>.json``)."""
    digest = _structure_digest(atoms)
    digest.update(json.dumps([level.to_dict(), engine, options or {}], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


def check_structures(structures: Sequence[Atoms], min_distance: float = MIN_DISTANCE) -> None:
    """Reject what no DFT engine here can compute, before anything runs.

    Raises:
        InputError: empty list; an object that is not a structure; no atoms; a zero-volume cell; a structure that
            is not periodic in all three directions (a slab needs vacuum in a periodic cell); two atoms (or an atom
            and a periodic image) closer than ``min_distance`` Å.
    """
    if structures is None or len(structures) == 0:
        raise InputError("the structure list is empty: give at least one structure")
    for i, atoms in enumerate(structures):
        if not isinstance(atoms, Atoms):
            raise InputError(f"structure {i} is a {type(atoms).__name__}, not an ASE/pyiron structure")
        if len(atoms) == 0:
            raise InputError(f"structure {i} has no atoms")
        if not np.all(atoms.get_pbc()):
            raise InputError(
                f"structure {i} is not periodic in all directions (pbc={atoms.get_pbc().tolist()}); plane-wave DFT "
                "needs a periodic cell — model surfaces as slabs with vacuum and pbc=True"
            )
        if abs(atoms.cell.volume) < 1e-6:
            raise InputError(f"structure {i} has no cell (zero volume)")
        from ase.neighborlist import neighbor_list  # here: it imports scipy.sparse and .spatial (0.5 s)

        first, second, dist = neighbor_list("ijd", atoms, min_distance)
        if len(dist):
            k = int(np.argmin(dist))
            raise InputError(
                f"structure {i}: atoms {first[k]} and {second[k]} (or periodic images) are {dist[k]:.3f} Å apart, "
                f"closer than {min_distance} Å"
            )
