"""Leverage scores of configurations from streamed descriptor blocks, and subset selection by them.

The statistical leverage of row x_i of a design matrix X (n × p) is h_i = x_iᵀ (XᵀX)⁺ x_i, the diagonal of the
hat matrix, equal to the squared row norms of U in the thin SVD X = U S Vᵀ; Σ_i h_i = rank(X). Two per-configuration
scores follow the study:

* **energy leverage** (CUR-like): X is the matrix of energy rows (one per configuration); score = h of the row;
* **block leverage** (block CUR): X stacks every configuration's energy row (times ``energy_weight``, the ratio
  w_E / w_F; force rows have weight 1) and its 3·N_m force rows; score = the sum of h over the configuration's rows.

Neither needs DFT labels: only descriptors go in. The scores are computed in two passes over the blocks without
ever holding X: pass 1 accumulates the triangular factor R of X (XᵀX = RᵀR) by QR updates of [R; rows], pass 2
evaluates h_i = ‖x_i V_k S_k⁻¹‖² with the SVD R = U_R S Vᵀ truncated to the k singular values above
rcond · s_max (the numerical rank of X, so that rank-deficient X are handled and Σ h = k).

**Ridge leverage when every row is independent.** When X has full row rank (rank = number of rows — e.g. energy
leverage of a pool with no more configurations than qSNAP columns, such as 205 configurations at 2Jmax 6, p = 496),
every row's leverage is exactly 1 and the scores carry no information (energy leverage would silently become
uniform sampling). Then — or whenever ``ridge`` is given — the *ridge leverage*
h_i(λ) = x_iᵀ (XᵀX + λ I)⁻¹ x_i = Σ_j (x_i v_j)² / (s_j² + λ) is used, with λ = ``ridge`` · s_max² (default
:data:`DEFAULT_LEVERAGE_RIDGE` = 1e-8: directions with singular values well above 10⁻⁴ s_max count fully, weaker
ones are damped). Σ h_i(λ) is then the effective dimension Σ s_j²/(s_j² + λ) < rank. The result records the λ used
(:attr:`LeverageResult.ridge`), so a ridge score is never mistaken for a plain one.

**Sketched scores (opt-in, approximate).** With ``sketch_columns = r`` pass 2 evaluates ‖x W Ω‖² instead, Ω a
seeded k × r Gaussian matrix with entries of variance 1/r (a Johnson–Lindenstrauss projection): an unbiased
estimate of h whose relative standard deviation is at most √(2/r) per configuration (less for a block whose
leverage is spread over many directions), for 2 r p instead of 2 k p flops per row. Pass 1 (the factor R, the
rank, the singular values) stays exact. Off by default: the scores, and every grid drawn from them, are the exact
ones unless asked (``LeverageResult.sketch_columns`` says which).

Selection (:func:`ranking`, :func:`select`): deterministic top-k, sampling without replacement with probability ∝
score (successive sampling, as ``numpy.random.Generator.choice(replace=False, p=...)``), and uniform random. Each
returns a full ranking of the pool whose prefixes are the subsets, so the subsets of one repetition are nested.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg
from scipy.linalg.blas import get_blas_funcs

from .qr import StreamedQR

if TYPE_CHECKING:
    from .descriptors import DescriptorSet, DescriptorStore

__all__ = [
    "LeverageResult",
    "METHODS",
    "DEFAULT_LEVERAGE_ENERGY_WEIGHT",
    "DEFAULT_LEVERAGE_RIDGE",
    "block_leverage",
    "check_ridge",
    "check_sketch_columns",
    "energy_leverage",
    "leverage_scores",
    "ranking",
    "repetition_rng",
    "select",
    "selections",
]

#: selection methods: deterministic top-k, ∝-score sampling without replacement, uniform random
METHODS = ("top", "proportional", "uniform")
#: w_E / w_F of the energy row in block leverage, the study's value; the one default of every job and function
DEFAULT_LEVERAGE_ENERGY_WEIGHT = 150.0
#: λ / s_max² of the ridge leverage used when X has full row rank (plain leverage would be 1 for every row)
DEFAULT_LEVERAGE_RIDGE = 1e-8


def _rank_cut(singular_values: np.ndarray, n_rows: int, n_columns: int, rcond: float | None) -> int:
    if singular_values.size == 0 or singular_values[0] == 0:
        return 0
    if rcond is None:
        rcond = max(n_rows, n_columns) * np.finfo(float).eps
    return int(np.sum(singular_values > rcond * singular_values[0]))


def check_ridge(ridge: object) -> float:
    """``ridge`` (λ / s_max² of ridge leverage) as a positive finite float; ``ValueError`` otherwise."""
    if isinstance(ridge, (bool, np.bool_)):
        raise ValueError(f"ridge (λ / s_max² of ridge leverage) must be a positive number, got {ridge!r}")
    try:
        value = float(ridge)
    except (TypeError, ValueError):
        raise ValueError(f"ridge (λ / s_max² of ridge leverage) must be a positive number, got {ridge!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"ridge (λ / s_max² of ridge leverage) must be a positive finite number (λ > 0), got "
                         f"{ridge!r}")
    return value


def _whitener(
    r: np.ndarray, n_rows: int, rcond: float | None, ridge: float | None = None
) -> tuple[np.ndarray, np.ndarray, int, float | None]:
    """(p × k) matrix W with h(x) = ‖x W‖², the singular values of X, the numerical rank k and the relative ridge λ
    used (``None``: plain leverage).

    Plain leverage unless ``ridge`` is given or X has full row rank (k = n_rows, where every row's plain leverage
    is 1); then ridge leverage with λ = ridge · s_max² (``ridge`` default :data:`DEFAULT_LEVERAGE_RIDGE`)."""
    if r.shape[0] == 0:
        return np.zeros((r.shape[1], 0)), np.zeros(0), 0, None
    _, s, vt = np.linalg.svd(r, full_matrices=False)
    k = _rank_cut(s, n_rows, r.shape[1], rcond)
    if ridge is None and k > 0 and k == n_rows:
        ridge = DEFAULT_LEVERAGE_RIDGE
    if ridge is None:
        return vt[:k].T / s[:k], s, k, None
    lam = ridge * s[0] ** 2
    return vt[:k].T / np.sqrt(s[:k] ** 2 + lam), s, k, float(ridge)


class _ProjectedNorms:
    """Σ over rows of ‖x M‖² for a dense p × r matrix M (the sketched whitener)."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def __call__(self, rows: np.ndarray) -> float:
        return float(np.sum((rows @ self.matrix) ** 2))


