"""``TradeoffGrid``: a small real grid end to end, children in the database, create_table, resume, recommend; the
"table" point storage (draw files, fits on demand) and chunked descriptor caches."""

from __future__ import annotations

import itertools

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest

from pyiron_mlip_tradeoff import descriptors as descriptors_module
from pyiron_mlip_tradeoff import plots
from pyiron_mlip_tradeoff.fitting import fit_qsnap
from pyiron_mlip_tradeoff.jobs import grid as grid_module

COLUMNS = ["training_level", "subset_size", "sampling", "repetition", "energy_weight", "force_weight", "twojmax",
           "n_train", "dft_seconds", "validation_energy_rmse", "validation_energy_rmse_shifted",
           "validation_force_rmse", "test_energy_rmse", "test_energy_rmse_shifted", "test_force_rmse", "job_name"]
RECIPE = ["training_level", "subset_size", "sampling", "energy_weight", "force_weight", "twojmax"]
N_POINTS = 2 * 2 * 2 * 1 * 2 * 2  # levels × sizes × weights × 2Jmax × sampling × repetitions


@pytest.fixture
def dataset_file(small_dataset, tmp_path):
    return str(small_dataset.save(tmp_path / "small.h5"))


def _grid(project, dataset_file, name="grid"):
    grid = project.create.job.TradeoffGrid(name)
    grid.input.dataset = dataset_file
    grid.input.levels = [1, 3]
    grid.input.subset_sizes = [3, 6]
    grid.input.weight_ratios = [5, 50]
    grid.input.twojmax = [4]
    grid.input.sampling = ["energy", "random"]
    grid.input.repetitions = 2
    grid.input.seed = 3
    return grid


