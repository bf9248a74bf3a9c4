"""Weighted linear least squares for qSNAP from per-block sufficient statistics.

The model is linear, y ≈ X β, with up to three kinds of rows per configuration m of N_m atoms and volume V_m:

* one **energy row**: the descriptor sum divided by N_m, with target E_m / N_m (eV/atom);
* 3·N_m **force rows**, atom-major (atom 0 x, y, z, atom 1 x, ...), with the force components as targets (eV/Å);
* optionally 6 **stress rows** (Voigt xx, yy, zz, yz, xz, xy) such that the stress in eV/Å³ with ASE's sign
  convention is ``stress_rows · β`` (from LAMMPS' virial rows W: ``stress_rows = −W / V``, see
  :func:`stress_rows_from_virial`); a configuration without stress has no stress rows.

The loss is the study's Eq. 1 extended by a stress term, L(β) = Σ_m [w_E² (Ê_m − E_m)² / N_m² + Σ_i w_F² (F̂_mi −
F_mi)² + Σ_v w_V² (σ̂_mv − σ_mv)²]; because the energy rows and targets are already per atom, the energy term is
w_E² × (per-atom residual)². The stress weight w_V defaults to 0 (stress rows are then left out entirely, and every
result is that of the energy + force fit). Targets come with one column per precision level, so one set of
statistics serves every training and reference level.

How the statistics work
-----------------------
For each part (energy, force, stress) we keep the upper-triangular (trapezoidal) factor T of the augmented matrix
of all its rows — a :class:`~pyiron_mlip_tradeoff.qr.StreamedQR`, the same streamed QR the leverage scores use —

* energy part: ``[1 | X_E | Y_E]`` (a leading column of ones, p descriptor columns, L target columns),
* force part: ``[X_F | Y_F]``, stress part: ``[X_V | Y_V]``,

so that ``[…] = Q T`` with Q having orthonormal columns. T is updated block by block (QR of ``[T; new rows]``), and two
statistics merge by a QR of their stacked factors; both are exact because only orthogonal transformations are
involved. T has min(n_rows, k) rows for k augmented columns: a part with fewer rows than columns keeps an
n_rows × k factor (the QR of the rows themselves, never padded), so a small training subset gives a small fit below.
Everything the fit and the errors need follows from T:

* the R factor of X and the projected targets z = Qᵀ Y are T's descriptor and target columns (for the energy part,
  after the ones column is eliminated; see :meth:`PartStatistics.r_and_z`);
* for a coefficient vector β and level ℓ, ``‖X β − y_ℓ‖² = ‖T_X β − T_ℓ‖²`` exactly, where T_X and T_ℓ are T's
  descriptor and level-ℓ columns. This equals the familiar ``‖R β − z‖² + (‖y‖² − ‖z‖²)``, but the part of the target
  outside the span of X is carried as a column of T rather than as a difference of two large numbers, so there is no
  cancellation;
* the leading ones column makes the first row of T_E carry the column means (the shift), and the remaining rows the
  factor of the *centred* energy block, so the mean-shifted energy RMSE (constant offset = mean per-atom residual)
  is ``‖T_E[1:] (β, −1)‖² / n`` — equal to ``mean(r²) − mean(r)²`` but again without subtracting large numbers.

A fit with weights (w_E, w_F, w_V) is the least-squares problem on the small stacked system
``[w_E A_E; w_F A_F; w_V A_V] β ≈ [w_E b_E; w_F b_F; w_V b_V]`` (A, b: the descriptor and level columns of the
factors; a part with weight 0 is left out), whose Gram matrix and right-hand side products equal those of the full
weighted matrix. Its singular values and right singular vectors are therefore the same as those of the full weighted
matrix, so the SVD cut-off (rcond) acts exactly as it would in ``numpy.linalg.lstsq`` on all rows. The stacked system
has at most min(n_E, p + 1) + min(n_F, p) + min(n_V, p) rows — never more than the data — and is solved for every
training level at once with the cut-off of ``lstsq`` on the full weighted matrix: rcond = eps · max(n_rows, p)
relative to the largest singular value, where n_rows counts the rows of positive weight. Two routes give that one
solution (``LinearFit.solver`` says which was taken):

* **triangular**: the weighted part factors are combined into one p × p triangular factor R by LAPACK's
  triangular-pentagonal QR (``?tpqrt``); when ‖R‖_F ‖R⁻¹‖_F — an upper bound of the condition number — shows every
  singular value at least twice the cut-off, nothing would be dropped and β follows by back-substitution
  (4.7× and 7.1× faster than the SVD route at p = 120 and 496, ``benchmarks/fast_solve.py``);
* **deflated**: when the triangular test fails because exactly one singular value — provably the only one, and
  provably below the cut-off — would be dropped (on the study pool at 2Jmax 8: the large subsets with large energy
  weights, along the constant column), the smallest singular pair from a few power-iteration steps with R⁻¹ and
  back-substitution with that direction deflated: the truncated-SVD solution, rank p − 1 (``_deflated_solve``);
* **svd**: otherwise, LAPACK's SVD-based least squares (``gelsd``, as ``numpy.linalg.lstsq``) on that combined
  p × p factor and its p rows of z (the same least-squares problem, with the stacked system's singular values),
  dropping the singular values below the cut-off; with ridge, the SVD of the stacked system.

Groups (FitSNAP ``[GROUPS]``)
-----------------------------
:class:`GroupedStatistics` keeps *unweighted* statistics per group of configurations. A fit with per-group
multipliers (g_E, g_F, g_V) of (w_E, w_F, w_V) first stacks, per part, the groups' factors scaled by their
multipliers and re-factors them (QR of ``[g₁ T₁; g₂ T₂; …]``, exact because scaling a block's rows by a constant
scales its factor), then fits as above: the result equals the dense least squares with every row scaled by w · g.
Errors per group come from that group's unweighted statistics, and ``"*ALL"`` from all groups merged (unweighted
RMSE, as FitSNAP's metrics).

Cost: each update is a QR of a (min(rows so far, k) + new rows) × k matrix with k = p + L (+1), so streaming n rows in
batches of at least k rows costs about as much as one dense QR of all rows, and memory is O(k²) per part (per group)
independent of the number of configurations. A fit costs O(p³) independent of the number of rows: (2/3) k³ per
folded part plus (1/3) p³ for the bound on the triangular route, several times that on the SVD route.

Nothing in this module imports pyiron.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from .qr import StreamedQR, default_batch_rows, fold_into_triangle, triangular_factor

__all__ = [
    "EV_PER_A3_IN_GPA",
    "ALL_GROUPS",
    "ConfigurationBlock",
    "PartStatistics",
    "LinearStatistics",
    "StatisticsAccumulator",
    "GroupedStatistics",
    "GroupedAccumulator",
    "LinearFit",
    "FitErrors",
    "configuration_blocks",
    "concatenate_blocks",
    "stress_rows_from_virial",
    "statistics_from_blocks",
    "grouped_statistics",
    "merge_statistics",
    "statistics_for_nested_subsets",
    "grouped_statistics_for_nested_subsets",
    "fit",
    "fit_all_levels",
    "fit_weights",
    "errors",
    "errors_many",
    "default_rcond",
]

#: 1 eV/Å³ in GPa (stress RMSEs are reported in GPa)
EV_PER_A3_IN_GPA = 160.21766208
#: the name of the all-groups entry of :meth:`GroupedStatistics.errors` (FitSNAP's metrics use the same name)
ALL_GROUPS = "*ALL"


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
        stress_rows: (6 · n_with_stress, p) stress rows (Voigt xx, yy, zz, yz, xz, xy per configuration that has
            stress), such that ``stress_rows · β`` is the stress in eV/Å³ with ASE's sign; ``None`` (the default)
            means no stress. Stored as a (0, p) array then.
        stress_targets: (6 · n_with_stress, n_levels) stresses in eV/Å³ (ASE sign), or ``None`` with
            ``stress_rows``.

    Raises:
        ValueError: on inconsistent shapes or non-finite values (failed calculations must be left out beforehand).
    """

    energy_rows: np.ndarray
    energy_targets: np.ndarray
    force_rows: np.ndarray
    force_targets: np.ndarray
    stress_rows: np.ndarray | None = None
    stress_targets: np.ndarray | None = None

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
        if (self.stress_rows is None) != (self.stress_targets is None):
            raise ValueError("stress_rows and stress_targets must be given together (or neither, for no stress)")
        if self.stress_rows is None:
            sr, st = np.zeros((0, er.shape[1])), np.zeros((0, et.shape[1]))
        else:
            sr = np.asarray(self.stress_rows, dtype=float)
            st = np.asarray(self.stress_targets, dtype=float)
            if sr.ndim == 1 and sr.size == 0:
                sr = sr.reshape(0, er.shape[1])
            if st.ndim == 1:
                st = st.reshape(sr.shape[0], -1) if sr.shape[0] else st.reshape(0, et.shape[1])
            if sr.ndim != 2 or st.ndim != 2:
                raise ValueError("stress rows and targets must be two-dimensional (rows × columns)")
            if sr.shape[1] != er.shape[1]:
                raise ValueError(f"energy rows have {er.shape[1]} columns but stress rows have {sr.shape[1]}")
            if st.shape != (sr.shape[0], et.shape[1]):
                raise ValueError(
                    f"stress targets of shape {st.shape} do not match {sr.shape[0]} stress rows and "
                    f"{et.shape[1]} levels"
                )
            if sr.shape[0] % 6 or sr.shape[0] > 6 * er.shape[0]:
                raise ValueError(
                    f"{sr.shape[0]} stress rows: need 6 per configuration with stress (Voigt xx yy zz yz xz xy), "
                    f"at most {6 * er.shape[0]} for {er.shape[0]} configurations"
                )
        arrays = (("energy_rows", er), ("energy_targets", et), ("force_rows", fr), ("force_targets", ft),
                  ("stress_rows", sr), ("stress_targets", st))
        for name, arr in arrays:
            if not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"{name} contains non-finite values; leave out configurations whose calculation failed"
                )
        for name, arr in arrays:
            object.__setattr__(self, name, arr)

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

    @property
    def has_stress(self) -> bool:
        """Whether the block has any stress rows."""
        return self.stress_rows.shape[0] > 0