class _TriangularNorms:
    """Σ over rows of ‖x W‖² for the p × k whitener W, at half the flops of the product with W.

    Any orthogonal k × k Q leaves ‖x W Q‖ unchanged. With the QR factorisation Wᵀ = Q T (T: k × p, upper
    trapezoidal), W Q = Tᵀ, so ‖x W‖ = ‖T xᵀ‖: a triangular matrix product (BLAS ``?trmm``, m p² flops for m rows)
    instead of a dense one (2 m p k). T is kept as a p × p upper triangle whose rows below k are zero; the scores
    agree with the dense product's to rounding.
    """

    def __init__(self, whiten: np.ndarray) -> None:
        p, k = whiten.shape
        self.triangle = np.zeros((p, p), order="F")
        if k:
            self.triangle[:k] = scipy.linalg.qr(whiten.T, mode="r", check_finite=False)[0][:k]
        (self.trmm,) = get_blas_funcs(("trmm",), (self.triangle,))

    def __call__(self, rows: np.ndarray) -> float:
        product = self.trmm(1.0, self.triangle, rows.T)  # T xᵀ: p × m
        return float(np.einsum("ij,ij->", product, product))


@dataclass
class LeverageResult:
    """Per-configuration leverage scores.

    Attributes:
        scores: (n_configs,) score of each configuration (energy-row leverage, or the block sum).
        energy_part: (n_configs,) leverage of the (weighted) energy row alone (equal to ``scores`` for ``"energy"``).
        rank: numerical rank of X (= Σ over all rows of h, up to rounding).
        singular_values: singular values of X (descending).
        n_rows: rows of X.
        kind: ``"energy"`` or ``"block"``.
        energy_weight: weight of the energy rows relative to force rows (block leverage).
        ridge: λ / s_max² of the ridge leverage used, or ``None`` for plain leverage (see the module docstring:
            ridge leverage is used whenever X has full row rank, where every plain leverage would be 1).
        sketch_columns: r of the sketched (approximate) scores, or ``None`` for the exact ones.
    """

    scores: np.ndarray
    energy_part: np.ndarray
    rank: int
    singular_values: np.ndarray
    n_rows: int
    kind: str
    energy_weight: float
    ridge: float | None = None
    sketch_columns: int | None = None

    @property
    def ridge_lambda(self) -> float | None:
        """The absolute λ of the ridge leverage (ridge · s_max²), ``None`` for plain leverage."""
        if self.ridge is None or self.singular_values.size == 0:
            return None
        return float(self.ridge * self.singular_values[0] ** 2)


def _pair(block) -> tuple[np.ndarray, np.ndarray | None]:
    if hasattr(block, "energy_row"):
        return np.asarray(block.energy_row, dtype=float), block.force_rows
    energy_row, force_rows = block
    return np.asarray(energy_row, dtype=float), force_rows


