"""Weighted linear least squares for qSNAP from per-block sufficient statistics.

The model is linear, y ≈ X β, with two kinds of rows per configuration m of N_m atoms:

* one **energy row**: the descriptor sum divided by N_m, with target E_m / N_m (eV/atom);
* 3·N_m **force rows**, atom-major (atom 0 x, y, z, atom 1 x, ...), with the force components as targets (eV/Å).

The loss is the study's Eq. 1, L(β) = Σ_m [w_E² (Ê_m − E_m)² / N_m² + Σ_i w_F² (F̂_mi − F_mi)²]; because the energy
rows and targets are already per atom, the energy term is w_E² × (per-atom residual)². Targets come with one column
per precision level, so one set of statistics serves every training and reference level.

How the statistics work
-----------------------
For each part (energy, force) we keep the upper-triangular (trapezoidal) factor T of the augmented matrix of all
its rows,

* energy part: ``[1 | X_E | Y_E]`` (a leading column of ones, p descriptor columns, L target columns),
* force part: ``[X_F | Y_F]``,

so that ``[…] = Q T`` with Q having orthonormal columns. T is updated block by block (QR of ``[T; new rows]``), and two
statistics merge by a QR of their stacked factors; both are exact because only orthogonal transformations are
involved. T has min(n_rows, k) rows for k augmented columns: a part with fewer rows than columns keeps an
n_rows × k factor (the QR of the rows themselves, never padded), so a small training subset gives a small fit below. Everything the fit and the errors need follows from T:

* the R factor of X and the projected targets z = Qᵀ Y are T's descriptor and target columns (for the energy part,
  after the ones column is eliminated; see :meth:`PartStatistics.r_and_z`);
* for a coefficient vector β and level ℓ, ``‖X β − y_ℓ‖² = ‖T_X β − T_ℓ‖²`` exactly, where T_X and T_ℓ are T's
  descriptor and level-ℓ columns. This equals the familiar ``‖R β − z‖² + (‖y‖² − ‖z‖²)``, but the part of the target
  outside the span of X is carried as a column of T rather than as a difference of two large numbers, so there is no
  cancellation;
* the leading ones column makes the first row of T_E carry the column means (the shift), and the remaining rows the
  factor of the *centred* energy block, so the mean-shifted energy RMSE (constant offset = mean per-atom residual)
  is ``‖T_E[1:] (β, −1)‖² / n`` — equal to ``mean(r²) − mean(r)²`` but again without subtracting large numbers.

A fit with weights (w_E, w_F) is the least-squares problem on the small stacked system
``[w_E A_E; w_F A_F] β ≈ [w_E b_E; w_F b_F]`` (A, b: the descriptor and level columns of the factors), whose Gram
matrix and right-hand side products equal those of the full weighted matrix. Its singular values and right singular
vectors are therefore the same as those of the full weighted matrix, so the SVD cut-off (rcond) acts exactly as it
would in ``numpy.linalg.lstsq`` on all rows. The stacked system has min(n_E, p + 1) + min(n_F, p) rows — never more
than the data — and is solved by LAPACK's SVD-based least squares (``gelsd``, as ``numpy.linalg.lstsq``) for every
training level at once, with the cut-off of ``lstsq`` on the full weighted matrix: rcond = eps · max(n_E + n_F, p)
relative to the largest singular value.

Cost: each update is a QR of a (min(rows so far, k) + new rows) × k matrix with k = p + L (+1), so streaming n rows in
batches of at least k rows costs about as much as one dense QR of all rows, and memory is O(k²) independent of the
number of configurations. A fit costs O(m² p) for the m ≤ 2p + 1 rows of the stacked system.

Nothing in this module imports pyiron.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

__all__ = [
    "ConfigurationBlock",
    "PartStatistics",
    "LinearStatistics",
    "StatisticsAccumulator",
    "LinearFit",
    "FitErrors",
    "configuration_blocks",
    "concatenate_blocks",
    "statistics_from_blocks",
    "merge_statistics",
    "statistics_for_nested_subsets",
    "fit",
    "fit_all_levels",
    "fit_weights",
    "errors",
    "errors_many",
    "default_rcond",
    "dense_fit",
    "dense_errors",
    "dense_fit_and_errors",
]


# --------------------------------------------------------------------------------------------------------------
# blocks of rows


@dataclass(frozen=True)
class ConfigurationBlock:
    """Rows of one configuration (or of several, stacked) for the linear model.

    Attributes:
        energy_rows: (n_configs, p) energy rows, already divided by each configuration's number of atoms.
        energy_targets: (n_configs, n_levels) per-atom energies E_m / N_m in eV/atom, one column per level.
        force_rows: (n_force_rows, p) force rows (3 per atom, atom-major x, y, z).
        force_targets: (n_force_rows, n_levels) force components in eV/Å, one column per level.

    Raises:
        ValueError: on inconsistent shapes or non-finite values (failed calculations must be left out beforehand).
    """

    energy_rows: np.ndarray
    energy_targets: np.ndarray
    force_rows: np.ndarray
    force_targets: np.ndarray

    def __post_init__(self) -> None:
        er = np.atleast_2d(np.asarray(self.energy_rows, dtype=float))
        fr = np.asarray(self.force_rows, dtype=float)
        if fr.ndim == 1 and fr.size == 0:
            fr = fr.reshape(0, er.shape[1])
        et = np.asarray(self.energy_targets, dtype=float)
        ft = np.asarray(self.force_targets, dtype=float)
        if et.ndim == 1:
            et = et.reshape(er.shape[0], -1) if er.shape[0] != 1 else et[None, :]
        if ft.ndim == 1:
            ft = ft.reshape(fr.shape[0], -1) if fr.shape[0] else ft.reshape(0, et.shape[1])
        if er.ndim != 2 or fr.ndim != 2 or et.ndim != 2 or ft.ndim != 2:
            raise ValueError("block arrays must be two-dimensional (rows × columns)")
        if er.shape[1] != fr.shape[1]:
            raise ValueError(f"energy rows have {er.shape[1]} columns but force rows have {fr.shape[1]}")
        if et.shape[0] != er.shape[0] or ft.shape[0] != fr.shape[0]:
            raise ValueError(
                f"targets do not match rows: {er.shape[0]} energy rows vs {et.shape[0]} energy targets, "
                f"{fr.shape[0]} force rows vs {ft.shape[0]} force targets"
            )
        if et.shape[1] != ft.shape[1]:
            raise ValueError(f"energy targets have {et.shape[1]} levels but force targets have {ft.shape[1]}")
        for name, arr in (("energy_rows", er), ("energy_targets", et), ("force_rows", fr), ("force_targets", ft)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"{name} contains non-finite values; leave out configurations whose calculation failed"
                )
        object.__setattr__(self, "energy_rows", er)
        object.__setattr__(self, "energy_targets", et)
        object.__setattr__(self, "force_rows", fr)
        object.__setattr__(self, "force_targets", ft)

    @property
    def n_params(self) -> int:
        """Number of model columns p."""
        return self.energy_rows.shape[1]

    @property
    def n_levels(self) -> int:
        """Number of target columns (precision levels)."""
        return self.energy_targets.shape[1]

    @property
    def n_configs(self) -> int:
        """Number of configurations (= energy rows) in the block."""
        return self.energy_rows.shape[0]


def configuration_blocks(
    energy_rows: np.ndarray,
    force_rows: np.ndarray,
    n_atoms: np.ndarray,
    energy: np.ndarray,
    forces: np.ndarray,
    indices: Sequence[int] | np.ndarray | None = None,
) -> Iterator[ConfigurationBlock]:
    """One :class:`ConfigurationBlock` per configuration from whole-dataset arrays (``LadderDataset`` conventions).

    Args:
        energy_rows: (n_configs, p) energy rows, already divided by N_m.
        force_rows: (3 · total_atoms, p) force rows, configurations concatenated in order, atom-major x, y, z.
        n_atoms: (n_configs,) atoms per configuration.
        energy: (n_levels, n_configs) *total* energies in eV (divided by N_m here).
        forces: (n_levels, total_atoms, 3) forces in eV/Å.
        indices: configurations to yield, in this order (default: all, in order).

    Yields:
        Blocks with per-atom energy targets (eV/atom) and force targets (eV/Å).
    """
    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    energy = np.atleast_2d(np.asarray(energy, dtype=float))
    forces = np.asarray(forces, dtype=float)
    if forces.ndim == 2:
        forces = forces[None]
    n_configs = len(n_atoms)
    offsets = np.concatenate([[0], np.cumsum(n_atoms)])
    if energy_rows.shape[0] != n_configs or energy.shape[1] != n_configs:
        raise ValueError(
            f"{n_configs} configurations but {energy_rows.shape[0]} energy rows and {energy.shape[1]} energies"
        )
    if force_rows.shape[0] != 3 * offsets[-1] or forces.shape[1] != offsets[-1]:
        raise ValueError(
            f"{offsets[-1]} atoms need {3 * offsets[-1]} force rows; got {force_rows.shape[0]} rows and "
            f"forces for {forces.shape[1]} atoms"
        )
    if indices is None:
        indices = range(n_configs)
    for i in indices:
        i = int(i)
        if not 0 <= i < n_configs:
            raise IndexError(f"configuration index {i} out of range 0..{n_configs - 1}")
        a, b = offsets[i], offsets[i + 1]
        yield ConfigurationBlock(
            energy_rows=energy_rows[i : i + 1],
            energy_targets=(energy[:, i] / n_atoms[i])[None, :],
            force_rows=force_rows[3 * a : 3 * b],
            force_targets=forces[:, a:b, :].reshape(forces.shape[0], -1).T,
        )


def concatenate_blocks(blocks: Iterable[ConfigurationBlock]) -> ConfigurationBlock:
    """Stack blocks into one (for dense reference calculations)."""
    blocks = list(blocks)
    if not blocks:
        raise ValueError("no blocks to concatenate (empty configuration set)")
    return ConfigurationBlock(
        energy_rows=np.concatenate([b.energy_rows for b in blocks]),
        energy_targets=np.concatenate([b.energy_targets for b in blocks]),
        force_rows=np.concatenate([b.force_rows for b in blocks]),
        force_targets=np.concatenate([b.force_targets for b in blocks]),
    )


# --------------------------------------------------------------------------------------------------------------
# statistics


def _triangular_factor(stacked: np.ndarray) -> np.ndarray:
    """Upper-trapezoidal R of ``stacked`` (rows × k) with ``stacked = Q R``: min(rows, k) × k.

    Only the R of the given rows is kept; with fewer rows than columns it is not padded with zero rows (padding
    before the QR would let rounding noise of order eps‖stacked‖ into rows that should be empty).
    """
    m, k = stacked.shape
    if m == 0:
        return np.zeros((0, k))
    (r,) = scipy.linalg.qr(stacked, mode="r", overwrite_a=True, check_finite=False)
    return np.triu(r[: min(m, k)])


@dataclass
class PartStatistics:
    """Sufficient statistics of one kind of rows (energy or force) of a configuration set.

    Attributes:
        factor: (r, k) upper-triangular (trapezoidal) factor T of the augmented matrix ``[1 | X | Y]``
            (``with_ones``) or ``[X | Y]``; k = p + n_levels (+ 1), r = min(n_rows, k) — a set with few rows keeps a
            small factor. Units: those of the columns (descriptor units, eV/atom or eV/Å for the targets).
        n_rows: number of rows folded in.
        n_params: p.
        with_ones: whether a leading ones column is carried (energy part: gives the mean and the centred factor).
    """

    factor: np.ndarray
    n_rows: int
    n_params: int
    with_ones: bool

    @property
    def _lead(self) -> int:
        return 1 if self.with_ones else 0

    @property
    def n_columns(self) -> int:
        """k, the number of augmented columns (ones, descriptors, targets)."""
        return self.factor.shape[1]

    @property
    def n_levels(self) -> int:
        return self.factor.shape[1] - self.n_params - self._lead

    @property
    def descriptor_columns(self) -> np.ndarray:
        """T's descriptor columns restricted to the rows that can be non-zero: a min(r, p + lead) × p matrix A with
        AᵀA = XᵀX (r = rows of the factor)."""
        lead, p = self._lead, self.n_params
        return self.factor[: lead + p, lead : lead + p]

    @property
    def target_columns(self) -> np.ndarray:
        """T's target columns on the same rows as :attr:`descriptor_columns`: AᵀB = XᵀY."""
        lead, p = self._lead, self.n_params
        return self.factor[: lead + p, lead + p :]

    def r_and_z(self) -> tuple[np.ndarray, np.ndarray]:
        """R (p × p, upper triangular, X = Q R) and z = Qᵀ Y (p × n_levels) of this part's rows alone (zero rows
        below the data's rows when there are fewer than p)."""
        lead, p = self._lead, self.n_params
        t = self.factor[:, lead:]
        if lead:
            t = _triangular_factor(t.copy())
        if t.shape[0] < p:
            t = np.vstack([t, np.zeros((p - t.shape[0], t.shape[1]))])
        return t[:p, :p].copy(), t[:p, p:].copy()

    @property
    def target_sq_norms(self) -> np.ndarray:
        """‖y_ℓ‖² per level (sum of squared targets, eV²/atom² or eV²/Å²)."""
        lead, p = self._lead, self.n_params
        return np.sum(self.factor[:, lead + p :] ** 2, axis=0)

    @property
    def column_sums(self) -> np.ndarray:
        """Σ_rows X (p,) — energy part only (needs the ones column)."""
        mean = self._means()
        return mean[: self.n_params] * self.n_rows

    @property
    def target_sums(self) -> np.ndarray:
        """Σ_rows y_ℓ per level — energy part only (needs the ones column)."""
        mean = self._means()
        return mean[self.n_params :] * self.n_rows

    def _means(self) -> np.ndarray:
        if not self.with_ones:
            raise AttributeError("column sums are only kept for a part with a ones column (the energy part)")
        if self.n_rows == 0:
            return np.zeros(self.factor.shape[1] - 1)
        # [1 X Y] = Q T and T is triangular, so 1 = q₀ T₀₀: q₀ = 1/T₀₀, T₀₀² = n and T₀ⱼ = q₀ᵀ colⱼ = sumⱼ / T₀₀.
        return self.factor[0, 1:] / self.factor[0, 0]

    def residual_matrix(self, coefficients: np.ndarray) -> np.ndarray:
        """T_X β − T_Y for every level at once: (r, n_levels); its column norms² are ‖X β − y_ℓ‖².

        With a (p, n) matrix of coefficient vectors, the result is (r, n, n_levels): entry [:, j, ℓ] belongs to
        β_j against level ℓ (one matrix product for all of them).
        """
        lead, p = self._lead, self.n_params
        coefficients = np.asarray(coefficients, dtype=float)
        if coefficients.ndim == 1:
            return self.factor[:, lead : lead + p] @ coefficients.reshape(p, 1) - self.factor[:, lead + p :]
        pred = self.factor[:, lead : lead + p] @ coefficients
        return pred[:, :, None] - self.factor[:, None, lead + p :]

    def copy(self) -> PartStatistics:
        return PartStatistics(self.factor.copy(), self.n_rows, self.n_params, self.with_ones)

    def stacked_with(self, others: Sequence[PartStatistics]) -> PartStatistics:
        """Merge by a QR of the stacked factors."""
        mats = [self.factor] + [o.factor for o in others]
        return PartStatistics(
            _triangular_factor(np.vstack(mats)),
            self.n_rows + sum(o.n_rows for o in others),
            self.n_params,
            self.with_ones,
        )


