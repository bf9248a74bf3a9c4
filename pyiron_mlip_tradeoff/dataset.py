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

A dataset opened with ``LadderDataset.load(path, lazy=True)`` keeps what grows with the atoms in the file: ``forces``
is then an :class:`ArrayInFile` (sliced like an array, each slice read from the file) and ``structures`` a
:class:`StructuresInFile` (a sequence of ``Atoms`` built when asked for); everything per configuration (energies,
masks, timings, cells, atom counts, groups) is in memory. Whoever reads labels of many configurations goes through
:meth:`LadderDataset.iter_config_forces`, which reads them window by window, so memory holds one window and not the
dataset. Every other use works as well (``np.asarray(dataset.forces)`` reads the whole array).
Nothing in this module imports pyiron (:func:`store_dataset`/:func:`restore_dataset` take pyiron's HDF object
by duck typing).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from .precision import PrecisionLevel

__all__ = [
    "LadderDataset", "DatasetError", "ArrayInFile", "StructuresInFile", "atoms_to_arrays", "arrays_to_atoms", "load_bundled", "BUNDLED_PATH",
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


#: HDF5 group of a dataset file written by :meth:`LadderDataset.save` (h5io names each entry ``key_<name>``)
_FILE_GROUP = "ladder_dataset"
#: the entries that grow with the number of atoms; a lazily loaded dataset reads them slice by slice
_PER_ATOM_KEYS = ("forces", "positions", "numbers")
#: configurations per read when labels or structures are streamed from a file
_WINDOW = 256
#: atoms between two wanted configurations up to which one read covers both (fewer reads, a little more data)
_GAP_ATOMS = 256


class ArrayInFile:
    """A numeric array of a dataset file, read slice by slice instead of held in memory.

    ``a[item]`` reads that part (one HDF5 read for slices and increasing index lists; anything else reads the whole
    array and indexes it in memory); ``np.asarray(a)`` reads all of it; :meth:`read_ranges` reads several ranges
    along one axis in one opening of the file.

    Args:
        path: the HDF5 file. node: the dataset's path inside it. shape, dtype: of the stored array.
    """

    def __init__(self, path: str | os.PathLike, node: str, shape: tuple[int, ...], dtype) -> None:
        self.path = Path(path)
        self.node = str(node)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, item) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            node = f[self.node]
            try:
                return np.asarray(node[item])
            except (TypeError, ValueError):  # an index h5py does not take (unsorted lists, negative steps, ...)
                return np.asarray(node[()])[item]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self[()]
        return data if dtype is None else data.astype(dtype, copy=False)

    def read_ranges(self, ranges: Sequence[tuple[int, int]], axis: int = 0) -> list[np.ndarray]:
        """The parts ``a:b`` along ``axis`` for every ``(a, b)`` of ``ranges``, in one opening of the file."""
        import h5py

        with h5py.File(self.path, "r") as f:
            node = f[self.node]
            lead = (slice(None),) * axis
            return [np.asarray(node[(*lead, slice(int(a), int(b)))]) for a, b in ranges]

    def __repr__(self) -> str:
        return f"ArrayInFile({self.path}:{self.node}, shape={self.shape}, dtype={self.dtype})"