def _block_stream(source, forces: bool) -> Callable[[], Iterable]:
    if hasattr(source, "iter_blocks"):
        return lambda: source.iter_blocks(forces=forces)
    if callable(source):
        return source
    raise TypeError(
        "source must have iter_blocks() (DescriptorSet, DescriptorStore) or be a callable returning an iterable "
        "of (energy_row, force_rows) blocks"
    )


def check_sketch_columns(value: object) -> int | None:
    """``sketch_columns`` (r of sketched leverage) as an int ≥ 1, or None; ``ValueError`` otherwise."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"sketch_columns (columns of the sketched leverage) must be None (exact leverage) or an "
                         f"integer ≥ 1, got {value!r}")
    return int(value)


def leverage_scores(
    source: DescriptorSet | DescriptorStore | Callable[[], Iterable],
    kind: str = "block",
    energy_weight: float = DEFAULT_LEVERAGE_ENERGY_WEIGHT,
    rcond: float | None = None,
    ridge: float | None = None,
    sketch_columns: int | None = None,
    sketch_seed: int = 0,
) -> LeverageResult:
    """Energy or block leverage of every configuration, streamed over the descriptor blocks twice.

    Args:
        source: a :class:`~pyiron_mlip_tradeoff.descriptors.DescriptorSet` or ``DescriptorStore`` (anything with
            ``iter_blocks(forces=...)``), or a callable returning a fresh iterable of blocks, each a
            ``DescriptorBlock`` or an ``(energy_row, force_rows)`` pair. Only descriptors are read.
        kind: ``"energy"`` (energy rows only) or ``"block"`` (energy row plus 3·N_m force rows).
        energy_weight: w_E / w_F, the factor on the energy rows in ``"block"`` leverage (default 150, the study's);
            leverage does not depend on a common factor of all rows, so this is relative to force weight 1.
        rcond: relative singular-value cut-off of the numerical rank (default max(n_rows, p)·eps).
        ridge: λ / s_max² > 0 to use ridge leverage always; ``None`` (default): plain leverage, except when the
            rows have full row rank (then every plain leverage is 1), where ridge leverage with
            :data:`DEFAULT_LEVERAGE_RIDGE` is used. ``LeverageResult.ridge`` says which.
        sketch_columns: ``None`` (default): exact scores. r: sketched scores, an approximation (see the module
            docstring: relative standard deviation at most √(2/r) per configuration), with pass 2 about k / r
            times cheaper; only used when r < k, the rank.
        sketch_seed: seed of the sketch's Gaussian matrix.

    Returns:
        :class:`LeverageResult`.
    """
    if kind not in ("energy", "block"):
        raise ValueError(f"kind must be 'energy' or 'block', got {kind!r}")
    energy_weight = float(energy_weight)
    if not np.isfinite(energy_weight) or energy_weight <= 0:
        raise ValueError(f"energy_weight must be a positive number, got {energy_weight}")
    if ridge is not None:
        ridge = check_ridge(ridge)
    sketch_columns = check_sketch_columns(sketch_columns)
    use_forces = kind == "block"
    w_e = energy_weight if use_forces else 1.0
    stream = _block_stream(source, use_forces)

    factor = None
    n_configs = 0
    for block in stream():
        energy_row, force_rows = _pair(block)
        if factor is None:
            factor = StreamedQR(energy_row.shape[-1], batch_rows=max(energy_row.shape[-1], 256))
        factor.update(w_e * energy_row)
        if use_forces and force_rows is not None and len(force_rows):
            factor.update(force_rows)
        n_configs += 1
    if factor is None:
        raise ValueError("no descriptor blocks: leverage needs at least one configuration")
    whiten, singular_values, rank, ridge = _whitener(factor.r, factor.n_rows, rcond, ridge)
    if sketch_columns is not None and sketch_columns < whiten.shape[1]:
        omega = np.random.default_rng(sketch_seed).standard_normal((whiten.shape[1], sketch_columns))
        squared_norms = _ProjectedNorms(whiten @ (omega / np.sqrt(sketch_columns)))
    else:
        sketch_columns = None
        squared_norms = _TriangularNorms(whiten)

    scores = np.zeros(n_configs)
    energy_part = np.zeros(n_configs)
    seen = 0
    for i, block in enumerate(stream()):
        if i >= n_configs:
            raise ValueError("the block source yielded more blocks on the second pass than on the first")
        energy_row, force_rows = _pair(block)
        h_e = squared_norms(np.atleast_2d(w_e * energy_row))
        energy_part[i] = h_e
        scores[i] = h_e
        if use_forces and force_rows is not None and len(force_rows):
            scores[i] += squared_norms(np.asarray(force_rows, dtype=float))
        seen += 1
    if seen != n_configs:
        raise ValueError("the block source yielded fewer blocks on the second pass than on the first")
    return LeverageResult(scores, energy_part, rank, singular_values, factor.n_rows, kind, energy_weight, ridge,
                          sketch_columns)


def energy_leverage(
    source: DescriptorSet | DescriptorStore | Callable[[], Iterable], rcond: float | None = None,
    ridge: float | None = None,
) -> LeverageResult:
    """Energy-row leverage of each configuration; see :func:`leverage_scores`."""
    return leverage_scores(source, "energy", rcond=rcond, ridge=ridge)


def block_leverage(
    source: DescriptorSet | DescriptorStore | Callable[[], Iterable],
    energy_weight: float = DEFAULT_LEVERAGE_ENERGY_WEIGHT,
    rcond: float | None = None,
    ridge: float | None = None,
) -> LeverageResult:
    """Block leverage (energy row + force rows) of each configuration; see :func:`leverage_scores`."""
    return leverage_scores(source, "block", energy_weight=energy_weight, rcond=rcond, ridge=ridge)


# ---------------------------------------------------------------------------------------------------------------
# selection
def repetition_rng(seed: int | None, repetition: int = 0) -> np.random.Generator:
    """The random generator of one repetition: independent streams per (seed, repetition), repeatable."""
    if repetition < 0:
        raise ValueError(f"repetition must be non-negative, got {repetition}")
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed), int(repetition)])


def _check_scores(scores: Sequence[float]) -> np.ndarray:
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if scores.size == 0:
        raise ValueError("no scores: the pool is empty")
    if not np.all(np.isfinite(scores)) or np.any(scores < 0):
        raise ValueError("scores must be finite and non-negative")
    return scores


def ranking(
    scores: Sequence[float], method: str = "proportional", rng: np.random.Generator | None = None
) -> np.ndarray:
    """An order of the whole pool whose first k entries are the size-k subset (so subsets are nested).

    Args:
        scores: (n,) non-negative score per configuration (leverage). Only its length matters for ``"uniform"``.
        method: ``"top"`` — descending score, ties by index (deterministic); ``"proportional"`` — successive
            sampling without replacement with probability ∝ score (Efraimidis–Spirakis keys log(u)/score; zero
            scores come last, in random order); ``"uniform"`` — a uniformly random permutation.
        rng: numpy ``Generator`` (ignored by ``"top"``).

    Returns:
        (n,) int64 permutation of ``range(n)``.
    """
    scores = _check_scores(scores)
    n = scores.size
    if method == "top":
        return np.lexsort((np.arange(n), -scores)).astype(np.int64)
    if method not in METHODS:
        raise ValueError(f"unknown selection method {method!r}; choose from {METHODS}")
    rng = np.random.default_rng() if rng is None else rng
    if method == "uniform":
        return rng.permutation(n).astype(np.int64)
    u = rng.random(n)
    tie = rng.random(n)
    positive = scores > 0
    keys = np.full(n, -np.inf)
    keys[positive] = np.log1p(-u[positive]) / scores[positive]  # log(1-u): u in [0, 1) never gives log(0)
    return np.lexsort((tie, -keys)).astype(np.int64)


def select(
    scores: Sequence[float],
    size: int,
    method: str = "proportional",
    seed: int | None = None,
    repetition: int = 0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Indices of a subset of ``size`` configurations chosen by ``method`` (see :func:`ranking`).

    The same (seed, repetition) gives the same subset, and for one (seed, repetition) the subsets of
    increasing sizes are nested. ``rng`` overrides (seed, repetition) when given.

    Raises:
        ValueError: size < 1 or larger than the pool, bad scores or method.
    """
    scores = _check_scores(scores)
    _check_size(size, scores.size)
    rng = repetition_rng(seed, repetition) if rng is None else rng
    return ranking(scores, method, rng)[: int(size)]


def _check_size(size, pool: int) -> None:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"subset size must be an integer, got {size!r}")
    if size < 1 or size > pool:
        raise ValueError(f"subset size {size} is outside 1..{pool} (the pool has {pool} configurations)")


def selections(
    scores: Sequence[float],
    sizes: Sequence[int],
    method: str = "proportional",
    n_repetitions: int = 1,
    seed: int | None = 0,
) -> dict[int, np.ndarray]:
    """Subsets for every size and repetition: ``{size: (n_repetitions, size) index array}``.

    Repetition r uses :func:`repetition_rng` (seed, r); within a repetition the subsets are nested.
    """
    scores = _check_scores(scores)
    sizes = [int(s) for s in sizes]
    if not sizes:
        raise ValueError("no subset sizes given")
    for size in sizes:
        _check_size(size, scores.size)
    if n_repetitions < 1:
        raise ValueError(f"n_repetitions must be at least 1, got {n_repetitions}")
    orders = [ranking(scores, method, repetition_rng(seed, r)) for r in range(n_repetitions)]
    return {size: np.array([order[:size] for order in orders], dtype=np.int64) for size in sizes}