def test_grid_end_to_end(project, small_dataset, dataset_file, tmp_path):
    grid = _grid(project, dataset_file)
    grid.run()
    assert grid.status.finished
    table = project.load("grid").get_table()
    assert len(table) == N_POINTS and set(COLUMNS) <= set(table.columns)
    assert grid.output.n_computed == N_POINTS and table["job_name"].is_unique
    combos = set(zip(table.training_level, table.subset_size, table.energy_weight, table.sampling, table.repetition,
                     strict=True))
    assert combos == set(itertools.product([1, 3], [3, 6], [5.0, 50.0], ["energy", "random"], [0, 1]))
    assert (table["reference_level"] == 3).all() and (table["n_train"] == table["subset_size"]).all()

    # every point is a finished QSnapFit child of the grid
    jobs = project.job_table()
    children = jobs[jobs.hamilton == "QSnapFit"]
    assert len(children) == N_POINTS and set(children.job) == set(table.job_name)
    assert (children.masterid == grid.job_id).all() and (children.status == "finished").all()

    # pr.create_table pulls the grid coordinates, errors and cost of every point
    collect = project.create_table("collect")
    collect.db_filter_function = lambda df: df.hamilton == "QSnapFit"
    for name in ("training_level", "subset_size", "sampling", "repetition", "energy_weight", "force_weight",
                 "twojmax"):
        collect.add[name] = lambda j, name=name: j.content["input/data"][name]
    for name in ("n_train", "dft_seconds", "test_energy_rmse", "test_energy_rmse_shifted", "test_force_rmse"):
        collect.add[name] = lambda j, name=name: j.content[f"output/{name}"]
    collect.run()
    frame = collect.get_dataframe()
    assert len(frame) == N_POINTS
    frame["job_name"] = frame["job_id"].map(jobs.set_index("id")["job"])
    merged = frame.merge(table, left_on="job_name", right_on="job_name", suffixes=("", "_grid"))
    assert len(merged) == N_POINTS
    for name in ("training_level", "subset_size", "repetition", "twojmax", "n_train"):
        assert (merged[name] == merged[f"{name}_grid"]).all(), name
    for name in ("energy_weight", "dft_seconds", "test_energy_rmse", "test_force_rmse", "test_energy_rmse_shifted"):
        np.testing.assert_allclose(merged[name], merged[f"{name}_grid"], rtol=1e-12, err_msg=name)

    # a child holds the full fit, equal to a standalone fit of its training set
    row = table.iloc[5]
    child = project.load(row["job_name"])
    errors = child.output.errors
    assert isinstance(errors, pd.DataFrame) and len(errors) == 3 * small_dataset.n_levels
    reference = fit_qsnap(small_dataset, child.output.train_indices, int(row["training_level"]),
                          row["energy_weight"], row["force_weight"], twojmax=4,
                          test_indices=child.input.test_indices, validation_indices=child.input.validation_indices)
    # the grid folds a draw's nested subsets in one pass, the standalone fit the set in one go: the same fit up to
    # rounding (coefficients of these rank-deficient fits to ~1e-6 in directions of tiny singular values, errors to
    # 1e-8; both against dense SVD least squares in test_fitting.py)
    values = ["energy_rmse", "energy_rmse_shifted", "force_rmse"]
    np.testing.assert_allclose(errors[values].to_numpy(float), reference.errors[values].to_numpy(float), rtol=1e-8,
                               atol=1e-9)
    assert row["test_force_rmse"] == pytest.approx(reference.error("test", 3)["force_rmse"], rel=1e-8)
    assert row["dft_seconds"] == pytest.approx(
        small_dataset.core_seconds[small_dataset.level_index(int(row["training_level"])), child.output.train_indices].sum())
    assert child.get_potential().iloc[0]["Model"] == "Custom"
    assert not np.intersect1d(child.output.train_indices, child.input.test_indices).size
    assert not np.intersect1d(child.output.train_indices, child.input.validation_indices).size
    assert row["validation_force_rmse"] == pytest.approx(reference.error("validation", 3)["force_rmse"], rel=1e-8)

    # recommend: the cheapest recipe whose median validation errors over its draws meet the targets, brute force
    medians = table.groupby(RECIPE)[["dft_seconds", "validation_energy_rmse", "validation_force_rmse"]].median()
    e_target = float(medians["validation_energy_rmse"].median())
    f_target = float(medians["validation_force_rmse"].quantile(0.75))
    rec = grid.recommend(max_energy_rmse=e_target, max_force_rmse=f_target, max_twojmax=4)
    ok = medians[(medians.validation_energy_rmse <= e_target) & (medians.validation_force_rmse <= f_target)]
    assert rec.targets_met and not ok.empty
    assert rec.cost == pytest.approx(ok["dft_seconds"].min())
    draws = table.set_index(RECIPE).sort_index().loc[tuple(rec.recipe()[c] for c in RECIPE)]
    assert rec.n_draws == len(draws) == 2 and rec.fit_job in set(draws.job_name)
    assert rec.validation_errors["energy_rmse"]["median"] == pytest.approx(draws.validation_energy_rmse.median())
    assert rec.test_errors["force_rmse"]["median"] == pytest.approx(draws.test_force_rmse.median())
    assert rec.test_errors["force_rmse"]["spread"] == pytest.approx(
        np.subtract(*np.percentile(draws.test_force_rmse, [75, 25])))
    assert project.load(rec.fit_job).output.n_train == rec.subset_size
    impossible = grid.recommend(max_energy_rmse=1e-6)
    assert not impossible.targets_met and "max_energy_rmse" in impossible.unreachable_targets
    with pytest.raises(KeyError, match="max_twojmax"):
        grid.recommend(min_md_speed=1e5)

    front = grid.pareto(["test_energy_rmse", "dft_seconds"], summarize=None)
    values = table[["test_energy_rmse", "dft_seconds"]].to_numpy()
    for e, s in front[["test_energy_rmse", "dft_seconds"]].to_numpy():
        assert not np.any(np.all(values <= [e, s], axis=1) & np.any(values < [e, s], axis=1))
    recipes = grid.pareto()  # default: medians over draws, validation errors and DFT seconds
    assert {"n_repetitions", "validation_energy_rmse_spread"} <= set(recipes.columns)
    assert (recipes.n_repetitions == 2).all()

    for figure in (plots.plot_weight_tradeoff(table, path=tmp_path / "fig45.png"),
                   plots.plot_subset_size(table, path=tmp_path / "fig6.png"),
                   plots.plot_pareto(table, path=tmp_path / "fig78.png")):
        assert isinstance(figure, matplotlib.figure.Figure)
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("fig45.png", "fig6.png", "fig78.png"))


