"""Fits on data computed at only some levels (a planner's): training configurations at the training level only,
validation configurations at the reference level only. Checked against the same fit on the complete labels."""

from __future__ import annotations

import numpy as np
import pytest

from pyiron_mlip_tradeoff.dataset import LadderDataset, load_bundled
from pyiron_mlip_tradeoff.fitting import fit_qsnap

TRAIN = np.arange(0, 40)
VALIDATION = np.arange(40, 60)


def _blank(dataset: LadderDataset, missing: np.ndarray) -> LadderDataset:
    """``dataset`` with the calculations in ``missing`` removed (NaN and marked missing, never filled in)."""
    energy, forces = dataset.energy.copy(), dataset.forces.copy()
    stress, seconds, core = dataset.stress.copy(), dataset.seconds.copy(), dataset.core_seconds.copy()
    offsets = dataset.atom_offsets
    for li, ci in zip(*np.nonzero(missing), strict=True):
        energy[li, ci] = stress[li, ci] = seconds[li, ci] = core[li, ci] = np.nan
        forces[li, offsets[ci]:offsets[ci + 1]] = np.nan
    return LadderDataset(dataset.structures, energy, forces, levels=[dataset.level_settings[lv] for lv in dataset.levels],
                         seconds=seconds, stress=stress, kmesh=dataset.kmesh, core_seconds=core, missing=missing)


@pytest.fixture(scope="module")
def data():
    complete = load_bundled(warn_interim=False).select_levels([2, 6]).subset(np.r_[TRAIN, VALIDATION])
    missing = np.zeros(complete.energy.shape, dtype=bool)
    missing[1, TRAIN] = True        # training configurations: level 2 only
    missing[0, VALIDATION] = True   # validation configurations: the reference level 6 only
    return complete, _blank(complete, missing)


def test_fit_on_partly_computed_data_equals_fit_on_complete_labels(data):
    complete, partial = data
    kw = dict(training_level=2, train_indices=TRAIN, validation_indices=VALIDATION, twojmax=4,
              energy_weight=150.0, reference_level=6)
    full, part = fit_qsnap(complete, **kw), fit_qsnap(partial, **kw)
    scale = np.abs(full.coefficients).max()
    assert np.abs(part.coefficients - full.coefficients).max() < 1e-8 * scale
    for key in ("energy_rmse", "force_rmse"):
        assert part.error("validation")[key] == pytest.approx(full.error("validation")[key], rel=1e-8)
    # the training set was never computed at the reference level: no error is invented for it
    assert np.isnan(part.summary()["train_energy_rmse"])
    assert part.dft_seconds == pytest.approx(full.dft_seconds)


def test_sets_without_the_levels_they_need_are_refused(data):
    _, partial = data
    with pytest.raises(ValueError, match="train_indices contains 40 configuration.*never computed at level 6"):
        fit_qsnap(partial, training_level=6, train_indices=TRAIN, twojmax=4, energy_weight=150.0)
    with pytest.raises(ValueError, match="validation_indices contains 20 .*never computed at level 6"):
        fit_qsnap(partial, training_level=2, train_indices=TRAIN[:20], validation_indices=TRAIN[20:],
                  twojmax=4, energy_weight=150.0, reference_level=6)
