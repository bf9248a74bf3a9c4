"""Reference potential (FitSNAP ``[REFERENCE]``): its energy, forces and stress per configuration, by LAMMPS.

A SNAP fit usually learns the difference between the DFT labels and a fixed physical pair potential (ZBL
repulsion at short range, say): the targets lose the reference contribution before the fit, and the exported
potential adds it back (``pair_style hybrid/overlay <reference> snap``). The reference is given as a dict

    {"pair_style": "hybrid/overlay zero 10.0 zbl 4.0 4.2",
     "pair_coeff": ["* * zero", "1 1 zbl 49 49", "1 2 zbl 49 15", "2 2 zbl 15 15"]}

with LAMMPS' own ``pair_style`` arguments and ``pair_coeff`` lines (FitSNAP's ``pair_style`` and ``pair_coeff1``,
``pair_coeff2``, … of its input file); atom types are the positions in ``elements`` (1, 2, …).

:func:`check_reference` validates a spec before any real work — its shape, and that LAMMPS accepts it, by a run
on a tiny cell with one atom of every element — so an unknown pair style or a bad ``pair_coeff`` fails at once
with LAMMPS' message. :func:`reference_contributions` then computes, one LAMMPS instance for all
configurations, each configuration's energy (eV), forces (eV/Å, input frame and atom order) and stress
(eV/Å³, ASE sign: positive under tension, Voigt xx yy zz yz xz xy).

FitSNAP subtracts exactly these from its targets: E − E_ref (then / N), F − F_ref, and for stress
P − P_ref with P the pressure tensor in bar (P_ref = −EV_PER_A3_IN_BAR · stress_ref).

Nothing in this module imports pyiron.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .descriptors import _lammps_instance, _LammpsCell, _num, resolve_elements, validate_structures

__all__ = ["ReferenceContributions", "check_reference", "reference_contributions", "reference_lines"]

_KEYS = ("pair_style", "pair_coeff")


@dataclass
class ReferenceContributions:
    """The reference potential's share of every configuration's labels.

    Attributes:
        energies: (n_configs,) total energies in eV.
        forces: per configuration an (N_m, 3) array in eV/Å (input frame, input atom order).
        stresses: (n_configs, 6) stress in eV/Å³, ASE sign, Voigt xx yy zz yz xz xy.
    """

    energies: np.ndarray
    forces: list[np.ndarray]
    stresses: np.ndarray

    @property
    def force_rows(self) -> np.ndarray:
        """All forces flattened like the descriptor force rows (configurations in order, x/y/z per atom)."""
        return np.concatenate([f.reshape(-1) for f in self.forces]) if self.forces else np.zeros(0)


def _spec(reference: Mapping) -> tuple[str, list[str]]:
    """Shape check of a reference spec; returns (pair_style, pair_coeff lines)."""
    if not isinstance(reference, Mapping):
        raise TypeError(f"the reference potential must be a dict with keys {list(_KEYS)}, got {reference!r}")
    unknown = sorted(set(reference) - set(_KEYS))
    if unknown:
        raise ValueError(f"reference potential: unknown key(s) {unknown}; expected {list(_KEYS)}")
    missing = [key for key in _KEYS if key not in reference]
    if missing:
        raise ValueError(f"reference potential: missing key(s) {missing}")
    style = reference["pair_style"]
    if not isinstance(style, str) or not style.strip():
        raise ValueError(f"reference potential: pair_style must be a non-empty string, got {style!r}")
    coeffs = reference["pair_coeff"]
    if isinstance(coeffs, str):
        coeffs = [coeffs]
    coeffs = list(coeffs)
    if not coeffs or not all(isinstance(line, str) and line.strip() for line in coeffs):
        raise ValueError(f"reference potential: pair_coeff must be a non-empty list of strings, got {coeffs!r}")
    for line in [style, *coeffs]:
        if "\n" in line or ";" in line:
            raise ValueError(f"reference potential: one LAMMPS command per entry, got {line!r}")
    style = " ".join(style.split())
    coeffs = [" ".join(line.split()) for line in coeffs]
    for line in coeffs:
        if line.split()[0] == "pair_coeff":
            raise ValueError(f"reference potential: write pair_coeff lines without the command name, got {line!r}")
    if style.split()[0] == "pair_style":
        raise ValueError(f"reference potential: write pair_style without the command name, got {style!r}")
    return style, coeffs


def reference_lines(reference: Mapping) -> list[str]:
    """The LAMMPS commands of a reference spec: ``pair_style …`` then its ``pair_coeff …`` lines."""
    style, coeffs = _spec(reference)
    return [f"pair_style {style}", *(f"pair_coeff {line}" for line in coeffs)]


def _masses(elements: Sequence[str]) -> list[float]:
    from ase.data import atomic_masses, atomic_numbers

    return [float(atomic_masses[atomic_numbers[name]]) for name in elements]


class _PairEvaluator(_LammpsCell):
    """Energy (eV), forces (eV/Å) and stress (eV/Å³, ASE sign, Voigt xx yy zz yz xz xy) of LAMMPS pair-style
    commands (``pair_style …``, ``pair_coeff …``) on structures loaded one after another, in the ASE frame.
    Masses: ASE's, or ``masses`` (one per element)."""

    def __init__(self, lines: Sequence[str], elements: Sequence[str], masses: Sequence[float] | None = None) -> None:
        super().__init__(elements, _lammps_instance())
        self.lines = [line.rstrip("\n") for line in lines]
        self.masses = _masses(self.elements) if masses is None else [float(m) for m in masses]
        self.nktv2p: float | None = None  # LAMMPS pressure units per (eV/Å³), read after the first run

    def compute(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
        lmp = self.lmp
        n = len(atoms)
        rotation, _, _ = self.load(atoms, "structure")
        masses = "".join(f"mass {i + 1} {_num(m)}\n" for i, m in enumerate(self.masses))
        lmp.commands_string(masses + "\n".join(self.lines) + "\n")
        lmp.commands_string(
            "neighbor 0.0 bin\nneigh_modify one 10000 page 100000\n"
            "compute pairvirial all pressure NULL virial\n"
            "thermo_style custom step pe c_pairvirial[*]\nrun 0\n"
        )
        energy = float(lmp.get_thermo("pe"))
        if self.nktv2p is None:
            self.nktv2p = float(lmp.extract_global("nktv2p"))
        # pressure tensor of the virial (bar in metal units), LAMMPS order xx yy zz xy xz yz
        pressure = np.array(lmp.numpy.extract_compute("pairvirial", 0, 1), dtype=float)
        ids = np.array(lmp.numpy.extract_atom("id"))[:n]
        forces = np.array(lmp.numpy.extract_atom("f"))[:n]
        ordered = np.empty_like(forces)
        ordered[ids - 1] = forces
        xx, yy, zz, xy, xz, yz = pressure / self.nktv2p  # W / V in eV/Å³
        tensor = -np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])  # ASE stress = −W / V
        tensor = rotation @ tensor @ rotation.T
        stress = tensor[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return energy, ordered @ rotation.T, stress


def _tiny_cell(elements: Sequence[str]) -> Atoms:
    """One atom of every element on a line through a 3 Å-spaced cubic cell (a quick LAMMPS smoke test)."""
    n = len(elements)
    positions = [[3.0 * i, 0.3 * i, 0.2 * i] for i in range(n)]
    return Atoms(list(elements), positions=positions, cell=[3.0 * n + 0.5, 3.1, 3.2], pbc=True)


def check_reference(reference: Mapping, elements: Sequence[str]) -> list[str]:
    """Validate a reference spec for ``elements``: its shape, then a LAMMPS run on a tiny cell.

    Returns:
        the LAMMPS commands (:func:`reference_lines`).

    Raises:
        TypeError / ValueError: a malformed spec, or LAMMPS rejecting it (the message names the pair style and
            quotes LAMMPS), or a non-finite energy/force/stress on the tiny cell.
    """
    names = resolve_elements(None, elements)
    lines = reference_lines(reference)
    style = lines[0]
    try:
        with _PairEvaluator(reference_lines(reference), names) as engine:
            energy, forces, stress = engine.compute(_tiny_cell(names))
    except Exception as err:  # LAMMPS raises its own exception class with the error text
        raise ValueError(
            f"reference potential {style!r} (with {lines[1:]}) does not run in LAMMPS for elements {list(names)}: "
            f"{str(err).strip()}"
        ) from None
    if not (np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(stress).all()):
        raise ValueError(f"reference potential {style!r} gives non-finite values on a test cell of {list(names)}")
    return lines


def reference_contributions(
    structures: Sequence[Atoms], elements: Sequence[str], reference: Mapping | None
) -> ReferenceContributions:
    """Energy, forces and stress of the reference potential for every structure (one LAMMPS instance).

    Args:
        structures: periodic ASE structures whose species are all in ``elements``.
        elements: element order (atom type i + 1 is ``elements[i]``, as in the ``pair_coeff`` lines).
        reference: ``{"pair_style": str, "pair_coeff": [str, ...]}``, or ``None`` for no reference (zeros,
            LAMMPS is not started).

    Returns:
        :class:`ReferenceContributions` (eV, eV/Å, eV/Å³ with ASE sign).

    Raises:
        ValueError / TypeError: bad structures or a bad spec, before the first configuration is computed.
    """
    names = resolve_elements(None, elements)
    structures = validate_structures(structures, elements=names)
    if reference is None:
        return ReferenceContributions(
            np.zeros(len(structures)), [np.zeros((len(a), 3)) for a in structures], np.zeros((len(structures), 6))
        )
    check_reference(reference, names)
    energies, forces, stresses = [], [], []
    with _PairEvaluator(reference_lines(reference), names) as engine:
        for index, atoms in enumerate(structures):
            try:
                energy, force, stress = engine.compute(atoms)
            except Exception as err:
                raise RuntimeError(f"reference potential failed on structure {index}: {err}") from None
            if not (np.isfinite(energy) and np.isfinite(force).all() and np.isfinite(stress).all()):
                raise ValueError(f"reference potential gives non-finite values for structure {index}")
            energies.append(energy)
            forces.append(force)
            stresses.append(stress)
    return ReferenceContributions(np.array(energies), forces, np.array(stresses))
