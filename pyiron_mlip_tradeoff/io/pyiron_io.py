"""pyiron objects in and out of a ``LadderDataset``: pyiron_potentialfit's ``TrainingContainer`` and finished DFT jobs.

Nothing here imports pyiron at module level: the objects are used through their public methods, and
``to_training_container`` creates the container through the project it is given.

Stress sign: pyiron's DFT jobs hold *pressure-positive* stress in eV/Å³ (``output/generic/pressures`` of the ASE
based jobs such as Gpaw is minus ASE's stress; ``output/generic/stresses`` of Vasp is VASP's own sign in eV/Å³),
and a ``TrainingContainer`` filled by ``include_job`` copies those values. Both are therefore read as
pressure-positive and turned into the ASE sign here; ``to_training_container`` writes the same convention back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import numpy as np

from ..dataset import DatasetError, LadderDataset
from ._assemble import Frame, assemble, check_results, plain_structure

__all__ = ["from_training_container", "to_training_container", "from_pyiron_jobs", "job_results"]


def _voigt(stress) -> np.ndarray | None:
    if stress is None:
        return None
    stress = np.asarray(stress, dtype=float)
    if stress.shape == (3, 3):
        stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return stress


def from_training_container(container, level: int = 1) -> LadderDataset:
    """One-level dataset from a ``TrainingContainer`` (job) or its ``TrainingStorage``.

    A configuration's group is its identifier up to the last ``/`` (``"bulk/fcc_3"`` → ``"bulk"``), ``"default"``
    without one; the identifiers are kept in ``metadata["names"]``. Energies eV, forces eV/Å, stress eV/Å³
    (pressure-positive in the container, ASE sign in the dataset).
    """
    if not hasattr(container, "to_pandas"):
        raise TypeError(f"expected a pyiron_potentialfit TrainingContainer, got {type(container).__name__}")
    table = container.to_pandas()
    if len(table) == 0:
        raise DatasetError("the TrainingContainer holds no structures")
    if "forces" not in table.columns:
        raise DatasetError("the TrainingContainer holds no forces")
    has_stress = "stress" in table.columns
    frames = []
    for i, row in enumerate(table.itertuples(index=False)):
        name = str(row.name)
        source = f"TrainingContainer structure {i} ({name})"
        stress = _voigt(row.stress) if has_stress else None
        if stress is not None and not np.isfinite(stress).all():
            stress = None  # the container fills absent stresses with NaN
        energy, forces, stress = check_results(source, len(row.atoms), row.energy, row.forces,
                                               None if stress is None else -stress)
        group = name.rsplit("/", 1)[0] if "/" in name else "default"
        frames.append(Frame(int(level), row.atoms, energy, forces, stress, group, source, identity=i))
    return assemble(frames, levels=[int(level)],
                    metadata={"source": "TrainingContainer", "names": [str(n) for n in table["name"]]})


def to_training_container(dataset: LadderDataset, level: int | None = None, project=None, name: str | None = None):
    """One level as a ``TrainingContainer`` job created in ``project`` (not run or saved; call ``.run()`` to keep it).

    Identifiers are ``"<group>/<configuration index>"`` so that :func:`from_training_container` gives the groups
    back. Configurations failed or missing at the level are left out (with a warning).
    """
    from .ase_io import to_atoms

    if project is None:
        raise ValueError("to_training_container needs the pyiron project to create the container in")
    try:
        import pyiron_potentialfit  # noqa: F401  (registers TrainingContainer with pyiron's job factory)
    except ImportError as err:
        raise ImportError("to_training_container needs pyiron_potentialfit (pip install pyiron_potentialfit)") from err
    frames = to_atoms(dataset, level)
    label = frames[0].info["level"] if frames else level
    container = project.create.job.TrainingContainer(name or f"training_level_{label}")
    for atoms in frames:
        results = atoms.calc.results
        arrays = {"forces": results["forces"]}
        if "stress" in results:
            arrays["stress"] = -np.asarray(results["stress"])
        structure = plain_structure(atoms)
        container.add_structure(structure, energy=results["energy"],
                                identifier=f"{atoms.info['group']}/{atoms.info['config_index']}", **arrays)
    return container


# ---- pyiron DFT jobs --------------------------------------------------------------------------------------------
def _job_value(job, path: str):
    storage = getattr(job, "content", job)  # pyiron's HDF view of a job (``job[...]`` is deprecated)
    try:
        return storage[path]
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def job_results(job) -> tuple:
    """(final structure, energy eV, forces eV/Å, stress eV/Å³ ASE sign or None) of a finished pyiron DFT job.

    Energy: ``output/generic/dft/energy_free`` when the job has it (VASP's free energy TOTEN, consistent with the
    forces), else ``output/generic/energy_pot``; the last ionic step. Stress: ``output/generic/stresses`` (Vasp)
    or ``output/generic/pressures``, pressure-positive eV/Å³, sign flipped.
    """
    name = getattr(job, "job_name", getattr(job, "name", "?"))
    source = f"pyiron job {name!r} (id {getattr(job, 'job_id', '?')})"
    status = getattr(job, "status", None)
    if status is None or not getattr(status, "finished", False):
        raise DatasetError(f"{source} is not finished (status {status}); only finished jobs can be imported")
    if "Lammps" in type(job).__name__:
        raise DatasetError(f"{source} is a LAMMPS job, not a DFT calculation (its pressures are in GPa)")
    energy = _job_value(job, "output/generic/dft/energy_free")
    if energy is None or len(np.atleast_1d(energy)) == 0:
        energy = _job_value(job, "output/generic/energy_pot")
    forces = _job_value(job, "output/generic/forces")
    if forces is None or len(forces) == 0:
        raise DatasetError(f"{source} has no forces in its output (output/generic/forces)")
    if energy is None or len(np.atleast_1d(energy)) == 0:
        raise DatasetError(f"{source} has no energy in its output (output/generic/energy_pot)")
    stress = _job_value(job, "output/generic/stresses")
    if stress is None or len(stress) == 0:
        stress = _job_value(job, "output/generic/pressures")
    stress = None if stress is None or len(stress) == 0 else -_voigt(np.asarray(stress)[-1])
    structure = plain_structure(job.get_structure(-1))
    energy, forces, stress = check_results(source, len(structure), np.atleast_1d(energy)[-1], np.asarray(forces)[-1],
                                           stress)
    return structure, energy, forces, stress, source


def from_pyiron_jobs(jobs: Iterable, level_of: Callable | None = None, identity_of: Callable | None = None,
                     group_of: Callable | None = None) -> LadderDataset:
    """Dataset from finished pyiron DFT jobs (Vasp, Gpaw, Sphinx, ... any with energy and forces in its output).

    Args:
        jobs: pyiron job objects (or ``JobPath``s).
        level_of: ``job → int`` precision level (required when the jobs are at several levels; default 1).
        identity_of: ``job → hashable`` naming the configuration a job computed (e.g. the job name without its level
            suffix). Jobs sharing an identity must hold the same final structure. Default: jobs whose final
            structures agree (to 1e-6 Å) at different levels are one configuration.
        group_of: ``job → str`` group of the configuration (default ``"default"``).

    Raises:
        DatasetError: a job not finished, without energy or forces, or structures that differ between levels under
            one identity (the message names the jobs).
    """
    frames = []
    names = []
    for job in jobs:
        structure, energy, forces, stress, source = job_results(job)
        level = 1 if level_of is None else level_of(job)
        try:
            level = int(level)
        except (TypeError, ValueError):
            raise DatasetError(f"{source}: level_of gave {level!r}, not an integer level") from None
        identity: Hashable | None = None if identity_of is None else identity_of(job)
        group = "default" if group_of is None else str(group_of(job))
        frames.append(Frame(level, structure, energy, forces, stress, group, source, identity=identity))
        names.append(getattr(job, "job_name", None))
    if not frames:
        raise DatasetError("from_pyiron_jobs: no jobs given")
    return assemble(frames, metadata={"source": "pyiron jobs"})
