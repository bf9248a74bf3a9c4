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


# ---- groups, species, missing calculations (format version 2) --------------------------------------------------
def _two_elements():
    from ase.build import bulk as _bulk

    nacl = _bulk("NaCl", "rocksalt", a=5.6)
    cu = _bulk("Cu", "fcc", a=3.6)
    mixed = _bulk("Be", "hcp", a=2.29, c=3.58)
    mixed.symbols[1] = "O"
    return [nacl, cu, mixed]


def test_groups_default_roundtrip_and_subset(tmp_path):
    ds = _toy()
    assert list(ds.groups) == ["default"] * 3 and ds.group_names == ("default",)
    structures = ds.structures
    grouped = LadderDataset(structures, ds.energy, ds.forces, groups=["bulk", "surf", "bulk"])
    back = LadderDataset.load(grouped.save(tmp_path / "g.h5"))
    assert list(back.groups) == ["bulk", "surf", "bulk"] and back.group_names == ("bulk", "surf")
    assert list(back.subset([2, 1]).groups) == ["bulk", "surf"]
    assert list(back.select_levels([2]).groups) == ["bulk", "surf", "bulk"]
    np.testing.assert_array_equal(back.group_indices("bulk"), [0, 2])
    with pytest.raises(KeyError, match="surf"):
        back.group_indices("nothing")
    with pytest.raises(DatasetError, match="one per configuration"):
        LadderDataset(structures, ds.energy, ds.forces, groups=["a", "b"])


def test_species_any_number_of_elements():
    structures = _two_elements()
    total = sum(len(s) for s in structures)
    ds = LadderDataset(structures, np.zeros(3), np.zeros((total, 3)))
    assert ds.elements == ("Be", "O", "Na", "Cl", "Cu")  # ordered by atomic number
    np.testing.assert_array_equal(ds.numbers, np.concatenate([s.numbers for s in structures]))
    assert ds.subset([1]).elements == ("Cu",)


def test_missing_is_not_failed_and_never_faked(tmp_path):
    ds = _toy()
    energy, forces = ds.energy.copy(), ds.forces.copy()
    energy[1, 0] = np.nan
    forces[1, 0:2] = np.nan
    missing = np.zeros((2, 3), bool)
    missing[1, 0] = True
    part = LadderDataset(ds.structures, energy, forces, levels=[1, 2], missing=missing)
    assert not part.failed.any() and part.missing.sum() == 1
    np.testing.assert_array_equal(part.available, ~missing)
    back = LadderDataset.load(part.save(tmp_path / "m.h5"))
    np.testing.assert_array_equal(back.missing, missing)
    assert np.isnan(back.energy[1, 0])
    assert part.drop_failed().n_configs == 3  # drop_failed keeps the configuration missing at level 2
    with pytest.raises(DatasetError, match="missing.*drop_incomplete"):
        part.require_complete()
    assert part.drop_incomplete().n_configs == 2
    assert part.drop_incomplete(levels=[1]).n_configs == 3  # complete at level 1
    # a value where a calculation is marked missing is refused (nothing faked)
    with pytest.raises(DatasetError, match="marked missing but have an energy"):
        LadderDataset(ds.structures, ds.energy, ds.forces, missing=missing)
    failed = missing.copy()
    with pytest.raises(DatasetError, match="both failed and missing"):
        LadderDataset(ds.structures, energy, forces, failed=failed, missing=missing)


def test_version_1_files_still_load(tmp_path):
    """A file written before groups/missing existed (format version 1) loads with one group and nothing missing."""
    import h5io

    ds = _toy()
    data = ds.to_dict()
    for key in ("groups", "missing"):
        data.pop(key)
    data["format_version"] = 1
    h5io.write_hdf5(str(tmp_path / "v1.h5"), data, title="ladder_dataset")
    back = LadderDataset.load(tmp_path / "v1.h5")
    assert list(back.groups) == ["default"] * 3 and not back.missing.any()
    np.testing.assert_array_equal(back.energy, ds.energy)
    data["format_version"] = 99
    h5io.write_hdf5(str(tmp_path / "v99.h5"), data, title="ladder_dataset", overwrite=True)
    with pytest.raises(DatasetError, match="newer"):
        LadderDataset.load(tmp_path / "v99.h5")


def test_store_and_restore_in_a_pyiron_job_hdf(project):
    """An in-memory dataset kept in a job's HDF5 file (the function the job classes call)."""
    from pyiron_mlip_tradeoff.dataset import restore_dataset, store_dataset

    ds = LadderDataset(_toy().structures, _toy().energy, _toy().forces, groups=["a", "b", "a"],
                       stress=_toy().stress, levels=[1, 2])
    job = project.create.job.ScriptJob("holder")
    store_dataset(job.project_hdf5, ds, "input/dataset")
    back = restore_dataset(job.project_hdf5, "input/dataset")
    for name in ("energy", "forces", "stress", "failed", "missing"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ds, name))
    assert list(back.groups) == ["a", "b", "a"] and back.levels == (1, 2)
    with pytest.raises(DatasetError, match="no stored dataset 'output/other'"):
        restore_dataset(job.project_hdf5, "output/other")
