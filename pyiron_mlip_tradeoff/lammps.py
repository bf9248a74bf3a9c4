"""LAMMPS side of a fitted qSNAP model: ``pair_style snap`` potential files, checks, MD input and MD output.

A fitted coefficient vector β (eV) in the descriptor column order of :mod:`pyiron_mlip_tradeoff.descriptors`
(per element: constant column first with ``bzeroflag 0``, then the linear bispectrum components, then the
quadratic products, exactly the order of LAMMPS ``compute snap``) is what ``pair_style snap`` reads from a
``.snapcoeff`` file, one block per element: per-atom energy E_i = β_0,e + Σ_k β_k,e B_k,i (+ quadratic terms)
for an atom of element e. The ``.snapparam`` file carries the descriptor settings; per-element ``radelem`` and
``wj`` are in the ``.snapcoeff``. A reference potential (FitSNAP ``[REFERENCE]``, see
:mod:`pyiron_mlip_tradeoff.reference`) is combined as ``pair_style hybrid/overlay <reference> snap``
(:func:`pair_style_lines`, :func:`write_potential_include`), so LAMMPS runs the model exactly as it was fitted:
``tests/test_potential_export.py`` shows LAMMPS energy, forces and stress = rows · β + reference to 1e-8.

Besides writing and reading those files, this module holds what an MD speed and stability measurement needs
without pyiron: checks of a potential and of MD settings that fail before LAMMPS starts
(:func:`check_snap_potential`, :func:`check_md_settings`), the cell (:func:`hcp_supercell` by default, or a
supercell of the user's structure, :func:`supercell`), the LAMMPS input
of the measurement (:func:`md_protocol_lines`), parsers of LAMMPS' log and dump (:func:`parse_log`,
:func:`read_dump_frames`), the stability quantities (:func:`energy_drift`, :func:`min_pair_distance`,
:func:`assess_stability`) and a single-point evaluation through ``pair_style snap`` (:func:`evaluate_snap`).

Nothing in this module imports pyiron.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from .descriptors import (
    DEFAULT_SETTINGS,
    chem_equivalent_columns,
    n_columns,
    n_columns_per_element,
    per_element,
    resolve_elements,
    resolve_settings,
)

__all__ = [
    "write_snap_potential",
    "snap_file_coefficients",
    "write_potential_include",
    "SnapElement",
    "read_snapcoeff_elements",
    "read_snapcoeff",
    "read_snapparam",
    "pair_style_lines",
    "expected_coefficient_count",
    "check_coefficients",
    "SnapPotentialInfo",
    "check_snap_potential",
    "MDSettings",
    "check_md_settings",
    "hcp_supercell",
    "supercell",
    "md_protocol_lines",
    "RunBlock",
    "LammpsLog",
    "parse_log",
    "LammpsError",
    "is_instability_error",
    "read_dump_frames",
    "min_pair_distance",
    "energy_drift",
    "StabilityReport",
    "assess_stability",
    "evaluate_snap",
]

#: snapparam keywords LAMMPS ``pair_style snap`` understands, in the order written
_PARAM_KEYS = ("rcutfac", "twojmax", "rfac0", "rmin0", "quadraticflag", "bzeroflag", "switchflag", "bnormflag",
               "wselfallflag", "chemflag")


def _fmt(value) -> str:
    """A number as LAMMPS reads it back exactly (integers as integers, floats with 17 significant digits)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return repr(float(value))


def _model_elements(element: str | None, elements: Sequence[str] | None) -> tuple[str, ...]:
    return resolve_elements(element, elements)


def _resolve(twojmax: int, settings: Mapping | None, n_elements: int) -> dict:
    return resolve_settings(twojmax, {k: v for k, v in dict(settings or {}).items() if k != "twojmax"}, n_elements)


def _element_energies(element_energies, names: Sequence[str]) -> np.ndarray:
    if element_energies is None:
        return np.zeros(len(names))
    if isinstance(element_energies, Mapping):
        unknown = sorted(set(element_energies) - set(names))
        if unknown:
            raise ValueError(f"element_energies names {unknown}, which are not among the elements {list(names)}")
        values = [element_energies.get(name, 0.0) for name in names]
    else:
        values = list(np.asarray(element_energies, dtype=float).reshape(-1))
        if len(values) != len(names):
            raise ValueError(f"{len(values)} element_energies for {len(names)} elements {list(names)}")
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        raise ValueError(f"element_energies must be finite, got {values.tolist()}")
    return values


def snap_file_coefficients(
    coefficients: np.ndarray | Sequence[float], twojmax: int, settings: Mapping | None = None, *,
    element: str | None = None, elements: Sequence[str] | None = None,
    element_energies: Mapping[str, float] | Sequence[float] | None = None,
) -> np.ndarray:
    """The fitted β (descriptor column order) as the per-element blocks of a ``.snapcoeff``.

    ``pair_style snap`` reads, per element, β_0 then one coefficient per bispectrum (and quadratic) term. With
    ``bzeroflag 0`` β_0 is the fitted constant column; with ``bzeroflag 1`` the descriptors carry no constant
    column and β_0 is the element's reference energy (``element_energies``, FitSNAP's ``[ESHIFT]``, eV; 0 by
    default, as in FitSNAP's own files). With ``chemflag 1`` the coefficients of identical columns are replaced by
    their mean (see :func:`~pyiron_mlip_tradeoff.descriptors.chem_equivalent_columns`): the same model on every
    descriptor row, and the form for which LAMMPS' forces are the gradient of its energy.

    Returns:
        (n_elements, 1 + terms) array in element order.
    """
    names = _model_elements(element, elements)
    resolved = _resolve(twojmax, settings, len(names))
    values = check_coefficients(coefficients, twojmax, resolved, elements=names)
    blocks = values.reshape(len(names), -1).copy()
    if resolved["chemflag"]:  # equal coefficients on identical columns: pair snap's forces need it
        first = 0 if resolved["bzeroflag"] else 1
        for group in chem_equivalent_columns(twojmax, len(names)):
            blocks[:, first + group] = blocks[:, first + group].mean(axis=1, keepdims=True)
    if resolved["bzeroflag"]:
        blocks = np.concatenate([_element_energies(element_energies, names)[:, None], blocks], axis=1)
    elif element_energies is not None:
        raise ValueError("element_energies only apply with bzeroflag 1 (with bzeroflag 0 β_0 is fitted)")
    return blocks


