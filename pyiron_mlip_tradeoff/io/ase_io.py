"""ASE ``Atoms`` and extended XYZ in and out of a ``LadderDataset``.

Energies are taken from a calculator's results: ``free_energy`` when present (the force-consistent energy, e.g.
VASP's TOTEN), else ``energy``; forces (eV/Å) from ``forces``; stress (eV/Å³, ASE sign, Voigt xx yy zz yz xz xy)
from ``stress`` when present. Only results a calculator already holds are read: nothing is computed here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ..dataset import DatasetError, LadderDataset
from ._assemble import Frame, assemble, check_results

__all__ = ["from_atoms", "from_extxyz", "to_atoms", "to_extxyz", "frame_results"]


def frame_results(atoms: Atoms, source: str) -> tuple[float, np.ndarray, np.ndarray | None]:
    """(energy eV, forces (N, 3) eV/Å, stress (6,) eV/Å³ or None) held by ``atoms``' calculator."""
    if not isinstance(atoms, Atoms):
        raise DatasetError(f"{source}: expected an ASE Atoms, got {type(atoms).__name__}")
    results = dict(getattr(atoms.calc, "results", None) or {}) if atoms.calc is not None else {}
    if not results:
        raise DatasetError(f"{source}: the structure has no calculator results (energy, forces); attach them with a "
                           "SinglePointCalculator or run the calculator first")
    energy = results.get("free_energy", results.get("energy"))
    return check_results(source, len(atoms), energy, results.get("forces"), results.get("stress"))


def _group(atoms: Atoms, group_key: str | None) -> str:
    if group_key and group_key in atoms.info:
        return str(atoms.info[group_key])
    return "default"


def from_atoms(frames, levels: Sequence[int] | None = None, level_key: str | None = None,
               group_key: str | None = "group", identity_key: str | None = None, source: str = "frame",
               metadata: dict | None = None) -> LadderDataset:
    """Dataset from ASE ``Atoms`` carrying calculator results.

    Args:
        frames: either one list of ``Atoms`` (one level, or several with ``level_key``), or one list per level
            (then ``levels`` labels them, default 1..n; the lists are aligned: entry i of every list is configuration
            i, and ``None`` marks a configuration missing at that level).
        levels: level labels (one per list, or the levels expected with ``level_key``).
        level_key: ``atoms.info`` key holding each frame's integer level (one flat list). Frames of the same
            structure at different levels are one configuration (or frames sharing ``atoms.info[identity_key]``).
        group_key: ``atoms.info`` key of a frame's group (default ``"group"``; absent → ``"default"``).
        identity_key: ``atoms.info`` key naming the configuration across levels (optional; with a flat list).

    Raises:
        DatasetError: a frame without energy or forces, forces of the wrong shape, a level key missing on a frame,
            lists of different length, or structures that differ between levels for one configuration.
    """
    frames = list(frames)
    if not frames:
        raise DatasetError("from_atoms: no frames")
    nested = all(isinstance(f, (list, tuple)) for f in frames)
    records: list[Frame] = []
    if nested:
        if level_key is not None:
            raise DatasetError("from_atoms: give one list per level or one list with level_key, not both")
        labels = list(range(1, len(frames) + 1)) if levels is None else [int(lv) for lv in levels]
        if len(labels) != len(frames):
            raise DatasetError(f"from_atoms: {len(frames)} lists of frames but {len(labels)} level labels")
        lengths = {len(f) for f in frames}
        if len(lengths) != 1:
            raise DatasetError(f"from_atoms: the per-level lists have different lengths {[len(f) for f in frames]}; "
                               "entry i of every list is configuration i (None where it is missing)")
        for label, level_frames in zip(labels, frames, strict=True):
            for i, atoms in enumerate(level_frames):
                if atoms is None:
                    continue
                where = f"{source} {i} of level {label}" if len(frames) > 1 else f"{source} {i}"
                energy, forces, stress = frame_results(atoms, where)
                records.append(Frame(label, atoms, energy, forces, stress, _group(atoms, group_key), where,
                                     identity=i))
        return assemble(records, levels=labels, metadata=metadata)
    for i, atoms in enumerate(frames):
        where = f"{source} {i}"
        if not isinstance(atoms, Atoms):
            raise DatasetError(f"{where}: expected an ASE Atoms (or one list per level), got {type(atoms).__name__}")
        if level_key is None:
            level = 1 if levels is None else None
            if level is None:
                if len(levels) != 1:
                    raise DatasetError("from_atoms: several levels need one list per level or a level_key")
                level = int(levels[0])
        else:
            if level_key not in atoms.info:
                raise DatasetError(f"{where}: no level key {level_key!r} in atoms.info (keys: {sorted(atoms.info)})")
            try:
                level = int(atoms.info[level_key])
            except (TypeError, ValueError):
                raise DatasetError(f"{where}: level {atoms.info[level_key]!r} is not an integer") from None
        energy, forces, stress = frame_results(atoms, where)
        identity = None
        if identity_key is not None:
            if identity_key not in atoms.info:
                raise DatasetError(f"{where}: no identity key {identity_key!r} in atoms.info")
            identity = atoms.info[identity_key]
        elif level_key is None:
            identity = i  # one level: every frame is its own configuration
        records.append(Frame(level, atoms, energy, forces, stress, _group(atoms, group_key), where, identity=identity))
    return assemble(records, levels=levels if level_key is not None else None, metadata=metadata)


