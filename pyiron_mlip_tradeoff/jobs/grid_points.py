"""The points of a ``TradeoffGrid`` kept in the grid's own files: one small HDF5 file per draw.

With ``grid.input.point_storage = "table"`` a grid does not create a ``QSnapFit`` job per point. Each draw (one
(2Jmax, sampling, repetition): levels × subset sizes × weight ratios points) is written, once all its points are
computed, as ``<grid working directory>/points/j<2Jmax>_<sampling>_r<repetition>.h5``:

* ``columns/<name>``: the table columns of its points (:data:`~pyiron_mlip_tradeoff.fitting.TABLE_COLUMNS`, one
  value per point; ``sampling`` as an attribute, it is the draw's);
* ``coefficients``: (n_points, p) fitted coefficients (eV per descriptor unit);
* ``subset_order``: the largest training subset of the draw in an order whose prefixes are its nested subsets
  (each subset's configurations, sorted, after those of the next smaller one), so a point's training set is
  ``sorted(subset_order[:subset_size])``.

A file is written under a temporary name and renamed when complete, so a draw is either stored whole or not at
all: a run killed at any moment (Ctrl-C, ``scancel``, a lost node) leaves only finished draws, and the next run
computes the others. Every draw has exactly one writer (the process or queue chunk that owns it), so concurrent
chunks never write the same file and need no lock. Per point this is one table row plus p coefficients
(``benchmarks/study_scale.py`` measures bytes and milliseconds per point).

Nothing here imports pyiron.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["draw_file_name", "write_draw", "read_draw", "stored_draws", "subset_order"]

_FORMAT = 1


def draw_file_name(draw: Sequence) -> str:
    """File name of a draw ``(twojmax, sampling, repetition)``."""
    tj, sampling, rep = draw
    return f"j{int(tj)}_{sampling}_r{int(rep)}.h5"


def subset_order(train_sets: Iterable[np.ndarray]) -> np.ndarray:
    """One order whose prefixes are the given nested training sets (any order; sizes distinct): each set's new
    configurations, sorted, after those of the smaller sets."""
    sets = sorted({len(s): np.asarray(s, dtype=np.int64) for s in train_sets}.items())
    out, seen = [], np.zeros(0, dtype=np.int64)
    for _, s in sets:
        new = np.setdiff1d(s, seen)
        if seen.size + new.size != s.size:
            raise ValueError("training sets of a draw are not nested")
        out.append(new)
        seen = np.union1d(seen, s)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def write_draw(folder: str | os.PathLike, draw: Sequence, rows: Sequence[Mapping], coefficients: np.ndarray,
               order: np.ndarray) -> Path:
    """Write the points of one draw (all of them) atomically; returns the file."""
    import h5py

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / draw_file_name(draw)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["twojmax"], f.attrs["sampling"], f.attrs["repetition"] = int(draw[0]), str(draw[1]), int(draw[2])
            f.attrs["n_points"] = len(rows)
            group = f.create_group("columns")
            for name in rows[0] if rows else ():
                if name == "sampling":
                    continue
                values = [r[name] for r in rows]
                if isinstance(values[0], str):
                    group[name] = np.array(values, dtype="S")
                else:
                    group[name] = np.asarray(values)
            f["coefficients"] = np.asarray(coefficients, dtype=float)
            f["subset_order"] = np.asarray(order, dtype=np.int64)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_draw(path: str | os.PathLike, coefficients: bool = False) -> dict:
    """A draw file as ``{"rows": {column: array}, "n_points", "draw", "subset_order"[, "coefficients"]}``."""
    import h5py

    with h5py.File(path, "r") as f:
        n = int(f.attrs["n_points"])
        draw = (int(f.attrs["twojmax"]), str(f.attrs["sampling"]), int(f.attrs["repetition"]))
        columns = {}
        for name, data in f["columns"].items():
            values = data[()]
            columns[name] = np.char.decode(values, "utf-8").astype(object) if values.dtype.kind == "S" else values
        columns["sampling"] = np.array([draw[1]] * n, dtype=object)
        out = {"rows": columns, "n_points": n, "draw": draw, "subset_order": f["subset_order"][()]}
        if coefficients:
            out["coefficients"] = f["coefficients"][()]
    return out


def stored_draws(folder: str | os.PathLike) -> dict[tuple[int, str, int], Path]:
    """The complete draw files in ``folder``: ``{(twojmax, sampling, repetition): path}``."""
    import h5py

    folder = Path(folder)
    out = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("j*_r*.h5")):
        try:
            with h5py.File(path, "r") as f:
                out[(int(f.attrs["twojmax"]), str(f.attrs["sampling"]), int(f.attrs["repetition"]))] = path
        except (OSError, KeyError):  # not one of ours (a complete file is only ever renamed into place)
            continue
    return out