def write_snap_potential(
    prefix: str | os.PathLike, coefficients: np.ndarray, twojmax: int, settings: Mapping | None = None,
    element: str | None = None, comment: str = "", *, elements: Sequence[str] | None = None,
    element_energies: Mapping[str, float] | Sequence[float] | None = None,
) -> tuple[Path, Path]:
    """Write ``<prefix>.snapcoeff`` and ``<prefix>.snapparam`` for a qSNAP model of one or more elements.

    Args:
        prefix: path without suffix; the folder is created.
        coefficients: β in eV, one per descriptor column (the column order of
            :mod:`~pyiron_mlip_tradeoff.descriptors`: per element, constant column first when ``bzeroflag`` is 0).
        twojmax: 2Jmax of the descriptors.
        settings: descriptor settings (FitSNAP ``[BISPECTRUM]`` names; ``radelem``/``wj`` one value or one per
            element); defaults are the study's.
        element: one-element shorthand for ``elements=[element]`` (default ``"Be"``).
        comment: one line written into the file headers.
        elements: element symbols in model order (written in this order; LAMMPS maps types by these names).
        element_energies: β_0 per element with ``bzeroflag 1`` (see :func:`snap_file_coefficients`).

    Returns:
        Paths of the ``.snapcoeff`` and ``.snapparam`` files.

    Raises:
        ValueError: when the number of coefficients does not match the elements and settings.
    """
    names = _model_elements(element, elements)
    resolved = _resolve(twojmax, settings, len(names))
    blocks = snap_file_coefficients(coefficients, twojmax, resolved, elements=names,
                                    element_energies=element_energies)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    header = f"# qSNAP potential written by pyiron_mlip_tradeoff{': ' + comment if comment else ''}\n"
    coeff_path = prefix.with_name(prefix.name + ".snapcoeff")
    radelem = per_element(resolved, "radelem", len(names))
    wj = per_element(resolved, "wj", len(names))
    lines = [header, f"{len(names)} {blocks.shape[1]}\n"]
    for name, r, w, block in zip(names, radelem, wj, blocks, strict=True):
        lines.append(f"{name} {_fmt(r)} {_fmt(w)}\n")
        lines += [f"{_fmt(value)}\n" for value in block]
    coeff_path.write_text("".join(lines))
    param_path = prefix.with_name(prefix.name + ".snapparam")
    params = {key: resolved[key] for key in _PARAM_KEYS if key in resolved}
    params["twojmax"] = int(twojmax)
    if not params.get("chemflag"):
        params.pop("chemflag", None)  # one-element files stay as before
    param_path.write_text(header + "".join(f"{key} {_fmt(value)}\n" for key, value in params.items()))
    return coeff_path, param_path


@dataclass(frozen=True)
class SnapElement:
    """One element's block of a ``.snapcoeff``: symbol, radius ``radelem``, weight ``wj``, β_0 and the rest (eV)."""

    name: str
    radelem: float
    wj: float
    coefficients: np.ndarray = field(repr=False)


