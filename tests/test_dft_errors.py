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


def _cli_rows(capsys, args):
    from pyiron_mlip_tradeoff.cli import main

    assert main(args) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        head, _, rest = line.partition("|")
        if head.strip().isdigit():
            rows[int(head)] = [float(v) for v in rest.partition("|")[0].split()]
    return out, rows


def test_cli_prints_the_error_table_with_cpu_seconds(tmp_path, capsys):
    ds = _tiny()
    ds.core_seconds = np.array([[0.5, 1.0, 1.5], [4.0, 8.0, 12.0]])
    ds.save(tmp_path / "tiny.h5")
    out, rows = _cli_rows(capsys, ["dft-errors", "--dataset", str(tmp_path / "tiny.h5"),
                                   "--figure", str(tmp_path / "fig3.png")])
    assert "CPU s/cfg" in out and "errors vs level 2" in out
    # level 1 against level 2, by hand as above: energy RMS unshifted / bulk / mean, force RMS, mean CPU seconds
    d = np.array([200.0, 300.0, 150.0])
    expected = [np.sqrt(np.mean(d**2)), np.sqrt(np.mean((d - d[0]) ** 2)), np.std(d),
                np.sqrt((100**2 + 200**2) / 15), 1.0]
    np.testing.assert_allclose(rows[1], expected, atol=0.006)
    np.testing.assert_allclose(rows[2], [0, 0, 0, 0, 8.0], atol=0.006)
    assert (tmp_path / "fig3.png").stat().st_size > 1000


def test_cli_falls_back_to_wall_seconds(tmp_path, capsys):
    _tiny().save(tmp_path / "tiny.h5")
    out, rows = _cli_rows(capsys, ["dft-errors", "--dataset", str(tmp_path / "tiny.h5")])
    assert "CPU s/cfg" not in out and "(wall seconds)" in out
    assert rows[1][-1] == pytest.approx(2.0) and rows[2][-1] == pytest.approx(30.0)