def stress_rows_from_virial(virial_rows: np.ndarray, volumes: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Stress rows (eV/Å³ per unit β, ASE sign) from LAMMPS virial rows (eV per unit β): ``−W / V`` per configuration.

    Args:
        virial_rows: (6 · n_configs, p) virial rows (Voigt xx, yy, zz, yz, xz, xy per configuration), as
            :class:`~pyiron_mlip_tradeoff.descriptors.DescriptorSet` ``virial_rows``; W = virial_rows · β in eV.
        volumes: cell volume of each configuration in Å³ (one number for a single configuration).

    Returns:
        (6 · n_configs, p) rows with ``stress_rows · β`` the stress in eV/Å³, sign as ASE's ``get_stress()`` (positive
        = tensile, the cell wants to shrink). The sign is checked in the tests against GPAW stresses by a fit.
    """
    w = np.asarray(virial_rows, dtype=float)
    v = np.atleast_1d(np.asarray(volumes, dtype=float))
    if w.ndim != 2 or w.shape[0] != 6 * v.size:
        raise ValueError(f"virial rows of shape {w.shape} do not match {v.size} volumes (6 rows per configuration)")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("cell volumes must be positive finite numbers (Å³)")
    return -w / np.repeat(v, 6)[:, None]


def configuration_blocks(
    energy_rows: np.ndarray,
    force_rows: np.ndarray,
    n_atoms: np.ndarray,
    energy: np.ndarray,
    forces: np.ndarray,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    stress_rows: np.ndarray | None = None,
    stress: np.ndarray | None = None,
) -> Iterator[ConfigurationBlock]:
    """One :class:`ConfigurationBlock` per configuration from whole-dataset arrays (``LadderDataset`` conventions).

    Args:
        energy_rows: (n_configs, p) energy rows, already divided by N_m.
        force_rows: (3 · total_atoms, p) force rows, configurations concatenated in order, atom-major x, y, z.
        n_atoms: (n_configs,) atoms per configuration.
        energy: (n_levels, n_configs) *total* energies in eV (divided by N_m here).
        forces: (n_levels, total_atoms, 3) forces in eV/Å.
        indices: configurations to yield, in this order (default: all, in order).
        stress_rows: (6 · n_configs, p) stress rows (see :func:`stress_rows_from_virial`), or None for no stress.
        stress: (n_levels, n_configs, 6) Voigt stresses in eV/Å³ (ASE sign, ``LadderDataset.stress``), with
            ``stress_rows``. A configuration whose stress is non-finite at every level gets no stress rows; one
            with stress at some levels only is an error (one factor serves all levels).

    Yields:
        Blocks with per-atom energy targets (eV/atom), force targets (eV/Å) and, if given, stress targets (eV/Å³).
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
    if (stress_rows is None) != (stress is None):
        raise ValueError("stress_rows and stress must be given together (or neither)")
    if stress is not None:
        stress = np.asarray(stress, dtype=float)
        if stress.ndim == 2:
            stress = stress[None]
        if stress_rows.shape[0] != 6 * n_configs or stress.shape != (energy.shape[0], n_configs, 6):
            raise ValueError(
                f"{n_configs} configurations need {6 * n_configs} stress rows and stress of shape "
                f"({energy.shape[0]}, {n_configs}, 6); got {stress_rows.shape[0]} rows and {stress.shape}"
            )
    if indices is None:
        indices = range(n_configs)
    for i in indices:
        i = int(i)
        if not 0 <= i < n_configs:
            raise IndexError(f"configuration index {i} out of range 0..{n_configs - 1}")
        a, b = offsets[i], offsets[i + 1]
        s_rows = s_targets = None
        if stress is not None:
            finite = np.isfinite(stress[:, i]).all(axis=1)
            if finite.all():
                s_rows, s_targets = stress_rows[6 * i : 6 * i + 6], stress[:, i].T
            elif finite.any():
                raise ValueError(
                    f"configuration {i} has stress at some levels but not at others; all levels or none are needed"
                )
        yield ConfigurationBlock(
            energy_rows=energy_rows[i : i + 1],
            energy_targets=(energy[:, i] / n_atoms[i])[None, :],
            force_rows=force_rows[3 * a : 3 * b],
            force_targets=forces[:, a:b, :].reshape(forces.shape[0], -1).T,
            stress_rows=s_rows,
            stress_targets=s_targets,
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
        stress_rows=np.concatenate([b.stress_rows for b in blocks]),
        stress_targets=np.concatenate([b.stress_targets for b in blocks]),
    )


# --------------------------------------------------------------------------------------------------------------
# statistics