def test_grid_resumes_after_interrupt(project, dataset_file, monkeypatch):
    store = grid_module.TradeoffGrid._store_point
    calls = {"n": 0}

    def interrupt_after_seven(self, *args, **kwargs):
        if calls["n"] == 7:
            raise KeyboardInterrupt
        calls["n"] += 1
        return store(self, *args, **kwargs)

    monkeypatch.setattr(grid_module.TradeoffGrid, "_store_point", interrupt_after_seven)
    grid = _grid(project, dataset_file, "resumed")
    with pytest.raises(KeyboardInterrupt):
        grid.run()
    monkeypatch.setattr(grid_module.TradeoffGrid, "_store_point", store)
    jobs = project.job_table()
    first = jobs[jobs.hamilton == "QSnapFit"].set_index("job")["id"]
    assert len(first) == 7  # the points stored before the interrupt are registered

    grid = project.load("resumed")
    assert not grid.status.finished
    grid.run()
    assert grid.status.finished and grid.output.n_computed == N_POINTS - 7
    table = grid.get_table()
    assert len(table) == N_POINTS and table["job_name"].is_unique
    jobs = project.job_table()
    now = jobs[jobs.hamilton == "QSnapFit"].set_index("job")["id"]
    assert len(now) == N_POINTS
    assert (now[first.index] == first).all()  # the first seven were not recomputed or replaced

    grid.status.aborted = True  # as if it had been interrupted once more: nothing is left to compute
    grid.run()
    assert grid.output.n_computed == 0 and len(grid.get_table()) == N_POINTS


@pytest.mark.parametrize(
    "change, match",
    [
        ({"subset_sizes": []}, "zero points"),
        ({"subset_sizes": [3, 50]}, "larger than the training pool"),
        ({"levels": [2, 6]}, "not in the dataset"),
        ({"weight_ratios": [0.0]}, "weight ratio"),
        ({"twojmax": [5]}, "even"),
        ({"sampling": ["leverage"]}, "unknown sampling"),
        ({"test_indices": [0, 40]}, "outside"),
        ({"split_fractions": [0.6, 0.3, 0.3]}, "sum to"),
        ({"split_fractions": [0.5, 0.5, 0.0]}, "leave a set empty"),
        ({"validation_indices": [0, 1], "test_indices": [1, 2]}, "share"),
        ({"reference_level": 4}, "not a level of the dataset"),
        ({"leverage_ridge": -1.0}, "λ"),
    ],
)
def test_grid_bad_input(project, dataset_file, monkeypatch, change, match):
    _assert_refused_before_work(project, dataset_file, monkeypatch, "bad_grid", change, match)


