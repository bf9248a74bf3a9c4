"""Dense reference solvers (test-only): every row in memory, ``numpy.linalg.lstsq`` / SVD, dense predictions.

Independent of the statistics path of :mod:`pyiron_mlip_tradeoff.regression` and of the streamed QR of
:mod:`pyiron_mlip_tradeoff.qr`: nothing here uses a triangular factor. Benchmarks import it through ``sys.path``
(see ``benchmarks/grid.py``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from pyiron_mlip_tradeoff.regression import (
    ALL_GROUPS,
    EV_PER_A3_IN_GPA,
    ConfigurationBlock,
    FitErrors,
    concatenate_blocks,
)

__all__ = [
    "dense_errors",
    "dense_fit",
    "dense_fit_and_errors",
    "dense_group_errors",
    "dense_group_fit",
    "dense_leverage",
    "dense_weighted_system",
]


def _positive(name: str, w, allow_zero: bool = False) -> float:
    try:
        w = float(w)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {w!r}") from None
    if not np.isfinite(w) or w < 0 or (w == 0 and not allow_zero):
        raise ValueError(f"{name} must be a positive finite number, got {w!r}")
    return w


def dense_weighted_system(
    blocks_and_weights: Sequence[tuple[ConfigurationBlock, tuple[float, float, float]]], level_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """The full weighted matrix and target: every block's energy, force and stress rows times its (w_E, w_F, w_V);
    rows of weight 0 are left out (as the statistics path does)."""
    a, b = [], []
    for block, (we, wf, wv) in blocks_and_weights:
        for w, rows, targets in ((we, block.energy_rows, block.energy_targets),
                                 (wf, block.force_rows, block.force_targets),
                                 (wv, block.stress_rows, block.stress_targets)):
            if w > 0 and len(rows):
                a.append(w * rows)
                b.append(w * targets[:, level_index])
    return np.vstack(a), np.concatenate(b)


def _lstsq(a: np.ndarray, b: np.ndarray, rcond: float | None, ridge: float | None) -> np.ndarray:
    if ridge is not None:
        p = a.shape[1]
        a = np.vstack([a, np.sqrt(ridge) * np.eye(p)])
        b = np.concatenate([b, np.zeros(p)])
    return np.linalg.lstsq(a, b, rcond=rcond)[0]


def dense_fit(
    block: ConfigurationBlock,
    level_index: int,
    energy_weight: float,
    force_weight: float,
    stress_weight: float = 0.0,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> np.ndarray:
    """Reference fit: ``numpy.linalg.lstsq`` on the explicitly weighted full matrix (all rows in memory).

    Args:
        block: all training rows (see :func:`~pyiron_mlip_tradeoff.regression.concatenate_blocks`).
        level_index: target column (0-based) to train on.
        energy_weight, force_weight, stress_weight: w_E, w_F (> 0), w_V (≥ 0; 0 leaves the stress rows out).
        rcond: passed to ``numpy.linalg.lstsq`` (None: its default eps × max(rows, p)).
        ridge: λ; solved as lstsq of ``[A; √λ I] β ≈ [b; 0]``.

    Returns:
        (p,) coefficients.
    """
    we = _positive("energy_weight", energy_weight)
    wf = _positive("force_weight", force_weight)
    wv = _positive("stress_weight", stress_weight, allow_zero=True)
    a, b = dense_weighted_system([(block, (we, wf, wv))], level_index)
    return _lstsq(a, b, rcond, ridge)


def dense_errors(block: ConfigurationBlock, coefficients: np.ndarray, levels: Sequence | None = None) -> FitErrors:
    """Reference errors by dense prediction over every row (meV/atom, meV/Å, GPa), same layout as
    :func:`~pyiron_mlip_tradeoff.regression.errors`."""
    beta = np.asarray(coefficients, dtype=float)
    re = block.energy_rows @ beta[:, None] - block.energy_targets
    rf = block.force_rows @ beta[:, None] - block.force_targets
    rv = block.stress_rows @ beta[:, None] - block.stress_targets
    shift = re.mean(axis=0)
    levels = tuple(range(block.n_levels)) if levels is None else tuple(levels)
    nf, nv = rf.shape[0], rv.shape[0]
    nan = np.full(block.n_levels, np.nan)
    return FitErrors(
        levels=levels,
        energy_rmse=1e3 * np.sqrt(np.mean(re**2, axis=0)),
        energy_rmse_shifted=1e3 * np.sqrt(np.mean((re - shift) ** 2, axis=0)),
        energy_shift=1e3 * shift,
        force_rmse=1e3 * np.sqrt(np.mean(rf**2, axis=0)) if nf else nan,
        n_configs=block.n_configs,
        n_force_rows=nf,
        stress_rmse=EV_PER_A3_IN_GPA * np.sqrt(np.mean(rv**2, axis=0)) if nv else nan,
        n_stress_rows=nv,
    )


def dense_fit_and_errors(
    train: ConfigurationBlock,
    test: ConfigurationBlock | None,
    level_index: int,
    energy_weight: float,
    force_weight: float,
    stress_weight: float = 0.0,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
    levels: Sequence | None = None,
) -> tuple[np.ndarray, FitErrors, FitErrors | None]:
    """The study's reference path: dense weighted lstsq on the training rows, dense prediction on train and test.

    Returns:
        ``(coefficients, train errors, test errors or None)``.
    """
    beta = dense_fit(train, level_index, energy_weight, force_weight, stress_weight, rcond=rcond, ridge=ridge)
    return beta, dense_errors(train, beta, levels), (dense_errors(test, beta, levels) if test is not None else None)


def dense_group_fit(
    groups: Mapping[Hashable, Sequence[ConfigurationBlock]],
    level_index: int,
    weights: tuple[float, float, float],
    group_weights: Mapping[Hashable, tuple[float, float, float]],
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> np.ndarray:
    """Reference group-weighted fit: every row scaled by its global weight times its group's multiplier (groups
    missing from ``group_weights``: 1, 1, 1), dense lstsq."""
    pairs = []
    for name, blocks in groups.items():
        g = group_weights.get(name, (1.0, 1.0, 1.0))
        w = tuple(wi * gi for wi, gi in zip(weights, g, strict=True))
        pairs += [(b, w) for b in blocks]
    a, b = dense_weighted_system(pairs, level_index)
    return _lstsq(a, b, rcond, ridge)


def dense_group_errors(
    groups: Mapping[Hashable, Sequence[ConfigurationBlock]], coefficients: np.ndarray, levels: Sequence | None = None
) -> dict[Hashable, FitErrors]:
    """Reference unweighted errors per group and for all groups together (dense predictions)."""
    out = {name: dense_errors(concatenate_blocks(blocks), coefficients, levels) for name, blocks in groups.items()}
    out[ALL_GROUPS] = dense_errors(concatenate_blocks([b for bs in groups.values() for b in bs]), coefficients, levels)
    return out


def dense_leverage(x: np.ndarray, rcond: float | None = None) -> tuple[np.ndarray, int]:
    """Reference: leverages of the rows of a dense X (squared row norms of U_k of the thin SVD) and the rank k.

    ``rcond``: singular values ≤ rcond · s_max count as zero (default max(n, p)·eps, numpy's ``matrix_rank``
    tolerance), as in :func:`pyiron_mlip_tradeoff.leverage.leverage_scores`.
    """
    x = np.asarray(x, dtype=float)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros(x.shape[0]), 0
    tol = (max(x.shape) * np.finfo(float).eps if rcond is None else rcond) * s[0]
    k = int(np.sum(s > tol))
    return np.einsum("ij,ij->i", u[:, :k], u[:, :k]), k