def from_extxyz(path_or_paths, level_key: str | None = None, levels: Sequence[int] | None = None,
                group_key: str | None = "group", identity_key: str | None = None) -> LadderDataset:
    """Dataset from extended XYZ file(s), read with ASE's reader.

    One path: its frames, one level or several with ``level_key``. Several paths without ``level_key``: one file per
    level (``levels`` labels them, default 1..n; frame i of every file is configuration i). Several paths with
    ``level_key``: all frames together.
    """
    from ase.io import read

    paths = [Path(path_or_paths)] if isinstance(path_or_paths, (str, os.PathLike)) else [Path(p) for p in path_or_paths]
    per_file = []
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"no extended XYZ file at {path}")
        try:
            per_file.append(read(path, index=":", format="extxyz"))
        except Exception as err:  # ASE raises several kinds for malformed frames
            raise DatasetError(f"{path}: not readable as extended XYZ ({type(err).__name__}: {err})") from err
    meta = {"source": "extxyz", "files": [str(p) for p in paths]}
    if len(paths) > 1 and level_key is None:
        return from_atoms(per_file, levels=levels, group_key=group_key, source="frame", metadata=meta)
    frames = [a for f in per_file for a in f]
    return from_atoms(frames, levels=levels, level_key=level_key, group_key=group_key, identity_key=identity_key,
                      source=f"{paths[0].name} frame" if len(paths) == 1 else "frame", metadata=meta)


def _level_row(dataset: LadderDataset, level: int | None) -> int:
    if level is None:
        if dataset.n_levels != 1:
            raise ValueError(f"the dataset has levels {list(dataset.levels)}: say which one to export")
        return 0
    return dataset.level_index(level)


def to_atoms(dataset: LadderDataset, level: int | None = None, include_unavailable: bool = False) -> list[Atoms]:
    """The configurations of one level as ``Atoms`` with a ``SinglePointCalculator`` (energy, forces, stress).

    ``info`` holds ``group``, ``config_index`` (position in the dataset) and ``level``. Configurations failed or
    missing at that level are left out (with a warning naming how many).
    """
    row = _level_row(dataset, level)
    label = dataset.levels[row]
    offsets = dataset.atom_offsets
    keep = np.flatnonzero(dataset.available[row])
    if len(keep) < dataset.n_configs:
        warnings.warn(f"level {label}: {dataset.n_configs - len(keep)} configuration(s) failed or missing there are "
                      "left out", stacklevel=3)
    out = []
    for i in keep:
        atoms = dataset.structures[i].copy()
        results = {"energy": float(dataset.energy[row, i]), "forces": dataset.forces[row, offsets[i]:offsets[i + 1]].copy()}
        if dataset.stress is not None and np.isfinite(dataset.stress[row, i]).all():
            results["stress"] = dataset.stress[row, i].copy()
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info.update({"group": str(dataset.groups[i]), "config_index": int(i), "level": int(label)})
        out.append(atoms)
    return out


def to_extxyz(dataset: LadderDataset, path: str | os.PathLike, level: int | None = None) -> Path:
    """Write one level to an extended XYZ file (ASE's writer; energy eV, forces eV/Å, stress eV/Å³ ASE sign)."""
    from ase.io import write

    frames = to_atoms(dataset, level)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp, frames, format="extxyz")
    os.replace(tmp, path)
    return path
