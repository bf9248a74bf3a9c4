"""Shared plumbing of the package's pyiron jobs: structures in ``job.input`` stored as plain arrays in HDF5."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ase import Atoms
from pyiron_base import PythonTemplateJob

from ..dataset import arrays_to_atoms, atoms_to_arrays
from .database import ensure_database_reachable

if TYPE_CHECKING:
    from pyiron_base import GenericJob, ProjectHDFio

__all__ = ["StructureInputJob", "mark_finished", "to_builtin"]

_PACKED = "__packed_structures__"


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


class StructureInputJob(PythonTemplateJob):
    """A ``PythonTemplateJob`` whose ``input.structures`` (ASE or pyiron structures) survive ``to_hdf``/``from_hdf``.

    The list is written as flat arrays (numbers, positions in Å, cells in Å, pbc, n_atoms) and read back as ASE
    ``Atoms``. Subclasses validate input in :meth:`validate_ready_to_run`, which pyiron calls before the job is
    saved or run, so bad input never creates a job in the database. An unreachable network database raises
    :class:`~pyiron_mlip_tradeoff.jobs.database.DatabaseUnreachableError` before pyiron touches it.
    """

    def __init__(self, project, job_name):
        ensure_database_reachable()
        super().__init__(project, job_name)

    def to_hdf(self, hdf: ProjectHDFio | None = None, group_name: str | None = None) -> None:
        structures = self.input.get("structures")
        packed = isinstance(structures, (list, tuple)) and all(isinstance(s, Atoms) for s in structures)
        if packed:
            self.input.structures = {_PACKED: True, **atoms_to_arrays(list(structures))}
        try:
            super().to_hdf(hdf=hdf, group_name=group_name)
        finally:
            if packed:
                self.input.structures = list(structures)

    def from_hdf(self, hdf: ProjectHDFio | None = None, group_name: str | None = None) -> None:
        super().from_hdf(hdf=hdf, group_name=group_name)
        self._unpack_structures()

    def _unpack_structures(self) -> None:
        stored = self.input.get("structures")
        if isinstance(stored, Mapping) and _PACKED in stored:
            self.input.structures = arrays_to_atoms(stored)
