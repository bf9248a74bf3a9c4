"""A dataset kept in its file (``LadderDataset.load(path, lazy=True)``): the same values as a full load, the same
checks, and the same grid (every number identical) while memory holds a few numbers per configuration."""

import h5py
import numpy as np
import pandas as pd
import pytest
from ase.build import bulk

import pyiron_mlip_tradeoff.dataset as dataset_module
from pyiron_mlip_tradeoff.dataset import ArrayInFile, DatasetError, LadderDataset, StructuresInFile


def _toy_pool(n_configs: int = 23) -> LadderDataset:
    """Cells of 1–8 atoms with random labels at 3 levels (random numbers: for I/O checks only), stresses, two groups,
    one failed and one missing calculation."""
    rng = np.random.default_rng(5)
    cells = [bulk("Be", "hcp", a=2.29, c=3.58), bulk("Be", "bcc", a=2.55, cubic=True), bulk("Be", "fcc", a=3.2)]
    structures = []
    for i in range(n_configs):
        atoms = cells[i % 3].repeat((1, 1, 1 + i % 4))
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        structures.append(atoms)
    total = sum(len(a) for a in structures)
    energy = rng.normal(size=(3, n_configs))
    forces = rng.normal(size=(3, total, 3))
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in structures])])
    failed = np.zeros((3, n_configs), bool)
    missing = np.zeros((3, n_configs), bool)
    failed[1, 4] = missing[2, 9] = True
    energy[1, 4] = energy[2, 9] = np.nan
    forces[1, offsets[4] : offsets[5]] = np.nan
    forces[2, offsets[9] : offsets[10]] = np.nan
    return LadderDataset(structures, energy, forces, levels=[1, 2, 3], seconds=rng.uniform(size=(3, n_configs)),
                         stress=rng.normal(size=(3, n_configs, 6)), failed=failed, missing=missing,
                         groups=["bulk" if i % 2 else "strained" for i in range(n_configs)], metadata={"engine": "toy"})


@pytest.fixture
def small_windows(monkeypatch):
    """Windows of 4 configurations and runs broken at any gap: every read path is taken on a small pool."""
    monkeypatch.setattr(dataset_module, "_WINDOW", 4)
    monkeypatch.setattr(dataset_module, "_GAP_ATOMS", 3)


def _same_structures(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.numbers, y.numbers)
        np.testing.assert_array_equal(x.positions, y.positions)
        np.testing.assert_array_equal(x.cell[:], y.cell[:])
        np.testing.assert_array_equal(x.pbc, y.pbc)


def test_in_file_equals_full_load(tmp_path, small_windows):
    ds = _toy_pool()
    path = ds.save(tmp_path / "pool.h5")
    full, lazy = LadderDataset.load(path), LadderDataset.load(path, lazy=True)
    assert lazy.in_file and not full.in_file
    assert isinstance(lazy.forces, ArrayInFile) and isinstance(lazy.structures, StructuresInFile)
    for name in ("energy", "seconds", "stress", "failed", "missing", "n_atoms", "groups", "atom_offsets", "numbers"):
        np.testing.assert_array_equal(getattr(lazy, name), getattr(full, name), err_msg=name)
    assert (lazy.levels, lazy.elements, lazy.metadata, lazy.group_names) == (
        full.levels, full.elements, full.metadata, full.group_names)
    np.testing.assert_array_equal(np.asarray(lazy.forces), full.forces)
    _same_structures(lazy.structures, full.structures)  # iterated window by window
    _same_structures(lazy.structures[3:17], full.structures[3:17])
    _same_structures([lazy.structures[-1], lazy.structures[0]], [full.structures[-1], full.structures[0]])
    for i in (0, 7, 22):
        np.testing.assert_array_equal(lazy.config_cell(i), full.config_cell(i))
        np.testing.assert_array_equal(lazy.config_forces(2, i), full.config_forces(2, i))
    # any order, repeats, across windows and runs: exactly the in-memory views
    indices = [22, 0, 1, 2, 3, 5, 5, 19, 18, 7, 8, 9, 4, 13, 21, 0]
    for i, got, want in zip(indices, lazy.iter_config_forces(indices), full.iter_config_forces(indices), strict=True):
        assert got.shape == (3, full.n_atoms[i], 3)
        np.testing.assert_array_equal(got, want)
    o = full.atom_offsets
    for i, got in zip(indices, full.iter_config_forces(indices), strict=True):
        np.testing.assert_array_equal(got, full.forces[:, o[i] : o[i + 1]])
    # derived datasets and the dictionary a save writes are those of the full load
    for a, b in ((lazy.subset([6, 2, 17]), full.subset([6, 2, 17])), (lazy.select_levels([3, 1]),
                                                                    full.select_levels([3, 1]))):
        assert not a.in_file
        np.testing.assert_array_equal(a.forces, b.forces)
        np.testing.assert_array_equal(a.energy, b.energy)
        _same_structures(a.structures, b.structures)
    d_lazy, d_full = lazy.to_dict(), full.to_dict()
    assert d_lazy.keys() == d_full.keys()
    for key, value in d_full.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(d_lazy[key], value, err_msg=key)
        else:
            assert d_lazy[key] == value, key