def _assert_refused_before_work(project, dataset_file, monkeypatch, name, change, match):
    """A grid with ``change`` applied to its input raises ValueError(match) on run, before LAMMPS starts and before
    the job is saved."""
    def fail(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(descriptors_module, "_lammps_instance", fail)
    grid = _grid(project, dataset_file, name)
    for key, value in change.items():
        grid.input[key] = value
    with pytest.raises(ValueError, match=match):
        grid.run()
    table = project.job_table()
    assert name not in (table.job.tolist() if len(table) else [])


def test_measured_md_speed_drives_recommend(project, dataset_file):
    grid = _grid(project, dataset_file, name="speed_grid")
    grid.input.twojmax = [2, 4]
    grid.input.levels = [3]
    grid.input.repetitions = 1
    grid.run()
    with pytest.raises(KeyError, match="md_speed"):
        grid.recommend(max_energy_rmse=1e6, min_md_speed=1.0)
    speeds = grid.measure_md_speed(n_atoms=64, steps=20)
    assert set(speeds) == {2, 4} and all(v > 0 for v in speeds.values())
    assert speeds[2] > speeds[4]  # fewer bispectrum components run faster
    jobs = project.job_table()
    probes = jobs[jobs.hamilton == "MDSpeed"]
    assert len(probes) == 2 and (probes.masterid == grid.job_id).all()
    # the same request reuses the probes; another cell size measures anew
    assert grid.measure_md_speed(n_atoms=64, steps=20) == speeds
    assert len(project.job_table().query("hamilton == 'MDSpeed'")) == 2
    other = grid.measure_md_speed(n_atoms=128, steps=20, twojmax=[2])
    probes = project.job_table().query("hamilton == 'MDSpeed'")
    assert len(probes) == 3 and set(other) == {2}
    new = [name for name in probes.job if name.endswith("_n128_s20_c1")]
    assert new == [grid_module.md_probe_name("speed_grid", 2, 21, 128, 20, 1)]
    assert project.load(new[0]).input.n_atoms == 128
    assert grid.output.md_speed["n_atoms"] == 128
    speeds = grid.measure_md_speed(n_atoms=64, steps=20)  # back to the first measurement (reused)
    assert len(project.job_table().query("hamilton == 'MDSpeed'")) == 3

    table = project.load("speed_grid").get_table()
    assert {"md_speed", "md_cost"} <= set(table.columns)
    assert (table.loc[table.twojmax == 4, "md_speed"] == speeds[4]).all()
    # a speed target between the two measured speeds admits only 2Jmax 2
    threshold = 0.5 * (speeds[2] + speeds[4])
    choice = grid.recommend(max_energy_rmse=1e6, min_md_speed=threshold)
    assert choice.targets_met and choice.row["twojmax"] == 2
    feasible = table[(table.md_speed >= threshold) & (table.test_energy_rmse <= 1e6)]
    assert choice.row["dft_seconds"] == feasible.dft_seconds.min()
    front = grid.pareto(objectives=["test_energy_rmse", "md_cost"])
    assert len(front) >= 1 and set(front.twojmax) <= {2, 4}


# ---------------------------------------------------------------------------------------------------------------
# point_storage = "table": the grid's own table, one file per draw, QSnapFit jobs on demand


def _predictions(dataset, twojmax, indices, coefficients):
    from pyiron_mlip_tradeoff.fitting import labelled_blocks
    from pyiron_mlip_tradeoff.regression import concatenate_blocks

    block = concatenate_blocks(labelled_blocks(dataset, descriptors_module.compute_descriptors(dataset.structures,
                                                                                                twojmax), indices))
    return np.concatenate([block.energy_rows @ coefficients, block.force_rows @ coefficients])


def test_table_storage_equals_jobs_and_makes_fits_on_demand(project, small_dataset, dataset_file):
    """The same grid stored both ways: the same table (to 1e-10); with "table" no QSnapFit job exists until
    ``get_fit`` makes one, whose refit predicts like the grid's stored coefficients and like dense SVD least squares
    (1e-6 relative on every test row) and whose errors equal the grid row's to 1e-8."""
    from dense_reference import dense_fit

    from pyiron_mlip_tradeoff.fitting import labelled_blocks
    from pyiron_mlip_tradeoff.regression import concatenate_blocks

    jobs = _grid(project, dataset_file, "as_jobs")
    jobs.run()
    grid = _grid(project, dataset_file, "as_table")
    grid.input.point_storage = "table"
    grid.run()
    assert grid.status.finished and grid.output.n_computed == N_POINTS
    a, b = jobs.get_table(), grid.get_table()
    assert len(b) == N_POINTS and list(b["job_name"]) == [n.replace("as_jobs", "as_table", 1) for n in a["job_name"]]
    for column in COLUMNS[:-1]:
        if b[column].dtype == object:
            assert list(a[column]) == list(b[column]), column
        else:
            np.testing.assert_allclose(b[column].to_numpy(float), a[column].to_numpy(float), rtol=1e-10,
                                       err_msg=column)
    table = project.job_table()
    assert set(table[table.hamilton == "QSnapFit"].job) == set(a["job_name"])  # none of the table grid
    files = sorted(p.name for p in (grid.project.load("as_table")._points_dir()).iterdir())
    assert files == ["j4_energy_r0.h5", "j4_energy_r1.h5", "j4_random_r0.h5", "j4_random_r1.h5"]

    row = b.iloc[13]
    fit = grid.get_fit(13)
    assert fit.job_name == row["job_name"] and fit.status.finished and fit.master_id == grid.job_id
    assert fit.get_potential() is not None
    assert list(fit.output.train_indices) == list(jobs.get_fit(13).output.train_indices)
    assert grid.get_fit(row["job_name"]).job_id == fit.job_id  # made once, then loaded
    stored = grid.get_coefficients(13)
    np.testing.assert_allclose(stored, jobs.get_fit(13).output.coefficients, rtol=0, atol=0)
    test = project.load("as_table")._plan()[1].test_indices
    train = np.asarray(fit.output.train_indices)
    desc = descriptors_module.compute_descriptors(small_dataset.structures, 4)
    block = concatenate_blocks(labelled_blocks(small_dataset, desc, train))
    beta = dense_fit(block, small_dataset.level_index(int(row["training_level"])), float(row["energy_weight"]),
                     float(row["force_weight"]))
    ref = _predictions(small_dataset, 4, test, beta)
    for coefficients in (stored, np.asarray(fit.output.coefficients)):
        assert np.linalg.norm(_predictions(small_dataset, 4, test, coefficients) - ref) <= 1e-6 * np.linalg.norm(ref)
    for column in ("test_energy_rmse", "test_force_rmse", "validation_force_rmse"):
        assert float(fit.output[column]) == pytest.approx(float(row[column]), rel=1e-8), column
    best = grid.recommend(max_energy_rmse=1e9, max_force_rmse=1e9)
    assert grid.get_fit(best.fit_job).job_name == best.fit_job


def test_table_storage_resumes_whole_draws(project, dataset_file, monkeypatch):
    """A run interrupted while it computes its third draw keeps the two draws written; the rerun computes only the
    other two (the files of the first two are not rewritten)."""
    from pyiron_mlip_tradeoff.jobs import grid_points

    write = grid_module.write_draw
    calls = {"n": 0}

    def interrupt_on_third(*args, **kwargs):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        return write(*args, **kwargs)

    monkeypatch.setattr(grid_module, "write_draw", interrupt_on_third)
    grid = _grid(project, dataset_file, "table_resumed")
    grid.input.point_storage = "table"
    with pytest.raises(KeyboardInterrupt):
        grid.run()
    monkeypatch.setattr(grid_module, "write_draw", write)
    grid = project.load("table_resumed")
    kept = {d: p.stat().st_mtime_ns for d, p in grid_points.stored_draws(grid._points_dir()).items()}
    assert len(kept) == 2
    grid.run()
    assert grid.status.finished and grid.output.n_computed == N_POINTS // 2
    after = grid_points.stored_draws(grid._points_dir())
    assert len(after) == 4 and {d: after[d].stat().st_mtime_ns for d in kept} == kept
    assert len(grid.get_table()) == N_POINTS and grid.get_table()["job_name"].is_unique


@pytest.mark.parametrize(
    "change, match",
    [
        ({"point_storage": "files"}, "point_storage"),
        ({"descriptor_caches": {6: "."}}, "not in the grid"),
        ({"descriptor_caches": [4]}, "descriptor_caches must be a dict"),
    ],
)
def test_table_storage_bad_input(project, dataset_file, monkeypatch, change, match):
    _assert_refused_before_work(project, dataset_file, monkeypatch, "bad_table", change, match)


def test_grid_reads_a_chunked_descriptor_cache(project, small_dataset, dataset_file, tmp_path):
    """``descriptor_caches`` points the grid at a chunked cache (as ``DescriptorPool`` writes): the same table as
    with the grid's own descriptors; a cache of other structures is refused before anything is computed."""
    from pyiron_mlip_tradeoff.descriptor_cache import compute_chunked_descriptors

    cache = compute_chunked_descriptors(tmp_path / "caches", small_dataset.structures, 4, chunk_size=5)
    own = _grid(project, dataset_file, "own_desc")
    own.input.point_storage = "table"
    own.run()
    grid = _grid(project, dataset_file, "cached_desc")
    grid.input.point_storage = "table"
    grid.input.descriptor_caches = {4: str(cache.path)}
    grid.run()
    pd.testing.assert_frame_equal(grid.get_table().drop(columns="job_name"), own.get_table().drop(columns="job_name"),
                                  rtol=1e-12)
    moved = [atoms.copy() for atoms in small_dataset.structures]
    moved[7].positions[0] += 0.01
    other = compute_chunked_descriptors(tmp_path / "caches", moved, 4, chunk_size=5)
    bad = _grid(project, dataset_file, "wrong_cache")
    bad.input.descriptor_caches = {4: str(other.path)}
    with pytest.raises(ValueError, match="differ from those"):
        bad.run()
