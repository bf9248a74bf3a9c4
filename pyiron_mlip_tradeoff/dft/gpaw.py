"""GPAW, the embedded default engine: plane waves at the level's cutoff, PBE, Γ-centred k-mesh,
Methfessel–Paxton order 1 (width from the level, 0.2 eV by default), tight SCF convergence.

Engine options (``engine_options``, all checked before anything runs; an unknown one is an error naming it):
``xc``, ``convergence``, ``maxiter``, ``symmetry``, ``txt``, and for magnetic or hard-to-converge systems
``spinpol`` (spin-polarised; on by itself when the structure has initial magnetic moments), ``mixer`` (density
mixing, GPAW's dict form, e.g. ``{"beta": 0.05, "nmaxold": 5, "weight": 50}`` or with ``"name": "pulay"``),
``nbands`` (number of bands, or a percentage such as ``"120%"`` of the occupied ones) and ``setups`` (PAW setup
type for all elements, ``"paw"`` by default, or per element, e.g. ``{"Ti": "sc"}`` for the ``Ti.sc.PBE`` setup).
Spin polarisation starts from the structure's own initial magnetic moments
(``atoms.set_initial_magnetic_moments``, μB per atom).

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

__all__ = [
    "gpaw_parameters", "run_gpaw", "missing_setups", "check_engine_options", "DEFAULT_CONVERGENCE", "ENGINE_OPTIONS",
]

#: SCF convergence criteria (GPAW units: energy eV per valence electron, density electrons per valence electron)
DEFAULT_CONVERGENCE = {"energy": 1e-6, "density": 1e-6, "eigenstates": 1e-8}

#: options a user may pass through ``engine_options``
ENGINE_OPTIONS = ("maxiter", "convergence", "xc", "symmetry", "txt", "spinpol", "mixer", "nbands", "setups")

#: keys of GPAW's ``convergence`` dictionary
_CONVERGENCE_KEYS = ("energy", "density", "eigenstates", "forces", "bands", "maximum iterations")
#: setup types that need no file of their own
_FILELESS_SETUPS = ("ae", "ghost", "hgh", "hgh.sc", "sg15")


def _setup_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("GPAW_SETUP_PATH", "").split(os.pathsep) if p]
    try:
        import gpaw_data

        dirs.append(Path(gpaw_data.datapath()))
    except ImportError:
        pass
    return dirs


def _setup_type(setups, symbol: str) -> str:
    """The setup type ``setups`` (GPAW's ``setups`` keyword) gives ``symbol``: ``"paw"`` by default."""
    if isinstance(setups, str):
        return setups
    if isinstance(setups, dict):
        return str(setups.get(symbol, setups.get(None, setups.get("default", "paw"))))
    return "paw"


def missing_setups(symbols: Iterable[str], xc: str = "PBE", setups: str | dict | None = None) -> list[str]:
    """Chemical symbols for which the PAW setup file GPAW would read (``<symbol>.<xc>[.gz]``, or
    ``<symbol>.<type>.<xc>[.gz]`` for another setup type from ``setups``) is not installed."""
    dirs = _setup_dirs()
    missing = []
    for symbol in sorted(set(symbols)):
        kind = _setup_type(setups, symbol)
        if kind in _FILELESS_SETUPS:
            continue
        stem = f"{symbol}.{xc}" if kind == "paw" else f"{symbol}.{kind}.{xc}"
        if not any((d / f"{stem}.gz").exists() or (d / stem).exists() for d in dirs):
            missing.append(symbol if kind == "paw" else f"{symbol} ({kind})")
    return missing


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and \
        bool(np.isfinite(value))


def check_engine_options(options: dict | None) -> dict:
    """Validate ``engine_options`` for GPAW (names, types, values); returns a copy.

    Raises:
        InputError: an unknown option (named, with the allowed ones), or a value GPAW would reject.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - set(ENGINE_OPTIONS))
    if unknown:
        raise InputError(f"unknown GPAW engine option(s) {unknown}; allowed: {list(ENGINE_OPTIONS)}")
    if "maxiter" in options and (not isinstance(options["maxiter"], int) or options["maxiter"] < 1):
        raise InputError(f"maxiter must be a positive integer, got {options['maxiter']!r}")
    if "xc" in options and not isinstance(options["xc"], str):
        raise InputError(f"GPAW option xc must be a functional name such as 'PBE', got {options['xc']!r}")
    if "convergence" in options:
        conv = options["convergence"]
        if not isinstance(conv, dict) or set(conv) - set(_CONVERGENCE_KEYS):
            raise InputError(
                f"GPAW option convergence must be a dict with keys from {list(_CONVERGENCE_KEYS)}, got {conv!r}"
            )
    if "spinpol" in options and not isinstance(options["spinpol"], bool):
        raise InputError(f"GPAW option spinpol must be True or False, got {options['spinpol']!r}")
    if "nbands" in options:
        nbands = options["nbands"]
        ok = (isinstance(nbands, (int, np.integer)) and not isinstance(nbands, bool) and nbands != 0) or (
            isinstance(nbands, str) and nbands.endswith("%") and _is_positive_number(nbands[:-1])
        )
        if not ok:
            raise InputError(
                f"GPAW option nbands must be a non-zero integer or a percentage such as '120%', got {nbands!r}"
            )
    if "setups" in options:
        setups = options["setups"]
        ok = isinstance(setups, str) or (
            isinstance(setups, dict) and all(isinstance(v, str) for v in setups.values())
        )
        if not ok:
            raise InputError(f"GPAW option setups must be a setup type or a dict element → type, got {setups!r}")
    if "mixer" in options:
        _check_mixer(options["mixer"])
    return options


def _is_positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _check_mixer(mixer) -> None:
    """A mixer in GPAW's dict form whose parameters GPAW itself accepts."""
    if not isinstance(mixer, dict) or not mixer:
        raise InputError(f"GPAW option mixer must be a dict such as {{'beta': 0.05, 'nmaxold': 5, 'weight': 50}}, "
                         f"got {mixer!r}")
    for key, value in mixer.items():
        if key in ("name", "backend", "method"):
            if not isinstance(value, str):
                raise InputError(f"GPAW option mixer: {key} must be a string, got {value!r}")
        elif not _number(value):
            raise InputError(f"GPAW option mixer: {key} must be a number, got {value!r}")
    if "beta" in mixer and not 0 < mixer["beta"] <= 1:
        raise InputError(f"GPAW option mixer: beta must be in (0, 1], got {mixer['beta']!r}")
    try:
        from gpaw.dft import Mixer
    except ImportError:  # older GPAW: the numbers checked above are all we can check
        return
    try:
        Mixer.from_param(dict(mixer))
    except (TypeError, ValueError) as err:
        raise InputError(f"GPAW option mixer {mixer!r} is not accepted by GPAW: {err}") from None


def gpaw_parameters(atoms: Atoms, level: PrecisionLevel, **options) -> dict:
    """Keyword arguments for ``gpaw.GPAW`` at ``level`` (plane-wave mode object excluded: ``ecut`` in eV).

    Initial magnetic moments are not among them: GPAW reads them from ``atoms`` (and then computes with spin)."""
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
    for key in ("symmetry", "spinpol", "mixer", "nbands", "setups"):
        if key in options:
            params[key] = options[key]
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
        extra = {}
        if calc.get_number_of_spins() == 2:
            extra["magnetic_moment"] = float(calc.get_magnetic_moment())  # μB per cell
            extra["magnetic_moments"] = np.asarray(calc.get_magnetic_moments(), dtype=float).tolist()
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
        extra=extra,
    )
