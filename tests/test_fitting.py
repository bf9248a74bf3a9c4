"""qSNAP fits of a real LadderDataset from statistics: equal to a dense lstsq reference; the grid engine; bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dense_reference import dense_fit_and_errors

from pyiron_mlip_tradeoff import descriptors as descriptors_module
from pyiron_mlip_tradeoff.descriptors import compute_descriptors
from pyiron_mlip_tradeoff.fitting import (
    ERROR_COLUMNS,
    dataset_split,
    default_split,
    fit_qsnap,
    labelled_blocks,
    plan_grid,
    resolve_split,
    run_grid,
    split_configurations,
)
from pyiron_mlip_tradeoff.regression import concatenate_blocks

RTOL = 1e-6


@pytest.fixture(scope="module")
def desc4(small_dataset):
    return compute_descriptors(small_dataset.structures, 4)


@pytest.fixture
def no_lammps(monkeypatch):
    """Fail if a LAMMPS instance is started: bad input must be rejected before any descriptor work."""

    def fail(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(descriptors_module, "_lammps_instance", fail)


def _dense(dataset, desc, train, test, level, we, wf):
    tr = concatenate_blocks(labelled_blocks(dataset, desc, train))
    te = concatenate_blocks(labelled_blocks(dataset, desc, test))
    beta, e_train, e_test = dense_fit_and_errors(tr, te, dataset.level_index(level), we, wf, levels=dataset.levels)
    return beta, e_train, e_test, te


@pytest.mark.parametrize("level, weight", [(1, 5.0), (3, 150.0)])
def test_fit_equals_dense_lstsq(small_dataset, desc4, level, weight):
    train, test = default_split(small_dataset.n_configs, seed=3)
    result = fit_qsnap(small_dataset, train, level, weight, 1.0, twojmax=4, test_indices=test)
    beta, e_train, e_test, test_block = _dense(small_dataset, desc4, train, test, level, weight, 1.0)

    def predict(b):
        return np.concatenate([test_block.energy_rows @ b, test_block.force_rows @ b])

    ref = predict(beta)
    assert np.linalg.norm(predict(result.coefficients) - ref) <= RTOL * np.linalg.norm(ref)
    assert list(result.errors.columns) == list(ERROR_COLUMNS)
    assert len(result.errors) == 2 * small_dataset.n_levels
    for name, dense in (("train", e_train), ("test", e_test)):
        rows = result.errors[result.errors["set"] == name].set_index("reference_level")
        for i, lv in enumerate(small_dataset.levels):
            for column in ("energy_rmse", "energy_rmse_shifted", "force_rmse"):
                ours, theirs = rows.loc[lv, column], getattr(dense, column)[i]
                # on the training level the training errors are tiny (rank-deficient fit): compare on the test scale
                assert abs(ours - theirs) <= RTOL * max(abs(theirs), 1e-3 * e_test.force_rmse.min()), (name, lv, column)
    assert result.dft_seconds == pytest.approx(small_dataset.core_seconds[small_dataset.level_index(level), train].sum())
    assert result.n_train == train.size and result.reference_level == 3
    assert result.summary()["test_force_rmse"] == pytest.approx(e_test.force_rmse[-1], rel=RTOL)


def test_default_split_is_seeded_and_disjoint():
    a_train, a_test = default_split(11, seed=4)
    b_train, b_test = default_split(11, seed=4)
    np.testing.assert_array_equal(a_train, b_train)
    np.testing.assert_array_equal(a_test, b_test)
    assert a_train.size == 6 and a_test.size == 5
    assert sorted(np.concatenate([a_train, a_test]).tolist()) == list(range(11))
    assert not np.array_equal(default_split(11, seed=5)[0], a_train)


def test_grid_points_equal_single_fits(small_dataset, desc4):
    spec = plan_grid(small_dataset, [2, 5], levels=[1, 3], weight_ratios=[5, 50], twojmax=[4],
                     sampling=["energy", "block", "random"], repetitions=2, seed=1)
    assert spec.n_points == 2 * 2 * 2 * 3 * 2
    points = list(run_grid(small_dataset, spec, descriptors={4: desc4}))
    assert [p.key for p in points] == list(spec.keys())
    table = pd.DataFrame([p.row() for p in points])
    assert (table["n_train"] == table["subset_size"]).all()
    # nested: the size-2 subset of a draw is inside its size-5 subset; no test configuration is used for training
    for p in points:
        assert not np.intersect1d(p.result.train_indices, spec.test_indices).size
        assert not np.intersect1d(p.result.train_indices, spec.validation_indices).size
    assert not np.intersect1d(spec.validation_indices, spec.test_indices).size
    assert np.isfinite(table[["validation_energy_rmse", "validation_force_rmse", "test_force_rmse"]]).all().all()
    for sampling in ("energy", "block", "random"):
        small = next(p for p in points if p.sampling == sampling and p.subset_size == 2 and p.repetition == 1)
        large = next(p for p in points if p.sampling == sampling and p.subset_size == 5 and p.repetition == 1)
        assert set(small.result.train_indices) <= set(large.result.train_indices)
    # every point is the fit of its training set: the grid folds a draw's nested subsets in one pass (segments
    # between subset sizes), the standalone fit (what QSnapFit and grid.get_fit refit) the set in index order in one
    # go. The rank-deficient fits of these tiny subsets (fewer rows than p = 120) are determined only up to rounding
    # in directions of tiny singular values, so the coefficients may differ at the 1e-6 level; both give the
    # predictions of dense SVD least squares on every row to the same 1e-6 as fit_qsnap itself (RTOL), and the
    # errors agree to 1e-8 relative.
    test_block = concatenate_blocks(labelled_blocks(small_dataset, desc4, spec.test_indices))
    train_rows = {}
    for p in points[::7]:
        single = fit_qsnap(small_dataset, p.result.train_indices, p.key[0], p.key[4], p.key[5], twojmax=4,
                           test_indices=spec.test_indices, descriptors=desc4,
                           validation_indices=spec.validation_indices)
        beta = _dense(small_dataset, desc4, p.result.train_indices, spec.test_indices, p.key[0], p.key[4],
                      p.key[5])[0]
        key = tuple(p.result.train_indices)
        if key not in train_rows:
            train_rows[key] = concatenate_blocks(labelled_blocks(small_dataset, desc4, p.result.train_indices))
        for block in (test_block, train_rows[key]):
            def predict(b, block=block):
                return np.concatenate([block.energy_rows @ b, block.force_rows @ b])

            ref = predict(beta)
            for ours in (p.result.coefficients, single.coefficients):
                assert np.linalg.norm(predict(ours) - ref) <= RTOL * np.linalg.norm(ref)
        np.testing.assert_allclose(p.result.errors[["energy_rmse", "force_rmse"]].to_numpy(),
                                   single.errors[["energy_rmse", "force_rmse"]].to_numpy(), rtol=1e-8, atol=1e-6)
    # skipping finished points: nothing is recomputed for them
    done = {p.key for p in points[:10]}
    rest = list(run_grid(small_dataset, spec, descriptors={4: desc4}, skip=done))
    assert [p.key for p in rest] == [p.key for p in points[10:]]


@pytest.mark.parametrize(
    "change, match",
    [
        ({"energy_weight": 0.0}, "energy_weight"),
        ({"energy_weight": float("nan")}, "energy_weight"),
        ({"force_weight": -1.0}, "force_weight"),
        ({"training_level": 6}, "not in the dataset"),
        ({"train_indices": []}, "empty"),
        ({"train_indices": [0, 99]}, "outside"),
        ({"test_indices": [-1]}, "outside"),
        ({"twojmax": 5}, "even"),
        ({"twojmax": 12}, "explodes"),
    ],
)
def test_fit_bad_input(small_dataset, no_lammps, change, match):
    kwargs = {"train_indices": [0, 1, 2], "training_level": 1, "energy_weight": 10.0, "force_weight": 1.0,
              "twojmax": 4, "test_indices": [3, 4]}
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        fit_qsnap(small_dataset, **kwargs)


def test_overlap_warns(small_dataset, desc4):
    with pytest.warns(UserWarning, match="both the training and the test set"):
        fit_qsnap(small_dataset, [0, 1, 2, 3], 1, 10.0, 1.0, twojmax=4, test_indices=[3, 4], descriptors=desc4)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"subset_sizes": []}, "zero points"),
        ({"weight_ratios": []}, "zero points"),
        ({"sampling": []}, "zero points"),
        ({"twojmax": []}, "zero points"),
        ({"levels": []}, "zero points"),
        ({"subset_sizes": [2, 99]}, "larger than the training pool"),
        ({"sampling": ["cur"]}, "unknown sampling"),
        ({"levels": [1, 4]}, "not in the dataset"),
        ({"weight_ratios": [5, -1]}, "weight ratio"),
        ({"twojmax": [4, 7]}, "even"),
        ({"repetitions": 0}, "repetitions"),
        ({"split_fractions": [0.5, 0.3, 0.3]}, "sum to"),
        ({"split_fractions": [0.5, 0.5, 0.0]}, "leave a set empty"),
        ({"split_fractions": [0.5, 0.5]}, "three numbers"),
        ({"validation_indices": [0, 1], "train_pool": [1, 2, 3, 4, 5, 6]}, "share"),
        ({"validation_indices": [0, 1], "test_indices": [1, 2]}, "share"),
        ({"reference_level": 4}, "not a level of the dataset"),
        ({"leverage_ridge": 0.0}, "λ"),
        ({"leverage_ridge": -1e-6}, "λ"),
    ],
)
def test_grid_bad_input(small_dataset, no_lammps, change, match):
    kwargs = {"subset_sizes": [2, 4], "levels": [1, 3], "weight_ratios": [5, 50], "twojmax": [4],
              "sampling": ["random"], "repetitions": 1}
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        plan_grid(small_dataset, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# the training / validation / test split


def test_three_way_split_is_seeded_disjoint_and_keeps_the_old_training_half():
    pool, validation, test = split_configurations(410, seed=0)
    assert (pool.size, validation.size, test.size) == (205, 103, 102)
    assert sorted(np.concatenate([pool, validation, test]).tolist()) == list(range(410))
    old_train, old_test = default_split(410, seed=0)
    np.testing.assert_array_equal(pool, old_train)  # same pool, so the same draws as before the three-way split
    np.testing.assert_array_equal(np.sort(np.concatenate([validation, test])), old_test)
    again = split_configurations(410, seed=0)
    for a, b in zip((pool, validation, test), again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(split_configurations(410, seed=1)[1], validation)
    sizes = [part.size for part in split_configurations(20, (0.6, 0.2, 0.2), seed=3)]
    assert sizes == [12, 4, 4]


@pytest.mark.parametrize(
    "fractions, match",
    [((0.5, 0.25, 0.2), "sum to"), ((0.5, 0.5, 0.0), "leave a set empty"), ((1.0, 0.0, 0.0), "leave a set empty"),
     ((0.5, 0.5), "three numbers"), (("a", 0.5, 0.5), "three numbers"), ((0.98, 0.01, 0.01), "leave a set empty")],
)
def test_bad_split_fractions(fractions, match):
    with pytest.raises(ValueError, match=match):
        split_configurations(20, fractions)


def test_resolve_split_with_given_sets(small_dataset):
    pool, validation, test = dataset_split(small_dataset)
    assert (pool.size, validation.size, test.size) == (6, 3, 3)
    p2, v2, t2 = resolve_split(small_dataset, test_indices=[0, 1, 2])
    np.testing.assert_array_equal(t2, [0, 1, 2])
    assert not np.intersect1d(v2, t2).size and not np.intersect1d(p2, v2).size and not np.intersect1d(p2, t2).size
    assert p2.size + v2.size == small_dataset.n_configs - 3 and v2.size >= 1
    with pytest.raises(ValueError, match="validation_indices and train_pool share"):
        resolve_split(small_dataset, validation_indices=[3, 4], train_pool=[4, 5, 6])
    with pytest.raises(ValueError, match="empty"):
        resolve_split(small_dataset, validation_indices=list(range(6)), test_indices=list(range(6, 12)))


def test_fit_refuses_a_validation_set_overlapping_training(small_dataset, no_lammps):
    with pytest.raises(ValueError, match="validation_indices shares 1 configuration"):
        fit_qsnap(small_dataset, [0, 1, 2], 1, 10.0, twojmax=4, test_indices=[5, 6], validation_indices=[2, 3])
    with pytest.raises(ValueError, match="reference_level 7 is not a level"):
        fit_qsnap(small_dataset, [0, 1, 2], 1, 10.0, twojmax=4, test_indices=[5, 6], reference_level=7)


# ---------------------------------------------------------------------------------------------------------------
# numbers that do not depend on the order configurations are folded in


@pytest.fixture(scope="module")
def bundled_2jmax4(tmp_path_factory):
    from pyiron_mlip_tradeoff.dataset import load_bundled
    from pyiron_mlip_tradeoff.fitting import dataset_descriptors

    dataset = load_bundled()
    return dataset, dataset_descriptors(dataset, 4, cache_dir=tmp_path_factory.mktemp("bundled_desc"))


@pytest.mark.parametrize("size", [12, 60])
def test_fit_does_not_depend_on_fold_order_on_real_data(bundled_2jmax4, size):
    """A subset of the bundled pool with more rows than columns (2Jmax 4: p = 120; 12 configurations already have
    ~200 rows), folded in three orders: the same test errors to 1e-10 relative; and the grid point, whose subset is
    folded in draw order, equals the standalone fit."""
    dataset, desc = bundled_2jmax4
    pool, validation, test = dataset_split(dataset)
    rng = np.random.default_rng(size)
    subset = rng.choice(pool, size, replace=False)
    n_rows = size + 3 * int(dataset.n_atoms[subset].sum())
    assert n_rows >= desc.n_columns
    results = [fit_qsnap(dataset, order, 3, 150.0, twojmax=4, test_indices=test, descriptors=desc)
               for order in (np.sort(subset), subset, subset[::-1])]
    reference = results[0].errors[["energy_rmse", "energy_rmse_shifted", "force_rmse"]].to_numpy()
    for other in results[1:]:
        values = other.errors[["energy_rmse", "energy_rmse_shifted", "force_rmse"]].to_numpy()
        test_rows = (other.errors["set"] == "test").to_numpy()
        np.testing.assert_allclose(values[test_rows], reference[test_rows], rtol=1e-10, atol=0)
    # the grid draws subsets in leverage/random order: the same numbers as the standalone fit of the set
    spec = plan_grid(dataset, [size], levels=[3], weight_ratios=[150.0], twojmax=[4], sampling=["random"],
                     repetitions=1, seed=size)
    (point,) = run_grid(dataset, spec, descriptors={4: desc})
    single = fit_qsnap(dataset, point.result.train_indices, 3, 150.0, twojmax=4, test_indices=spec.test_indices,
                       descriptors=desc)
    for column in ("test_energy_rmse", "test_energy_rmse_shifted", "test_force_rmse"):
        assert point.result.summary()[column] == pytest.approx(single.summary()[column], rel=1e-10, abs=0)
