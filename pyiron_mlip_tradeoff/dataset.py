"""``LadderDataset``: structures with energies, forces, stress and cost at several precision levels.

Array conventions (what every later step consumes):

* ``energy``  — (n_levels, n_configs), eV per configuration (total, not per atom);
* ``forces``  — (n_levels, total_atoms, 3), eV/Å, configurations concatenated in input order;
* ``stress``  — (n_levels, n_configs, 6), eV/Å³, Voigt order xx, yy, zz, yz, xz, xy (ASE sign convention);
* ``seconds`` — (n_levels, n_configs), wall seconds of each calculation;
* ``core_seconds`` — (n_levels, n_configs), CPU seconds of each calculation (robust against a busy machine);
* ``kmesh``   — (n_levels, n_configs, 3), Γ-centred k-point divisions used;
* ``failed``  — (n_levels, n_configs) bool; a failed calculation has NaN values and ``failed=True``;
* ``missing`` — (n_levels, n_configs) bool; a configuration never computed at a level (e.g. user data that has only
  some levels) has NaN values and ``missing=True``. Nothing is ever filled in: a missing value stays NaN. A
  calculation is either failed or missing or available, never two of these (``available`` is the mask of the rest);
* ``groups``  — (n_configs,) str, one group name per configuration (default ``"default"``; FitSNAP's sub-folder
  names, VASP run-folder groups, ... );
* species per atom come from the structures: ``numbers`` (total_atoms,) atomic numbers and ``elements``, the
  chemical symbols present, **ordered by atomic number** (independent of configuration order).

A stress that a source did not provide for some configurations is NaN there (``stress`` is None when no
configuration has one).

Level labels are integers (``levels``); their DFT settings, when known, are in ``level_settings``.
Nothing in this module imports pyiron (:func:`store_dataset`/:func:`restore_dataset` take pyiron's HDF object
by duck typing).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .precision import PrecisionLevel

__all__ = [
    "LadderDataset", "DatasetError", "atoms_to_arrays", "arrays_to_atoms", "load_bundled", "BUNDLED_PATH",
    "store_dataset", "restore_dataset", "DEFAULT_GROUP",
]

#: version 2 adds ``groups`` and ``missing``; version-1 files load with one group and nothing missing
FORMAT_VERSION = 2

#: the group of every configuration when none is given
DEFAULT_GROUP = "default"

#: the Be dataset shipped inside the package (see :mod:`pyiron_mlip_tradeoff.bundled`)
BUNDLED_PATH = Path(__file__).resolve().parent / "data" / "be_ladder.h5"


class DatasetError(ValueError):
    """A dataset file or array set that is inconsistent, truncated or contains unmarked non-finite values."""


def atoms_to_arrays(structures: Sequence[Atoms]) -> dict[str, np.ndarray]:
    """Pack ASE structures into flat arrays (numbers, positions in Å, cells in Å, pbc, n_atoms)."""
    n_atoms = np.array([len(a) for a in structures], dtype=np.int64)
    if len(structures):
        numbers = np.concatenate([a.get_atomic_numbers() for a in structures]).astype(np.int64)
        positions = np.concatenate([a.get_positions() for a in structures]).astype(float)
    else:
        numbers, positions = np.zeros(0, np.int64), np.zeros((0, 3))
    cells = np.array([np.asarray(a.get_cell()) for a in structures], dtype=float).reshape(-1, 3, 3)
    pbc = np.array([a.get_pbc() for a in structures], dtype=bool).reshape(-1, 3)
    return {"numbers": numbers, "positions": positions, "cells": cells, "pbc": pbc, "n_atoms": n_atoms}


def arrays_to_atoms(arrays: Mapping[str, np.ndarray]) -> list[Atoms]:
    """Inverse of :func:`atoms_to_arrays`."""
    n_atoms = np.asarray(arrays["n_atoms"], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    numbers = np.asarray(arrays["numbers"])
    positions = np.asarray(arrays["positions"], dtype=float)
    if offsets[-1] != len(numbers) or len(numbers) != len(positions):
        raise DatasetError(
            f"structure arrays disagree: n_atoms sums to {offsets[-1]}, {len(numbers)} atomic numbers, "
            f"{len(positions)} positions"
        )
    return [
        Atoms(
            numbers=numbers[offsets[i] : offsets[i + 1]],
            positions=positions[offsets[i] : offsets[i + 1]],
            cell=arrays["cells"][i],
            pbc=arrays["pbc"][i],
        )
        for i in range(len(n_atoms))
    ]


def _as_ase(structure) -> Atoms:
    """ASE ``Atoms`` from an ASE or pyiron structure (pyiron structures subclass ``Atoms``)."""
    if isinstance(structure, Atoms):
        return Atoms(
            numbers=structure.get_atomic_numbers(),
            positions=structure.get_positions(),
            cell=np.asarray(structure.get_cell()),
            pbc=structure.get_pbc(),
        )
    raise TypeError(f"expected an ASE or pyiron structure, got {type(structure).__name__}")


class LadderDataset:
    """Structures and their DFT labels at one or more precision levels.

    Args:
        structures: ASE (or pyiron) structures, n_configs of them.
        energy: (n_levels, n_configs) total energies in eV; a 1-D array is taken as one level.
        forces: (n_levels, total_atoms, 3) forces in eV/Å; a 2-D array is taken as one level.
        levels: integer labels or :class:`PrecisionLevel` objects, one per level (default 1..n_levels).
        seconds: (n_levels, n_configs) wall seconds per calculation, optional.
        stress: (n_levels, n_configs, 6) Voigt stress in eV/Å³, optional.
        kmesh: (n_levels, n_configs, 3) k-point divisions, optional.
        failed: (n_levels, n_configs) bool mask of failed calculations, optional (default: none failed).
        metadata: free-form JSON-serialisable provenance (engine, versions, seeds, ...).
        core_seconds: (n_levels, n_configs) CPU seconds per calculation, optional.
        groups: one group name per configuration (default: all ``"default"``).
        missing: (n_levels, n_configs) bool mask of calculations that do not exist (never computed); their
            energies must be NaN (forces, stress too).

    Raises:
        DatasetError: when shapes disagree, a value is non-finite without being marked failed or missing, a
            calculation is marked both failed and missing, or a missing calculation carries a value.
    """

    def __init__(
        self,
        structures: Sequence[Atoms],
        energy: np.ndarray,
        forces: np.ndarray,
        levels: Sequence[int | PrecisionLevel] | None = None,
        seconds: np.ndarray | None = None,
        stress: np.ndarray | None = None,
        kmesh: np.ndarray | None = None,
        failed: np.ndarray | None = None,
        metadata: Mapping | None = None,
        core_seconds: np.ndarray | None = None,
        groups: Sequence[str] | np.ndarray | None = None,
        missing: np.ndarray | None = None,
    ) -> None:
        self.structures = [_as_ase(s) for s in structures]
        n_configs = len(self.structures)
        self.n_atoms = np.array([len(s) for s in self.structures], dtype=np.int64)
        if n_configs and self.n_atoms.min() == 0:
            raise DatasetError(f"configuration {int(np.argmin(self.n_atoms))} has no atoms")
        energy = np.asarray(energy, dtype=float)
        if energy.ndim == 1:
            energy = energy[None, :]
        forces = np.asarray(forces, dtype=float)
        if forces.ndim == 2:
            forces = forces[None, :, :]
        n_levels = energy.shape[0]
        if levels is None:
            levels = list(range(1, n_levels + 1))
        self.level_settings: dict[int, PrecisionLevel] = {}
        labels = []
        for lv in levels:
            if isinstance(lv, PrecisionLevel):
                self.level_settings[lv.level] = lv
                labels.append(lv.level)
            elif isinstance(lv, (int, np.integer)) and not isinstance(lv, bool):
                labels.append(int(lv))
            else:
                raise DatasetError(f"a level is an integer label or a PrecisionLevel, got {lv!r}")
        if len(set(labels)) != len(labels):
            raise DatasetError(f"duplicate level labels {labels}")
        self.levels: tuple[int, ...] = tuple(labels)
        total = int(self.n_atoms.sum())
        if energy.shape != (len(self.levels), n_configs):
            raise DatasetError(
                f"energy has shape {energy.shape}, expected (n_levels={len(self.levels)}, n_configs={n_configs})"
            )
        if forces.shape != (len(self.levels), total, 3):
            raise DatasetError(
                f"forces have shape {forces.shape}, expected (n_levels={len(self.levels)}, total_atoms={total}, 3)"
            )
        self.energy = energy
        self.forces = forces
        self.failed = (
            np.zeros(energy.shape, dtype=bool) if failed is None else np.asarray(failed, dtype=bool).reshape(energy.shape)
        )

        self.missing = (
            np.zeros(energy.shape, dtype=bool) if missing is None
            else self._mask(missing, energy.shape, "missing")
        )
        both = self.failed & self.missing
        if both.any():
            li, ci = np.argwhere(both)[0]
            raise DatasetError(
                f"{int(both.sum())} calculation(s) are marked both failed and missing (first: level "
                f"{self.levels[li]}, configuration {ci}); a calculation either ran and failed or does not exist"
            )
        if groups is None:
            self.groups = np.full(n_configs, DEFAULT_GROUP, dtype=object)
        else:
            self.groups = np.array([str(g) for g in np.asarray(groups, dtype=object).reshape(-1)], dtype=object)
            if self.groups.shape != (n_configs,):
                raise DatasetError(f"groups has {self.groups.size} entries, expected one per configuration ({n_configs})")
            empty = [i for i, g in enumerate(self.groups) if not g.strip()]
            if empty:
                raise DatasetError(f"configuration {empty[0]} has an empty group name")
        self.seconds = self._optional(seconds, energy.shape, "seconds")
        self.core_seconds = self._optional(core_seconds, energy.shape, "core_seconds")
        self.stress = self._optional(stress, energy.shape + (6,), "stress")
        self.kmesh = self._optional(kmesh, energy.shape + (3,), "kmesh")
        self.metadata = dict(metadata or {})
        self._check_finite()

    @staticmethod
    def _mask(values, shape, name):
        values = np.asarray(values, dtype=bool)
        if values.shape != shape:
            raise DatasetError(f"{name} has shape {values.shape}, expected {shape}")
        return values

    @staticmethod
    def _optional(values, shape, name):
        if values is None:
            return None
        values = np.asarray(values, dtype=float)
        if values.shape != shape:
            raise DatasetError(f"{name} has shape {values.shape}, expected {shape}")
        return values

    def _check_finite(self) -> None:
        if self.n_configs == 0:
            return
        nonfinite_atoms = (~np.isfinite(self.forces)).any(axis=2).astype(np.int64)  # (n_levels, total_atoms)
        bad_forces = np.add.reduceat(nonfinite_atoms, self.atom_offsets[:-1], axis=1) > 0
        bad = (~np.isfinite(self.energy) | bad_forces) & ~self.failed & ~self.missing
        if bad.any():
            li, ci = np.argwhere(bad)[0]
            raise DatasetError(
                f"{int(bad.sum())} calculation(s) have non-finite energy or forces but are not marked failed "
                f"(first: level {self.levels[li]}, configuration {ci}); mark them in `failed` (or `missing`) or "
                "remove them"
            )
        faked = np.isfinite(self.energy) & self.missing
        if faked.any():
            li, ci = np.argwhere(faked)[0]
            raise DatasetError(
                f"{int(faked.sum())} calculation(s) are marked missing but have an energy (first: level "
                f"{self.levels[li]}, configuration {ci}); a missing calculation holds NaN"
            )

    # ----------------------------------------------------------------------------------------------------------
    @property
    def n_configs(self) -> int:
        return len(self.structures)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def available(self) -> np.ndarray:
        """(n_levels, n_configs) bool: the calculations that exist and did not fail."""
        return ~(self.failed | self.missing)

    @property
    def numbers(self) -> np.ndarray:
        """(total_atoms,) atomic numbers of all atoms, configurations concatenated (aligned with ``forces``)."""
        if not self.structures:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([s.get_atomic_numbers() for s in self.structures]).astype(np.int64)

    @property
    def elements(self) -> tuple[str, ...]:
        """Chemical symbols present in the structures, ordered by atomic number (any number of elements)."""
        from ase.data import chemical_symbols

        return tuple(chemical_symbols[z] for z in np.unique(self.numbers))

    @property
    def group_names(self) -> tuple[str, ...]:
        """The distinct group names in first-seen order."""
        return tuple(dict.fromkeys(self.groups.tolist()))

    def group_indices(self, group: str) -> np.ndarray:
        """Indices of the configurations of ``group``; ``KeyError`` naming the known groups if there are none."""
        idx = np.flatnonzero(self.groups == str(group))
        if idx.size == 0:
            raise KeyError(f"no configuration in group {group!r} (groups: {list(self.group_names)})")
        return idx

    @property
    def atom_offsets(self) -> np.ndarray:
        """Start index of each configuration's atoms in the concatenated force array (length n_configs + 1)."""
        return np.concatenate([[0], np.cumsum(self.n_atoms)]).astype(np.int64)

    def level_index(self, level: int) -> int:
        """Row of ``level`` in the level axis; ``ValueError`` if the dataset has no such level."""
        try:
            return self.levels.index(int(level))
        except ValueError:
            raise ValueError(f"level {level} is not in this dataset (levels {list(self.levels)})") from None

    def config_forces(self, level: int, index: int) -> np.ndarray:
        """Forces (N_m × 3, eV/Å) of configuration ``index`` at precision ``level``."""
        o = self.atom_offsets
        return self.forces[self.level_index(level), o[index] : o[index + 1]]

    def subset(self, indices: Sequence[int]) -> LadderDataset:
        """New dataset with the given configurations (in the given order)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < -self.n_configs or idx.max() >= self.n_configs):
            raise IndexError(f"configuration index out of range for {self.n_configs} configurations")
        idx = idx % max(self.n_configs, 1)
        o = self.atom_offsets
        atom_idx = (
            np.concatenate([np.arange(o[i], o[i + 1]) for i in idx]) if idx.size else np.zeros(0, np.int64)
        )

        def pick(a):
            return None if a is None else a[:, idx]

        return LadderDataset(
            [self.structures[i] for i in idx],
            self.energy[:, idx],
            self.forces[:, atom_idx],
            levels=[self.level_settings.get(lv, lv) for lv in self.levels],
            seconds=pick(self.seconds),
            stress=pick(self.stress),
            kmesh=pick(self.kmesh),
            failed=self.failed[:, idx],
            metadata=self.metadata,
            core_seconds=pick(self.core_seconds),
            groups=self.groups[idx],
            missing=self.missing[:, idx],
        )

    def select_levels(self, levels: Sequence[int]) -> LadderDataset:
        """New dataset restricted to (and ordered as) ``levels``."""
        rows = [self.level_index(lv) for lv in levels]

        def pick(a):
            return None if a is None else a[rows]

        return LadderDataset(
            self.structures,
            self.energy[rows],
            self.forces[rows],
            levels=[self.level_settings.get(self.levels[r], self.levels[r]) for r in rows],
            seconds=pick(self.seconds),
            stress=pick(self.stress),
            kmesh=pick(self.kmesh),
            failed=self.failed[rows],
            metadata=self.metadata,
            core_seconds=pick(self.core_seconds),
            groups=self.groups,
            missing=self.missing[rows],
        )

    def drop_failed(self) -> LadderDataset:
        """New dataset without the configurations that failed at any level."""
        return self.subset(np.flatnonzero(~self.failed.any(axis=0)))

    def drop_incomplete(self, levels: Sequence[int] | None = None) -> LadderDataset:
        """New dataset without the configurations that failed or are missing at any of ``levels`` (default all)."""
        rows = list(range(self.n_levels)) if levels is None else [self.level_index(lv) for lv in levels]
        return self.subset(np.flatnonzero(self.available[rows].all(axis=0)))

    def require_complete(self) -> None:
        """Raise :class:`DatasetError` if any calculation failed or is missing (call :meth:`drop_failed` or
        :meth:`drop_incomplete` to continue)."""
        if self.failed.any():
            levels, configs = np.nonzero(self.failed)
            raise DatasetError(
                f"{self.failed.sum()} calculation(s) failed (configurations {sorted(set(configs.tolist()))[:10]}...); "
                "call dataset.drop_failed() to use the rest"
            )
        if self.missing.any():
            levels, configs = np.nonzero(self.missing)
            raise DatasetError(
                f"{self.missing.sum()} calculation(s) are missing (configurations "
                f"{sorted(set(configs.tolist()))[:10]}...); call dataset.drop_incomplete() to use the rest"
            )

    # ----------------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain dictionary of numpy arrays and strings (what is written to HDF5)."""
        data = {"format_version": FORMAT_VERSION, "levels": np.array(self.levels, dtype=np.int64)}
        data.update(atoms_to_arrays(self.structures))
        data["energy"] = self.energy
        data["forces"] = self.forces
        data["failed"] = self.failed
        data["missing"] = self.missing
        data["groups"] = json.dumps(self.groups.tolist())
        for name in ("seconds", "core_seconds", "stress", "kmesh"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        data["level_settings"] = json.dumps({str(k): v.to_dict() for k, v in self.level_settings.items()})
        data["metadata"] = json.dumps(self.metadata, default=str)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> LadderDataset:
        """Inverse of :meth:`to_dict`."""
        missing = [k for k in ("levels", "numbers", "positions", "cells", "pbc", "n_atoms", "energy", "forces")
                   if k not in data]
        if missing:
            raise DatasetError(f"dataset is missing {missing}")
        version = int(np.asarray(data.get("format_version", 1)))
        if version > FORMAT_VERSION:
            raise DatasetError(
                f"dataset format version {version} is newer than this package reads ({FORMAT_VERSION}); update "
                "pyiron_mlip_tradeoff"
            )
        groups = data.get("groups")
        if groups is not None:
            groups = json.loads(str(groups)) if isinstance(groups, (str, bytes, np.str_)) else list(groups)
        settings = {int(k): PrecisionLevel.from_dict(v) for k, v in json.loads(data.get("level_settings", "{}")).items()}
        levels = [settings.get(int(lv), int(lv)) for lv in np.asarray(data["levels"]).reshape(-1)]
        return cls(
            arrays_to_atoms(data),
            data["energy"],
            data["forces"],
            levels=levels,
            seconds=data.get("seconds"),
            stress=data.get("stress"),
            kmesh=data.get("kmesh"),
            failed=data.get("failed"),
            metadata=json.loads(data.get("metadata", "{}")),
            core_seconds=data.get("core_seconds"),
            groups=groups,
            missing=data.get("missing"),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the dataset to an HDF5 file (through h5io); returns the path."""
        import h5io

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        h5io.write_hdf5(str(tmp), self.to_dict(), title="ladder_dataset", overwrite=True)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LadderDataset:
        """Read a dataset written by :meth:`save`; :class:`DatasetError` for a corrupt or inconsistent file."""
        import h5io

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no dataset file at {path}")
        try:
            data = h5io.read_hdf5(str(path), title="ladder_dataset")
        except Exception as err:  # h5py raises OSError/KeyError/ValueError variants for damaged files
            raise DatasetError(f"cannot read dataset file {path}: {err}") from err
        if not isinstance(data, Mapping):
            raise DatasetError(f"{path} does not hold a ladder dataset")
        return cls.from_dict(data)

    # ---- importers and exporters (implemented in :mod:`pyiron_mlip_tradeoff.io`) -----------------------------
    @classmethod
    def from_atoms(cls, frames, levels: Sequence[int] | None = None, level_key: str | None = None,
                   group_key: str | None = "group", identity_key: str | None = None) -> LadderDataset:
        """Dataset from ASE ``Atoms`` with calculator results (one list per level, or one list with ``level_key`` in
        ``atoms.info``); see :func:`pyiron_mlip_tradeoff.io.from_atoms`."""
        from .io import from_atoms

        return from_atoms(frames, levels=levels, level_key=level_key, group_key=group_key, identity_key=identity_key)

    @classmethod
    def from_extxyz(cls, path_or_paths, level_key: str | None = None, levels: Sequence[int] | None = None,
                    group_key: str | None = "group") -> LadderDataset:
        """Dataset from extended XYZ file(s); see :func:`pyiron_mlip_tradeoff.io.from_extxyz`."""
        from .io import from_extxyz

        return from_extxyz(path_or_paths, level_key=level_key, levels=levels, group_key=group_key)

    def to_extxyz(self, path: str | os.PathLike, level: int | None = None) -> Path:
        """Write one level to extended XYZ; see :func:`pyiron_mlip_tradeoff.io.to_extxyz`."""
        from .io import to_extxyz

        return to_extxyz(self, path, level=level)

    def to_atoms(self, level: int | None = None) -> list[Atoms]:
        """ASE structures of one level with their results attached; see :func:`pyiron_mlip_tradeoff.io.to_atoms`."""
        from .io import to_atoms

        return to_atoms(self, level=level)

    @classmethod
    def from_training_container(cls, container, level: int = 1) -> LadderDataset:
        """Dataset from a pyiron_potentialfit ``TrainingContainer``; see :mod:`pyiron_mlip_tradeoff.io`."""
        from .io import from_training_container

        return from_training_container(container, level=level)

    def to_training_container(self, level: int | None = None, project=None, name: str | None = None):
        """One level as a pyiron_potentialfit ``TrainingContainer``; see :mod:`pyiron_mlip_tradeoff.io`."""
        from .io import to_training_container

        return to_training_container(self, level=level, project=project, name=name)

    @classmethod
    def from_vasp_runs(cls, root: str | os.PathLike, level: int = 1) -> LadderDataset:
        """Every completed ionic step of the OUTCARs below ``root``; see :func:`pyiron_mlip_tradeoff.io.read_vasp_runs`."""
        from .io import read_vasp_runs

        return read_vasp_runs(root, level=level)

    @classmethod
    def from_pyiron_jobs(cls, jobs, level_of=None, identity_of=None, group_of=None) -> LadderDataset:
        """Dataset from finished pyiron DFT jobs; see :func:`pyiron_mlip_tradeoff.io.from_pyiron_jobs`."""
        from .io import from_pyiron_jobs

        return from_pyiron_jobs(jobs, level_of=level_of, identity_of=identity_of, group_of=group_of)

    def __repr__(self) -> str:
        return (
            f"LadderDataset({self.n_configs} configurations, {int(self.n_atoms.sum())} atoms, "
            f"levels {list(self.levels)}, {int(self.failed.sum())} failed, {int(self.missing.sum())} missing, "
            f"{len(self.group_names)} group(s))"
        )


def store_dataset(hdf, dataset: LadderDataset, group_name: str = "dataset") -> None:
    """Write ``dataset`` into a pyiron job's HDF5 file under ``group_name`` (what :meth:`LadderDataset.to_dict` holds).

    ``hdf`` is a pyiron ``ProjectHDFio`` (``job.project_hdf5``), or anything with its ``write_dict(data_dict=...)``;
    an in-memory dataset given as a job's input is kept with the job this way, not only as a file path.
    """
    if not isinstance(dataset, LadderDataset):
        raise TypeError(f"store_dataset expects a LadderDataset, got {type(dataset).__name__}")
    hdf.write_dict(data_dict={f"{group_name}/{key}": value for key, value in dataset.to_dict().items()})


def restore_dataset(hdf, group_name: str = "dataset") -> LadderDataset:
    """Inverse of :func:`store_dataset`; :class:`DatasetError` naming the group when it is absent or damaged."""
    with hdf.open(group_name) as group:
        data = group.read_dict_from_hdf() if "energy" in group.list_nodes() else {}
    if not data:
        raise DatasetError(f"no stored dataset {group_name!r} in {getattr(hdf, 'file_name', hdf)}")
    try:
        return LadderDataset.from_dict(data)
    except (KeyError, ValueError, TypeError) as err:
        raise DatasetError(f"stored dataset {group_name!r} in {getattr(hdf, 'file_name', hdf)}: {err}") from err


def load_bundled(warn_interim: bool = True) -> LadderDataset:
    """The embedded Be precision-ladder dataset shipped with the package (GPAW, up to six levels).

    While the top levels are still being computed the shipped file is *interim*: it holds the levels finished for
    every configuration, ``metadata["pending_levels"]`` names the others, and a warning says so (unless
    ``warn_interim`` is False, for callers that report it themselves). Errors "against level 6" then mean against
    the top level present (``dataset.levels[-1]``).

    Raises:
        FileNotFoundError: when this copy of the package has no bundled file (it is generated with
            ``pyiron-mlip-tradeoff make-dataset``).
    """
    if not BUNDLED_PATH.is_file():
        raise FileNotFoundError(
            f"the bundled dataset {BUNDLED_PATH} is not present in this installation; "
            "generate it with `pyiron-mlip-tradeoff make-dataset`"
        )
    dataset = LadderDataset.load(BUNDLED_PATH)
    pending = dataset.metadata.get("pending_levels") or []
    if pending and warn_interim:
        warnings.warn(
            f"the bundled dataset is interim: levels {pending} are still being computed; its top level is "
            f"{dataset.levels[-1]}",
            stacklevel=2,
        )
    return dataset