class StructuresInFile(Sequence):
    """The structures of a dataset file as a sequence of ASE ``Atoms``, each built from the file when asked for.

    Cells, periodicity and atom counts are in memory; atomic numbers and positions are read per request (an item,
    a slice in one read, iteration window by window). The ``Atoms`` equal those of :func:`arrays_to_atoms` on the
    same arrays.
    """

    def __init__(self, numbers: ArrayInFile, positions: ArrayInFile, cells: np.ndarray, pbc: np.ndarray,
                 n_atoms: np.ndarray) -> None:
        self.numbers_in_file = numbers
        self.positions_in_file = positions
        self.cells = np.asarray(cells, dtype=float).reshape(-1, 3, 3)
        self.pbc = np.asarray(pbc, dtype=bool).reshape(-1, 3)
        self.n_atoms = np.asarray(n_atoms, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.n_atoms)]).astype(np.int64)
        if len(self.cells) != len(self.n_atoms) or len(self.pbc) != len(self.n_atoms):
            raise DatasetError(f"{numbers.path}: {len(self.n_atoms)} atom counts, {len(self.cells)} cells, "
                               f"{len(self.pbc)} pbc rows")
        if self.offsets[-1] != len(numbers) or len(numbers) != len(positions):
            raise DatasetError(
                f"structure arrays disagree in {numbers.path}: n_atoms sums to {self.offsets[-1]}, {len(numbers)} "
                f"atomic numbers, {len(positions)} positions"
            )

    def __len__(self) -> int:
        return len(self.n_atoms)

    def _span(self, a: int, b: int) -> list[Atoms]:
        """Configurations a..b-1, read in one go."""
        o = self.offsets
        numbers = self.numbers_in_file[o[a] : o[b]]
        positions = self.positions_in_file[o[a] : o[b]]
        return arrays_to_atoms({"numbers": numbers, "positions": positions, "cells": self.cells[a:b],
                                "pbc": self.pbc[a:b], "n_atoms": self.n_atoms[a:b]})

    def __getitem__(self, item):
        if isinstance(item, slice):
            a, b, step = item.indices(len(self))
            if step == 1:
                return self._span(a, max(a, b))
            return [self[i] for i in range(a, b, step)]
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"structure indices are integers or slices, got {type(item).__name__}")
        i = int(item) + (len(self) if item < 0 else 0)
        if not 0 <= i < len(self):
            raise IndexError(f"structure {item} out of range for {len(self)} configurations")
        return self._span(i, i + 1)[0]

    def __iter__(self):
        for a in range(0, len(self), _WINDOW):
            yield from self._span(a, min(a + _WINDOW, len(self)))

    def all_numbers(self) -> np.ndarray:
        """(total_atoms,) atomic numbers of all atoms."""
        return np.asarray(self.numbers_in_file, dtype=np.int64)

    def distinct_numbers(self) -> np.ndarray:
        """The sorted distinct atomic numbers, read window by window."""
        o, step = self.offsets, 16 * _WINDOW
        seen = [np.unique(self.numbers_in_file[o[a] : o[min(a + step, len(self))]]) for a in range(0, len(self), step)]
        return np.unique(np.concatenate(seen)).astype(np.int64) if seen else np.zeros(0, np.int64)

    def __repr__(self) -> str:
        return f"StructuresInFile({self.numbers_in_file.path}, {len(self)} configurations)"


def _runs(configs: np.ndarray, offsets: np.ndarray) -> list[tuple[int, int]]:
    """Sorted distinct configurations grouped into runs (first, last) read together: a run continues while the atoms
    between two wanted configurations are at most :data:`_GAP_ATOMS`."""
    runs = []
    start = prev = int(configs[0])
    for c in configs[1:]:
        c = int(c)
        if offsets[c] - offsets[prev + 1] > _GAP_ATOMS:
            runs.append((start, prev))
            start = c
        prev = c
    runs.append((start, prev))
    return runs


