"""The ``QSnapFit`` job: runs on a real dataset, stores a loadable error table and LAMMPS files, rejects bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyiron_mlip_tradeoff import descriptors as descriptors_module
from pyiron_mlip_tradeoff.fitting import dataset_split, fit_qsnap
from pyiron_mlip_tradeoff.lammps import read_snapcoeff


@pytest.fixture
def dataset_file(small_dataset, tmp_path):
    return str(small_dataset.save(tmp_path / "small.h5"))


def test_fit_job_runs_and_loads_back(project, small_dataset, dataset_file):
    job = project.create.job.QSnapFit("fit_l2")
    job.input.dataset = dataset_file
    job.input.training_level = 2
    job.input.train_indices = [0, 2, 4, 6, 8]
    job.input.energy_weight = 50.0
    job.input.twojmax = 4
    job.run()
    assert job.status.finished

    _, default_validation, default_test = dataset_split(small_dataset, 0)
    expected_test = np.setdiff1d(default_test, [0, 2, 4, 6, 8])
    expected_validation = np.setdiff1d(default_validation, [0, 2, 4, 6, 8])
    reference = fit_qsnap(small_dataset, [0, 2, 4, 6, 8], 2, 50.0, 1.0, twojmax=4, test_indices=expected_test,
                          validation_indices=expected_validation)

    loaded = project.load("fit_l2")
    assert type(loaded).__name__ == "QSnapFit" and loaded.status.finished
    errors = loaded.output.errors
    assert isinstance(errors, pd.DataFrame)
    assert list(errors["set"]) == ["train"] * 3 + ["validation"] * 3 + ["test"] * 3
    assert list(errors["reference_level"]) == [1, 2, 3] * 3
    np.testing.assert_allclose(errors[["energy_rmse_shifted", "force_rmse"]].to_numpy(),
                               reference.errors[["energy_rmse_shifted", "force_rmse"]].to_numpy(), rtol=1e-9,
                               atol=1e-6)
    np.testing.assert_allclose(loaded.output.coefficients, reference.coefficients, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(loaded.output.test_indices, expected_test)
    np.testing.assert_array_equal(loaded.output.validation_indices, expected_validation)
    assert loaded.output.reference_level == 3
    assert loaded.output.validation_force_rmse == pytest.approx(reference.error("validation", 3)["force_rmse"])
    top = reference.error("test", 3)
    assert loaded.output.test_energy_rmse == pytest.approx(top["energy_rmse"], rel=1e-9)
    assert loaded.output.test_force_rmse == pytest.approx(top["force_rmse"], rel=1e-9)
    assert loaded.output.dft_seconds == pytest.approx(small_dataset.core_seconds[1, [0, 2, 4, 6, 8]].sum())
    assert loaded.input.training_level == 2 and loaded.input.twojmax == 4

    element, coefficients = read_snapcoeff(loaded.output.snapcoeff)
    assert element == "Be"
    np.testing.assert_allclose(coefficients, reference.coefficients, rtol=1e-15, atol=0)
    potential = loaded.get_potential()
    assert list(potential.columns) == ["Name", "Filename", "Model", "Species", "Config"]
    row = potential.iloc[0]
    assert row["Model"] == "Custom" and row["Species"] == ["Be"]
    assert row["Config"] == ["pair_style snap\n", "pair_coeff * * fit_l2.snapcoeff fit_l2.snapparam Be\n"]
    assert [p.rsplit("/", 1)[-1] for p in row["Filename"]] == ["fit_l2.snapcoeff", "fit_l2.snapparam"]

    table = project.create_table("fits")
    table.db_filter_function = lambda df: df.hamilton == "QSnapFit"
    table.add["level"] = lambda j: j.content["input/data"]["training_level"]
    table.add["force"] = lambda j: j.content["output/test_force_rmse"]
    table.run()
    frame = table.get_dataframe()
    assert len(frame) == 1 and frame["level"].item() == 2
    assert frame["force"].item() == pytest.approx(top["force_rmse"], rel=1e-9)


def test_fit_job_from_selection_job(project, small_dataset, dataset_file):
    select = project.create.job.LeverageSelection("pick")
    select.input.dataset = dataset_file
    select.input.method = "random"
    select.input.sizes = [4]
    select.input.n_repetitions = 2
    select.run()
    job = project.create.job.QSnapFit("fit_sel")
    job.input.dataset = dataset_file
    job.input.training_level = 1
    job.input.selection_job = "pick"
    job.input.selection_size = 4
    job.input.selection_repetition = 1
    job.input.twojmax = 4
    job.run()
    np.testing.assert_array_equal(np.sort(job.output.train_indices), np.sort(select.get_selection(4, 1)))
    assert job.output.n_train == 4
    # the selection drew from the training pool of the same split: the fit tests on the whole test set and
    # validates on the whole validation set, none of them shrunk by the training configurations
    _, validation, test = dataset_split(small_dataset)
    np.testing.assert_array_equal(select.output.test_indices, test)
    np.testing.assert_array_equal(job.output.test_indices, test)
    np.testing.assert_array_equal(job.output.validation_indices, validation)
    assert set(select.get_selection(6, 0)) == set(select.output.pool_indices)


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"dataset": "bundled", "training_level": 9}, (ValueError, FileNotFoundError), "training_level|bundled"),
        ({"dataset": "no_such_file.h5"}, FileNotFoundError, "neither"),
        ({"training_level": 5}, ValueError, "training_level"),
        ({"energy_weight": -2.0}, ValueError, "energy_weight"),
        ({"force_weight": float("nan")}, ValueError, "force_weight"),
        ({"train_indices": []}, ValueError, "empty"),
        ({"train_indices": [0, 12]}, ValueError, "outside"),
        ({"twojmax": 3}, ValueError, "even"),
        ({"selection_job": "nothing"}, ValueError, "not both"),
        ({"validation_indices": [2, 3]}, ValueError, "validation_indices shares 1"),
        ({"reference_level": 4}, ValueError, "reference_level 4 is not a level"),
        ({"split_fractions": [0.5, 0.5, 0.5]}, ValueError, "sum to"),
    ],
)
def test_fit_job_bad_input(project, dataset_file, monkeypatch, change, error, match):
    def fail(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(descriptors_module, "_lammps_instance", fail)
    job = project.create.job.QSnapFit("bad_fit")
    job.input.dataset = dataset_file
    job.input.training_level = 1
    job.input.train_indices = [0, 1, 2]
    job.input.twojmax = 4
    for key, value in change.items():
        job.input[key] = value
    with pytest.raises(error, match=match):
        job.run()
    table = project.job_table()
    assert "bad_fit" not in (table.job.tolist() if len(table) else [])
