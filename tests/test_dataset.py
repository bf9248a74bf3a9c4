import h5py
import numpy as np
import pytest
from ase.build import bulk

from pyiron_mlip_tradeoff.dataset import DatasetError, LadderDataset
from pyiron_mlip_tradeoff.precision import REFERENCE_LADDER


def _toy(n_levels=2, failed=None):
    rng = np.random.default_rng(0)
    structures = [bulk("Be", "hcp", a=2.29, c=3.58), bulk("Be", "bcc", a=2.55, cubic=True), bulk("Be", "fcc", a=3.2)]
    total = sum(len(s) for s in structures)
    energy = rng.normal(size=(n_levels, 3))
    forces = rng.normal(size=(n_levels, total, 3))
    if failed is not None:
        energy[failed] = np.nan
    return LadderDataset(
        structures, energy, forces, levels=[REFERENCE_LADDER[1], REFERENCE_LADDER[2]][:n_levels],
        seconds=rng.uniform(size=(n_levels, 3)), stress=rng.normal(size=(n_levels, 3, 6)),
        failed=None if failed is None else np.array([[False, False, False], [False, True, False]]),
        metadata={"engine": "toy"},
    )


def test_shapes_and_offsets():
    ds = _toy()
    assert ds.n_configs == 3 and ds.n_levels == 2 and list(ds.n_atoms) == [2, 2, 1]
    assert list(ds.atom_offsets) == [0, 2, 4, 5]
    np.testing.assert_array_equal(ds.config_forces(2, 1), ds.forces[1, 2:4])


def test_save_load_roundtrip(tmp_path):
    ds = _toy()
    path = ds.save(tmp_path / "d.h5")
    back = LadderDataset.load(path)
    assert back.levels == ds.levels and back.level_settings == ds.level_settings
    for name in ("energy", "forces", "seconds", "stress", "failed"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
    np.testing.assert_allclose(back.structures[1].get_positions(), ds.structures[1].get_positions())
    np.testing.assert_allclose(back.structures[2].cell[:], ds.structures[2].cell[:])
    assert back.metadata == {"engine": "toy"}


def test_subset_keeps_forces_aligned():
    ds = _toy()
    sub = ds.subset([2, 0])
    assert list(sub.n_atoms) == [1, 2]
    np.testing.assert_array_equal(sub.forces[:, 0], ds.forces[:, 4])
    np.testing.assert_array_equal(sub.forces[:, 1:3], ds.forces[:, 0:2])
    np.testing.assert_array_equal(sub.energy, ds.energy[:, [2, 0]])
    with pytest.raises(IndexError):
        ds.subset([3])


def test_one_level_user_data():
    s = [bulk("Be", "hcp", a=2.29, c=3.58)]
    ds = LadderDataset(s, np.array([-7.5]), np.zeros((2, 3)))
    assert ds.levels == (1,) and ds.n_levels == 1 and ds.seconds is None


def test_failed_calculations_need_explicit_drop():
    ds = _toy(failed=(1, 1))
    with pytest.raises(DatasetError, match="drop_failed"):
        ds.require_complete()
    clean = ds.drop_failed()
    assert clean.n_configs == 2 and np.isfinite(clean.energy).all()


def test_unmarked_nan_is_an_error():
    ds = _toy()
    energy = ds.energy.copy()
    energy[0, 1] = np.nan
    with pytest.raises(DatasetError, match="not marked failed"):
        LadderDataset(ds.structures, energy, ds.forces)
    forces = ds.forces.copy()
    forces[1, 4, 2] = np.inf
    with pytest.raises(DatasetError, match="configuration 2"):
        LadderDataset(ds.structures, ds.energy, forces)


def test_shape_mismatch_errors():
    ds = _toy()
    with pytest.raises(DatasetError, match="forces"):
        LadderDataset(ds.structures, ds.energy, ds.forces[:, :4])
    with pytest.raises(DatasetError, match="energy"):
        LadderDataset(ds.structures[:2], ds.energy, ds.forces)


def test_corrupt_and_inconsistent_files(tmp_path):
    ds = _toy()
    path = ds.save(tmp_path / "d.h5")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(DatasetError, match="cannot read"):
        LadderDataset.load(truncated)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DatasetError):
        LadderDataset.load(garbage)
    # a file whose atom counts disagree with the stored positions
    bad = tmp_path / "bad.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "r+") as f:
        key = [k for k in f["ladder_dataset"].keys() if "n_atoms" in k][0]
        data = f["ladder_dataset"][key][...]
        data[0] += 1
        f["ladder_dataset"][key][...] = data
    with pytest.raises(DatasetError):
        LadderDataset.load(bad)
    with pytest.raises(FileNotFoundError):
        LadderDataset.load(tmp_path / "missing.h5")