@dataclass
class LinearStatistics:
    """Sufficient statistics of a configuration set: energy part and force part, all levels at once.

    Build with :func:`statistics_from_blocks`, :class:`StatisticsAccumulator` or
    :func:`statistics_for_nested_subsets`; combine disjoint sets with :meth:`merge`.

    Attributes:
        energy: statistics of the per-atom energy rows (with the ones column for the shift).
        force: statistics of the force rows.
        levels: labels of the target columns (e.g. the dataset's precision levels).
        n_configs: number of configurations folded in.
    """

    energy: PartStatistics
    force: PartStatistics
    levels: tuple = field(default_factory=tuple)
    n_configs: int = 0

    @classmethod
    def empty(cls, n_params: int, n_levels: int, levels: Sequence | None = None) -> LinearStatistics:
        """Statistics of the empty set for p = ``n_params`` columns and ``n_levels`` target columns."""
        if n_params < 1 or n_levels < 1:
            raise ValueError(f"need at least one column and one level, got p={n_params}, levels={n_levels}")
        levels = tuple(range(n_levels)) if levels is None else tuple(levels)
        if len(levels) != n_levels or len(set(levels)) != n_levels:
            raise ValueError(f"{n_levels} distinct level labels needed, got {levels!r}")
        ke, kf = 1 + n_params + n_levels, n_params + n_levels
        return cls(
            PartStatistics(np.zeros((0, ke)), 0, n_params, True),
            PartStatistics(np.zeros((0, kf)), 0, n_params, False),
            levels,
            0,
        )

    @property
    def n_params(self) -> int:
        return self.energy.n_params

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_force_rows(self) -> int:
        return self.force.n_rows

    def level_index(self, level: Hashable) -> int:
        """Column of a level label; ``ValueError`` naming the known labels if absent."""
        if not isinstance(level, bool):
            for i, lv in enumerate(self.levels):
                if lv == level:
                    return i
        raise ValueError(f"unknown level {level!r}; these statistics have levels {list(self.levels)}")

    def _check_compatible(self, other: LinearStatistics) -> None:
        if other.n_params != self.n_params or tuple(other.levels) != tuple(self.levels):
            raise ValueError(
                f"cannot merge statistics with p={other.n_params}, levels={list(other.levels)} into "
                f"p={self.n_params}, levels={list(self.levels)}"
            )

    def merge(self, *others: LinearStatistics) -> LinearStatistics:
        """Statistics of the union of this set and ``others`` (disjoint configuration sets)."""
        for o in others:
            self._check_compatible(o)
        return LinearStatistics(
            self.energy.stacked_with([o.energy for o in others]),
            self.force.stacked_with([o.force for o in others]),
            self.levels,
            self.n_configs + sum(o.n_configs for o in others),
        )

    def copy(self) -> LinearStatistics:
        return LinearStatistics(self.energy.copy(), self.force.copy(), self.levels, self.n_configs)

    def gram(self) -> tuple[np.ndarray, np.ndarray]:
        """TᵀT of the energy and force factors: the Gram matrices of ``[1|X_E|Y_E]`` and ``[X_F|Y_F]`` (for checks)."""
        return self.energy.factor.T @ self.energy.factor, self.force.factor.T @ self.force.factor


