"""A streamed, mergeable QR factorisation of a tall matrix given in row blocks.

For a matrix M (n × k) that arrives a few rows at a time, :class:`StreamedQR` keeps only the upper-trapezoidal
factor R of M = Q R (min(n, k) × k; Q is never formed). Rows are buffered and folded in by a QR of ``[R; buffer]``
(once R is a full k × k triangle, by LAPACK's triangular-pentagonal QR, :func:`fold_into_triangle`, which leaves the
zeros of R alone); two factors of disjoint row sets merge by a QR of ``[R₁; R₂]``. Both steps use orthogonal
transformations only, so the result is exact up to rounding and does not depend on the order or grouping of the rows: RᵀR = MᵀM, and
‖M v‖ = ‖R v‖ for every vector v.

This one class serves the leverage scores (the R of the descriptor rows, :mod:`~pyiron_mlip_tradeoff.leverage`)
and the least-squares statistics (the R of ``[descriptor rows | targets]``, :mod:`~pyiron_mlip_tradeoff.regression`).

Memory: R (at most k × k) plus the buffer (``batch_rows`` × k), independent of the number of rows n.
Nothing in this module imports pyiron.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.linalg.lapack import get_lapack_funcs

__all__ = ["StreamedQR", "triangular_factor", "fold_into_triangle", "default_batch_rows"]

#: columns per block of LAPACK ``?tpqrt`` (32–64 measured equally fast for k = 500 and 1,600)
TPQRT_BLOCK = 48


def triangular_factor(stacked: np.ndarray) -> np.ndarray:
    """Upper-trapezoidal R of ``stacked`` (m × k) with ``stacked = Q R``: a new min(m, k) × k array.

    With fewer rows than columns the factor is not padded with zero rows (padding before the QR would let rounding
    noise of order eps‖stacked‖ into rows that should be empty). ``stacked`` may be overwritten; a Fortran-ordered
    array is factored in place (LAPACK ``geqrf`` with its optimal workspace — the same Householder QR, to the last
    bit, as ``scipy.linalg.qr(mode="r")``, without that function's full m × k copy of R).
    """
    m, k = stacked.shape
    if m == 0:
        return np.zeros((0, k))
    (geqrf,) = get_lapack_funcs(("geqrf",), (stacked,))
    lwork = int(geqrf(stacked, lwork=-1)[2][0].real)
    qr, _, _, info = geqrf(stacked, lwork=max(lwork, 1), overwrite_a=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK geqrf failed (info={info})")
    return np.triu(qr[: min(m, k)])


def fold_into_triangle(triangle: np.ndarray, rows: np.ndarray, trapezoid_rows: int = 0) -> np.ndarray:
    """The k × k upper-triangular R' with R'ᵀR' = TᵀT + BᵀB, by LAPACK's triangular-pentagonal QR (``?tpqrt``).

    Args:
        triangle: T, k × k; only its upper triangle is read. Overwritten when Fortran-ordered.
        rows: B, m × k; its last ``trapezoid_rows`` rows are upper trapezoidal (row i of them zero left of column
            i, e.g. another triangle: ``trapezoid_rows = k``), and only those entries are read. Overwritten.
        trapezoid_rows: as above (0: B is a plain block of rows).

    Returns:
        R' in a k × k Fortran-ordered array whose part below the diagonal is left as it was in ``triangle`` (zeros
        stay zeros).

    The same Householder reflections as a QR of ``[T; B]``, without touching T's zeros: about 2 m k² flops for
    plain rows (a dense QR of the stack costs 2 (k + m) k² − (2/3) k³: measured 1.2–1.3× slower for m = 4k and 3–5×
    for m = 200 rows, k = 500 and 1,600) and (2/3) k³ for a triangle of rows.
    """
    k = triangle.shape[1]
    if triangle.shape[0] != k or rows.shape[1] != k:
        raise ValueError(f"need a square triangle and rows of its width, got {triangle.shape} and {rows.shape}")
    if rows.shape[0] == 0:
        return np.asfortranarray(triangle)
    (tpqrt,) = get_lapack_funcs(("tpqrt",), (triangle, rows))
    out, _, _, info = tpqrt(int(trapezoid_rows), min(TPQRT_BLOCK, k), triangle, rows, overwrite_a=True,
                            overwrite_b=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK tpqrt failed (info={info})")
    return out


def _fortran_stack(blocks: Iterable[np.ndarray], n_columns: int) -> np.ndarray:
    """The row blocks stacked into one new Fortran-ordered array (what LAPACK factors in place)."""
    blocks = list(blocks)
    out = np.empty((sum(len(b) for b in blocks), n_columns), order="F")
    start = 0
    for block in blocks:
        out[start : start + len(block)] = block
        start += len(block)
    return out


def default_batch_rows(k: int) -> int:
    """Rows to buffer before a QR update of a k-column factor: 4k (a QR of 5k × k rows costs little more per row
    than one of all rows at once), but no more than about 64 MB of buffer, and never fewer than k."""
    return max(k, min(4 * k, (1 << 23) // max(k, 1)))


class StreamedQR:
    """Upper-trapezoidal R with RᵀR = MᵀM, accumulated from row blocks of M (k columns).

    Args:
        n_columns: k.
        batch_rows: rows collected before each QR update (default :func:`default_batch_rows`).
        r: start from this factor (the R of rows folded in elsewhere), with ``n_rows`` rows behind it.
        n_rows: rows already represented by ``r``.

    Attributes:
        n_columns: k.
        n_rows: rows folded in or buffered so far.
    """

    def __init__(self, n_columns: int, batch_rows: int | None = None, *, r: np.ndarray | None = None,
                 n_rows: int = 0) -> None:
        self.n_columns = int(n_columns)
        if self.n_columns < 1:
            raise ValueError(f"a QR needs at least one column, got {n_columns}")
        self.batch_rows = default_batch_rows(self.n_columns) if batch_rows is None else max(1, int(batch_rows))
        if r is None:
            r = np.zeros((0, self.n_columns))
        r = np.asarray(r, dtype=float)
        if r.ndim != 2 or r.shape[1] != self.n_columns or r.shape[0] > min(int(n_rows), self.n_columns):
            raise ValueError(f"factor of shape {r.shape} does not fit {n_rows} rows of {self.n_columns} columns")
        self._r = r
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self.n_rows = int(n_rows)

    def update(self, rows: np.ndarray) -> None:
        """Add rows (m × k, or one row of length k) of M. Non-finite values raise ``ValueError``."""
        rows = np.atleast_2d(np.asarray(rows, dtype=float))
        if rows.ndim != 2 or rows.shape[1] != self.n_columns:
            raise ValueError(f"rows have {rows.shape[-1]} columns, the factor has {self.n_columns}")
        if not np.all(np.isfinite(rows)):
            raise ValueError("non-finite values in the rows")
        if not len(rows):
            return
        self._buffer.append(rows)
        self._buffered += len(rows)
        self.n_rows += len(rows)
        if self._buffered >= self.batch_rows:
            self._flush()

    @property
    def buffered_rows(self) -> int:
        """Rows waiting in the buffer (not yet folded into R)."""
        return self._buffered

    def flush(self) -> None:
        """Fold the buffered rows into R now (done automatically once ``batch_rows`` are waiting)."""
        self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        blocks, self._buffer, self._buffered = self._buffer, [], 0
        if len(self._r) == self.n_columns:  # a full triangle: fold the rows in, its zeros untouched
            self._r = fold_into_triangle(np.asfortranarray(np.triu(self._r)),  # a copy: r may be shared
                                         _fortran_stack(blocks, self.n_columns))
        else:
            self._r = triangular_factor(_fortran_stack([self._r, *blocks], self.n_columns))  # factored in place

    def merge(self, *others: StreamedQR) -> None:
        """Fold in the factors of other, disjoint rows (computed elsewhere): one QR of ``[R; R₁; R₂; …]``."""
        for o in others:
            if o.n_columns != self.n_columns:
                raise ValueError(f"cannot merge a factor of {o.n_columns} columns into one of {self.n_columns}")
        mats = [self.r] + [o.r for o in others]
        self._r = triangular_factor(np.vstack(mats))
        self.n_rows += sum(o.n_rows for o in others)

    @classmethod
    def stacked(cls, factors: Iterable[np.ndarray], n_rows: int, n_columns: int,
                batch_rows: int | None = None) -> StreamedQR:
        """The factor of the rows behind several R's (each min(nᵢ, k) × k), ``n_rows`` = Σ nᵢ in total."""
        mats = [np.asarray(f, dtype=float) for f in factors]
        stacked = np.vstack(mats) if mats else np.zeros((0, n_columns))
        return cls(n_columns, batch_rows, r=triangular_factor(stacked), n_rows=n_rows)

    @property
    def r(self) -> np.ndarray:
        """The factor R (min(n_rows, k) × k, upper trapezoidal), after folding in any buffered rows."""
        self._flush()
        return self._r

    def copy(self) -> StreamedQR:
        """An independent copy (buffered rows folded in first)."""
        return StreamedQR(self.n_columns, self.batch_rows, r=self.r.copy(), n_rows=self.n_rows)