@dataclass
class PartStatistics:
    """Sufficient statistics of one kind of rows (energy, force or stress) of a configuration set.

    Attributes:
        factor: (r, k) upper-triangular (trapezoidal) factor T of the augmented matrix ``[1 | X | Y]``
            (``with_ones``) or ``[X | Y]``; k = p + n_levels (+ 1), r = min(n_rows, k) — a set with few rows keeps a
            small factor. Units: those of the columns (descriptor units; eV/atom, eV/Å or eV/Å³ for the targets).
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
            t = triangular_factor(t.copy())
        if t.shape[0] < p:
            t = np.vstack([t, np.zeros((p - t.shape[0], t.shape[1]))])
        return t[:p, :p].copy(), t[:p, p:].copy()

    @property
    def target_sq_norms(self) -> np.ndarray:
        """‖y_ℓ‖² per level (sum of squared targets, eV²/atom², eV²/Å² or eV²/Å⁶)."""
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
        for o in others:
            if o.factor.shape[1] != self.factor.shape[1] or o.with_ones != self.with_ones:
                raise ValueError("cannot merge statistics of different parts or column counts")
        return PartStatistics(
            triangular_factor(np.vstack(mats)),
            self.n_rows + sum(o.n_rows for o in others),
            self.n_params,
            self.with_ones,
        )


@dataclass
class LinearStatistics:
    """Sufficient statistics of a configuration set: energy, force and stress parts, all levels at once.

    Build with :func:`statistics_from_blocks`, :class:`StatisticsAccumulator` or
    :func:`statistics_for_nested_subsets`; combine disjoint sets with :meth:`merge`.

    Attributes:
        energy: statistics of the per-atom energy rows (with the ones column for the shift).
        force: statistics of the force rows.
        levels: labels of the target columns (e.g. the dataset's precision levels).
        n_configs: number of configurations folded in.
        stress: statistics of the stress rows (an empty part, 0 rows, when no configuration has stress; also when
            not given).
    """

    energy: PartStatistics
    force: PartStatistics
    levels: tuple = field(default_factory=tuple)
    n_configs: int = 0
    stress: PartStatistics | None = None

    def __post_init__(self) -> None:
        if self.stress is None:
            self.stress = PartStatistics(np.zeros((0, self.force.n_columns)), 0, self.force.n_params, False)

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
            PartStatistics(np.zeros((0, kf)), 0, n_params, False),
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

    @property
    def n_stress_rows(self) -> int:
        """Stress rows folded in (6 per configuration with stress)."""
        return self.stress.n_rows

    @property
    def parts(self) -> tuple[PartStatistics, PartStatistics, PartStatistics]:
        """(energy, force, stress)."""
        return self.energy, self.force, self.stress

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
            self.stress.stacked_with([o.stress for o in others]),
        )

    def copy(self) -> LinearStatistics:
        return LinearStatistics(self.energy.copy(), self.force.copy(), self.levels, self.n_configs,
                                self.stress.copy())

    def gram(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """TᵀT of the energy, force and stress factors: the Gram matrices of ``[1|X_E|Y_E]``, ``[X_F|Y_F]`` and
        ``[X_V|Y_V]`` (for checks)."""
        return tuple(part.factor.T @ part.factor for part in self.parts)


class StatisticsAccumulator:
    """Streams configuration blocks into :class:`LinearStatistics`.

    Each part (energy, force, stress) is a :class:`~pyiron_mlip_tradeoff.qr.StreamedQR` of its augmented rows:
    rows are buffered and folded into the triangular factor once at least ``batch_rows`` of them are waiting
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
        self._n_params = n_params
        self._levels = levels
        self._batch_rows = batch_rows
        self._labels: tuple | None = None
        self._qr: tuple[StreamedQR, StreamedQR, StreamedQR] | None = None
        self._n_configs = 0
        if n_params is not None and levels is not None:
            self._init(n_params, levels)

    def _init(self, n_params: int, levels: Sequence | int) -> None:
        if isinstance(levels, (int, np.integer)):
            empty = LinearStatistics.empty(n_params, int(levels))
        else:
            empty = LinearStatistics.empty(n_params, len(levels), levels)
        self._labels = empty.levels
        self._qr = tuple(StreamedQR(part.n_columns, self._batch_rows) for part in empty.parts)

    @property
    def n_configs(self) -> int:
        """Configurations added so far (folded in or buffered)."""
        return self._n_configs

    @property
    def n_params(self) -> int | None:
        return None if self._qr is None else self._qr[1].n_columns - len(self._labels)

    def add(self, block: ConfigurationBlock) -> None:
        """Add the rows of one block (one or more configurations)."""
        if self._qr is None:
            p = self._n_params if self._n_params is not None else block.n_params
            lv = self._levels if self._levels is not None else block.n_levels
            self._init(p, lv)
        p, n_levels = self.n_params, len(self._labels)
        if block.n_params != p or block.n_levels != n_levels:
            raise ValueError(
                f"block has p={block.n_params}, {block.n_levels} levels; expected p={p}, {n_levels} levels"
            )
        n = block.n_configs
        energy, force, stress = self._qr
        energy.update(np.hstack([np.ones((n, 1)), block.energy_rows, block.energy_targets]))
        force.update(np.hstack([block.force_rows, block.force_targets]))
        if block.has_stress:
            stress.update(np.hstack([block.stress_rows, block.stress_targets]))
        self._n_configs += n

    def statistics(self) -> LinearStatistics:
        """Fold in any buffered rows and return a copy of the statistics so far (adding may continue)."""
        if self._qr is None:
            if self._n_params is None or self._levels is None:
                raise ValueError("no blocks added yet and p / levels not given: cannot make statistics")
            self._init(self._n_params, self._levels)
        p = self.n_params
        energy, force, stress = (
            PartStatistics(qr.r.copy(), qr.n_rows, p, lead) for qr, lead in zip(self._qr, (True, False, False),
                                                                               strict=True)
        )
        return LinearStatistics(energy, force, self._labels, self._n_configs, stress)


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


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = [int(s) for s in sizes]
    if not sizes:
        raise ValueError("no subset sizes given")
    if sizes[0] < 1 or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
        raise ValueError(f"subset sizes must be positive and strictly increasing, got {sizes}")
    return sizes


def _nested(acc, items: Iterator, sizes: list[int], add) -> Iterator[tuple[int, object]]:
    """Snapshots of ``acc`` after the first n items for each n in ``sizes`` (``add(acc, item)`` folds one in)."""
    for size in sizes:
        while acc.n_configs < size:
            try:
                item = next(items)
            except StopIteration:
                raise ValueError(
                    f"subset size {size} asked for but only {acc.n_configs} configurations were given"
                ) from None
            add(acc, item)
        if acc.n_configs != size:
            raise ValueError(f"subset size {size} falls inside a multi-configuration block")
        yield size, acc.statistics()


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
    sizes = _check_sizes(sizes)
    acc = StatisticsAccumulator(levels=levels, batch_rows=batch_rows)
    yield from _nested(acc, iter(blocks_in_rank_order), sizes, StatisticsAccumulator.add)


# --------------------------------------------------------------------------------------------------------------
# groups


def _check_group_name(group: Hashable) -> Hashable:
    if group == ALL_GROUPS:
        raise ValueError(f"{ALL_GROUPS!r} is reserved for all groups together; rename that group")
    try:
        hash(group)
    except TypeError:
        raise ValueError(f"group names must be hashable, got {group!r}") from None
    return group


class GroupedStatistics:
    """Unweighted statistics per group of configurations (FitSNAP ``[GROUPS]``), fitted with group multipliers.

    Args:
        groups: ``{group name: LinearStatistics}`` of disjoint configuration sets, all with the same p and levels.

    Build with :func:`grouped_statistics`, :class:`GroupedAccumulator` or
    :func:`grouped_statistics_for_nested_subsets`. A fit scales, per group and part, the rows by the global weight
    times the group's multiplier (w_E g_E, w_F g_F, w_V g_V); errors are unweighted, per group and for
    :data:`ALL_GROUPS`.
    """

    def __init__(self, groups: Mapping[Hashable, LinearStatistics]) -> None:
        groups = dict(groups)
        if not groups:
            raise ValueError("no groups given")
        first = next(iter(groups.values()))
        for name, st in groups.items():
            _check_group_name(name)
            if not isinstance(st, LinearStatistics):
                raise ValueError(f"group {name!r}: expected LinearStatistics, got {type(st).__name__}")
            if st.n_params != first.n_params or tuple(st.levels) != tuple(first.levels):
                raise ValueError(
                    f"group {name!r} has p={st.n_params}, levels={list(st.levels)}; the first group has "
                    f"p={first.n_params}, levels={list(first.levels)}"
                )
        self.groups: dict[Hashable, LinearStatistics] = groups
        self._all: LinearStatistics | None = None

    @property
    def names(self) -> tuple:
        """Group names, in insertion order."""
        return tuple(self.groups)

    @property
    def levels(self) -> tuple:
        return next(iter(self.groups.values())).levels

    @property
    def n_params(self) -> int:
        return next(iter(self.groups.values())).n_params

    @property
    def n_configs(self) -> int:
        return sum(st.n_configs for st in self.groups.values())

    @property
    def all(self) -> LinearStatistics:
        """Unweighted statistics of all groups together (merged once, then kept)."""
        if self._all is None:
            self._all = merge_statistics(self.groups.values())
        return self._all

    def merge(self, *others: GroupedStatistics) -> GroupedStatistics:
        """Statistics of the union (disjoint configuration sets), group by group."""
        merged: dict[Hashable, list[LinearStatistics]] = {name: [st] for name, st in self.groups.items()}
        for o in others:
            for name, st in o.groups.items():
                merged.setdefault(name, []).append(st)
        return GroupedStatistics({name: merge_statistics(sts) for name, sts in merged.items()})

    def multipliers(self, group_weights: Mapping[Hashable, Sequence[float]] | None = None) -> dict:
        """``{group: (g_E, g_F, g_V)}`` for every group: the given ones, validated, and (1, 1, 1) for the rest.

        Raises:
            ValueError: naming the group, for a group not in these statistics, not three numbers, or a negative or
                non-finite multiplier.
        """
        out = {name: (1.0, 1.0, 1.0) for name in self.groups}
        for name, gw in (group_weights or {}).items():
            if name not in self.groups:
                raise ValueError(f"group weights name group {name!r}, which is not in the statistics "
                                 f"(groups {list(self.groups)})")
            try:
                values = tuple(float(g) for g in gw)
            except (TypeError, ValueError):
                raise ValueError(f"group {name!r}: multipliers must be three numbers (g_E, g_F, g_V), "
                                 f"got {gw!r}") from None
            if len(values) != 3:
                raise ValueError(f"group {name!r}: multipliers must be three numbers (g_E, g_F, g_V), got {gw!r}")
            for label, g in zip(("g_E", "g_F", "g_V"), values, strict=True):
                if not np.isfinite(g) or g < 0:
                    raise ValueError(f"group {name!r}: multiplier {label} must be a non-negative finite number, "
                                     f"got {g!r}")
            out[name] = values
        return out

    def weighted(self, group_weights: Mapping[Hashable, Sequence[float]] | None = None) -> LinearStatistics:
        """All groups in one :class:`LinearStatistics` whose rows carry the group multipliers: per part, the QR of
        ``[g₁ T₁; g₂ T₂; …]`` over the groups with g > 0 (rows of groups with g = 0 are left out and not counted).

        The result is meant for fitting (:func:`fit_all_levels`, :func:`fit_weights`, with the global weights);
        its errors would be weighted ones.
        """
        mult = self.multipliers(group_weights)
        first = next(iter(self.groups.values()))
        parts = []
        for j, template in enumerate(first.parts):
            mats, n_rows = [], 0
            for name, st in self.groups.items():
                g, part = mult[name][j], st.parts[j]
                if g > 0 and part.n_rows:
                    mats.append(part.factor if g == 1.0 else g * part.factor)
                    n_rows += part.n_rows
            stacked = np.vstack(mats) if mats else np.zeros((0, template.n_columns))
            parts.append(PartStatistics(triangular_factor(stacked), n_rows, template.n_params, template.with_ones))
        n_configs = sum(st.n_configs for name, st in self.groups.items() if any(g > 0 for g in mult[name]))
        if n_configs == 0:
            raise ValueError("every group multiplier is 0: nothing to fit")
        return LinearStatistics(parts[0], parts[1], self.levels, n_configs, parts[2])

    def fit(
        self,
        energy_weight: float,
        force_weight: float,
        stress_weight: float = 0.0,
        *,
        group_weights: Mapping[Hashable, Sequence[float]] | None = None,
        rcond: float | None = None,
        ridge: float | None = None,
    ) -> dict[Hashable, LinearFit]:
        """Fits for every training level with rows weighted by (w_E g_E, w_F g_F, w_V g_V) per group.

        Equal to the dense weighted least squares with every row scaled by its global weight times its group's
        multiplier (rows of weight 0 left out). Arguments as in :func:`fit`; ``group_weights`` maps group names to
        (g_E, g_F, g_V) (missing groups: 1, 1, 1).

        Returns:
            ``{level label: LinearFit}``; each fit records the group multipliers used.
        """
        return self.fit_weights([(energy_weight, force_weight, stress_weight)], group_weights=group_weights,
                                rcond=rcond, ridge=ridge)[0]

    def fit_weights(
        self,
        weights: Sequence[tuple[float, ...]],
        *,
        stress_weight: float = 0.0,
        group_weights: Mapping[Hashable, Sequence[float]] | None = None,
        rcond: float | None = None,
        ridge: float | None = None,
    ) -> list[dict[Hashable, LinearFit]]:
        """:meth:`fit` for several global (w_E, w_F[, w_V]) with the same group multipliers (re-factored once)."""
        mult = self.multipliers(group_weights)
        fits = fit_weights(self.weighted(mult), weights, stress_weight=stress_weight, rcond=rcond, ridge=ridge)
        frozen = tuple(mult.items())
        return [{lv: _with_groups(f, frozen) for lv, f in d.items()} for d in fits]

    def errors(self, coefficients: np.ndarray | LinearFit) -> dict[Hashable, FitErrors]:
        """Unweighted errors of β per group and for :data:`ALL_GROUPS` (all groups merged), against every level.

        Returns:
            ``{group: FitErrors, …, "*ALL": FitErrors}`` (meV/atom, meV/Å, GPa).
        """
        out = {name: errors(st, coefficients) for name, st in self.groups.items() if st.n_configs}
        out[ALL_GROUPS] = errors(self.all, coefficients)
        return out


def _with_groups(f: LinearFit, group_weights: tuple) -> LinearFit:
    return LinearFit(f.coefficients, f.level, f.energy_weight, f.force_weight, f.rank, f._singular_values, f.rcond,
                     f.ridge, f.stress_weight, group_weights, f.solver)


class GroupedAccumulator:
    """Streams (block, group) pairs into :class:`GroupedStatistics`: one :class:`StatisticsAccumulator` per group.

    Memory: the factors of every group (at most 3 (p + L + 1)² numbers per group, less for a group with fewer rows)
    plus one shared buffer budget: when the rows waiting in all groups' buffers exceed ``3 · batch_rows`` (what a
    single :class:`StatisticsAccumulator` may buffer), the fullest buffers are folded in until half of that is left,
    so the buffers do not grow with the number of groups.

    Args: as :class:`StatisticsAccumulator`.
    """

    def __init__(self, n_params: int | None = None, levels: Sequence | int | None = None,
                 batch_rows: int | None = None) -> None:
        self._args = (n_params, levels, batch_rows)
        self._groups: dict[Hashable, StatisticsAccumulator] = {}

    def _limit_buffers(self, acc: StatisticsAccumulator) -> None:
        k = acc._qr[0].n_columns
        budget = 3 * (self._args[2] or default_batch_rows(k))
        qrs = [qr for a in self._groups.values() for qr in a._qr]
        waiting = sum(qr.buffered_rows for qr in qrs)
        if waiting <= budget:
            return
        for qr in sorted(qrs, key=lambda q: q.buffered_rows, reverse=True):
            waiting -= qr.buffered_rows
            qr.flush()
            if waiting <= budget // 2:
                break

    @property
    def n_configs(self) -> int:
        return sum(acc.n_configs for acc in self._groups.values())

    def add(self, block: ConfigurationBlock, group: Hashable) -> None:
        """Add the rows of one block to ``group``."""
        acc = self._groups.get(group)
        if acc is None:
            _check_group_name(group)
            n_params, levels, batch_rows = self._args
            if self._groups:  # all groups share p and the levels of the first
                first = next(iter(self._groups.values()))
                n_params, levels = first.n_params, first._labels
            acc = self._groups[group] = StatisticsAccumulator(n_params, levels, batch_rows)
        acc.add(block)
        if len(self._groups) > 1:
            self._limit_buffers(acc)

    def statistics(self) -> GroupedStatistics:
        """Fold in buffered rows; a copy per group (adding may continue)."""
        if not self._groups:
            raise ValueError("no blocks added yet: cannot make grouped statistics")
        return GroupedStatistics({name: acc.statistics() for name, acc in self._groups.items()})


def grouped_statistics(
    blocks: Iterable[ConfigurationBlock],
    groups: Iterable[Hashable],
    levels: Sequence | None = None,
    batch_rows: int | None = None,
) -> GroupedStatistics:
    """Unweighted statistics per group; ``groups`` names the group of each block (same length as ``blocks``)."""
    acc = GroupedAccumulator(levels=levels, batch_rows=batch_rows)
    for block, group in zip(blocks, groups, strict=True):
        acc.add(block, group)
    if acc.n_configs == 0:
        raise ValueError("no configurations given (empty set)")
    return acc.statistics()


def grouped_statistics_for_nested_subsets(
    blocks_in_rank_order: Iterable[ConfigurationBlock],
    groups_in_rank_order: Iterable[Hashable],
    sizes: Sequence[int],
    levels: Sequence | None = None,
    batch_rows: int | None = None,
) -> Iterator[tuple[int, GroupedStatistics]]:
    """:func:`statistics_for_nested_subsets` with a group per block: ``(size, GroupedStatistics)`` pairs."""
    sizes = _check_sizes(sizes)
    acc = GroupedAccumulator(levels=levels, batch_rows=batch_rows)
    items = zip(blocks_in_rank_order, groups_in_rank_order, strict=True)
    yield from _nested(acc, iter(items), sizes, lambda a, item: a.add(*item))


# --------------------------------------------------------------------------------------------------------------
# fitting


class _TriangularSingularValues:
    """Singular values of a square upper-triangular factor, computed on the first request and then kept (the fits of
    all levels of one weight share one of these, so the SVD is paid at most once per weight, and never by a grid that
    does not ask)."""

    __slots__ = ("_factor", "_values")

    def __init__(self, factor: np.ndarray) -> None:
        self._factor = factor
        self._values: np.ndarray | None = None

    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = scipy.linalg.svdvals(np.triu(self._factor), check_finite=False)
            self._factor = None
        return self._values


@dataclass(frozen=True)
class LinearFit:
    """Result of a weighted fit.

    Attributes:
        coefficients: (p,) β, in the units of the targets per unit descriptor (eV).
        level: training level label.
        energy_weight, force_weight: w_E, w_F of Eq. 1.
        rank: number of singular values kept (SVD) or p (triangular route, ridge).
        singular_values: singular values of the weighted design, descending: the min(n_rows, p) singular values
            of the full weighted matrix (computed from the stacked factors; rows of weight 0 are not part of it).
            On the ``"triangular"`` route they are computed on first access from the combined p × p factor (an SVD
            of it costs two to four times the triangular solve itself, ``benchmarks/fast_solve.py``, so a grid that
            never reads them does not pay for them); the constructor takes either the values or that lazy source,
            positionally.
        rcond: relative cut-off that was used (None with ridge).
        ridge: Tikhonov parameter λ, or None.
        stress_weight: w_V (0: stress rows not used).
        group_weights: ``((group, (g_E, g_F, g_V)), …)`` of a fit from :class:`GroupedStatistics`, else None.
        solver: how the fit was solved (see ``_fit_pairs``): ``"triangular"`` (the combined triangular factor was
            safely well-conditioned against the cut-off, so nothing would be dropped: back-substitution),
            ``"deflated"`` (exactly one singular value provably below the cut-off: back-substitution with its
            direction deflated), ``"svd"``
            (truncated-SVD least squares, ``gelsd``) or ``"ridge"``.
    """

    coefficients: np.ndarray
    level: Hashable
    energy_weight: float
    force_weight: float
    rank: int
    _singular_values: np.ndarray | _TriangularSingularValues = field(repr=False)
    rcond: float | None
    ridge: float | None
    stress_weight: float = 0.0
    group_weights: tuple | None = None
    solver: str = "svd"

    @property
    def singular_values(self) -> np.ndarray:
        """Singular values of the weighted design, descending (see the class docstring)."""
        source = self._singular_values
        return source.values() if isinstance(source, _TriangularSingularValues) else source


def _check_weight(name: str, w, allow_zero: bool = False) -> float:
    kind = "non-negative" if allow_zero else "positive"
    try:
        w = float(w)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {kind} number, got {w!r}") from None
    if not np.isfinite(w) or w < 0 or (w == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {kind} finite number, got {w!r}")
    return w


def default_rcond(n_rows_full: int, n_params: int) -> float:
    """The cut-off ``numpy.linalg.lstsq(rcond=None)`` applies to an n_rows_full × n_params matrix:
    eps · max(n_rows_full, n_params), relative to the largest singular value (dimensionless)."""
    return float(np.finfo(float).eps * max(int(n_rows_full), int(n_params)))


def _solve_stacked(
    a: np.ndarray, b: np.ndarray, n_rows_full: int, rcond: float | None, ridge: float | None
) -> tuple[np.ndarray, np.ndarray, int, float | None]:
    """Minimum-norm truncated-SVD (or Tikhonov) solution of ``a β ≈ b`` for every column of ``b`` at once: the SVD
    route of ``_fit_pairs`` (the only caller), taken when the triangular route is not safe, for ridge and for wide sets.

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


#: the triangular route is taken only when every singular value of the weighted system is provably at least this
#: factor above the cut-off (dimensionless; see ``_triangular_solve``)
TRIANGULAR_SAFETY = 2.0


def _combined_factor(stats: LinearStatistics, weights: Sequence[float]) -> np.ndarray:
    """The k × k upper-triangular factor (k = p + n_levels, Fortran order) of the weighted augmented rows
    ``[w_E [X_E|Y_E]; w_F [X_F|Y_F]; w_V [X_V|Y_V]]`` (parts of weight 0 left out): its leading p × p block is the R
    and its top p rows of the target columns the z = Qᵀ y of the weighted least-squares problem.

    Built from the parts' factors with LAPACK's triangular-pentagonal QR (``qr.fold_into_triangle``): the weighted
    force factor (r_F × k, upper trapezoidal, padded with zero rows) is the triangle, the weighted energy factor
    without its ones column (r_E × k: one dense row of column means above an upper trapezoid) and the stress factor
    (upper trapezoidal) are folded in as pentagons. That costs about (2/3) k³ per folded part instead of a dense QR of the
    stack (≈ (10/3) p³) or its SVD least squares (``gelsd``, several times that).
    """
    we, wf, wv = weights
    k = stats.n_params + stats.n_levels
    top = np.zeros((k, k), order="F")
    force = stats.force.factor
    np.multiply(wf, force, out=top[: force.shape[0]])
    pentagons = [(we * stats.energy.factor[:, 1:], stats.energy.factor.shape[0] - 1)]
    if wv > 0:
        pentagons.append((wv * stats.stress.factor, stats.stress.factor.shape[0]))
    for rows, trapezoid in pentagons:
        top = fold_into_triangle(top, rows, trapezoid)
    return top


def _triangular_solve(
    stats: LinearStatistics, weights: Sequence[float], n_rows_full: int, rcond: float | None
) -> tuple[tuple[np.ndarray, _TriangularSingularValues, int, float] | None, np.ndarray]:
    """The least-squares solution by back-substitution on the combined triangular factor, when that is provably
    what the truncated SVD would give — nothing dropped, or exactly the smallest singular value dropped
    (:func:`_deflated_solve`) — else None (the caller then takes the SVD route); and the combined factor itself,
    which that route solves.

    With R the combined p × p factor (:func:`_combined_factor`), κ_F = ‖R‖_F ‖R⁻¹‖_F is an upper bound of the
    condition number σ_max / σ_min (‖R‖_F ≥ σ_max and ‖R⁻¹‖_F = (Σ σᵢ⁻²)^½ ≥ 1 / σ_min; on the study pool within
    1.3× of it, ``benchmarks/fast_solve.py``). If κ_F · TRIANGULAR_SAFETY · c ≤ 1 with c = max(rcond, the default cut-off), every
    singular value is at least TRIANGULAR_SAFETY (= 2) times the cut-off: the SVD route would keep all of them, and
    its result is the plain least-squares solution R⁻¹ z. The factor 2 leaves rounding a margin of c · σ_max
    ≥ eps · max(n_rows, p) · σ_max, far more than the backward error of either factorisation seen in practice; the
    default cut-off stands in for a smaller given rcond so the two routes never part on a system that ill-conditioned.
    R⁻¹ (LAPACK ``?trtri``, (1/3) p³) is only used for the bound; β comes from ``?trtrs`` (backward stable).

    Returns:
        ``((β (p, n_levels), lazy singular values, rank p or p − 1, rcond used) or None, combined k × k factor)``.
    """
    p = stats.n_params
    default = default_rcond(n_rows_full, p)
    used_rcond = default if rcond is None else float(rcond)
    cut = max(used_rcond, default)
    top = _combined_factor(stats, weights)
    r = np.asfortranarray(top[:p, :p])  # upper triangular: ?tpqrt never writes below the diagonal of the zeros
    inverse, info = scipy.linalg.lapack.dtrtri(r, lower=0)  # (the zeros below the diagonal stay zeros)
    if info != 0:  # an exactly zero diagonal entry: singular
        return None, top
    r_norm = float(scipy.linalg.norm(r, check_finite=False))
    inverse_norm = float(scipy.linalg.norm(inverse, check_finite=False))
    kappa = r_norm * inverse_norm
    if not np.isfinite(kappa):
        return None, top
    if kappa * TRIANGULAR_SAFETY * cut > 1.0:
        beta = _deflated_solve(r, inverse, top[:p, p:], r_norm, inverse_norm, used_rcond, cut)
        return (None if beta is None else (beta, _TriangularSingularValues(r), p - 1, used_rcond)), top
    beta = scipy.linalg.solve_triangular(r, top[:p, p:], check_finite=False)
    return (beta, _TriangularSingularValues(r), p, used_rcond), top


#: power-iteration steps allowed for the smallest singular pair of the deflated route (``_deflated_solve``), and
#: the change of the unit vector v₁ between two steps at which it counts as converged
DEFLATION_STEPS = 12
DEFLATION_TOLERANCE = 1e-11
#: power-iteration steps for the lower bound of σ_max of the deflated route
SIGMA_MAX_STEPS = 8


def _deflated_solve(
    r: np.ndarray, inverse: np.ndarray, z: np.ndarray, r_norm: float, inverse_norm: float, rcond: float, cut: float
) -> np.ndarray | None:
    """The truncated-SVD solution of ``R β ≈ z`` when provably exactly one singular value, the smallest, falls below
    the cut-off and every other one stays well above it; None otherwise (the caller then takes the SVD route).

    On the study pool at 2Jmax 8 the large subsets with large energy weights have one such direction (mostly the
    constant column, which only the energy rows carry), so ``gelsd`` would drop exactly it. With R = U S Vᵀ the
    smallest pair (σ₁, u₁, v₁) follows by power iteration on R⁻¹R⁻ᵀ = V S⁻² Vᵀ with the inverse already at hand
    (O(p²) per step; the ratio (σ₁/σ₂)² per step), u₁ ∝ R⁻ᵀ v₁. Then
    ``β = (I − v₁v₁ᵀ) R⁻¹ (z − u₁u₁ᵀz) = Σ_{i≥2} vᵢ uᵢᵀz / σᵢ``, the truncated-SVD solution, by one back-substitution
    of a right-hand side without its u₁ part (the projection removes what rounding puts back along v₁).

    Taken only when both are certain: σ₁ + δ ≤ rcond · (σ_lo − δ), where σ_lo = ‖R x‖ after a few power-iteration
    steps x ← RᵀR x is a lower bound of σ_max and δ = p · eps · ‖R‖_F bounds how far rounding moves any singular value
    computed by a backward-stable method, gelsd's included (so gelsd drops σ₁); and σ₂ ≥ TRIANGULAR_SAFETY · cut ·
    ‖R‖_F, with σ₂⁻² ≤ Σ_{i≥2} σᵢ⁻² = ‖(I − v₁v₁ᵀ) R⁻¹‖_F² (so gelsd keeps every other value: the triangular
    route's own test on the rest of the spectrum), that norm enlarged by 4 √p eps ‖R‖_F ‖R⁻¹‖_F for the error of the
    computed inverse outside v₁ (and the route refused where that exceeds 0.1).
    """
    p = r.shape[0]
    if p < 2 or rcond <= 0:
        return None
    x = r[:, int(np.argmax(np.einsum("ij,ij->j", r, r)))].copy()  # (r is upper triangular, zeros below)
    for _ in range(SIGMA_MAX_STEPS):  # power iteration on RᵀR: ‖R x‖ / ‖x‖ ≤ σ_max for every x
        x = r.T @ (r @ x)
        x /= np.linalg.norm(x)
    lower = float(np.linalg.norm(r @ x))
    rounding_sigma = p * np.finfo(float).eps * r_norm  # how far rounding may move any computed singular value
    v = inverse[:, int(np.argmax(np.einsum("ij,ij->j", inverse, inverse)))].copy()  # ≈ v₁ (R⁻¹ ≈ v₁u₁ᵀ/σ₁)
    v /= np.linalg.norm(v)
    for _ in range(DEFLATION_STEPS):
        new = inverse @ (inverse.T @ v)  # R⁻¹R⁻ᵀ v
        new /= np.linalg.norm(new)
        converged = np.linalg.norm(new - v) <= DEFLATION_TOLERANCE
        v = new
        if converged:
            break
    else:
        return None
    w = inverse.T @ v  # R⁻ᵀ v₁ = u₁ / σ₁
    sigma_1 = 1.0 / float(np.linalg.norm(w))
    if sigma_1 + rounding_sigma > rcond * (lower - rounding_sigma):
        return None
    # Σ_{i≥2} σᵢ⁻² = ‖(I − v₁v₁ᵀ) R⁻¹‖_F², formed entry by entry (not as a difference of two squared norms, which
    # cancels); the computed inverse's error outside v₁ is about eps · κ relative, allowed for with a margin
    relative_error = 4.0 * np.sqrt(p) * np.finfo(float).eps * r_norm * inverse_norm
    if relative_error >= 0.1:
        return None
    rest = inverse - np.outer(v, v @ inverse)
    sigma_2 = 1.0 / np.sqrt(float(np.einsum("ij,ij->", rest, rest)) * (1.0 + relative_error))  # ≤ σ₂
    if sigma_2 < TRIANGULAR_SAFETY * cut * r_norm:
        return None
    u = w / np.linalg.norm(w)
    beta = scipy.linalg.solve_triangular(r, z - np.outer(u, u @ z), check_finite=False)
    return beta - np.outer(v, v @ beta)


def _weighted_system(
    stats: LinearStatistics, weights: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """``[w_E A_E; w_F A_F; w_V A_V]`` over the parts of positive weight (m × p, m ≤ min(n_E, p + 1) + min(n_F, p)
    + min(n_V, p)), the matching weighted targets (m × L), as new arrays the solver may overwrite, and the number of
    rows each part contributes (0 for a part of weight 0)."""
    parts = stats.parts
    blocks = [(w, part) for w, part in zip(weights, parts, strict=True)]
    counts = [part.descriptor_columns.shape[0] if w > 0 else 0 for w, part in blocks]
    a = np.empty((sum(counts), stats.n_params))
    b = np.empty((a.shape[0], stats.n_levels))
    start = 0
    for (w, part), m in zip(blocks, counts, strict=True):
        if m:
            np.multiply(w, part.descriptor_columns, out=a[start : start + m])
            np.multiply(w, part.target_columns, out=b[start : start + m])
            start += m
    return a, b, counts


def _n_rows_weighted(stats: LinearStatistics, weights: Sequence[float]) -> int:
    """Rows of the full weighted matrix: all rows of the parts of positive weight."""
    return sum(part.n_rows for w, part in zip(weights, stats.parts, strict=True) if w > 0)


def _check_fit_input(stats, energy_weight, force_weight, stress_weight, rcond, ridge):
    we = _check_weight("energy_weight", energy_weight)
    wf = _check_weight("force_weight", force_weight)
    wv = _check_weight("stress_weight", stress_weight, allow_zero=True)
    if stats.n_configs == 0:
        raise ValueError("cannot fit on an empty configuration set")
    if _n_rows_weighted(stats, (we, wf, wv)) == 0:
        raise ValueError("no rows of positive weight to fit")
    if ridge is not None:
        ridge = float(ridge)
        if not np.isfinite(ridge) or ridge <= 0:
            raise ValueError(f"ridge must be a positive finite number (or None), got {ridge!r}")
    if rcond is not None:
        rcond = float(rcond)
        if not np.isfinite(rcond) or rcond < 0:
            raise ValueError(f"rcond must be a non-negative finite number (or None), got {rcond!r}")
    return (we, wf, wv), rcond, ridge


def _fits(stats, weights, beta, s, rank, rcond, ridge, solver: str | None = None) -> dict[Hashable, LinearFit]:
    we, wf, wv = weights
    solver = solver or ("svd" if ridge is None else "ridge")
    return {lv: LinearFit(beta[:, i].copy(), lv, we, wf, rank, s, rcond, ridge, wv, None, solver)
            for i, lv in enumerate(stats.levels)}


def _fit_pairs(
    stats: LinearStatistics, checked: Sequence[tuple[tuple[float, float, float], float | None, float | None]]
) -> list[dict[Hashable, LinearFit]]:
    """Fits for every level and every checked ((w_E, w_F, w_V), rcond, ridge), by one route whatever the number
    of weights (so a single fit and the same fit inside a grid give the same numbers).

    This is the one place a fit is solved. Only parts of positive weight enter the system. Stacked system with
    m ≥ p rows, per weight: first the triangular route (``_triangular_solve``: the parts' factors combined by a
    triangular-pentagonal QR, then back-substitution) when the combined factor is provably well-conditioned with
    respect to the cut-off, so the truncated SVD would drop nothing; when it would provably drop exactly the
    smallest singular value, the same with that direction deflated (``_deflated_solve``); otherwise one ``gelsd``
    solve of that combined factor (p rows instead of the stacked system's up to 2p + 1); with ridge, the SVD of the
    stacked system. ``benchmarks/fast_solve.py --twojmax 8`` at 999 configurations: 195 ms per solve against 722 ms
    for ``gelsd`` on the stacked system (routes triangular ×3, deflated ×2, svd ×1; weighted residual norms equal
    to 3.7e-14; 313 ms with the SVD route for all three that are not triangular). Measured on the study-sized
    benchmark
    pool at 2,000 configurations (``benchmarks/fast_solve.py``, the six weight ratios of the study): 3.7 ms per
    solve against 26.1 ms for ``gelsd`` at p = 496 (all triangular), 0.25 against 1.18 ms at p = 120; at p = 1,596
    some large subsets with large energy weights do drop singular values and take ``gelsd`` (141 against 533 ms per
    solve at 100 configurations, 5 of 6 triangular). One decomposition per training set shared by all weights (an
    SVD of the combined factor, after which each weight is O(p² L)) was measured too and not chosen: that SVD alone
    (33 ms at p = 496, 1.08 s at p = 1,596) costs more than the triangular route for all six weight ratios, and it
    would not carry the cut-off over exactly.

    With m < p rows (a small set): the unweighted rows of the parts used are factored once,
    ``[A_E; A_F; A_V] = L Q`` (L: m × m lower triangular, Q: m × p with orthonormal rows). A weighting only scales
    rows, ``[w_E A_E; w_F A_F; w_V A_V] = (D L) Q`` with D diagonal, so each weight needs only the m × m problem
    ``(D L) y ≈ D b`` and β = Qᵀ y. The singular values of D L are those of the weighted system (Q has orthonormal
    rows; Householder QR perturbs each row by eps relative to that row, which the row scaling keeps), and β lies in
    the row space, so the cut-off, the minimum-norm property and ridge all carry over. This is what ``gelsd`` does
    internally for a wide matrix, with the O(m² p) factorisation paid once instead of per weight.
    """
    if not checked:
        return []
    p = stats.n_params
    out: list[dict | None] = [None] * len(checked)
    # weights using the same parts share the factorisation of the wide case
    by_parts: dict[tuple[bool, ...], list[int]] = {}
    for i, (w, _, _) in enumerate(checked):
        by_parts.setdefault(tuple(x > 0 for x in w), []).append(i)
    for used_parts, members in by_parts.items():
        rows = [part.descriptor_columns.shape[0] for part in stats.parts]
        m = sum(r for r, used in zip(rows, used_parts, strict=True) if used)
        if m >= p:
            for i in members:
                w, rc, rd = checked[i]
                n_full = _n_rows_weighted(stats, w)
                if rd is None:
                    solved, top = _triangular_solve(stats, w, n_full, rc)
                    if solved is not None:
                        out[i] = _fits(stats, w, *solved, rd, "triangular" if solved[2] == p else "deflated")
                        continue
                    # the truncated SVD of the combined factor: the same least-squares problem, p rows
                    a, b = np.asfortranarray(top[:p, :p]), np.asfortranarray(top[:p, p:])
                else:
                    a, b, _ = _weighted_system(stats, w)
                beta, s, rank, used = _solve_stacked(a, b, n_full, rc, rd)
                out[i] = _fits(stats, w, beta, s, rank, used, rd)
            continue
        a, b, counts = _weighted_system(stats, [1.0 if used else 0.0 for used in used_parts])
        q, r = scipy.linalg.qr(a.T, mode="economic", overwrite_a=True, check_finite=False)  # aᵀ = q r: a = rᵀ qᵀ
        low = r.T
        for i in members:
            w, rc, rd = checked[i]
            d = np.repeat(np.asarray(w, dtype=float), counts)[:, None]
            n_full = _n_rows_weighted(stats, w)
            if rd is None and rc is None:
                rc = default_rcond(n_full, p)  # the full matrix's cut-off, not that of the m × m problem
            y, s, rank, used = _solve_stacked(d * low, d * b, n_full, rc, rd)
            beta = q @ y
            if rd is not None:
                rank = p
            out[i] = _fits(stats, w, beta, s, rank, used, rd)
    return out


def _weight_triple(w, stress_weight: float) -> tuple:
    w = tuple(w)
    if len(w) == 2:
        return (*w, stress_weight)
    if len(w) == 3:
        return w
    raise ValueError(f"weights must be (w_E, w_F) or (w_E, w_F, w_V), got {w!r}")


def fit_all_levels(
    stats: LinearStatistics,
    energy_weight: float,
    force_weight: float,
    stress_weight: float = 0.0,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> dict[Hashable, LinearFit]:
    """Weighted fits for every training level at once (one least-squares solve of the stacked system, all levels as
    right-hand sides; triangular or SVD route, see ``_fit_pairs``).

    See :func:`fit` for the arguments; returns ``{level label: LinearFit}``.
    """
    return _fit_pairs(stats, [_check_fit_input(stats, energy_weight, force_weight, stress_weight, rcond, ridge)])[0]


def fit_weights(
    stats: LinearStatistics,
    weights: Sequence[tuple[float, ...]],
    *,
    stress_weight: float = 0.0,
    rcond: float | None = None,
    ridge: float | None = None,
) -> list[dict[Hashable, LinearFit]]:
    """:func:`fit_all_levels` for several weights on the same training set, sharing work between them.

    When the stacked system has fewer rows m than columns p (a small subset), its unweighted rows are factored
    once, ``[A_E; A_F; A_V] = L Q``, and each weight then needs only an m × m SVD least-squares problem (details in
    ``_fit_pairs``); with m ≥ p each weight is one solve (triangular route when provably nothing would be dropped,
    else ``gelsd``). Every weight gives exactly what :func:`fit_all_levels` gives for it.

    Args:
        stats: training-set statistics.
        weights: (w_E, w_F) pairs (then w_V = ``stress_weight``) or (w_E, w_F, w_V) triples (see :func:`fit`).
        stress_weight: w_V for the pairs (default 0: no stress rows).
        rcond, ridge: as in :func:`fit` (the default cut-off is ``lstsq``'s on the full weighted matrix).

    Returns:
        One ``{level label: LinearFit}`` per weight, in the order of ``weights``.
    """
    checked = []
    for w in weights:
        we, wf, wv = _weight_triple(w, stress_weight)
        checked.append(_check_fit_input(stats, we, wf, wv, rcond, ridge))
    return _fit_pairs(stats, checked)


def fit(
    stats: LinearStatistics,
    level: Hashable,
    energy_weight: float,
    force_weight: float,
    stress_weight: float = 0.0,
    *,
    rcond: float | None = None,
    ridge: float | None = None,
) -> LinearFit:
    """Minimise Eq. 1 (plus the stress term) on the configuration set of ``stats`` against one training level.

    Args:
        stats: training-set statistics.
        level: training level label (one of ``stats.levels``).
        energy_weight: w_E > 0 (multiplies per-atom energy residuals in eV/atom).
        force_weight: w_F > 0 (multiplies force residuals in eV/Å).
        stress_weight: w_V ≥ 0 (multiplies stress residuals in eV/Å³); 0, the default, leaves the stress rows out
            (the energy + force fit, to the last digit).
        rcond: relative SVD cut-off: singular values ≤ rcond × largest are dropped. Default None means
            ``eps × max(n_rows, p)`` with n_rows the number of rows of positive weight (energy + force + stress if
            w_V > 0) of the *full* weighted matrix — exactly the default of ``numpy.linalg.lstsq(rcond=None)``
            applied to that matrix, whose singular values are the ones computed here. (FitSNAP's SVD solver
            historically passed 1e-13 to scipy's lstsq; pass ``rcond=1e-13`` to mimic it.)
        ridge: Tikhonov parameter λ: minimise L(β) + λ‖β‖² instead, with L in the units of Eq. 1 (weights ×
            eV/atom, eV/Å and eV/Å³, squared) per squared unit of β. All coefficients, the constant one included,
            are penalised. When given, rcond is not used.

    Returns:
        The fit. With more columns than independent rows (rank-deficient design), the truncated SVD returns the
        finite minimum-norm solution among all minimisers — the same one ``numpy.linalg.lstsq`` returns.

    Raises:
        ValueError: for weights ≤ 0 (w_V < 0) or non-finite, an unknown level, an empty set, or a bad rcond / ridge.
    """
    stats.level_index(level)  # unknown level: ValueError naming the known ones
    # all levels are solved (the extra right-hand sides cost little) so that this fit is the very same one
    # fit_all_levels and fit_weights give, to the last digit
    return fit_all_levels(stats, energy_weight, force_weight, stress_weight, rcond=rcond, ridge=ridge)[level]


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
        stress_rmse: RMSE over all stress components (6 per configuration with stress), GPa (NaN without stress rows).
        n_stress_rows: stress components in the set.
    """

    levels: tuple
    energy_rmse: np.ndarray
    energy_rmse_shifted: np.ndarray
    energy_shift: np.ndarray
    force_rmse: np.ndarray
    n_configs: int
    n_force_rows: int
    stress_rmse: np.ndarray | None = None
    n_stress_rows: int = 0

    def __post_init__(self) -> None:
        if self.stress_rmse is None:
            object.__setattr__(self, "stress_rmse", np.full(np.shape(self.energy_rmse), np.nan))

    def for_level(self, level: Hashable) -> dict[str, float]:
        """``{"energy_rmse", "energy_rmse_shifted", "energy_shift", "force_rmse", "stress_rmse"}`` for one level."""
        for i, lv in enumerate(self.levels):
            if lv == level:
                return {
                    "energy_rmse": float(self.energy_rmse[i]),
                    "energy_rmse_shifted": float(self.energy_rmse_shifted[i]),
                    "energy_shift": float(self.energy_shift[i]),
                    "force_rmse": float(self.force_rmse[i]),
                    "stress_rmse": float(self.stress_rmse[i]),
                }
        raise ValueError(f"unknown level {level!r}; known levels {list(self.levels)}")


def errors(stats: LinearStatistics, coefficients: np.ndarray | LinearFit) -> FitErrors:
    """Errors of β on the set of ``stats`` against every level, from the statistics alone (no prediction).

    Args:
        stats: statistics of the evaluation set (training or test).
        coefficients: (p,) β in eV per unit descriptor, or a :class:`LinearFit`.

    Returns:
        RMSEs in meV/atom (energy), meV/Å (forces) and GPa (stress) for every level of ``stats``.
    """
    beta = coefficients.coefficients if isinstance(coefficients, LinearFit) else coefficients
    beta = np.asarray(beta, dtype=float)
    if beta.shape != (stats.n_params,):
        raise ValueError(f"coefficients must have shape ({stats.n_params},), got {beta.shape}")
    return errors_many(stats, beta[:, None])[0]


def _rmse(part: PartStatistics, betas: np.ndarray, shape: tuple) -> np.ndarray:
    if not part.n_rows:
        return np.full(shape, np.nan)
    return np.sqrt(np.sum(part.residual_matrix(betas) ** 2, axis=0) / part.n_rows)


def errors_many(stats: LinearStatistics, coefficients: np.ndarray) -> list[FitErrors]:
    """:func:`errors` of several coefficient vectors on one set: one matrix product per part for all of them.

    Args:
        stats: statistics of the evaluation set.
        coefficients: (p, n) matrix whose columns are coefficient vectors (eV per unit descriptor).

    Returns:
        n :class:`FitErrors`, in column order (meV/atom, meV/Å, GPa), each against every level of ``stats``.
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
    f_rmse = _rmse(stats.force, betas, e_sq.shape)
    v_rmse = EV_PER_A3_IN_GPA * _rmse(stats.stress, betas, e_sq.shape)
    e_rmse, e_rmse_shifted = 1e3 * np.sqrt(e_sq / n), 1e3 * np.sqrt(e_centred_sq / n)
    shift, f_rmse = 1e3 * shift, 1e3 * f_rmse
    levels = tuple(stats.levels)
    nf, nv = stats.force.n_rows, stats.stress.n_rows
    return [
        FitErrors(levels, e_rmse[j], e_rmse_shifted[j], shift[j], f_rmse[j], stats.n_configs, nf, v_rmse[j], nv)
        for j in range(betas.shape[1])
    ]
