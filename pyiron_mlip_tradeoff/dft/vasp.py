"""VASP, the production engine, driven through pyiron_atomistics' ``Vasp`` job.

A precision level maps to VASP input as in the reference study: ``ENCUT`` = cutoff (eV), PBE PAW potentials,
Methfessel–Paxton smearing (``ISMEAR`` = order, ``SIGMA`` = width in eV), a single-point calculation.
The k-points are written as an explicit Γ-centred mesh in KPOINTS whose divisions are computed with VASP's
``KSPACING`` rule (:func:`pyiron_mlip_tradeoff.precision.kpoint_mesh`): VASP ignores ``KSPACING`` when a KPOINTS
file is present (pyiron always writes one), and pyiron's own ``set_kpoints(k_mesh_spacing=...)`` rounds
differently, so the explicit mesh is the only way to get exactly the study's sampling.

Engine options (``engine_options``, checked before anything runs): ``incar``, INCAR tags added to or replacing the
fixed ones (not those a level sets: ``ENCUT``, ``ISMEAR``, ``SIGMA``, ``KSPACING``), e.g.
``{"incar": {"ALGO": "Fast", "NCORE": 4}}``; ``potcar``, the exchange-correlation family (``"xc"``: ``"PBE"`` or
``"LDA"``) and the POTCAR per element (e.g. ``{"xc": "PBE", "Fe": "Fe_pv"}``, as pyiron's ``job.potential``).
Initial magnetic moments of a structure (``atoms.set_initial_magnetic_moments``) become ``ISPIN = 2`` and
``MAGMOM`` (pyiron writes them).

Results are read with the OUTCAR parser pyiron_atomistics uses (``vaspparser``): free energy ``TOTEN``
(force-consistent, the one recorded as ``energy``), energy(σ→0), forces, stress, elapsed and CPU time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms

from ..precision import PrecisionLevel
from .base import CalculationResult, InputError

__all__ = [
    "incar_parameters", "kpoints_text", "configure_vasp_job", "parse_outcar", "result_from_vasp_job",
    "check_engine_options", "ENGINE_OPTIONS",
]

#: options a user may pass through ``engine_options``
ENGINE_OPTIONS = ("incar", "potcar")
#: INCAR tags that belong to the precision level and may not be overridden
_LEVEL_TAGS = ("ENCUT", "ISMEAR", "SIGMA", "KSPACING", "KGAMMA")
_XC = ("PBE", "LDA", "GGA")

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


def check_engine_options(options: dict | None, symbols: set[str] | None = None) -> dict:
    """Validate ``engine_options`` for VASP; returns a copy with INCAR tags in upper case.

    Raises:
        InputError: an unknown option (named), an INCAR tag that a precision level sets, a non-scalar INCAR value,
            an unknown ``xc``, or a POTCAR choice for an element that is not in the structures.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(ENGINE_OPTIONS))
    if unknown:
        raise InputError(f"unknown VASP engine option(s) {unknown}; allowed: {list(ENGINE_OPTIONS)}")
    incar = options.get("incar", {}) or {}
    if not isinstance(incar, dict):
        raise InputError(f"VASP option incar must be a dict of INCAR tags, got {incar!r}")
    checked = {}
    for tag, value in incar.items():
        if not isinstance(tag, str) or not tag.strip():
            raise InputError(f"VASP option incar: tag {tag!r} is not a name")
        name = tag.strip().upper()
        if name in _LEVEL_TAGS:
            raise InputError(f"VASP option incar: {name} is set by the precision level; change the level instead")
        if not isinstance(value, (str, int, float, bool, np.integer, np.floating)):
            raise InputError(f"VASP option incar: {name} = {value!r} is not a number, string or boolean")
        checked[name] = value.item() if isinstance(value, np.generic) else value
    if "incar" in options:
        options["incar"] = checked
    potcar = options.get("potcar", {}) or {}
    if not isinstance(potcar, dict):
        raise InputError(f"VASP option potcar must be a dict such as {{'xc': 'PBE', 'Fe': 'Fe_pv'}}, got {potcar!r}")
    for key, value in potcar.items():
        if key == "xc":
            if value not in _XC:
                raise InputError(f"VASP option potcar: xc must be one of {list(_XC)}, got {value!r}")
        elif not isinstance(value, str) or not value.startswith(str(key)):
            raise InputError(f"VASP option potcar: the POTCAR of {key} must be a name such as '{key}_pv', got {value!r}")
        elif symbols is not None and key not in symbols:
            raise InputError(f"VASP option potcar names {key!r}, which is in none of the structures {sorted(symbols)}")
    return options


def kpoints_text(atoms: Atoms, level: PrecisionLevel) -> str:
    """KPOINTS file content: automatic Γ-centred mesh with the KSPACING-rule divisions of ``atoms`` at ``level``."""
    mesh = level.kpoint_mesh(np.asarray(atoms.get_cell()))
    return f"Gamma-centred mesh, {level.describe()}\n0\nGamma\n{mesh[0]} {mesh[1]} {mesh[2]}\n0 0 0\n"


def configure_vasp_job(job, atoms: Atoms, level: PrecisionLevel, options: dict | None = None):
    """Set up a pyiron_atomistics ``Vasp`` job for one calculation of ``atoms`` at ``level`` with the engine
    ``options`` (see the module docstring); returns the job."""
    from pyiron_atomistics import ase_to_pyiron

    options = check_engine_options(options, set(atoms.get_chemical_symbols()))
    job.structure = ase_to_pyiron(atoms)
    potcar = dict(options.get("potcar", {}) or {})
    job.input.potcar["xc"] = potcar.pop("xc", "PBE")
    for element, name in potcar.items():
        job.potential[element] = name
    incar = incar_parameters(level)
    incar.update(options.get("incar", {}) or {})
    for key, value in incar.items():
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
    """Result of a finished pyiron ``Vasp`` job, read from its OUTCAR (a failed result with the reason if the job
    did not finish, left no OUTCAR, or the OUTCAR lacks the energy, forces or timing)."""
    mesh = level.kpoint_mesh(np.asarray(atoms.get_cell()))
    if not job.status.finished:
        return CalculationResult.failure(len(atoms), mesh, f"VASP job {job.job_name} ended with status {job.status}",
                                         engine="vasp")
    workdir = Path(job.working_directory)
    if workdir.is_dir() and job.is_compressed():
        job.decompress()
    outcar = workdir / "OUTCAR"
    if not outcar.exists():
        return CalculationResult.failure(
            len(atoms), mesh, f"VASP job {job.job_name} finished without an OUTCAR in {job.working_directory}",
            engine="vasp",
        )
    result = parse_outcar(outcar, kmesh=mesh)
    if result.failed:
        return CalculationResult.failure(len(atoms), mesh, result.error, engine="vasp")
    return result.checked(len(atoms))
