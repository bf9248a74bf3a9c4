"""Shared plumbing of the package's pyiron jobs: structures in ``job.input`` stored as plain arrays in HDF5, and an
in-memory ``LadderDataset`` in ``job.input.dataset`` stored in the job's own file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms
from pyiron_base import PythonTemplateJob

from ..dataset import LadderDataset, arrays_to_atoms, atoms_to_arrays, restore_dataset, store_dataset
from .database import ensure_database_reachable

if TYPE_CHECKING:
    from pyiron_base import GenericJob, ProjectHDFio

__all__ = ["StructureInputJob", "mark_finished", "to_builtin", "STORED_DATASET", "DATASET_GROUP"]

_PACKED = "__packed_structures__"
#: what ``input.dataset`` holds in HDF5 when the dataset itself is stored in the job's file (group DATASET_GROUP)
STORED_DATASET = "<stored with the job>"
DATASET_GROUP = "input_dataset"


def mark_finished(job: GenericJob) -> None:
    """Write ``job`` to HDF5 with status ``finished``, and only then tell the database it is finished.

    Anyone waiting on the database status (``pr.wait_for_job``, a chunked master, another process) then never
    opens the HDF5 file while its output is still being written.
    """
    job.to_hdf()
    job.project_hdf5["status"] = "finished"
    job.status.finished = True


def to_builtin(value: object) -> Any:
    """A pyiron ``DataContainer`` as plain Python lists/dicts; any other value unchanged."""
    return value.to_builtin() if hasattr(value, "to_builtin") else value


def _pack(structures: list[Atoms]) -> dict:
    """Flat arrays of ``structures`` (and their initial magnetic moments, μB, when any is set)."""
    packed = {_PACKED: True, **atoms_to_arrays(list(structures))}
    moments = [np.asarray(a.get_initial_magnetic_moments(), dtype=float) for a in structures]
    if any(m.ndim == 1 and np.any(m != 0) for m in moments):
        packed["initial_magmoms"] = np.concatenate(moments) if moments else np.zeros(0)
    return packed


def _unpack(stored: Mapping) -> list[Atoms]:
    structures = arrays_to_atoms(stored)
    if "initial_magmoms" in stored:
        moments = np.asarray(stored["initial_magmoms"], dtype=float)
        start = 0
        for atoms in structures:
            atoms.set_initial_magnetic_moments(moments[start : start + len(atoms)])
            start += len(atoms)
    return structures


class StructureInputJob(PythonTemplateJob):
    """A ``PythonTemplateJob`` whose structure input (``input.structures``, a list of ASE or pyiron structures, and
    ``input.structure``, one structure or ``None``) survives ``to_hdf``/``from_hdf``.

    Structures are written as flat arrays (numbers, positions in Å, cells in Å, pbc, n_atoms, and initial magnetic
    moments in μB when set) and read back as ASE ``Atoms``. An in-memory ``LadderDataset`` in ``input.dataset`` is
    stored once in the job's file (group ``input_dataset``) and loads back as the object. Subclasses validate input in
    :meth:`validate_ready_to_run`, which pyiron calls before the job is saved or run, so bad input never creates a
    job in the database. An unreachable network database raises
    :class:`~pyiron_mlip_tradeoff.jobs.database.DatabaseUnreachableError` before pyiron touches it.
    """

    def __init__(self, project, job_name):
        ensure_database_reachable()
        super().__init__(project, job_name)

    def to_hdf(self, hdf: ProjectHDFio | None = None, group_name: str | None = None) -> None:
        originals = {}
        structures = self.input.get("structures")
        if isinstance(structures, (list, tuple)) and all(isinstance(s, Atoms) for s in structures):
            originals["structures"] = list(structures)
            self.input.structures = _pack(list(structures))
        single = self.input.get("structure")
        if isinstance(single, Atoms):
            originals["structure"] = single
            self.input.structure = _pack([single])
        dataset = self.input.get("dataset")
        if isinstance(dataset, LadderDataset):
            originals["dataset"] = dataset
            self.input.dataset = STORED_DATASET
        try:
            super().to_hdf(hdf=hdf, group_name=group_name)
        finally:
            for key, value in originals.items():
                self.input[key] = value
        if isinstance(dataset, LadderDataset) and getattr(self, "_stored_dataset", None) is not dataset:
            store_dataset(self.project_hdf5, dataset, DATASET_GROUP)
            self._stored_dataset = dataset

    def from_hdf(self, hdf: ProjectHDFio | None = None, group_name: str | None = None) -> None:
        super().from_hdf(hdf=hdf, group_name=group_name)
        self._unpack_structures()
        if self.input.get("dataset") == STORED_DATASET:
            self.input.dataset = restore_dataset(self.project_hdf5, DATASET_GROUP)
            self._stored_dataset = self.input.dataset

    def _unpack_structures(self) -> None:
        stored = self.input.get("structures")
        if isinstance(stored, Mapping) and _PACKED in stored:
            self.input.structures = _unpack(stored)
        single = self.input.get("structure")
        if isinstance(single, Mapping) and _PACKED in single:
            self.input.structure = _unpack(single)[0]
