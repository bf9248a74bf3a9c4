"""Turn labelled frames (level, structure, energy, forces, stress, group, identity) into a ``LadderDataset``.

One implementation of "the same configuration at several levels": frames that share an identity must hold the same
structure (same species in the same order, same cell and positions to ``tolerance`` Å); a configuration without a
frame at some level is marked ``missing`` there (NaN values), never filled in.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..dataset import DatasetError, LadderDataset

#: Å; positions and cell vectors closer than this are the same structure
STRUCTURE_TOLERANCE = 1e-6


@dataclass
class Frame:
    """One calculation: a structure at one level with its results (eV, eV/Å, eV/Å³ ASE sign Voigt)."""

    level: int
    structure: Atoms
    energy: float
    forces: np.ndarray
    stress: np.ndarray | None
    group: str
    source: str  # how to name this frame in an error message
    identity: Hashable | None = None


def check_results(source: str, n_atoms: int, energy, forces, stress) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Validated (energy, forces (N, 3), stress (6,) or None); :class:`DatasetError` naming ``source``."""
    if energy is None:
        raise DatasetError(f"{source}: no energy")
    try:
        energy = float(np.asarray(energy).reshape(()))
    except (TypeError, ValueError):
        raise DatasetError(f"{source}: the energy {energy!r} is not one number") from None
    if forces is None:
        raise DatasetError(f"{source}: no forces")
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (n_atoms, 3):
        raise DatasetError(f"{source}: forces have shape {forces.shape}, expected ({n_atoms}, 3) for {n_atoms} atoms")
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if stress.shape != (6,):
            raise DatasetError(f"{source}: stress has shape {stress.shape}, expected (6,) Voigt or (3, 3)")
    if not np.isfinite(energy) or not np.isfinite(forces).all() or (stress is not None and not np.isfinite(stress).all()):
        raise DatasetError(f"{source}: non-finite energy, forces or stress")
    return energy, forces, stress


def plain_structure(atoms: Atoms) -> Atoms:
    """An ASE ``Atoms`` with only species, positions, cell and pbc (no calculator, no pyiron extras)."""
    return Atoms(numbers=atoms.get_atomic_numbers(), positions=atoms.get_positions(), cell=np.asarray(atoms.get_cell()),
                 pbc=atoms.get_pbc())


def same_structure(a: Atoms, b: Atoms, tolerance: float = STRUCTURE_TOLERANCE) -> str | None:
    """None when ``a`` and ``b`` are the same structure, else what differs."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} atoms"
    if not np.array_equal(a.get_atomic_numbers(), b.get_atomic_numbers()):
        return "different species (or order)"
    if not np.array_equal(a.get_pbc(), b.get_pbc()):
        return "different periodic boundary conditions"
    cell = np.abs(np.asarray(a.get_cell()) - np.asarray(b.get_cell())).max()
    if cell > tolerance:
        return f"cells differ by up to {cell:.3g} Å"
    pos = np.abs(a.get_positions() - b.get_positions()).max() if len(a) else 0.0
    if pos > tolerance:
        return f"positions differ by up to {pos:.3g} Å"
    return None


def _structure_key(atoms: Atoms) -> tuple:
    """A coarse key (species, cell and positions rounded to 1e-4 Å) to find candidate matches quickly."""
    return (atoms.get_atomic_numbers().tobytes(), np.round(np.asarray(atoms.get_cell()), 4).tobytes(),
            np.round(atoms.get_positions(), 4).tobytes())


def assemble(frames: Sequence[Frame], levels: Sequence[int] | None = None, metadata: dict | None = None,
             match_structures: bool = True) -> LadderDataset:
    """Dataset from frames; configurations in first-seen order.

    A frame's ``identity`` (if not None) names its configuration; frames sharing one must hold the same structure.
    Without identities and with ``match_structures``, frames of the same structure (to ``STRUCTURE_TOLERANCE``) at
    different levels are one configuration. Two frames of one configuration at one level are an error.
    """
    if not frames:
        raise DatasetError("no frames to build a dataset from")
    labels = sorted({f.level for f in frames}) if levels is None else [int(lv) for lv in levels]
    row = {lv: i for i, lv in enumerate(labels)}
    unknown = sorted({f.level for f in frames} - set(labels))
    if unknown:
        raise DatasetError(f"frames at level(s) {unknown} that are not in levels {labels}")
    configs: list[list[Frame | None]] = []
    by_identity: dict = {}
    by_key: dict = {}
    for frame in frames:
        index = None
        if frame.identity is not None:
            index = by_identity.get(frame.identity)
        elif match_structures:
            for candidate in by_key.get(_structure_key(frame.structure), []):
                if configs[candidate][row[frame.level]] is None:
                    index = candidate
                    break
        if index is not None:
            first = next(f for f in configs[index] if f is not None)
            difference = same_structure(first.structure, frame.structure)
            if difference is not None:
                raise DatasetError(
                    f"{frame.source} and {first.source} are one configuration (identity {frame.identity!r}) but "
                    f"their structures differ: {difference}"
                )
            if configs[index][row[frame.level]] is not None:
                other = configs[index][row[frame.level]]
                raise DatasetError(
                    f"{frame.source} and {other.source}: two calculations of one configuration at level {frame.level}"
                )
            if frame.group != first.group:
                raise DatasetError(f"{frame.source} is in group {frame.group!r} but {first.source} in {first.group!r}")
        else:
            index = len(configs)
            configs.append([None] * len(labels))
            if frame.identity is not None:
                by_identity[frame.identity] = index
            by_key.setdefault(_structure_key(frame.structure), []).append(index)
        configs[index][row[frame.level]] = frame

    firsts = [next(f for f in c if f is not None) for c in configs]
    structures = [plain_structure(f.structure) for f in firsts]
    n_atoms = np.array([len(s) for s in structures])
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    n_levels, n_configs = len(labels), len(configs)
    energy = np.full((n_levels, n_configs), np.nan)
    forces = np.full((n_levels, int(offsets[-1]), 3), np.nan)
    has_stress = any(f.stress is not None for f in frames)
    stress = np.full((n_levels, n_configs, 6), np.nan) if has_stress else None
    missing = np.ones((n_levels, n_configs), dtype=bool)
    for c, per_level in enumerate(configs):
        for li, frame in enumerate(per_level):
            if frame is None:
                continue
            missing[li, c] = False
            energy[li, c] = frame.energy
            forces[li, offsets[c]:offsets[c + 1]] = frame.forces
            if frame.stress is not None:
                stress[li, c] = frame.stress
    meta = dict(metadata or {})
    meta.setdefault("sources", [[f.source if f is not None else None for f in c] for c in configs])
    return LadderDataset(structures, energy, forces, levels=labels, stress=stress, missing=missing,
                         groups=[f.group for f in firsts], metadata=meta)
