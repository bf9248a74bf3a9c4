"""Learning curves: a fitted model's error against the number of training configurations, with a floor.

Model::

    rmse(n)² = F² + a · n^(−b),      F² = floor² + c²,   a > 0, b > 0, c ≥ 0

``floor`` is the DFT error of the training level against the reference level (the error no amount of data at that
level removes), ``c`` the model's own limit (2Jmax, weights) and ``a·n^(−b)`` the part more data removes. The fit is
in logs: for each trial asymptote F² on a grid between floor² and just below the smallest observed rmse², the line
log(rmse² − F²) = log a − b·log n is fitted by least squares (``numpy.polyfit``), and the F² with the smallest
residual wins. ``sigma``, the residual standard deviation of that line, is the curve's uncertainty: the upper
prediction multiplies a·n^(−b) by exp(z·sigma).

A curve measured at one level is carried to another by swapping the floor (:meth:`LearningCurve.at_floor`): the
model's limit c and the data term are kept, i.e. the errors are taken to add in quadrature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

__all__ = ["LearningCurve", "fit_learning_curve"]

#: residual spread (in log rmse² − F²) assumed for a curve fitted through too few points to tell
UNKNOWN_SIGMA = 1.0


@dataclass(frozen=True)
class LearningCurve:
    """A fitted learning curve (see the module docstring); errors in the unit of the data (meV/atom, meV/Å).

    Attributes:
        asymptote: F, the error at infinitely many configurations. floor: the floor it was fitted with.
        amplitude: a. exponent: b. sigma: residual standard deviation in logs.
        sizes, values: the points fitted (training sizes and errors).
    """

    asymptote: float
    floor: float
    amplitude: float
    exponent: float
    sigma: float
    sizes: tuple[int, ...] = ()
    values: tuple[float, ...] = ()

    def predict(self, n, z: float = 0.0) -> np.ndarray:
        """Predicted error at ``n`` training configurations; ``z`` > 0 gives the upper bound z·sigma above."""
        n = np.asarray(n, dtype=float)
        return np.sqrt(self.asymptote**2 + self.amplitude * n ** (-self.exponent) * math.exp(z * self.sigma))

    def size_needed(self, target: float, z: float = 0.0) -> float:
        """Smallest (real) n with ``predict(n, z) <= target``; ``inf`` when the asymptote is not below the target."""
        gap = target**2 - self.asymptote**2
        if gap <= 0:
            return math.inf
        log_n = (math.log(self.amplitude) + z * self.sigma - math.log(gap)) / self.exponent
        return math.exp(log_n) if log_n < math.log(1e12) else math.inf

    def at_floor(self, floor: float) -> LearningCurve:
        """The same curve for a training level whose floor is ``floor`` (model limit and data term kept)."""
        model_limit2 = max(self.asymptote**2 - self.floor**2, 0.0)
        return replace(self, asymptote=math.sqrt(model_limit2 + floor**2), floor=float(floor))

    def to_dict(self) -> dict:
        """Plain dictionary (for tables and storage)."""
        return {"asymptote": self.asymptote, "floor": self.floor, "amplitude": self.amplitude,
                "exponent": self.exponent, "sigma": self.sigma, "sizes": list(self.sizes),
                "values": list(self.values)}


def fit_learning_curve(sizes, values, floor: float = 0.0, n_trials: int = 60) -> LearningCurve:
    """Fit :class:`LearningCurve` to errors ``values`` at training sizes ``sizes`` (see the module docstring).

    Raises:
        ValueError: fewer than two points, non-positive sizes or errors, a negative floor, or errors that do not
            fall with n anywhere (no b > 0 fits).
    """
    n = np.asarray(sizes, dtype=float).reshape(-1)
    r = np.asarray(values, dtype=float).reshape(-1)
    if n.size != r.size or n.size < 2:
        raise ValueError(f"a learning curve needs at least two (size, error) points, got {n.size} and {r.size}")
    if np.any(n <= 0) or np.any(~np.isfinite(r)) or np.any(r <= 0):
        raise ValueError("learning-curve sizes and errors must be positive and finite")
    if not np.isfinite(floor) or floor < 0:
        raise ValueError(f"the floor of a learning curve must be ≥ 0, got {floor!r}")
    r2 = r**2
    lowest = float(r2.min())
    floor2 = min(float(floor) ** 2, 0.999 * lowest)
    x = np.log(n)
    best = None
    for t in np.linspace(0.0, 0.98, n_trials):
        f2 = floor2 + t * (lowest - floor2)
        y = np.log(r2 - f2)
        slope, intercept = np.polyfit(x, y, 1)
        if slope >= 0:
            continue
        sse = float(np.sum((y - (intercept + slope * x)) ** 2))
        if best is None or sse < best[0] - 1e-12:
            best = (sse, f2, float(np.exp(intercept)), float(-slope))
    if best is None:
        raise ValueError(f"the errors {np.round(r, 3).tolist()} do not fall with the training size {n.tolist()}")
    sse, f2, a, b = best
    sigma = math.sqrt(sse / (n.size - 2)) if n.size > 2 else UNKNOWN_SIGMA
    return LearningCurve(math.sqrt(f2), math.sqrt(floor2), a, b, sigma, tuple(int(v) for v in n),
                         tuple(float(v) for v in r))
