"""GPAW, the embedded default engine: plane waves at the level's cutoff, PBE, Γ-centred k-mesh,
Methfessel–Paxton order 1 (width from the level, 0.2 eV by default), tight SCF convergence.

The recorded ``energy`` is GPAW's free energy (``get_potential_energy(force_consistent=True)``), the energy
the forces are derivatives of; the zero-width extrapolation is kept as ``energy_zero_width``.

:func:`run_gpaw` runs in the calling process. The ladder runs each calculation in a fresh worker process
(:mod:`pyiron_mlip_tradeoff.dft.worker`) with one OpenMP/BLAS thread, so a crash or a hung SCF costs only that
calculation.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ase import Atoms

from ..precision import PrecisionLevel
from .base import CalculationResult, InputError

__all__ = ["gpaw_parameters", "run_gpaw", "missing_setups", "DEFAULT_CONVERGENCE", "ENGINE_OPTIONS"]

#: SCF convergence criteria (GPAW units: energy eV per valence electron, density electrons per valence electron)
DEFAULT_CONVERGENCE = {"energy": 1e-6, "density": 1e-6, "eigenstates": 1e-8}

#: options a user may pass through ``engine_options``
ENGINE_OPTIONS = ("maxiter", "convergence", "xc", "symmetry", "txt")


def _setup_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("GPAW_SETUP_PATH", "").split(os.pathsep) if p]
    try:
        import gpaw_data

        dirs.append(Path(gpaw_data.datapath()))
    except ImportError:
        pass
    return dirs


def missing_setups(symbols: Iterable[str], xc: str = "PBE") -> list[str]:
    """Chemical symbols for which no GPAW PAW setup (``<symbol>.<xc>[.gz]``) is installed."""
    dirs = _setup_dirs()
    missing = []
    for symbol in sorted(set(symbols)):
        if not any((d / f"{symbol}.{xc}.gz").exists() or (d / f"{symbol}.{xc}").exists() for d in dirs):
            missing.append(symbol)
    return missing


def check_engine_options(options: dict | None) -> dict:
    """Validate ``engine_options`` for GPAW; returns a copy."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(ENGINE_OPTIONS))
    if unknown:
        raise InputError(f"unknown GPAW engine option(s) {unknown}; allowed: {list(ENGINE_OPTIONS)}")
    if "maxiter" in options and (not isinstance(options["maxiter"], int) or options["maxiter"] < 1):
        raise InputError(f"maxiter must be a positive integer, got {options['maxiter']!r}")
    return options


def gpaw_parameters(atoms: Atoms, level: PrecisionLevel, **options) -> dict:
    """Keyword arguments for ``gpaw.GPAW`` at ``level`` (plane-wave mode object excluded: ``ecut`` in eV)."""
    options = check_engine_options(options)
    smearing = {"name": level.smearing, "width": level.smearing_width}
    if level.smearing == "methfessel-paxton":
        smearing["order"] = level.smearing_order
    convergence = dict(DEFAULT_CONVERGENCE)
    convergence.update(options.get("convergence", {}))
    params = {
        "ecut": level.cutoff,
        "xc": options.get("xc", "PBE"),
        "kpts": {"size": level.kpoint_mesh(atoms.get_cell()[:]), "gamma": True},
        "occupations": smearing,
        "convergence": convergence,
        "txt": options.get("txt"),
    }
    if "maxiter" in options:
        params["maxiter"] = int(options["maxiter"])
    if "symmetry" in options:
        params["symmetry"] = options["symmetry"]
    return params


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_gpaw(atoms: Atoms, level: PrecisionLevel, **options) -> CalculationResult:
    """Compute energy, forces and stress of ``atoms`` at ``level`` with GPAW (in this process).

    An SCF that does not converge, or any other GPAW error, gives a failed :class:`CalculationResult`
    carrying the message instead of raising.
    """
    import gpaw
    from gpaw import GPAW, PW

    params = gpaw_parameters(atoms, level, **options)
    kmesh = params["kpts"]["size"]
    ecut = params.pop("ecut")
    wall0, cpu0 = time.perf_counter(), _cpu_seconds()
    atoms = atoms.copy()
    try:
        calc = GPAW(mode=PW(ecut), **params)
        atoms.calc = calc
        energy = atoms.get_potential_energy(force_consistent=True)
        energy_zero_width = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=True)
        iterations = calc.get_number_of_iterations()
    except Exception as err:  # GPAW raises KohnShamConvergenceError, MemoryError, ValueError, ...
        return CalculationResult.failure(
            len(atoms), kmesh, f"{type(err).__name__}: {err}",
            wall_seconds=time.perf_counter() - wall0, core_seconds=_cpu_seconds() - cpu0,
            engine="gpaw", engine_version=gpaw.__version__,
        )
    return CalculationResult(
        energy=float(energy),
        energy_zero_width=float(energy_zero_width),
        forces=np.asarray(forces, dtype=float),
        stress=np.asarray(stress, dtype=float),
        wall_seconds=time.perf_counter() - wall0,
        core_seconds=_cpu_seconds() - cpu0,
        kmesh=tuple(int(k) for k in kmesh),
        scf_iterations=int(iterations) if iterations is not None else -1,
        engine="gpaw",
        engine_version=gpaw.__version__,
    )
