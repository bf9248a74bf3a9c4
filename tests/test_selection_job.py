"""The ``LeverageSelection`` pyiron job: runs in a project, loads back, repeatable, rejects bad input early."""

import numpy as np
import pytest
from ase.build import bulk

from pyiron_mlip_tradeoff import descriptors
from pyiron_mlip_tradeoff.dataset import LadderDataset
from pyiron_mlip_tradeoff.descriptors import compute_descriptors
from pyiron_mlip_tradeoff.leverage import block_leverage


def _pool(n=8, seed=0):
    rng = np.random.default_rng(seed)
    cells = []
    for i in range(n):
        atoms = bulk("Be", "hcp", a=2.29, c=3.58) * (1 + i % 2, 1 + (i // 4) % 2, 1)
        atoms.positions += rng.normal(scale=0.06, size=atoms.positions.shape)
        cells.append(atoms)
    return cells


@pytest.fixture
def base_project(session_dir, request):
    """A ``pyiron_base.Project`` in the test session's folder (temporary SQLite database, see conftest)."""
    from pyiron_base import Project

    import pyiron_mlip_tradeoff  # noqa: F401  (registers LeverageSelection)

    pr = Project(str(session_dir / f"selection_{request.node.name}".replace("[", "_").replace("]", "_")))
    yield pr
    pr.remove(enable=True, enforce=True)


def test_job_runs_and_loads_back(base_project):
    pool = _pool()
    job = base_project.create.job.LeverageSelection("select_block")
    job.input.structures = pool
    job.input.twojmax = 4
    job.input.method = "block"
    job.input.sizes = [2, 5]
    job.input.n_repetitions = 3
    job.input.seed = 7
    job.input.energy_weight = 150.0
    job.run()
    assert job.status.finished
    scores = np.asarray(job.output.scores)
    assert scores.shape == (8,)
    # the job's scores are the library's block leverage of the same descriptors
    reference = block_leverage(compute_descriptors(pool, 4), energy_weight=150.0)
    np.testing.assert_allclose(scores, reference.scores, rtol=1e-10)
    assert job.output.rank == reference.rank and np.isclose(scores.sum(), reference.rank)

    loaded = base_project.load("select_block")
    assert type(loaded).__name__ == "LeverageSelection" and loaded.status.finished
    np.testing.assert_allclose(np.asarray(loaded.output.scores), scores)
    for repetition in range(3):
        five = loaded.get_selection(5, repetition=repetition)
        np.testing.assert_array_equal(five, job.get_selection(5, repetition))
        np.testing.assert_array_equal(loaded.get_selection(2, repetition), five[:2])  # nested
        np.testing.assert_array_equal(np.asarray(loaded.output.selections["size_5"])[repetition], five)
        assert len(set(five.tolist())) == 5 and five.max() < 8
    assert [a.get_chemical_formula() for a in loaded.input.structures] == [a.get_chemical_formula() for a in pool]
    assert "select_block" in base_project.job_table().job.tolist()
    with pytest.raises(IndexError):
        loaded.get_selection(2, repetition=3)

    table = base_project.create_table("selection_table")
    table.db_filter_function = lambda df: df.hamilton == "LeverageSelection"
    table.add["method"] = lambda j: j.content["storage/input/method"]
    table.add["rank"] = lambda j: j.content["storage/output/rank"]
    table.add["first_of_5"] = lambda j: int(j.content["storage/output/selections"]["size_5"][0][0])
    table.run()
    frame = table.get_dataframe()
    assert len(frame) == 1 and frame["method"].item() == "block" and frame["rank"].item() == reference.rank
    assert frame["first_of_5"].item() == job.get_selection(5)[0]


def test_same_seed_same_selection_and_dataset_input(base_project, tmp_path):
    pool = _pool(6, seed=1)
    # a dataset file whose labels are all NaN (failed): selection must not need them
    n_atoms = sum(len(a) for a in pool)
    dataset = LadderDataset(pool, np.full(6, np.nan), np.full((n_atoms, 3), np.nan), failed=np.ones((1, 6), bool))
    path = dataset.save(tmp_path / "pool.h5")
    jobs = []
    for name, source in (("from_structures", "structures"), ("from_dataset", "dataset")):
        job = base_project.create.job.LeverageSelection(name)
        if source == "structures":
            job.input.structures = pool
        else:
            job.input.dataset = str(path)
        job.input.twojmax = 4
        job.input.method = "energy"
        job.input.sizes = [3]
        job.input.n_repetitions = 2
        job.input.seed = 42
        job.input.cache_dir = str(tmp_path / "cache")
        job.run()
        jobs.append(job)
    # from a dataset only the training pool of its split is ranked (here: no labels yet, so all 6 are split)
    from pyiron_mlip_tradeoff.fitting import split_configurations

    pool_indices, validation, test = split_configurations(6)
    np.testing.assert_array_equal(jobs[1].output.pool_indices, pool_indices)
    np.testing.assert_array_equal(jobs[1].output.validation_indices, validation)
    np.testing.assert_array_equal(jobs[1].output.test_indices, test)
    assert len(jobs[0].output.scores) == 6 and len(jobs[1].output.scores) == pool_indices.size == 3
    # 3 energy rows, 120 columns: every plain leverage would be 1, so the ridge leverage is used and recorded
    from pyiron_mlip_tradeoff.leverage import DEFAULT_LEVERAGE_RIDGE

    assert jobs[1].output.leverage_ridge == DEFAULT_LEVERAGE_RIDGE
    assert np.ptp(np.asarray(jobs[1].output.scores)) > 0
    for r in range(2):
        assert set(jobs[1].get_selection(3, r)) == set(pool_indices)  # never a validation or test configuration
    # the same pool given as structures' indices: the same scores and draws
    same = base_project.create.job.LeverageSelection("from_structures_pool")
    same.input.structures = pool
    same.input.pool = pool_indices.tolist()
    for key in ("twojmax", "method", "sizes", "n_repetitions", "seed", "cache_dir"):
        same.input[key] = jobs[1].input[key]
    same.run()
    np.testing.assert_allclose(np.asarray(same.output.scores), np.asarray(jobs[1].output.scores), rtol=1e-12)
    for r in range(2):
        np.testing.assert_array_equal(same.get_selection(3, r), jobs[1].get_selection(3, r))
    assert len(list((tmp_path / "cache").glob("*.h5"))) == 1  # computed once, shared through the cache

    # the dataset itself (in memory, as from LadderDataset.from_extxyz) instead of its file: stored with the job,
    # loaded back as the object, the same draws
    in_memory = base_project.create.job.LeverageSelection("from_dataset_object")
    in_memory.input.dataset = LadderDataset.load(path)
    for key in ("twojmax", "method", "sizes", "n_repetitions", "seed", "cache_dir"):
        in_memory.input[key] = jobs[1].input[key]
    in_memory.run()
    assert isinstance(in_memory.input.dataset, LadderDataset)  # the user's object is given back after saving
    loaded = base_project.load("from_dataset_object")
    assert isinstance(loaded.input.dataset, LadderDataset) and loaded.input.dataset.n_configs == 6
    np.testing.assert_array_equal(loaded.input.dataset.structures[2].positions, pool[2].positions)
    for r in range(2):
        np.testing.assert_array_equal(loaded.get_selection(3, r), jobs[1].get_selection(3, r))


def test_random_method_needs_no_descriptors(base_project, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(descriptors, "_lammps_instance", fail)
    job = base_project.create.job.LeverageSelection("select_random")
    job.input.structures = _pool(5)
    job.input.method = "random"
    job.input.sizes = [1, 5]
    job.input.n_repetitions = 2
    job.run()
    np.testing.assert_allclose(np.asarray(job.output.scores), 0.2)
    assert sorted(job.get_selection(5, 1).tolist()) == list(range(5))


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"sizes": [0]}, ValueError, "outside 1..4"),
        ({"sizes": [2, 5]}, ValueError, "outside 1..4"),
        ({"twojmax": 5}, ValueError, "even"),
        ({"twojmax": 12}, ValueError, "explodes"),
        ({"method": "cur"}, ValueError, "input.method"),
        ({"n_repetitions": 0}, ValueError, "n_repetitions"),
        ({"energy_weight": -1.0}, ValueError, "energy_weight"),
        ({"leverage_ridge": 0.0}, ValueError, "λ"),
        ({"pool": [0, 4]}, ValueError, "outside"),
        ({"descriptor_settings": {"rcutfac": 0.0}}, ValueError, "rcutfac"),
        ({"structures": []}, ValueError, "exactly one"),
        ({"dataset": "also.h5"}, ValueError, "exactly one"),
        ({"element": "Mg"}, ValueError, "contains"),
    ],
)
def test_bad_input_rejected_before_any_work(base_project, monkeypatch, change, error, match):
    def fail(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(descriptors, "_lammps_instance", fail)
    job = base_project.create.job.LeverageSelection("bad")
    job.input.structures = _pool(4)
    job.input.twojmax = 4
    job.input.sizes = [2]
    for key, value in change.items():
        job.input[key] = value
    with pytest.raises(error, match=match):
        job.run()
    table = base_project.job_table()
    assert "bad" not in (table.job.tolist() if len(table) else [])


def test_pool_from_a_precision_ladder_job(project, hcp_be, rattled_be):
    ladder = project.create.job.PrecisionLadder("pool_ladder")
    ladder.input.structures = [hcp_be, rattled_be, hcp_be.repeat((2, 1, 1))]
    ladder.input.levels = [1]
    ladder.run()
    job = project.create.job.LeverageSelection("from_ladder")
    job.input.dataset = "pool_ladder"
    job.input.twojmax = 4
    job.input.method = "block"
    job.input.pool = [0, 1, 2]  # three configurations cannot be split three ways: rank them all
    job.input.sizes = [2]
    job.run()
    assert job.status.finished and len(job.output.scores) == 3
    assert sorted(job.get_selection(2)) == sorted(set(job.get_selection(2)))


def test_one_default_block_energy_weight(base_project):
    from pyiron_mlip_tradeoff.leverage import DEFAULT_LEVERAGE_ENERGY_WEIGHT, leverage_scores

    select = base_project.create.job.LeverageSelection("defaults")
    grid = base_project.create.job.TradeoffGrid("defaults_grid")
    fit = base_project.create.job.QSnapFit("defaults_fit")
    assert DEFAULT_LEVERAGE_ENERGY_WEIGHT == 150.0
    assert select.input.energy_weight == grid.input.leverage_energy_weight == fit.input.energy_weight == 150.0
    assert leverage_scores.__defaults__[1] == DEFAULT_LEVERAGE_ENERGY_WEIGHT