def read_snapcoeff_elements(path: str | os.PathLike) -> list[SnapElement]:
    """All element blocks of a ``.snapcoeff`` file (ours or FitSNAP's; ``#`` comments are ignored).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a malformed header, element line or coefficient, or a wrong count; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SNAP coefficient file {path} does not exist")
    rows = [line.split("#", 1)[0].split() for line in path.read_text().splitlines()]
    rows = [r for r in rows if r]
    try:
        n_elements, n_coeff = int(rows[0][0]), int(rows[0][1])
    except (IndexError, ValueError):
        raise ValueError(f"{path}: the first line must be '<number of elements> <coefficients per element>'") from None
    elements, k = [], 1
    for _ in range(n_elements):
        try:
            name, radelem, wj = rows[k][0], float(rows[k][1]), float(rows[k][2])
            values = np.array([float(r[0]) for r in rows[k + 1 : k + 1 + n_coeff]])
        except (IndexError, ValueError):
            raise ValueError(f"{path}: element block {len(elements) + 1} is malformed (line '{' '.join(rows[k]) if k < len(rows) else ''}')") from None
        if values.size != n_coeff:
            raise ValueError(f"{path}: header announces {n_coeff} coefficients per element, {name} has {values.size}")
        elements.append(SnapElement(name, radelem, wj, values))
        k += 1 + n_coeff
    if k != len(rows):
        raise ValueError(f"{path}: {len(rows) - k} lines after the {n_elements} announced element block(s)")
    return elements


def read_snapcoeff(path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """Element symbol and coefficients (eV) of a one-element ``.snapcoeff`` file."""
    blocks = read_snapcoeff_elements(path)
    if len(blocks) != 1:
        raise ValueError(f"{path}: a one-element file was expected, found {len(blocks)} elements "
                         f"{[b.name for b in blocks]} (use read_snapcoeff_elements)")
    return blocks[0].name, blocks[0].coefficients


def _reference_pair(reference: Mapping) -> tuple[str, list[str]]:
    """(hybrid/overlay sub-style words, pair_coeff lines naming their sub-style) of a reference spec."""
    from .reference import _spec

    style, coeffs = _spec(reference)
    words = style.split()
    if words[0] == "hybrid/overlay":
        body = " ".join(words[1:])
    elif words[0].startswith("hybrid"):
        raise ValueError(f"reference pair_style {style!r}: only plain styles or hybrid/overlay can be combined with snap")
    else:
        body = style
        coeffs = [" ".join(line.split()[:2] + [words[0]] + line.split()[2:]) for line in coeffs]
    if "snap" in body.split():
        raise ValueError(f"reference pair_style {style!r} already contains snap")
    return body, coeffs


def pair_style_lines(
    coeff_path: str | os.PathLike, param_path: str | os.PathLike, element: str | None = None, *,
    elements: Sequence[str] | None = None, reference: Mapping | None = None, absolute: bool = False,
) -> list[str]:
    """LAMMPS input lines that use the potential (file names relative unless ``absolute``).

    Without a reference: ``pair_style snap`` and one ``pair_coeff``. With a reference spec
    (``{"pair_style": …, "pair_coeff": […]}``, see :mod:`~pyiron_mlip_tradeoff.reference`):
    ``pair_style hybrid/overlay <reference sub-styles> snap``, the reference ``pair_coeff`` lines (a plain
    reference style gets its name inserted as the sub-style), then ``pair_coeff * * snap …`` — the model exactly
    as it was fitted (reference + SNAP).
    """
    names = _model_elements(element, elements)

    def name(path):
        path = Path(path)
        return f'"{path.absolute()}"' if absolute else path.name

    snap_args = f"{name(coeff_path)} {name(param_path)} {' '.join(names)}"
    if reference is None:
        return ["pair_style snap\n", f"pair_coeff * * {snap_args}\n"]
    body, coeffs = _reference_pair(reference)
    return [f"pair_style hybrid/overlay {body} snap\n", *(f"pair_coeff {line}\n" for line in coeffs),
            f"pair_coeff * * snap {snap_args}\n"]


def write_potential_include(
    path: str | os.PathLike, coeff_path: str | os.PathLike, param_path: str | os.PathLike, *,
    elements: Sequence[str], reference: Mapping | None = None,
) -> Path:
    """Write a LAMMPS include file (``include <path>``) with :func:`pair_style_lines` (files named relative
    to the include's folder when they are in it, absolute otherwise). The reference spec is checked by LAMMPS
    on a tiny cell first (:func:`~pyiron_mlip_tradeoff.reference.check_reference`)."""
    from .reference import check_reference

    names = _model_elements(None, elements)
    if reference is not None:
        check_reference(reference, names)
    path = Path(path)
    same_folder = Path(coeff_path).absolute().parent == Path(param_path).absolute().parent == path.absolute().parent
    lines = pair_style_lines(coeff_path, param_path, elements=names, reference=reference, absolute=not same_folder)
    path.write_text("# SNAP model written by pyiron_mlip_tradeoff (reference pair + snap, as fitted)\n"
                    + "".join(lines))
    return path


# ---------------------------------------------------------------------------------------------------------------
# potential files: reading and checking (all before LAMMPS starts)
#: ``pair_style snap`` defaults for keywords a ``.snapparam`` may leave out (LAMMPS' defaults, not the study's)
_LAMMPS_PARAM_DEFAULTS: dict[str, float | int] = {
    "rfac0": 0.99363, "rmin0": 0.0, "switchflag": 1, "bzeroflag": 1, "quadraticflag": 0, "chemflag": 0,
    "bnormflag": 0, "wselfallflag": 0,
}


def expected_coefficient_count(
    twojmax: int, quadraticflag: int = 1, bzeroflag: int = 0, n_elements: int = 1, chemflag: int = 0
) -> int:
    """Number of values per element in a ``.snapcoeff``: β_0 plus one per bispectrum (and quadratic) term.

    ``pair_style snap`` always reads β_0, whatever ``bzeroflag`` says (bzeroflag only changes what the
    descriptors are measured from), so the count is 1 + 14, 30, 55, 91 (linear) or 120, 496, 1596, 4278 (with
    the quadratic terms) for 2Jmax 4, 6, 8, 10; with ``chemflag 1`` the linear terms are n_elements³ times as
    many (FitSNAP's InP: 1 + 30 · 8 = 241).
    """
    del bzeroflag  # documented above: it does not change the file's length
    return n_columns_per_element(int(twojmax), int(quadraticflag), 0, int(n_elements), int(chemflag))


def check_coefficients(
    coefficients: np.ndarray | Sequence[float], twojmax: int, settings: Mapping | None = None, *,
    element: str | None = None, elements: Sequence[str] | None = None,
) -> np.ndarray:
    """Check a fitted coefficient vector (descriptor column order) against the model; return it as floats.

    Args:
        coefficients: β in eV, one per descriptor column (per element: constant term first with bzeroflag 0).
        twojmax: 2Jmax of the model.
        settings: descriptor settings (FitSNAP names; the study's defaults fill the gaps).
        element, elements: the model's element(s) (default ``"Be"``).

    Raises:
        ValueError: wrong number of coefficients for (elements, 2Jmax, quadraticflag, chemflag, bzeroflag), or
            NaN/inf values.
    """
    names = _model_elements(element, elements)
    resolved = _resolve(twojmax, settings, len(names))
    values = np.asarray(coefficients, dtype=float).reshape(-1)
    expected = n_columns(twojmax, resolved["quadraticflag"], resolved["bzeroflag"], len(names), resolved["chemflag"])
    if values.size != expected:
        model = f" for {len(names)} elements {list(names)}" if len(names) > 1 else ""
        raise ValueError(
            f"{values.size} coefficients do not match 2Jmax {twojmax} with quadraticflag "
            f"{resolved['quadraticflag']}{model}: a .snapcoeff needs {expected}"
        )
    if not np.isfinite(values).all():
        raise ValueError("coefficients contain NaN or inf")
    return values


def read_snapparam(path: str | os.PathLike) -> dict:
    """Keyword → value of a ``.snapparam`` file (integers as ``int``, the rest as ``float``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line that is not ``keyword value``, or a value that is not a number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SNAP parameter file {path} does not exist")
    params: dict = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if len(words) != 2:
            raise ValueError(f"{path}:{number}: expected 'keyword value', got {line!r}")
        key, value = words
        try:
            params[key] = int(value)
        except ValueError:
            try:
                params[key] = float(value)
            except ValueError:
                raise ValueError(f"{path}:{number}: {key} has a non-numeric value {value!r}") from None
    return params


@dataclass(frozen=True)
class SnapPotentialInfo:
    """What :func:`check_snap_potential` found in a pair of potential files.

    Attributes:
        coeff_path, param_path: absolute paths of the ``.snapcoeff`` and ``.snapparam`` files.
        element: chemical symbol of the first element in the ``.snapcoeff``.
        twojmax: 2Jmax from the ``.snapparam``.
        settings: descriptor settings (FitSNAP names) from the ``.snapparam`` with LAMMPS' defaults filled in
            (``radelem``/``wj`` from the ``.snapcoeff``, lists for several elements).
        coefficients: β in eV as in the file, element blocks one after the other (β_0 first in each).
        elements: all element symbols of the file, in its order.
    """

    coeff_path: Path
    param_path: Path
    element: str
    twojmax: int
    settings: dict
    coefficients: np.ndarray = field(repr=False)
    elements: tuple[str, ...] = ()

    @property
    def n_coefficients(self) -> int:
        """Coefficients per element (β_0 included)."""
        return int(self.coefficients.size // max(1, len(self.elements)))

    @property
    def cutoff(self) -> float:
        """Largest interaction cut-off in Å (``2 · rcutfac · max(radelem)``)."""
        radelem = per_element(self.settings, "radelem", max(1, len(self.elements)))
        return 2.0 * float(self.settings["rcutfac"]) * max(radelem)

    def model_coefficients(self) -> np.ndarray:
        """β in the descriptor column order (β_0 dropped per element when ``bzeroflag`` is 1)."""
        blocks = self.coefficients.reshape(len(self.elements), -1)
        return (blocks[:, 1:] if self.settings["bzeroflag"] else blocks).reshape(-1)


def check_snap_potential(
    coeff_path: str | os.PathLike, param_path: str | os.PathLike, element: str | None = None, *,
    elements: Sequence[str] | None = None,
) -> SnapPotentialInfo:
    """Check that a ``.snapcoeff``/``.snapparam`` pair makes a usable potential for ``elements``.

    Checks, in this order: both files exist; the ``.snapparam`` has ``rcutfac`` and an even ``twojmax`` in 0..10;
    the ``.snapcoeff`` holds exactly the elements asked for (``element`` is the one-element shorthand, default
    ``"Be"``), in any order; its number of coefficients per element matches 2Jmax, ``quadraticflag`` and
    ``chemflag``; all coefficients are finite.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: any other mismatch, with the file and the expected value in the message.
    """
    names = _model_elements(element, elements)
    coeff_path, param_path = Path(coeff_path).absolute(), Path(param_path).absolute()
    if not coeff_path.is_file():
        raise FileNotFoundError(f"SNAP coefficient file {coeff_path} does not exist")
    params = read_snapparam(param_path)
    for key in ("rcutfac", "twojmax"):
        if key not in params:
            raise ValueError(f"{param_path}: the required keyword {key!r} is missing")
    merged = {**_LAMMPS_PARAM_DEFAULTS, **params}
    twojmax = merged["twojmax"]
    if not isinstance(twojmax, int):
        raise ValueError(f"{param_path}: twojmax must be an integer, got {twojmax!r}")
    try:
        blocks = read_snapcoeff_elements(coeff_path)
    except ValueError as err:
        raise ValueError(f"{coeff_path} is not a valid .snapcoeff file: {err}") from None
    file_elements = tuple(b.name for b in blocks)
    if sorted(file_elements) != sorted(names):
        found = repr(file_elements[0]) if len(file_elements) == 1 else str(list(file_elements))
        wanted = repr(names[0]) if len(names) == 1 else str(list(names))
        raise ValueError(f"{coeff_path} is a potential for {found}, but the simulation is set up for {wanted}")
    known = {k: merged[k] for k in DEFAULT_SETTINGS if k in merged and k not in ("radelem", "wj")}
    known.update(radelem=[b.radelem for b in blocks], wj=[b.wj for b in blocks])
    try:
        settings = resolve_settings(twojmax, known, len(blocks))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{param_path}: {err}") from None
    expected = expected_coefficient_count(twojmax, settings["quadraticflag"], settings["bzeroflag"], len(blocks),
                                          settings["chemflag"])
    count = blocks[0].coefficients.size
    if count != expected:
        raise ValueError(
            f"{coeff_path} with {param_path.name}: {count} coefficients do not match 2Jmax {twojmax} with "
            f"quadraticflag {settings['quadraticflag']}: a .snapcoeff needs {expected}"
        )
    coefficients = np.concatenate([b.coefficients for b in blocks])
    if not np.isfinite(coefficients).all():
        raise ValueError(f"{coeff_path}: coefficients contain NaN or inf")
    return SnapPotentialInfo(coeff_path, param_path, file_elements[0], int(twojmax), settings, coefficients,
                             file_elements)


# ---------------------------------------------------------------------------------------------------------------
# MD settings, cell and LAMMPS input of the measurement
@dataclass(frozen=True)
class MDSettings:
    """Settings of one MD speed + stability measurement.

    Attributes:
        n_atoms: requested cell size (atoms; the hcp cell has the closest achievable count).
        steps: MD steps of the timed (NVE) run whose LAMMPS performance line gives the speed.
        nvt_steps: steps of the thermostatted run at ``temperature`` before it (0: none).
        nve_steps: steps of the NVE run in which the energy drift is measured (0: no drift measured).
        temperature: target temperature in K; velocities start at twice it (equipartition from the lattice).
        timestep: MD time step in fs.
        n_print: thermo and dump interval (steps) during the NVT and NVE runs.
        seed: random seed of the initial velocities (positive integer).
        thermostat_damping: Nosé–Hoover damping time in fs.
    """

    n_atoms: int = 2000
    steps: int = 200
    nvt_steps: int = 500
    nve_steps: int = 500
    temperature: float = 300.0
    timestep: float = 1.0
    n_print: int = 50
    seed: int = 4928459
    thermostat_damping: float = 100.0

    @property
    def phases(self) -> list[str]:
        """Names of the LAMMPS ``run`` commands in the order they appear in the input."""
        return [name for name, n in (("nvt", self.nvt_steps), ("nve", self.nve_steps)) if n > 0] + ["speed"]


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return int(value)


def _finite(name: str, value, minimum: float, strict: bool) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '≥'} {minimum:g}, got {value}")
    return value


def check_md_settings(
    n_atoms: int = 2000, steps: int = 200, nvt_steps: int = 500, nve_steps: int = 500, temperature: float = 300.0,
    timestep: float = 1.0, n_print: int = 50, seed: int = 4928459, thermostat_damping: float = 100.0,
) -> MDSettings:
    """Validate MD settings (units as in :class:`MDSettings`) and return them as :class:`MDSettings`.

    Raises:
        ValueError: cell size or timed steps ≤ 0, negative NVT/NVE steps, time step ≤ 0 fs, temperature < 0 K,
            a positive NVT run at 0 K, print interval or seed ≤ 0, damping ≤ 0 fs, or a non-number.
    """
    settings = MDSettings(
        n_atoms=_positive_int("n_atoms (cell size)", n_atoms),
        steps=_positive_int("steps", steps),
        nvt_steps=_positive_int("nvt_steps", nvt_steps, 0),
        nve_steps=_positive_int("nve_steps", nve_steps, 0),
        temperature=_finite("temperature (K)", temperature, 0.0, False),
        timestep=_finite("timestep (fs)", timestep, 0.0, True),
        n_print=_positive_int("n_print", n_print),
        seed=_positive_int("seed", seed),
        thermostat_damping=_finite("thermostat_damping (fs)", thermostat_damping, 0.0, True),
    )
    if settings.nvt_steps > 0 and settings.temperature == 0:
        raise ValueError("an NVT run needs a temperature > 0 K (set nvt_steps=0 for a run from rest)")
    return settings


def _repeats_near(unit: Atoms, n_atoms: int) -> tuple[int, int, int]:
    """Repeats of ``unit`` that bring the atom count closest to ``n_atoms`` with a near-cubic cell: the score is
    the relative count error plus 0.05 × (longest / shortest cell height − 1)."""
    cell = np.asarray(unit.get_cell())
    volume = abs(np.linalg.det(cell))
    # heights of the cell between opposite faces (the edge lengths for an orthogonal cell)
    lengths = np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])
    if np.allclose(cell - np.diag(np.diag(cell)), 0.0):
        lengths = np.linalg.norm(cell, axis=1)
    edge = (n_atoms / len(unit) * volume) ** (1 / 3)
    guess = np.maximum(1, np.round(edge / lengths)).astype(int)
    best, best_score = None, np.inf
    ranges = [range(max(1, g - 3), g + 4) for g in guess]
    for nx in ranges[0]:
        for ny in ranges[1]:
            for nz in ranges[2]:
                reps = np.array([nx, ny, nz])
                count = len(unit) * reps.prod()
                sides = reps * lengths
                score = abs(count - n_atoms) / n_atoms + 0.05 * (sides.max() / sides.min() - 1)
                if score < best_score:
                    best, best_score = reps, score
    return tuple(int(r) for r in best)


def supercell(structure: Atoms, n_atoms: int | None = None) -> Atoms:
    """The user's periodic ``structure`` (ASE or pyiron ``Atoms``) as given (``n_atoms=None``) or repeated
    n_x × n_y × n_z times to the atom count closest to ``n_atoms`` with a near-cubic cell (see :func:`hcp_supercell`).

    Species, positions (Å) and cell are kept; initial velocities and the like are not.

    Raises:
        ValueError: not a structure, no atoms, not periodic in all three directions, no cell volume, ``n_atoms`` < 1.
    """
    if not isinstance(structure, Atoms):
        raise ValueError(f"the MD structure must be an ASE or pyiron Atoms, got {type(structure).__name__}")
    if len(structure) == 0:
        raise ValueError("the MD structure has no atoms")
    if not np.all(structure.get_pbc()) or abs(structure.cell.volume) < 1e-6:
        raise ValueError("the MD structure must be periodic in all three directions with a cell of non-zero volume")
    unit = Atoms(structure.get_chemical_symbols(), positions=structure.get_positions(), cell=structure.get_cell()[:],
                 pbc=True)
    if n_atoms is None:
        return unit
    n_atoms = _positive_int("n_atoms (cell size)", n_atoms)
    return unit.repeat(_repeats_near(unit, n_atoms))


def hcp_supercell(n_atoms: int, element: str = "Be", a: float = 2.29, c: float = 3.58) -> Atoms:
    """An orthorhombic hcp supercell with about ``n_atoms`` atoms and roughly equal edge lengths.

    Built from the 4-atom orthorhombic hcp cell (edges a, √3·a, c in Å), repeated n_x × n_y × n_z times; the
    repeats are chosen to bring the atom count closest to ``n_atoms`` while keeping the cell near cubic
    (e.g. 2000 → 12 × 6 × 7 = 2016 atoms for Be).

    Raises:
        ValueError: ``n_atoms`` < 1, or lattice constants ≤ 0.
    """
    from ase.build import bulk

    n_atoms = _positive_int("n_atoms (cell size)", n_atoms)
    a, c = _finite("a (Å)", a, 0.0, True), _finite("c (Å)", c, 0.0, True)
    unit = bulk(element, "hcp", a=a, c=c, orthorhombic=True)
    return unit.repeat(_repeats_near(unit, n_atoms))


_DUMP_FORMAT = '"%d %d %20.15g %20.15g %20.15g %20.15g %20.15g %20.15g %20.15g %20.15g %20.15g"'
#: thermo columns of the measurement (pyiron's default columns plus the atom count)
THERMO_COLUMNS = ("step", "temp", "pe", "etotal", "pxx", "pxy", "pxz", "pyy", "pyz", "pzz", "vol", "atoms")


def md_protocol_lines(
    settings: MDSettings, structure_file: str = "structure.inp", potential_file: str = "potential.inp"
) -> list[str]:
    """LAMMPS input (metal units) of the measurement, one command per line.

    The input reads the cell from ``structure_file`` (``read_data``) and the pair style from ``potential_file``
    (``include``), creates velocities at 2 × ``temperature``, then runs (see :attr:`MDSettings.phases`):

    1. ``nvt_steps`` of Nosé–Hoover NVT at ``temperature``,
    2. ``nve_steps`` of NVE (velocity Verlet), from whose total energy the drift is measured,
    3. ``steps`` of NVE with output only at its ends: the timed run.

    Atoms that leave are dropped instead of stopping LAMMPS (``thermo_modify lost ignore``), and the ``atoms``
    thermo column records how many are left. Positions are dumped to ``dump.out`` every ``n_print`` steps.
    """
    s = settings
    dt_ps = s.timestep / 1000.0
    lines = [
        "units metal", "dimension 3", "boundary p p p", "atom_style atomic",
        f"read_data {structure_file}", f"include {potential_file}", f"timestep {dt_ps!r}",
    ]
    if s.temperature > 0:
        lines.append(f"velocity all create {2 * s.temperature!r} {s.seed} dist gaussian mom yes rot yes")
    lines += [
        f"dump 1 all custom {s.n_print} dump.out id type xsu ysu zsu fx fy fz vx vy vz",
        f"dump_modify 1 sort id format line {_DUMP_FORMAT}",
        "thermo_style custom " + " ".join(THERMO_COLUMNS),
        "thermo_modify format float %20.15g lost ignore flush yes",
        f"thermo {s.n_print}",
    ]
    if s.nvt_steps > 0:
        damping_ps = s.thermostat_damping / 1000.0
        lines += [
            f"fix ensemble all nvt temp {s.temperature!r} {s.temperature!r} {damping_ps!r}",
            f"run {s.nvt_steps}",
            "unfix ensemble",
        ]
    lines.append("fix ensemble all nve")
    if s.nve_steps > 0:
        lines.append(f"run {s.nve_steps}")
    lines += [f"thermo {s.steps}", f"dump_modify 1 every {s.steps}", f"run {s.steps}"]
    return [line + "\n" for line in lines]


# ---------------------------------------------------------------------------------------------------------------
# LAMMPS output
@dataclass
class RunBlock:
    """Thermo output and timing of one LAMMPS ``run``.

    Attributes:
        thermo: column name (as LAMMPS prints it, e.g. ``Step``, ``TotEng``, ``Atoms``) → values.
        loop_seconds: wall time of the run's loop (s), from ``Loop time of … on P procs for N steps with M atoms``.
        procs, steps, atoms: P, N and M of that line (M is the atom count at the end of the run).
        performance: atom-timesteps per second from LAMMPS' ``Performance:`` line (``None`` if absent).
    """

    thermo: dict[str, np.ndarray] = field(default_factory=dict)
    loop_seconds: float | None = None
    procs: int | None = None
    steps: int | None = None
    atoms: int | None = None
    performance: float | None = None

    @property
    def completed(self) -> bool:
        """Whether LAMMPS finished the run (its ``Loop time`` line was written)."""
        return self.loop_seconds is not None

    @property
    def atom_steps_per_second(self) -> float:
        """Atom-timesteps per second (all processes together): LAMMPS' performance figure, or N·M / loop time."""
        if self.performance is not None:
            return self.performance
        if not self.completed or not self.loop_seconds:
            return float("nan")
        return self.steps * self.atoms / self.loop_seconds

    def column(self, name: str) -> np.ndarray:
        """A thermo column by LAMMPS name, case-insensitive (``KeyError`` naming the present columns)."""
        for key, values in self.thermo.items():
            if key.lower() == name.lower():
                return values
        raise KeyError(f"thermo column {name!r} not in this run; present: {list(self.thermo)}")


@dataclass
class LammpsLog:
    """A parsed LAMMPS log: its runs in order and its ``ERROR`` lines."""

    runs: list[RunBlock]
    errors: list[str]

    @property
    def error(self) -> str | None:
        """The first error message LAMMPS wrote, or ``None``."""
        return self.errors[0] if self.errors else None


_LOOP = re.compile(r"Loop time of\s+(\S+)\s+on\s+(\d+)\s+procs\s+for\s+(\d+)\s+steps\s+with\s+(\d+)\s+atoms")
_PERFORMANCE = re.compile(r"([0-9.eE+-]+)\s+([kMGT]?)atom-step/s")
_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _to_float(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        return float("nan") if "nan" in word.lower() else float("inf") * (-1 if word.startswith("-") else 1)


def parse_log(text: str) -> LammpsLog:
    """Parse LAMMPS' screen or log output: thermo blocks, loop timing, performance and error lines.

    Thermo rows interrupted by ``WARNING`` lines are kept; a run that stopped with an error has a thermo block
    but no loop time (``completed`` is false). ``nan``/``inf`` thermo values are read as such.
    """
    runs: list[RunBlock] = []
    errors: list[str] = []
    header: list[str] | None = None
    rows: list[list[float]] = []

    def close_block() -> None:
        nonlocal header, rows
        if header is not None:
            data = np.array(rows, dtype=float).reshape(-1, len(header))
            runs.append(RunBlock(thermo={name: data[:, i] for i, name in enumerate(header)}))
        header, rows = None, []

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ERROR"):
            errors.append(line)
            close_block()
            continue
        loop = _LOOP.search(line)
        if loop:
            if header is not None:
                close_block()
            elif not runs:
                runs.append(RunBlock())
            block = runs[-1]
            block.loop_seconds = float(loop.group(1))
            block.procs, block.steps, block.atoms = (int(loop.group(k)) for k in (2, 3, 4))
            continue
        if line.startswith("Performance:"):
            perf = _PERFORMANCE.search(line)
            if perf and runs:
                runs[-1].performance = float(perf.group(1)) * _PREFIX[perf.group(2)]
            continue
        words = line.split()
        if words and words[0] == "Step" and len(words) > 1:
            close_block()
            header = words
            continue
        if header is not None and len(words) == len(header):
            try:
                float(words[0])
            except ValueError:
                continue
            rows.append([_to_float(w) for w in words])
    close_block()
    return LammpsLog(runs, errors)


class LammpsError(RuntimeError):
    """LAMMPS stopped with an error; ``message`` is LAMMPS' own ``ERROR`` line."""

    def __init__(self, message: str, context: str = "") -> None:
        self.message = message
        super().__init__(f"{context}: {message}" if context else message)


_INSTABILITY = re.compile(
    r"unstable|lost atoms|out of range atoms|non-numeric|neighbor list overflow|too many neighbor bins|"
    r"did not assign all atoms|atoms? (?:are|is) too far|bond atoms? missing|domain too large|too many atoms",
    re.IGNORECASE,
)


def is_instability_error(message: str | None) -> bool:
    """Whether a LAMMPS error message says the *dynamics* went wrong (the model blew up), not the input."""
    return bool(message) and bool(_INSTABILITY.search(message))


def read_dump_frames(path: str | os.PathLike, elements: str | Sequence[str] = "Be") -> list[Atoms]:
    """All frames of a LAMMPS text dump (``dump custom`` with ``id type xsu ysu zsu …``) as ASE structures.

    Positions are in LAMMPS' frame (a rotation of the input frame; distances are unchanged). Atom type ``k`` is
    ``elements[k - 1]`` (the potential's element list, in the order of its ``pair_coeff`` line; one symbol for a
    one-element model). Frames may differ in atom count (atoms lost during the run).

    Raises:
        ValueError: the dump has an atom type beyond the element list.
    """
    from ase.io import read

    elements = [elements] if isinstance(elements, str) else list(elements)
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return []
    frames = read(path, format="lammps-dump-text", index=":")
    for atoms in frames:
        types = atoms.get_atomic_numbers()  # ASE's reader puts the LAMMPS atom type here
        if len(types) and (types.min() < 1 or types.max() > len(elements)):
            raise ValueError(
                f"{path}: atom types {sorted(set(types.tolist()))} do not fit the element list {elements}"
            )
        atoms.set_chemical_symbols([elements[t - 1] for t in types])
    return frames


def min_pair_distance(frames: Atoms | Sequence[Atoms], cutoff: float = 3.0) -> float:
    """Smallest interatomic distance (Å) over periodic frames, periodic images included.

    Returns ``inf`` when no two atoms of any frame are closer than ``cutoff`` (Å), and ``nan`` when a frame has
    non-finite positions or cell.
    """
    from ase.neighborlist import neighbor_list

    if isinstance(frames, Atoms):
        frames = [frames]
    smallest = math.inf
    for atoms in frames:
        if not (np.isfinite(atoms.positions).all() and np.isfinite(np.asarray(atoms.cell)).all()):
            return float("nan")
        if len(atoms) == 0:
            continue
        distances = neighbor_list("d", atoms, float(cutoff))
        if distances.size:
            smallest = min(smallest, float(distances.min()))
    return smallest


def energy_drift(times_ps: np.ndarray, total_energy: np.ndarray, n_atoms: int) -> float:
    """Energy drift in meV/atom/ps: slope of a straight-line fit of the total energy (eV) against time (ps),
    divided by the number of atoms. ``nan`` with fewer than two points or non-finite energies."""
    t = np.asarray(times_ps, dtype=float)
    e = np.asarray(total_energy, dtype=float)
    if t.size < 2 or not np.isfinite(e).all() or np.ptp(t) == 0 or n_atoms < 1:
        return float("nan")
    slope = np.polyfit(t - t.mean(), e, 1)[0]
    return float(slope * 1000.0 / n_atoms)


@dataclass
class StabilityReport:
    """Whether a model ran a usable MD trajectory.

    Attributes:
        stable: no atoms lost, finite energies, no LAMMPS instability error, min_distance ≥ the limit,
            |energy_drift| ≤ the limit and the temperature stayed below ten times the target.
        atoms_lost: atoms that left the simulation (initial minus smallest count seen).
        energy_drift: NVE drift in meV/atom/ps (``nan`` without an NVE run).
        min_distance: smallest pair distance seen in the dumped frames (Å).
        max_temperature: highest temperature printed during the NVT and NVE runs (K).
        reasons: why the model is not stable (empty when stable).
    """

    stable: bool
    atoms_lost: int
    energy_drift: float
    min_distance: float
    max_temperature: float
    reasons: list[str] = field(default_factory=list)


def assess_stability(
    log: LammpsLog,
    settings: MDSettings,
    n_atoms: int,
    frames: Sequence[Atoms] = (),
    *,
    min_distance_limit: float = 1.0,
    max_drift: float = 10.0,
    distance_cutoff: float = 3.0,
) -> StabilityReport:
    """Judge an MD run of :func:`md_protocol_lines` from its parsed log and dumped frames.

    Args:
        log: the parsed LAMMPS log (runs in the order of ``settings.phases``; a crashed run has fewer).
        settings: the settings the input was made from.
        n_atoms: atoms in the initial cell.
        frames: dumped frames (:func:`read_dump_frames`).
        min_distance_limit: pair distances below this (Å) count as a collapse.
        max_drift: largest acceptable |NVE drift| in meV/atom/ps.
        distance_cutoff: neighbour search radius (Å) for the minimum distance.
    """
    reasons: list[str] = []
    if log.error is not None:
        reasons.append(f"LAMMPS stopped: {log.error}")
    blocks = dict(zip(settings.phases, log.runs, strict=False))
    counts = [n_atoms]
    temperatures: list[float] = []
    energies_finite = True
    for name, block in blocks.items():
        if block.atoms is not None:
            counts.append(block.atoms)
        if "Atoms" in block.thermo:
            counts.extend(int(v) for v in block.thermo["Atoms"] if np.isfinite(v))
        if block.thermo:
            energies_finite &= bool(np.isfinite(block.column("TotEng")).all())
            if name != "speed":
                temperatures.extend(block.column("Temp").tolist())
    atoms_lost = int(n_atoms - min(counts))
    if atoms_lost:
        reasons.append(f"{atoms_lost} atoms lost")
    if not energies_finite:
        reasons.append("non-finite energies")
    max_temperature = float(np.nanmax(temperatures)) if temperatures else float("nan")
    if settings.temperature > 0 and max_temperature > 10 * settings.temperature:
        reasons.append(f"temperature reached {max_temperature:.4g} K (target {settings.temperature:g} K)")
    drift = float("nan")
    nve = blocks.get("nve")
    if nve is not None and nve.thermo:
        steps = nve.column("Step")
        drift = energy_drift(steps * settings.timestep / 1000.0, nve.column("TotEng"), n_atoms - atoms_lost)
        if not np.isfinite(drift) or abs(drift) > max_drift:
            reasons.append(f"NVE energy drift {drift:.4g} meV/atom/ps (limit {max_drift:g})")
    min_distance = min_pair_distance(list(frames), distance_cutoff) if len(frames) else float("nan")
    if not np.isnan(min_distance) and min_distance < min_distance_limit:
        reasons.append(f"atoms came {min_distance:.3g} Å close (limit {min_distance_limit:g} Å)")
    elif len(frames) and np.isnan(min_distance):
        reasons.append("non-finite positions")
    return StabilityReport(not reasons, atoms_lost, drift, min_distance, max_temperature, reasons)


# ---------------------------------------------------------------------------------------------------------------
# single-point evaluation through pair_style snap
def evaluate_snap(
    atoms: Atoms, coeff_path: str | os.PathLike, param_path: str | os.PathLike, element: str | None = None,
    mass: float | None = None, *, elements: Sequence[str] | None = None, reference: Mapping | None = None,
    stress: bool = False,
) -> tuple[float, np.ndarray] | tuple[float, np.ndarray, np.ndarray]:
    """Energy (eV) and forces (eV/Å, ASE frame, input atom order) of a structure with the potential in LAMMPS.

    Runs an in-process LAMMPS (``run 0``) with the potential files — and the reference pair when ``reference`` is
    given, through exactly the lines of :func:`pair_style_lines` (``hybrid/overlay <reference> snap``); the files
    are checked first (:func:`check_snap_potential`).

    Args:
        atoms: a periodic structure whose species are all in ``elements``.
        coeff_path, param_path: the potential files.
        element: one-element shorthand for ``elements=[element]`` (default ``"Be"``).
        mass: atomic mass (amu) of a one-element model (ASE's masses by default; it does not change the result).
        elements: element order of the model (LAMMPS types 1, 2, …).
        reference: reference-potential spec ``{"pair_style": …, "pair_coeff": […]}`` or ``None``.
        stress: also return the stress (eV/Å³, ASE sign, Voigt xx yy zz yz xz xy).

    Returns:
        ``(energy, forces)`` or ``(energy, forces, stress)``.
    """
    from .descriptors import validate_structures
    from .reference import _PairEvaluator

    names = _model_elements(element, elements)
    check_snap_potential(coeff_path, param_path, elements=names)
    (atoms,) = validate_structures([atoms], elements=names)
    if mass is not None and len(names) != 1:
        raise ValueError("mass= is for one-element models; several elements use ASE's masses")
    lines = pair_style_lines(coeff_path, param_path, elements=names, reference=reference, absolute=True)
    with _PairEvaluator(lines, names, masses=None if mass is None else [mass]) as evaluator:
        energy, forces, stress_voigt = evaluator.compute(atoms)
    return (energy, forces, stress_voigt) if stress else (energy, forces)
