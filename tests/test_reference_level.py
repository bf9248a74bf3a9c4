"""The reference level is the most precise level by its DFT settings, not the largest label; ambiguous ladders and
unknown levels are refused."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from pyiron_mlip_tradeoff.dataset import LadderDataset
from pyiron_mlip_tradeoff.precision import PrecisionLevel
from pyiron_mlip_tradeoff.reference_level import (
    AmbiguousLadderError,
    most_precise_level,
    resolve_reference_level,
)


def _dataset(levels) -> LadderDataset:
    """Two small Be cells with made-up labels at len(levels) levels (the labels only; nothing is fitted)."""
    structures = [bulk("Be", "hcp", a=2.29, c=3.58), bulk("Be", "bcc", a=2.55, cubic=True)]
    n_levels, n_atoms = len(levels), sum(len(s) for s in structures)
    rng = np.random.default_rng(0)
    return LadderDataset(structures, rng.normal(size=(n_levels, 2)), rng.normal(size=(n_levels, n_atoms, 3)),
                         levels=levels)


def test_labels_not_sorted_by_precision():
    """Label 1 is the most precise here: densest k-mesh. max(levels) or levels[-1] would say 3."""
    ladder = [PrecisionLevel(3, None, 300.0), PrecisionLevel(1, 0.1, 900.0), PrecisionLevel(2, 0.5, 500.0)]
    dataset = _dataset(ladder)
    assert dataset.levels == (3, 1, 2)
    assert most_precise_level(dataset) == 1
    assert resolve_reference_level(dataset) == 1
    assert resolve_reference_level(dataset, 2) == 2
    # equal k-meshes: the higher cutoff wins
    same_k = _dataset([PrecisionLevel(5, 0.25, 700.0), PrecisionLevel(2, 0.25, 900.0), PrecisionLevel(9, 1.0, 300)])
    assert most_precise_level(same_k) == 2


def test_reference_level_reaches_every_consumer(tmp_path):
    from pyiron_mlip_tradeoff.dft_errors import dft_error_table

    ladder = [PrecisionLevel(3, None, 300.0), PrecisionLevel(1, 0.1, 900.0), PrecisionLevel(2, 0.5, 500.0)]
    dataset = _dataset(ladder)
    table = dft_error_table(dataset)
    assert table.attrs["reference_level"] == 1
    assert table.loc[1, "energy_rmse"] == 0.0 and table.loc[3, "energy_rmse"] > 0
    assert dft_error_table(dataset, 3).loc[3, "force_rmse"] == 0.0
    # a saved and reloaded dataset keeps the settings, so the rule still applies
    reloaded = LadderDataset.load(dataset.save(tmp_path / "unsorted.h5"))
    assert most_precise_level(reloaded) == 1


@pytest.mark.parametrize(
    "ladder, match",
    [
        ([PrecisionLevel(1, 0.25, 700.0), PrecisionLevel(2, 0.25, 700.0, smearing_width=0.1)], "same k-mesh"),
        ([PrecisionLevel(1, 0.1, 500.0), PrecisionLevel(2, 0.25, 900.0)], "higher cutoff"),
        ([PrecisionLevel(1, 0.1, 500.0), 2], "not for"),
    ],
)
def test_ambiguous_ladders_are_refused(ladder, match):
    dataset = _dataset(ladder)
    with pytest.raises(AmbiguousLadderError, match=match):
        most_precise_level(dataset)
    assert resolve_reference_level(dataset, 2) == 2  # an explicit choice is always possible


def test_without_settings_and_bad_levels():
    assert most_precise_level(_dataset([4, 9, 2])) == 9  # nothing recorded: the label convention
    assert most_precise_level(_dataset([7])) == 7
    dataset = _dataset([PrecisionLevel(1, None, 300.0), PrecisionLevel(2, 0.5, 500.0)])
    for bad, match in ((3, "not a level"), ("2", "integer level label"), (True, "integer level label"),
                       (2.5, "integer level label")):
        with pytest.raises(ValueError, match=match):
            resolve_reference_level(dataset, bad)
    from pyiron_mlip_tradeoff.dft_errors import dft_error_table

    with pytest.raises(ValueError, match="reference_level 3 is not a level"):
        dft_error_table(dataset, 3)
