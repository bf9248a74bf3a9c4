"""A cost model of DFT calculations: CPU seconds of a configuration at a precision level, from atoms and k-points.

Model (log-linear, one intercept per level, exponents shared by all levels)::

    log t(config, level) = a_level + b · log N_atoms + c · log N_k(level)

with N_k the number of k-points of the level's Γ-centred mesh (``PrecisionLevel.kpoint_mesh``, the product of the
divisions; 1 for Γ only). Sharing b and c lets a few pilot calculations per level fix the level intercepts while every
calculation of every level informs the exponents. Fitted by ordinary least squares in logs; the residual standard
deviation in logs (``sigma``) is the model's uncertainty per configuration. Costs are in the unit told (CPU seconds
where recorded, else wall seconds). Nothing here imports pyiron.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .precision import PrecisionLevel

__all__ = ["CostModel", "kpoint_count", "cost_features"]


def kpoint_count(atoms: Atoms, level: PrecisionLevel) -> int:
    """Number of k-points of ``atoms`` at ``level`` (product of the Γ-centred mesh divisions; 1 for Γ only)."""
    return int(np.prod(level.kpoint_mesh(np.asarray(atoms.get_cell()[:], dtype=float))))


def cost_features(structures: Sequence[Atoms], levels: Sequence[PrecisionLevel]) -> tuple[np.ndarray, np.ndarray]:
    """``(log N_atoms (n,), log N_k (n_levels, n))`` of ``structures`` at ``levels``."""
    log_atoms = np.log(np.array([len(s) for s in structures], dtype=float))
    log_k = np.log(np.array([[kpoint_count(s, lv) for s in structures] for lv in levels], dtype=float))
    return log_atoms, log_k


@dataclass(frozen=True)
class CostModel:
    """Fitted cost model (see the module docstring).

    Attributes:
        levels: level labels, in the order of ``intercepts``.
        intercepts: a_level per level (log seconds).
        atom_exponent: b. kpoint_exponent: c.
        sigma: residual standard deviation of log t (0 with too few calculations to tell).
        n_calculations: number of calculations fitted.
    """

    levels: tuple[int, ...]
    intercepts: tuple[float, ...]
    atom_exponent: float
    kpoint_exponent: float
    sigma: float
    n_calculations: int

    @classmethod
    def fit(cls, levels: Sequence[int], level_of: np.ndarray, log_atoms: np.ndarray, log_k: np.ndarray,
            seconds: np.ndarray) -> CostModel:
        """Fit from calculations: their level labels, log N_atoms, log N_k and seconds (all 1-D, same length).

        Raises:
            ValueError: a level without any calculation, non-positive or non-finite seconds.
        """
        levels = tuple(int(lv) for lv in levels)
        level_of = np.asarray(level_of, dtype=np.int64)
        seconds = np.asarray(seconds, dtype=float)
        if not np.all(np.isfinite(seconds)) or np.any(seconds <= 0):
            raise ValueError("the cost model needs positive, finite seconds for every calculation")
        counts = {lv: int(np.sum(level_of == lv)) for lv in levels}
        empty = [lv for lv, c in counts.items() if c == 0]
        if empty:
            raise ValueError(f"the cost model needs at least one calculation per level; none for level(s) {empty}")
        design = np.zeros((seconds.size, len(levels) + 2))
        for j, lv in enumerate(levels):
            design[level_of == lv, j] = 1.0
        design[:, -2] = log_atoms
        design[:, -1] = log_k
        coef, *_ = np.linalg.lstsq(design, np.log(seconds), rcond=None)
        residual = np.log(seconds) - design @ coef
        dof = seconds.size - np.linalg.matrix_rank(design)
        sigma = float(np.sqrt(np.sum(residual**2) / dof)) if dof > 0 else 0.0
        return cls(levels, tuple(float(c) for c in coef[:-2]), float(coef[-2]), float(coef[-1]), sigma,
                   int(seconds.size))

    @classmethod
    def from_dataset(cls, dataset, levels: Mapping[int, PrecisionLevel] | None = None) -> CostModel:
        """Fit to every successful calculation of a ``LadderDataset`` (CPU seconds where recorded, else wall
        seconds); ``levels`` default to the dataset's recorded settings."""
        settings = dict(levels or dataset.level_settings)
        missing = [lv for lv in dataset.levels if lv not in settings]
        if missing:
            raise ValueError(f"no DFT settings for level(s) {missing}: the cost model needs their k-point spacing")
        timings = dataset.core_seconds if dataset.core_seconds is not None else dataset.seconds
        if timings is None:
            raise ValueError("the dataset records no seconds: nothing to fit a cost model to")
        log_atoms, log_k = cost_features(dataset.structures, [settings[lv] for lv in dataset.levels])
        ok = ~(dataset.failed | dataset.missing)
        li, ci = np.nonzero(ok)
        return cls.fit(dataset.levels, np.array(dataset.levels)[li], log_atoms[ci], log_k[li, ci], timings[li, ci])

    def predict_log(self, level: int, log_atoms: np.ndarray, log_k: np.ndarray) -> np.ndarray:
        """Predicted log seconds at ``level`` for the given log N_atoms and log N_k."""
        if int(level) not in self.levels:
            raise ValueError(f"the cost model knows levels {list(self.levels)}, not {level}")
        a = self.intercepts[self.levels.index(int(level))]
        return a + self.atom_exponent * np.asarray(log_atoms) + self.kpoint_exponent * np.asarray(log_k)

    def predict(self, level: int, log_atoms: np.ndarray, log_k: np.ndarray) -> np.ndarray:
        """Predicted seconds (the mean of a log-normal: exp(log t̂ + σ²/2)), one per configuration."""
        return np.exp(self.predict_log(level, log_atoms, log_k) + 0.5 * self.sigma**2)

    def to_dict(self) -> dict:
        """Plain dictionary (for tables and storage)."""
        return {"levels": list(self.levels), "intercepts": list(self.intercepts),
                "atom_exponent": self.atom_exponent, "kpoint_exponent": self.kpoint_exponent, "sigma": self.sigma,
                "n_calculations": self.n_calculations}
