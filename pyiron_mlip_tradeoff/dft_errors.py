"""How far each precision level is from the reference level: the study's Table 3 and Fig. 3 on any dataset.

For level k against the reference level (given, or by default the dataset's most precise level by its DFT settings:
densest k-mesh, then highest cutoff — :func:`~pyiron_mlip_tradeoff.reference_level.most_precise_level`; an
ambiguous ladder is refused), with per-atom energy
differences d_m = (E_k,m − E_ref,m) / N_m:

* ``energy_rmse``          — RMS of d_m (unshifted), meV/atom;
* ``energy_rmse_bulk``     — RMS of d_m − d_gs, where gs is the perfect ground-state crystal (hcp for Be): the shift
  that makes the two levels agree on the bulk ground state, meV/atom;
* ``energy_rmse_mean``     — RMS of d_m − mean(d), the best constant shift, meV/atom;
* ``force_rmse``           — RMS over all force components of F_k − F_ref, meV/Å;
* ``seconds_per_config``   — mean measured wall seconds per configuration at level k;
* ``core_seconds_per_config`` — the same in CPU seconds (what a busy machine does not inflate).

Failed calculations must be dropped first (``dataset.drop_failed()``); the functions refuse NaNs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .dataset import DatasetError, LadderDataset
from .reference_level import resolve_reference_level

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["dft_error_table", "plot_level_vs_reference", "ground_state_index"]


def ground_state_index(dataset: LadderDataset) -> int:
    """Index of the ground-state crystal in the dataset (``metadata['ground_state_index']``, default 0)."""
    index = int(dataset.metadata.get("ground_state_index", 0))
    if not 0 <= index < dataset.n_configs:
        raise DatasetError(f"ground-state index {index} outside the dataset's {dataset.n_configs} configurations")
    return index


def dft_error_table(
    dataset: LadderDataset, reference_level: int | None = None, ground_state: int | None = None
) -> pd.DataFrame:
    """Errors of every level against ``reference_level``; one row per level.

    Args:
        dataset: a complete dataset (no failed calculations).
        reference_level: label of the reference level (default: the most precise level by its settings).
        ground_state: configuration index of the ground-state crystal for the bulk shift (default from metadata).

    Returns:
        DataFrame indexed by ``level`` with columns ``energy_rmse``, ``energy_rmse_bulk``, ``energy_rmse_mean``
        (meV/atom), ``force_rmse`` (meV/Å), ``seconds_per_config`` (wall s), ``core_seconds_per_config``
        (CPU s), ``n_configs``; ``table.attrs["reference_level"]`` is the reference level used.

    Raises:
        ValueError: a reference level not in the dataset, or an ambiguous ladder without one.
    """
    dataset.require_complete()
    reference_level = resolve_reference_level(dataset, reference_level)
    ref = dataset.level_index(reference_level)
    gs = ground_state_index(dataset) if ground_state is None else int(ground_state)
    per_atom = dataset.energy / dataset.n_atoms[None, :]
    rows = []
    for i, level in enumerate(dataset.levels):
        diff = (per_atom[i] - per_atom[ref]) * 1000.0
        force_diff = (dataset.forces[i] - dataset.forces[ref]) * 1000.0
        rows.append(
            {
                "level": level,
                "energy_rmse": float(np.sqrt(np.mean(diff**2))),
                "energy_rmse_bulk": float(np.sqrt(np.mean((diff - diff[gs]) ** 2))),
                "energy_rmse_mean": float(np.sqrt(np.mean((diff - diff.mean()) ** 2))),
                "force_rmse": float(np.sqrt(np.mean(force_diff**2))),
                "seconds_per_config": float(np.mean(dataset.seconds[i])) if dataset.seconds is not None else np.nan,
                "core_seconds_per_config": (
                    float(np.mean(dataset.core_seconds[i])) if dataset.core_seconds is not None else np.nan
                ),
                "n_configs": dataset.n_configs,
            }
        )
    table = pd.DataFrame(rows).set_index("level")
    table.attrs["reference_level"] = reference_level
    return table


def plot_level_vs_reference(
    dataset: LadderDataset, path: str | os.PathLike | None = None, reference_level: int | None = None
) -> Figure:
    """Fig. 3 analogue: per-atom energies and force components of each level against the reference level
    (default: the most precise level by its settings).

    Returns the matplotlib figure; writes it to ``path`` when given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dataset.require_complete()
    reference_level = resolve_reference_level(dataset, reference_level)
    ref = dataset.level_index(reference_level)
    others = [i for i in range(dataset.n_levels) if i != ref]
    fig, axes = plt.subplots(2, max(len(others), 1), figsize=(3.2 * max(len(others), 1), 6.4), squeeze=False)
    per_atom = dataset.energy / dataset.n_atoms[None, :]
    for col, i in enumerate(others):
        ax = axes[0, col]
        ax.scatter(per_atom[ref], per_atom[i], s=6)
        lo, hi = per_atom[[ref, i]].min(), per_atom[[ref, i]].max()
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        ax.set_title(f"level {dataset.levels[i]}")
        ax.set_xlabel(f"E level {reference_level} (eV/atom)")
        ax.set_ylabel(f"E level {dataset.levels[i]} (eV/atom)")
        ax = axes[1, col]
        ax.scatter(dataset.forces[ref].ravel(), dataset.forces[i].ravel(), s=3)
        lo, hi = dataset.forces[[ref, i]].min(), dataset.forces[[ref, i]].max()
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        ax.set_xlabel(f"F level {reference_level} (eV/Å)")
        ax.set_ylabel(f"F level {dataset.levels[i]} (eV/Å)")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
