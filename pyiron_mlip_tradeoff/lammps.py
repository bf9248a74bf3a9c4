"""LAMMPS side of a fitted qSNAP model: ``pair_style snap`` potential files.

A fitted coefficient vector β (eV) in the descriptor column order of :mod:`pyiron_mlip_tradeoff.descriptors`
(constant column first, then the linear bispectrum components, then the quadratic products, exactly the order of
LAMMPS ``compute snap``) is what ``pair_style snap`` reads from a ``.snapcoeff`` file: per-atom energy
E_i = β_0 + Σ_k β_k B_k,i (+ quadratic terms). The ``.snapparam`` file carries the descriptor settings.

Nothing in this module imports pyiron.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .descriptors import n_columns, resolve_settings

__all__ = ["write_snap_potential", "read_snapcoeff", "pair_style_lines"]

#: snapparam keywords LAMMPS ``pair_style snap`` understands, in the order written
_PARAM_KEYS = ("rcutfac", "twojmax", "rfac0", "rmin0", "quadraticflag", "bzeroflag", "switchflag", "bnormflag",
               "wselfallflag")


def _fmt(value) -> str:
    """A number as LAMMPS reads it back exactly (integers as integers, floats with 17 significant digits)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return repr(float(value))


def write_snap_potential(
    prefix: str | os.PathLike, coefficients: np.ndarray, twojmax: int, settings: Mapping | None = None,
    element: str = "Be", comment: str = "",
) -> tuple[Path, Path]:
    """Write ``<prefix>.snapcoeff`` and ``<prefix>.snapparam`` for a one-element qSNAP model.

    Args:
        prefix: path without suffix; the folder is created.
        coefficients: β in eV, one per descriptor column (constant column included: ``bzeroflag 0``).
        twojmax: 2Jmax of the descriptors.
        settings: descriptor settings (FitSNAP ``[BISPECTRUM]`` names); defaults are the study's.
        element: chemical symbol.
        comment: one line written into the file headers.

    Returns:
        Paths of the ``.snapcoeff`` and ``.snapparam`` files.

    Raises:
        ValueError: when the number of coefficients does not match 2Jmax and the quadratic setting.
    """
    resolved = resolve_settings(twojmax, dict(settings or {}))
    coefficients = np.asarray(coefficients, dtype=float).reshape(-1)
    expected = n_columns(twojmax, quadraticflag=int(resolved["quadraticflag"]), bzeroflag=int(resolved["bzeroflag"]))
    if int(resolved["bzeroflag"]) != 0:
        expected += 1  # pair_style snap always reads β_0, even when the descriptors carry no constant column
    if coefficients.size != expected:
        raise ValueError(
            f"{coefficients.size} coefficients do not match 2Jmax {twojmax} with quadraticflag "
            f"{resolved['quadraticflag']}: a .snapcoeff needs {expected}"
        )
    if not np.isfinite(coefficients).all():
        raise ValueError("coefficients contain NaN or inf")
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    header = f"# qSNAP potential written by pyiron_mlip_tradeoff{': ' + comment if comment else ''}\n"
    coeff_path = prefix.with_name(prefix.name + ".snapcoeff")
    lines = [header, f"1 {coefficients.size}\n", f"{element} {_fmt(resolved['radelem'])} {_fmt(resolved['wj'])}\n"]
    lines += [f"{_fmt(value)}\n" for value in coefficients]
    coeff_path.write_text("".join(lines))
    param_path = prefix.with_name(prefix.name + ".snapparam")
    params = {key: resolved[key] for key in _PARAM_KEYS if key in resolved}
    params["twojmax"] = int(twojmax)
    param_path.write_text(header + "".join(f"{key} {_fmt(value)}\n" for key, value in params.items()))
    return coeff_path, param_path


def read_snapcoeff(path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """Element symbol and coefficients (eV) of a one-element ``.snapcoeff`` file."""
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip() and not line.startswith("#")]
    n_elements, n_coeff = int(rows[0][0]), int(rows[0][1])
    if n_elements != 1:
        raise ValueError(f"{path}: only one-element potentials are supported, found {n_elements}")
    values = np.array([float(r[0]) for r in rows[2 : 2 + n_coeff]])
    if values.size != n_coeff:
        raise ValueError(f"{path}: header announces {n_coeff} coefficients, found {values.size}")
    return rows[1][0], values


def pair_style_lines(coeff_path: str | os.PathLike, param_path: str | os.PathLike, element: str = "Be") -> list[str]:
    """LAMMPS input lines that use the potential."""
    return ["pair_style snap\n", f"pair_coeff * * {Path(coeff_path).name} {Path(param_path).name} {element}\n"]