def test_in_file_is_checked_like_a_full_load(tmp_path, small_windows):
    ds = _toy_pool()
    path = ds.save(tmp_path / "pool.h5")
    # a non-finite force nobody marked: found by the streamed check, naming the configuration
    unmarked = tmp_path / "unmarked.h5"
    unmarked.write_bytes(path.read_bytes())
    o = ds.atom_offsets
    with h5py.File(unmarked, "r+") as f:
        f["ladder_dataset/key_forces"][0, o[13] + 1, 2] = np.inf
    for lazy in (False, True):
        with pytest.raises(DatasetError, match="configuration 13"):
            LadderDataset.load(unmarked, lazy=lazy)
    # atom counts that disagree with the stored positions
    bad = tmp_path / "bad.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "r+") as f:
        f["ladder_dataset/key_n_atoms"][0] += 1
    with pytest.raises(DatasetError, match="n_atoms sums to"):
        LadderDataset.load(bad, lazy=True)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(DatasetError, match="cannot read"):
        LadderDataset.load(truncated, lazy=True)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(DatasetError, match="does not hold a ladder dataset"):
        LadderDataset.load(other, lazy=True)
    with pytest.raises(FileNotFoundError):
        LadderDataset.load(tmp_path / "nothing.h5", lazy=True)


def test_labelled_blocks_and_grid_from_the_file_are_identical(small_dataset, tmp_path, small_windows):
    """The regression blocks (labels, stress rows in LAMMPS' frame) and every grid point computed from a dataset
    kept in its file equal those of the dataset in memory, bit for bit."""
    from pyiron_mlip_tradeoff.descriptors import compute_descriptors
    from pyiron_mlip_tradeoff.fitting import labelled_blocks, plan_grid, run_grid

    assert small_dataset.stress is not None and np.isfinite(small_dataset.stress).all()
    lazy = LadderDataset.load(small_dataset.save(tmp_path / "small.h5"), lazy=True)
    descriptors = compute_descriptors(small_dataset.structures, 4, virial=True)
    order = [11, 0, 5, 6, 2, 9, 9, 1]
    for a, b in zip(labelled_blocks(lazy, descriptors, order, stress=True),
                    labelled_blocks(small_dataset, descriptors, order, stress=True), strict=True):
        for name in ("energy_rows", "energy_targets", "force_rows", "force_targets", "stress_rows", "stress_targets"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    spec = plan_grid(small_dataset, [3, 6], levels=[1, 3], weight_ratios=[5, 50], twojmax=[4],
                     sampling=["block", "random"], repetitions=2, seed=3, stress_weight=0.01)
    points = {}
    for name, data in (("file", lazy), ("memory", small_dataset)):
        points[name] = list(run_grid(data, spec, descriptors={4: descriptors}))
    assert len(points["file"]) == spec.n_points
    for a, b in zip(points["file"], points["memory"], strict=True):
        assert a.key == b.key
        np.testing.assert_array_equal(a.result.coefficients, b.result.coefficients)
        pd.testing.assert_series_equal(pd.Series(a.row()), pd.Series(b.row()), rtol=0, atol=0)


def test_grid_job_computes_with_its_dataset_file_in_the_file(project, small_dataset, tmp_path):
    """A grid given a dataset file opens it with the per-atom arrays left in the file; its table equals that of the
    same grid given the dataset in memory, exactly."""
    path = str(small_dataset.save(tmp_path / "small.h5"))
    tables = {}
    for name, source in (("from_file", path), ("in_memory", small_dataset)):
        grid = project.create.job.TradeoffGrid(name)
        grid.input.dataset = source
        grid.input.levels = [1, 3]
        grid.input.subset_sizes = [3, 6]
        grid.input.twojmax = [4]
        grid.input.sampling = ["block"]
        grid.input.point_storage = "table"
        assert grid._plan()[0].in_file == (name == "from_file")
        grid.run()
        tables[name] = grid.get_table().drop(columns="job_name")
    pd.testing.assert_frame_equal(tables["from_file"], tables["in_memory"], rtol=0, atol=0)
