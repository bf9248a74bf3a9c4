import numpy as np
import pandas as pd
import pytest
from ase.build import bulk

from pyiron_mlip_tradeoff.dataset import DatasetError, LadderDataset
from pyiron_mlip_tradeoff.dft_errors import dft_error_table, plot_level_vs_reference


def _tiny():
    structures = [bulk("Be", "hcp", a=2.29, c=3.58), bulk("Be", "fcc", a=3.2), bulk("Be", "bcc", a=2.5, cubic=True)]
    # total energies (eV) at levels 1 and 2 for configurations with 2, 1, 2 atoms
    energy = np.array([[-7.0, -3.2, -6.6], [-7.4, -3.5, -6.9]])
    forces = np.zeros((2, 5, 3))
    forces[0, 0] = [0.1, 0.0, 0.0]
    forces[0, 4] = [0.0, -0.2, 0.0]
    seconds = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 60.0]])
    return LadderDataset(structures, energy, forces, levels=[1, 2], seconds=seconds, metadata={"ground_state_index": 0})


def test_error_table_matches_hand_computation():
    table = dft_error_table(_tiny())
    # per-atom differences level 1 - level 2 in meV/atom: (0.4/2, 0.3/1, 0.3/2) eV -> 200, 300, 150
    d = np.array([200.0, 300.0, 150.0])
    row = table.loc[1]
    assert row.energy_rmse == pytest.approx(np.sqrt((200**2 + 300**2 + 150**2) / 3))
    assert row.energy_rmse_bulk == pytest.approx(np.sqrt((0**2 + 100**2 + 50**2) / 3))
    assert row.energy_rmse_mean == pytest.approx(np.std(d))
    # forces: two non-zero components (100 and 200 meV/Å) among 15
    assert row.force_rmse == pytest.approx(np.sqrt((100**2 + 200**2) / 15))
    assert row.seconds_per_config == pytest.approx(2.0)
    assert table.loc[2].energy_rmse == 0 and table.loc[2].seconds_per_config == pytest.approx(30.0)


def test_failed_calculations_refused_and_figure(tmp_path):
    ds = _tiny()
    failed = LadderDataset(ds.structures, np.where([[False, True, False], [False] * 3], np.nan, ds.energy),
                           ds.forces, failed=[[False, True, False], [False] * 3], seconds=ds.seconds)
    with pytest.raises(DatasetError, match="drop_failed"):
        dft_error_table(failed)
    assert isinstance(dft_error_table(failed.drop_failed()), pd.DataFrame)
    plot_level_vs_reference(ds, tmp_path / "fig3.png")
    assert (tmp_path / "fig3.png").stat().st_size > 1000