def _default_batch_rows(k: int) -> int:
    """Rows to buffer before a QR update of a k-column factor: 4k (a QR of 5k × k rows costs little more per row
    than one of all rows at once), but no more than about 64 MB of buffer, and never fewer than k."""
    return max(k, min(4 * k, (1 << 23) // k))


class StatisticsAccumulator:
    """Streams configuration blocks into :class:`LinearStatistics`.

    Rows are buffered and folded into the triangular factors once at least ``batch_rows`` of them are waiting
    (default: 4k for a factor of size k = p + n_levels (+1), capped at about 64 MB of buffer and at least k), so
    streaming one configuration at a time costs about as much as one dense QR of all rows.
    Memory: the factors plus about ``batch_rows`` buffered rows per part, independent of the number of
    configurations.

    Args:
        n_params: p; taken from the first block when None.
        levels: level labels, or the number of levels; taken from the first block (0..L−1) when None.
        batch_rows: buffer size in rows before a QR update.
    """

    def __init__(self, n_params: int | None = None, levels: Sequence | int | None = None,
                 batch_rows: int | None = None) -> None:
        self._stats: LinearStatistics | None = None
        self._n_params = n_params
        self._levels = levels
        self._batch_rows = batch_rows
        self._buf_e: list[np.ndarray] = []
        self._buf_f: list[np.ndarray] = []
        self._rows_e = 0
        self._rows_f = 0
        self._pending_configs = 0
        if n_params is not None and levels is not None:
            self._init(n_params, levels)

    def _init(self, n_params: int, levels: Sequence | int) -> None:
        if isinstance(levels, (int, np.integer)):
            self._stats = LinearStatistics.empty(n_params, int(levels))
        else:
            self._stats = LinearStatistics.empty(n_params, len(levels), levels)

    @property
    def n_configs(self) -> int:
        """Configurations added so far (folded in or buffered)."""
        done = self._stats.n_configs if self._stats is not None else 0
        return done + self._pending_configs

    def add(self, block: ConfigurationBlock) -> None:
        """Add the rows of one block (one or more configurations)."""
        if self._stats is None:
            p = self._n_params if self._n_params is not None else block.n_params
            lv = self._levels if self._levels is not None else block.n_levels
            self._init(p, lv)
        st = self._stats
        if block.n_params != st.n_params or block.n_levels != st.n_levels:
            raise ValueError(
                f"block has p={block.n_params}, {block.n_levels} levels; expected p={st.n_params}, "
                f"{st.n_levels} levels"
            )
        n = block.n_configs
        self._buf_e.append(np.hstack([np.ones((n, 1)), block.energy_rows, block.energy_targets]))
        self._buf_f.append(np.hstack([block.force_rows, block.force_targets]))
        self._rows_e += n
        self._rows_f += block.force_rows.shape[0]
        self._pending_configs += n
        ke, kf = st.energy.n_columns, st.force.n_columns
        if self._rows_e >= (self._batch_rows or _default_batch_rows(ke)):
            self._flush_energy()
        if self._rows_f >= (self._batch_rows or _default_batch_rows(kf)):
            self._flush_force()

    def _flush_energy(self) -> None:
        st = self._stats
        if self._buf_e:
            part = st.energy
            part.factor = _triangular_factor(np.vstack([part.factor, *self._buf_e]))
            part.n_rows += self._rows_e
            self._buf_e, self._rows_e = [], 0
        st.n_configs += self._pending_configs
        self._pending_configs = 0

    def _flush_force(self) -> None:
        if self._buf_f:
            part = self._stats.force
            part.factor = _triangular_factor(np.vstack([part.factor, *self._buf_f]))
            part.n_rows += self._rows_f
            self._buf_f, self._rows_f = [], 0

    def statistics(self) -> LinearStatistics:
        """Fold in any buffered rows and return a copy of the statistics so far (adding may continue)."""
        if self._stats is None:
            if self._n_params is None or self._levels is None:
                raise ValueError("no blocks added yet and p / levels not given: cannot make statistics")
            self._init(self._n_params, self._levels)
        self._flush_energy()
        self._flush_force()
        return self._stats.copy()


def statistics_from_blocks(
    blocks: Iterable[ConfigurationBlock], levels: Sequence | None = None, batch_rows: int | None = None
) -> LinearStatistics:
    """Statistics of all configurations in ``blocks``.

    Raises:
        ValueError: when ``blocks`` is empty and so the number of columns is unknown.
    """
    acc = StatisticsAccumulator(levels=levels, batch_rows=batch_rows)
    for b in blocks:
        acc.add(b)
    if acc.n_configs == 0:
        raise ValueError("no configurations given (empty set)")
    return acc.statistics()


def merge_statistics(stats: Iterable[LinearStatistics]) -> LinearStatistics:
    """Statistics of the union of disjoint sets (one QR of all stacked factors)."""
    stats = list(stats)
    if not stats:
        raise ValueError("nothing to merge")
    return stats[0].merge(*stats[1:])


def statistics_for_nested_subsets(
    blocks_in_rank_order: Iterable[ConfigurationBlock],
    sizes: Sequence[int],
    levels: Sequence | None = None,
    batch_rows: int | None = None,
) -> Iterator[tuple[int, LinearStatistics]]:
    """Statistics of the first n configurations for each n in ``sizes``, in one pass over the blocks.

    Args:
        blocks_in_rank_order: blocks, most important first (e.g. by leverage); read lazily, only as far as needed.
        sizes: strictly increasing positive numbers of configurations.
        levels: level labels (default 0..L−1).

    Yields:
        ``(size, statistics)`` pairs; each statistics object is independent of later ones.

    Raises:
        ValueError: for non-increasing or non-positive sizes, a size that splits a multi-configuration block, or
            more configurations asked for than the blocks provide.
    """
    sizes = [int(s) for s in sizes]
    if not sizes:
        raise ValueError("no subset sizes given")
    if sizes[0] < 1 or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"subset sizes must be positive and strictly increasing, got {sizes}")
    acc = StatisticsAccumulator(levels=levels, batch_rows=batch_rows)
    it = iter(blocks_in_rank_order)
    for size in sizes:
        while acc.n_configs < size:
            try:
                block = next(it)
            except StopIteration:
                raise ValueError(
                    f"subset size {size} asked for but only {acc.n_configs} configurations were given"
                ) from None
            acc.add(block)
        if acc.n_configs != size:
            raise ValueError(f"subset size {size} falls inside a multi-configuration block")
        yield size, acc.statistics()


# --------------------------------------------------------------------------------------------------------------
# fitting


@dataclass(frozen=True)
class LinearFit:
    """Result of a weighted fit.

    Attributes:
        coefficients: (p,) β, in the units of the targets per unit descriptor (eV).
        level: training level label.
        energy_weight, force_weight: w_E, w_F of Eq. 1.
        rank: number of singular values kept (SVD) or p (ridge).
        singular_values: singular values of the weighted design, descending: the min(n_rows, p) singular values
            of the full weighted matrix (computed from the stacked factors).
        rcond: relative cut-off that was used (None with ridge).
        ridge: Tikhonov parameter λ, or None.
    """

    coefficients: np.ndarray
    level: Hashable
    energy_weight: float
    force_weight: float
    rank: int
    singular_values: np.ndarray
    rcond: float | None
    ridge: float | None


def _check_weight(name: str, w) -> float:
    try:
        w = float(w)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {w!r}") from None
    if not np.isfinite(w) or w <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {w!r}")
    return w


def default_rcond(n_rows_full: int, n_params: int) -> float:
    """The cut-off ``numpy.linalg.lstsq(rcond=None)`` applies to an n_rows_full × n_params matrix:
    eps · max(n_rows_full, n_params), relative to the largest singular value (dimensionless)."""
    return float(np.finfo(float).eps * max(int(n_rows_full), int(n_params)))


def _solve_stacked(
    a: np.ndarray, b: np.ndarray, n_rows_full: int, rcond: float | None, ridge: float | None
) -> tuple[np.ndarray, np.ndarray, int, float | None]:
    """Minimum-norm truncated-SVD (or Tikhonov) solution of ``a β ≈ b`` for every column of ``b`` at once.

    Args:
        a: (m, p) stacked weighted factor; m is at most the number of rows of the full weighted matrix.
        b: (m, n_rhs) stacked weighted targets.
        n_rows_full: rows of the full weighted matrix (energy + force rows), for the default cut-off.
        rcond: relative cut-off (None: :func:`default_rcond` of the *full* matrix, not of ``a``).
        ridge: Tikhonov λ (then rcond is not used).

    Returns:
        ``(β (p, n_rhs), singular values (min(m, p),) descending, rank, rcond used or None)``.

    Without ridge this is LAPACK ``gelsd`` (divide-and-conquer SVD least squares, what ``numpy.linalg.lstsq``
    calls): singular values ≤ rcond · s_max count as zero, the others are inverted — the same rule, on the same
    singular values, as ``lstsq`` applied to the full weighted matrix. It needs no singular vectors and handles all
    right-hand sides in one call.
    """
    p = a.shape[1]
    if ridge is not None:
        u, s, vt = np.linalg.svd(a, full_matrices=False)
        filt = s / (s**2 + ridge)
        return vt.T @ (filt[:, None] * (u.T @ b)), s, p, None
    used_rcond = default_rcond(n_rows_full, p) if rcond is None else float(rcond)
    beta, _, rank, s = scipy.linalg.lstsq(
        a, b, cond=used_rcond, lapack_driver="gelsd", check_finite=False, overwrite_a=True, overwrite_b=True
    )
    return beta, s, int(rank), used_rcond


def _weighted_system(
    stats: LinearStatistics, energy_weight: float, force_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """``[w_E A_E; w_F A_F]`` (m × p, m = min(n_E, p + 1) + min(n_F, p)) and the matching weighted targets (m × L),
    as new arrays the solver may overwrite."""
    e, f = stats.energy, stats.force
    a_e, a_f = e.descriptor_columns, f.descriptor_columns
    me = a_e.shape[0]
    a = np.empty((me + a_f.shape[0], stats.n_params))
    np.multiply(energy_weight, a_e, out=a[:me])
    np.multiply(force_weight, a_f, out=a[me:])
    b = np.empty((a.shape[0], stats.n_levels))
    np.multiply(energy_weight, e.target_columns, out=b[:me])
    np.multiply(force_weight, f.target_columns, out=b[me:])
    return a, b


def _check_fit_input(stats, energy_weight, force_weight, rcond, ridge):
    we = _check_weight("energy_weight", energy_weight)
    wf = _check_weight("force_weight", force_weight)
    if stats.n_configs == 0:
        raise ValueError("cannot fit on an empty configuration set")
    if ridge is not None:
        ridge = float(ridge)
        if not np.isfinite(ridge) or ridge <= 0:
            raise ValueError(f"ridge must be a positive finite number (or None), got {ridge!r}")
    if rcond is not None:
        rcond = float(rcond)
        if not np.isfinite(rcond) or rcond < 0:
            raise ValueError(f"rcond must be a non-negative finite number (or None), got {rcond!r}")
    return we, wf, rcond, ridge


def _fit_pairs(
    stats: LinearStatistics, checked: Sequence[tuple[float, float, float | None, float | None]]
) -> list[dict[Hashable, LinearFit]]:
    """Fits for every level and every checked (w_E, w_F, rcond, ridge), by one route whatever the number of pairs
    (so a single fit and the same fit inside a grid give the same numbers).

    Stacked system with m ≥ p rows: one ``gelsd`` solve per pair. With m < p rows (a small set): the unweighted
    rows are factored once, ``[A_E; A_F] = L Q`` (L: m × m lower triangular, Q: m × p with orthonormal rows). A
    weighting only scales rows, ``[w_E A_E; w_F A_F] = (D L) Q`` with D diagonal, so each pair needs only the m × m
    problem ``(D L) y ≈ D b`` and β = Qᵀ y. The singular values of D L are those of the weighted system (Q has
    orthonormal rows; Householder QR perturbs each row by eps relative to that row, which the row scaling keeps),
    and β lies in the row space, so the cut-off, the minimum-norm property and ridge all carry over. This is what
    ``gelsd`` does internally for a wide matrix, with the O(m² p) factorisation paid once instead of per pair.
    """
    if not checked:
        return []
    p = stats.n_params
    n_full = stats.energy.n_rows + stats.force.n_rows
    levels = stats.levels
    out = []
    if stats.energy.descriptor_columns.shape[0] + stats.force.descriptor_columns.shape[0] >= p:
        for we, wf, rc, rd in checked:
            beta, s, rank, used = _solve_stacked(*_weighted_system(stats, we, wf), n_full, rc, rd)
            out.append({lv: LinearFit(beta[:, i].copy(), lv, we, wf, rank, s, used, rd) for i, lv in enumerate(levels)})
        return out
    a, b = _weighted_system(stats, 1.0, 1.0)
    m = a.shape[0]
    me = stats.energy.descriptor_columns.shape[0]
    q, r = scipy.linalg.qr(a.T, mode="economic", overwrite_a=True, check_finite=False)  # aᵀ = q r, so a = rᵀ qᵀ
    low = r.T
    for we, wf, rc, rd in checked:
        d = np.empty((m, 1))
        d[:me], d[me:] = we, wf
        if rd is None and rc is None:
            rc = default_rcond(n_full, p)  # the full matrix's cut-off, not that of the m × m problem
        y, s, rank, used = _solve_stacked(d * low, d * b, n_full, rc, rd)
        beta = q @ y
        if rd is not None:
            rank = p
        out.append({lv: LinearFit(beta[:, i].copy(), lv, we, wf, rank, s, used, rd) for i, lv in enumerate(levels)})
    return out


def fit_all_levels(
    stats: LinearStatistics,
    energy_weight: float,
    force_weight: float,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> dict[Hashable, LinearFit]:
    """Weighted fits for every training level at once (one SVD least-squares solve of the stacked system, all
    levels as right-hand sides).

    See :func:`fit` for the arguments; returns ``{level label: LinearFit}``.
    """
    return _fit_pairs(stats, [_check_fit_input(stats, energy_weight, force_weight, rcond, ridge)])[0]


def fit_weights(
    stats: LinearStatistics,
    weights: Sequence[tuple[float, float]],
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> list[dict[Hashable, LinearFit]]:
    """:func:`fit_all_levels` for several (w_E, w_F) pairs on the same training set, sharing work between them.

    When the stacked system has fewer rows m than columns p (a small subset), its unweighted rows are factored
    once, ``[A_E; A_F] = L Q``, and each pair then needs only an m × m SVD least-squares problem (details in
    ``_fit_pairs``); with m ≥ p each pair is one ``gelsd`` solve. Every pair gives exactly what
    :func:`fit_all_levels` gives for it.

    Args:
        stats: training-set statistics.
        weights: (w_E, w_F) pairs, each > 0 (see :func:`fit`).
        rcond, ridge: as in :func:`fit` (the default cut-off is ``lstsq``'s on the full weighted matrix).

    Returns:
        One ``{level label: LinearFit}`` per pair, in the order of ``weights``.
    """
    return _fit_pairs(stats, [_check_fit_input(stats, we, wf, rcond, ridge) for we, wf in weights])


def fit(
    stats: LinearStatistics,
    level: Hashable,
    energy_weight: float,
    force_weight: float,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> LinearFit:
    """Minimise Eq. 1 on the configuration set of ``stats`` against one training level.

    Args:
        stats: training-set statistics.
        level: training level label (one of ``stats.levels``).
        energy_weight: w_E > 0 (multiplies per-atom energy residuals in eV/atom).
        force_weight: w_F > 0 (multiplies force residuals in eV/Å).
        rcond: relative SVD cut-off: singular values ≤ rcond × largest are dropped. Default None means
            ``eps × max(n_rows, p)`` with n_rows the number of energy + force rows of the *full* weighted matrix —
            exactly the default of ``numpy.linalg.lstsq(rcond=None)`` applied to that matrix, whose singular values
            are the ones computed here. (FitSNAP's SVD solver historically passed 1e-13 to scipy's lstsq; pass
            ``rcond=1e-13`` to mimic it.)
        ridge: Tikhonov parameter λ: minimise L(β) + λ‖β‖² instead, with L in the units of Eq. 1 (weights ×
            eV/atom and eV/Å, squared) per squared unit of β. All coefficients, the constant one included, are
            penalised. When given, rcond is not used.

    Returns:
        The fit. With more columns than independent rows (rank-deficient design), the truncated SVD returns the
        finite minimum-norm solution among all minimisers — the same one ``numpy.linalg.lstsq`` returns.

    Raises:
        ValueError: for weights ≤ 0 or non-finite, an unknown level, an empty set, or a bad rcond / ridge.
    """
    stats.level_index(level)  # unknown level: ValueError naming the known ones
    # all levels are solved (the extra right-hand sides cost little) so that this fit is the very same one
    # fit_all_levels and fit_weights give, to the last digit
    return fit_all_levels(stats, energy_weight, force_weight, rcond=rcond, ridge=ridge)[level]


# --------------------------------------------------------------------------------------------------------------
# errors


@dataclass(frozen=True)
class FitErrors:
    """Errors of one coefficient vector on one configuration set against every level.

    Attributes:
        levels: level labels, one per entry of the arrays below.
        energy_rmse: per-atom energy RMSE, meV/atom.
        energy_rmse_shifted: per-atom energy RMSE after removing the mean per-atom residual over the set, meV/atom.
        energy_shift: that mean per-atom residual (prediction − reference), meV/atom.
        force_rmse: RMSE over all 3·N force components, meV/Å (NaN if the set has no force rows).
        n_configs: configurations in the set; n_force_rows: force components in the set.
    """

    levels: tuple
    energy_rmse: np.ndarray
    energy_rmse_shifted: np.ndarray
    energy_shift: np.ndarray
    force_rmse: np.ndarray
    n_configs: int
    n_force_rows: int

    def for_level(self, level: Hashable) -> dict[str, float]:
        """``{"energy_rmse", "energy_rmse_shifted", "energy_shift", "force_rmse"}`` for one level label."""
        for i, lv in enumerate(self.levels):
            if lv == level:
                return {
                    "energy_rmse": float(self.energy_rmse[i]),
                    "energy_rmse_shifted": float(self.energy_rmse_shifted[i]),
                    "energy_shift": float(self.energy_shift[i]),
                    "force_rmse": float(self.force_rmse[i]),
                }
        raise ValueError(f"unknown level {level!r}; known levels {list(self.levels)}")


def errors(stats: LinearStatistics, coefficients: np.ndarray | LinearFit) -> FitErrors:
    """Errors of β on the set of ``stats`` against every level, from the statistics alone (no prediction).

    Args:
        stats: statistics of the evaluation set (training or test).
        coefficients: (p,) β in eV per unit descriptor, or a :class:`LinearFit`.

    Returns:
        RMSEs in meV/atom (energy) and meV/Å (forces) for every level of ``stats``.
    """
    beta = coefficients.coefficients if isinstance(coefficients, LinearFit) else coefficients
    beta = np.asarray(beta, dtype=float)
    if beta.shape != (stats.n_params,):
        raise ValueError(f"coefficients must have shape ({stats.n_params},), got {beta.shape}")
    return errors_many(stats, beta[:, None])[0]


def errors_many(stats: LinearStatistics, coefficients: np.ndarray) -> list[FitErrors]:
    """:func:`errors` of several coefficient vectors on one set: one matrix product per part for all of them.

    Args:
        stats: statistics of the evaluation set.
        coefficients: (p, n) matrix whose columns are coefficient vectors (eV per unit descriptor).

    Returns:
        n :class:`FitErrors`, in column order (meV/atom, meV/Å), each against every level of ``stats``.
    """
    betas = np.asarray(coefficients, dtype=float)
    if betas.ndim != 2 or betas.shape[0] != stats.n_params:
        raise ValueError(f"coefficients must have shape ({stats.n_params}, n), got {betas.shape}")
    if not np.all(np.isfinite(betas)):
        raise ValueError("coefficients contain non-finite values")
    if stats.n_configs == 0:
        raise ValueError("cannot compute errors on an empty configuration set")
    n = stats.energy.n_rows
    re = stats.energy.residual_matrix(betas)  # (r, n_fits, n_levels)
    re_sq = re**2
    e_centred_sq = np.sum(re_sq[1:], axis=0)
    e_sq = e_centred_sq + re_sq[0]
    shift = re[0] / stats.energy.factor[0, 0]
    nf = stats.force.n_rows
    if nf:
        f_rmse = np.sqrt(np.sum(stats.force.residual_matrix(betas) ** 2, axis=0) / nf)
    else:
        f_rmse = np.full(e_sq.shape, np.nan)
    e_rmse, e_rmse_shifted = 1e3 * np.sqrt(e_sq / n), 1e3 * np.sqrt(e_centred_sq / n)
    shift, f_rmse = 1e3 * shift, 1e3 * f_rmse
    levels = tuple(stats.levels)
    return [
        FitErrors(levels, e_rmse[j], e_rmse_shifted[j], shift[j], f_rmse[j], stats.n_configs, nf)
        for j in range(betas.shape[1])
    ]


# --------------------------------------------------------------------------------------------------------------
# dense reference


def dense_fit(
    block: ConfigurationBlock,
    level_index: int,
    energy_weight: float,
    force_weight: float,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> np.ndarray:
    """Reference fit: ``numpy.linalg.lstsq`` on the explicitly weighted full matrix (all rows in memory).

    Args:
        block: all training rows (see :func:`concatenate_blocks`).
        level_index: target column (0-based) to train on.
        energy_weight, force_weight: w_E, w_F.
        rcond: passed to ``numpy.linalg.lstsq`` (None: its default eps × max(rows, p)).
        ridge: λ; solved as lstsq of ``[A; √λ I] β ≈ [b; 0]``.

    Returns:
        (p,) coefficients.
    """
    we = _check_weight("energy_weight", energy_weight)
    wf = _check_weight("force_weight", force_weight)
    a = np.vstack([we * block.energy_rows, wf * block.force_rows])
    b = np.concatenate([we * block.energy_targets[:, level_index], wf * block.force_targets[:, level_index]])
    if ridge is not None:
        p = a.shape[1]
        a = np.vstack([a, np.sqrt(ridge) * np.eye(p)])
        b = np.concatenate([b, np.zeros(p)])
    return np.linalg.lstsq(a, b, rcond=rcond)[0]


def dense_errors(block: ConfigurationBlock, coefficients: np.ndarray, levels: Sequence | None = None) -> FitErrors:
    """Reference errors by dense prediction over every row (meV/atom, meV/Å), same layout as :func:`errors`."""
    beta = np.asarray(coefficients, dtype=float)
    re = block.energy_rows @ beta[:, None] - block.energy_targets
    rf = block.force_rows @ beta[:, None] - block.force_targets
    shift = re.mean(axis=0)
    levels = tuple(range(block.n_levels)) if levels is None else tuple(levels)
    nf = rf.shape[0]
    return FitErrors(
        levels=levels,
        energy_rmse=1e3 * np.sqrt(np.mean(re**2, axis=0)),
        energy_rmse_shifted=1e3 * np.sqrt(np.mean((re - shift) ** 2, axis=0)),
        energy_shift=1e3 * shift,
        force_rmse=1e3 * np.sqrt(np.mean(rf**2, axis=0)) if nf else np.full(block.n_levels, np.nan),
        n_configs=block.n_configs,
        n_force_rows=nf,
    )


def dense_fit_and_errors(
    train: ConfigurationBlock,
    test: ConfigurationBlock | None,
    level_index: int,
    energy_weight: float,
    force_weight: float,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
    levels: Sequence | None = None,
) -> tuple[np.ndarray, FitErrors, FitErrors | None]:
    """The study's reference path: dense weighted lstsq on the training rows, dense prediction on train and test.

    Returns:
        ``(coefficients, train errors, test errors or None)``.
    """
    beta = dense_fit(train, level_index, energy_weight, force_weight, rcond=rcond, ridge=ridge)
    return beta, dense_errors(train, beta, levels), (dense_errors(test, beta, levels) if test is not None else None)
