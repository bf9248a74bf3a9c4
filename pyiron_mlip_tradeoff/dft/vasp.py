"""VASP, the production engine, driven through pyiron_atomistics' ``Vasp`` job.

A precision level maps to VASP input as in the reference study: ``ENCUT`` = cutoff (eV), PBE PAW potentials,
Methfessel–Paxton smearing (``ISMEAR`` = order, ``SIGMA`` = width in eV), a single-point calculation.
The k-points are written as an explicit Γ-centred mesh in KPOINTS whose divisions are computed with VASP's
``KSPACING`` rule (:func:`pyiron_mlip_tradeoff.precision.kpoint_mesh`): VASP ignores ``KSPACING`` when a KPOINTS
file is present (pyiron always writes one), and pyiron's own ``set_kpoints(k_mesh_spacing=...)`` rounds
differently, so the explicit mesh is the only way to get exactly the study's sampling.

Results are read with the OUTCAR parser pyiron_atomistics uses (``vaspparser``): free energy ``TOTEN``
(force-consistent, the one recorded as ``energy``), energy(σ→0), forces, stress, elapsed and CPU time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms

from ..precision import PrecisionLevel
from .base import CalculationResult

__all__ = ["incar_parameters", "kpoints_text", "configure_vasp_job", "parse_outcar", "result_from_vasp_job"]

#: ISMEAR values of VASP for the smearing methods of a PrecisionLevel
_ISMEAR = {"gaussian": 0, "fermi-dirac": -1}

#: fixed INCAR settings of the ladder: accurate single point, tight electronic convergence, stress computed
STATIC_INCAR = {"PREC": "Accurate", "EDIFF": 1e-6, "LREAL": ".FALSE.", "IBRION": -1, "NSW": 0, "ISIF": 2,
                "ALGO": "Normal", "LWAVE": ".FALSE.", "LCHARG": ".FALSE."}


def incar_parameters(level: PrecisionLevel) -> dict:
    """INCAR tags that a precision level sets (``ENCUT`` in eV, ``ISMEAR``, ``SIGMA`` in eV) plus the fixed ones."""
    ismear = level.smearing_order if level.smearing == "methfessel-paxton" else _ISMEAR[level.smearing]
    params = dict(STATIC_INCAR)
    params.update({"ENCUT": level.cutoff, "ISMEAR": int(ismear), "SIGMA": level.smearing_width})
    return params


def kpoints_text(atoms: Atoms, level: PrecisionLevel) -> str:
    """KPOINTS file content: automatic Γ-centred mesh with the KSPACING-rule divisions of ``atoms`` at ``level``."""
    mesh = level.kpoint_mesh(np.asarray(atoms.get_cell()))
    return f"Gamma-centred mesh, {level.describe()}\n0\nGamma\n{mesh[0]} {mesh[1]} {mesh[2]}\n0 0 0\n"


def configure_vasp_job(job, atoms: Atoms, level: PrecisionLevel):
    """Set up a pyiron_atomistics ``Vasp`` job for one calculation of ``atoms`` at ``level``; returns the job."""
    from pyiron_atomistics import ase_to_pyiron

    job.structure = ase_to_pyiron(atoms)
    job.input.potcar["xc"] = "PBE"
    for key, value in incar_parameters(level).items():
        job.input.incar[key] = value
    mesh = level.kpoint_mesh(np.asarray(atoms.get_cell()))
    job.input.kpoints.set_kpoints_file(method="Gamma", size_of_mesh=list(mesh), shift=[0, 0, 0])
    job.input.kpoints.set_value(line=0, val=f"Gamma-centred mesh, {level.describe()}")
    return job


def parse_outcar(path: str | os.PathLike, kmesh: tuple[int, int, int] = (0, 0, 0)) -> CalculationResult:
    """Energy, forces, stress and cost of the last ionic step of a VASP OUTCAR (pyiron's OUTCAR parser).

    Stress is returned in eV/Å³, Voigt order, with ASE's sign convention (the negative of VASP's printed tensor).
    """
    from vaspparser.vasp.parser.outcar import Outcar

    path = Path(path)
    outcar = Outcar()
    outcar.from_file(filename=str(path))
    data = outcar.parse_dict
    if not len(data["energies"]):
        return CalculationResult.failure(0, kmesh, f"no completed ionic step in {path}", engine="vasp")
    stresses = np.asarray(data["stresses"], dtype=float)
    stress = np.full(6, np.nan)
    if stresses.ndim == 3 and len(stresses):
        # vaspparser gives VASP's 3×3 tensor in eV/Å³ with VASP's sign; ASE's stress is its negative
        s = -stresses[-1]
        stress = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    resources = data.get("resources", {})
    return CalculationResult(
        energy=float(data["energies"][-1]),
        energy_zero_width=float(data["energies_zero"][-1]),
        forces=np.asarray(data["forces"][-1], dtype=float),
        stress=stress,
        wall_seconds=float(resources.get("elapsed_time") or np.nan),
        core_seconds=float(resources.get("cpu_time") or np.nan),
        kmesh=tuple(int(k) for k in kmesh),
        scf_iterations=len(data["scf_energies"][-1]) if len(data.get("scf_energies", [])) else -1,
        engine="vasp",
        engine_version=str(data.get("vasp_version", "")),
    )


def result_from_vasp_job(job, atoms: Atoms, level: PrecisionLevel) -> CalculationResult:
    """Result of a finished pyiron ``Vasp`` job (failed result if the job did not finish)."""
    mesh = level.kpoint_mesh(np.asarray(atoms.get_cell()))
    if not job.status.finished:
        return CalculationResult.failure(len(atoms), mesh, f"VASP job {job.job_name} ended with status {job.status}",
                                         engine="vasp")
    outcar = Path(job.working_directory) / "OUTCAR"
    if outcar.exists():
        return parse_outcar(outcar, kmesh=mesh)
    return CalculationResult(
        energy=float(job["output/generic/dft/energy_free"][-1]),
        forces=np.asarray(job["output/generic/forces"][-1], dtype=float),
        stress=np.full(6, np.nan),
        wall_seconds=float("nan"),
        core_seconds=float("nan"),
        kmesh=mesh,
        engine="vasp",
    )