class LadderDataset:
    """Structures and their DFT labels at one or more precision levels.

    Args:
        structures: ASE (or pyiron) structures, n_configs of them (or a :class:`StructuresInFile`, kept as it is).
        energy: (n_levels, n_configs) total energies in eV; a 1-D array is taken as one level.
        forces: (n_levels, total_atoms, 3) forces in eV/Å; a 2-D array is taken as one level (or an
            :class:`ArrayInFile`, kept in its file).
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
        if isinstance(structures, StructuresInFile):
            self.structures = structures
            self.n_atoms = structures.n_atoms.copy()
        else:
            self.structures = [_as_ase(s) for s in structures]
            self.n_atoms = np.array([len(s) for s in self.structures], dtype=np.int64)
        n_configs = len(self.structures)
        if n_configs and self.n_atoms.min() == 0:
            raise DatasetError(f"configuration {int(np.argmin(self.n_atoms))} has no atoms")
        energy = np.asarray(energy, dtype=float)
        if energy.ndim == 1:
            energy = energy[None, :]
        if not isinstance(forces, ArrayInFile):
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
        bad = (~np.isfinite(self.energy) | self._nonfinite_forces()) & ~self.failed & ~self.missing
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

    def _nonfinite_forces(self) -> np.ndarray:
        """(n_levels, n_configs) bool: configurations with a non-finite force component at that level (read
        :data:`_WINDOW` · 4 configurations at a time)."""
        o = self.atom_offsets
        out = np.zeros((self.n_levels, self.n_configs), dtype=bool)
        step = 4 * _WINDOW
        for a in range(0, self.n_configs, step):
            b = min(a + step, self.n_configs)
            nonfinite_atoms = (~np.isfinite(self.forces[:, o[a] : o[b], :])).any(axis=2).astype(np.int64)
            out[:, a:b] = np.add.reduceat(nonfinite_atoms, o[a:b] - o[a], axis=1) > 0
        return out

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
        if not len(self.structures):
            return np.zeros(0, dtype=np.int64)
        if isinstance(self.structures, StructuresInFile):
            return self.structures.all_numbers()
        return np.concatenate([s.get_atomic_numbers() for s in self.structures]).astype(np.int64)

    @property
    def elements(self) -> tuple[str, ...]:
        """Chemical symbols present in the structures, ordered by atomic number (any number of elements)."""
        from ase.data import chemical_symbols

        if isinstance(self.structures, StructuresInFile):
            return tuple(chemical_symbols[z] for z in self.structures.distinct_numbers())
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

    @property
    def in_file(self) -> bool:
        """Whether forces and structures stay in the dataset file (``load(path, lazy=True)``)."""
        return isinstance(self.forces, ArrayInFile)

    def iter_config_forces(self, indices: Sequence[int] | np.ndarray) -> Iterator[np.ndarray]:
        """Forces (n_levels, N_m, 3) in eV/Å of each of ``indices``, in the order given.

        In memory these are views of ``forces``. A dataset kept in its file reads them :data:`_WINDOW`
        configurations at a time (nearby ones in one read, see :func:`_runs`), so memory holds one window, whatever
        the number of configurations; the values are the same.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        o = self.atom_offsets
        if not self.in_file:
            for i in idx:
                yield self.forces[:, o[i] : o[i + 1], :]
            return
        for w in range(0, idx.size, _WINDOW):
            part = idx[w : w + _WINDOW]
            runs = _runs(np.unique(part), o)
            parts = self.forces.read_ranges([(o[a], o[b + 1]) for a, b in runs], axis=1)
            where = {}
            for (a, b), block in zip(runs, parts, strict=True):
                for c in range(a, b + 1):
                    where[c] = block[:, o[c] - o[a] : o[c + 1] - o[a], :]
            for i in part:
                yield where[int(i)]

    def config_cell(self, index: int) -> np.ndarray:
        """(3, 3) cell vectors in Å of configuration ``index`` (rows a, b, c)."""
        if isinstance(self.structures, StructuresInFile):
            return self.structures.cells[index].copy()
        return self.structures[index].get_cell()[:]

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

        def pick(a):
            return None if a is None else a[:, idx]

        forces = (np.concatenate(list(self.iter_config_forces(idx)), axis=1) if idx.size
                  else np.zeros((self.n_levels, 0, 3)))
        return LadderDataset(
            [self.structures[int(i)] for i in idx],
            self.energy[:, idx],
            forces,
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
            np.asarray(self.forces)[rows],
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
        data["forces"] = np.asarray(self.forces)
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
        if isinstance(data["positions"], ArrayInFile):
            structures = StructuresInFile(data["numbers"], data["positions"], data["cells"], data["pbc"],
                                          data["n_atoms"])
        else:
            structures = arrays_to_atoms(data)
        if groups is not None:
            groups = json.loads(str(groups)) if isinstance(groups, (str, bytes, np.str_)) else list(groups)
        settings = {int(k): PrecisionLevel.from_dict(v) for k, v in json.loads(data.get("level_settings", "{}")).items()}
        levels = [settings.get(int(lv), int(lv)) for lv in np.asarray(data["levels"]).reshape(-1)]
        return cls(
            structures,
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
    def load(cls, path: str | os.PathLike, lazy: bool = False) -> LadderDataset:
        """Read a dataset written by :meth:`save`; :class:`DatasetError` for a corrupt or inconsistent file.

        Args:
            path: the HDF5 file.
            lazy: keep forces, atomic numbers and positions in the file (see the module docstring): memory then
                holds a few numbers per configuration, not per atom. Checked as thoroughly as a full load (the
                forces are read through once, window by window); the values read later are the same.
        """
        import h5io

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no dataset file at {path}")
        try:
            data = _read_entries(path) if lazy else h5io.read_hdf5(str(path), title=_FILE_GROUP)
        except DatasetError:
            raise
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


def _read_entries(path: Path) -> dict:
    """The entries of a dataset file as :meth:`LadderDataset.from_dict` takes them, the per-atom ones
    (:data:`_PER_ATOM_KEYS`) as :class:`ArrayInFile`, the others read (each through h5io, as a full load)."""
    import h5io
    import h5py

    data = {}
    with h5py.File(path, "r") as f:
        group = f.get(_FILE_GROUP)
        if not isinstance(group, h5py.Group):
            raise DatasetError(f"{path} does not hold a ladder dataset")
        for name, node in group.items():
            key = name[len("key_"):] if name.startswith("key_") else name
            if key in _PER_ATOM_KEYS and isinstance(node, h5py.Dataset):
                data[key] = ArrayInFile(path, node.name, node.shape, node.dtype)
            else:
                data[key] = h5io.read_hdf5(f, title=node.name)
    return data


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
