"""Statistics-based weighted least squares against a dense lstsq reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from dense_reference import (
    dense_errors,
    dense_fit,
    dense_fit_and_errors,
    dense_group_errors,
    dense_group_fit,
    dense_weighted_system,
)

from pyiron_mlip_tradeoff.regression import (
    ALL_GROUPS,
    EV_PER_A3_IN_GPA,
    ConfigurationBlock,
    GroupedAccumulator,
    GroupedStatistics,
    LinearStatistics,
    StatisticsAccumulator,
    concatenate_blocks,
    configuration_blocks,
    default_rcond,
    errors,
    errors_many,
    fit,
    fit_all_levels,
    fit_weights,
    grouped_statistics,
    grouped_statistics_for_nested_subsets,
    merge_statistics,
    statistics_for_nested_subsets,
    statistics_from_blocks,
    stress_rows_from_virial,
)

P = 20
LEVELS = (1, 3, 6)
RTOL = 1e-8


def make_blocks(rng: np.random.Generator, n_configs: int, p: int = P, n_levels: int = 3, offsets=None,
                stress_every: int = 0):
    """Synthetic qSNAP-like blocks: constant column first (1 in energy rows, 0 in force rows), energy rows are
    per-atom averages of per-atom descriptors, 2-8 atoms per configuration, one target column per level. With
    ``stress_every`` = k > 0, every k-th configuration also gets 6 stress rows (constant column 0; targets of order
    0.01 eV/Å³, i.e. GPa); the others have no stress."""
    beta_true = rng.normal(size=(p, 1)) + 0.05 * rng.normal(size=(p, n_levels))
    offsets = np.zeros(n_levels) if offsets is None else np.asarray(offsets, float)
    blocks = []
    for _ in range(n_configs):
        n = int(rng.integers(2, 9))
        per_atom = rng.normal(size=(n, p - 1)) + rng.normal(size=p - 1)
        e_row = np.concatenate([[1.0], per_atom.sum(axis=0) / n])[None, :]
        f_rows = np.hstack([np.zeros((3 * n, 1)), rng.normal(size=(3 * n, p - 1))])
        e_t = e_row @ beta_true + offsets + 0.01 * rng.normal(size=(1, n_levels))
        f_t = f_rows @ beta_true + 0.05 * rng.normal(size=(3 * n, n_levels))
        if stress_every and len(blocks) % stress_every == 0:
            s_rows = np.hstack([np.zeros((6, 1)), 0.01 * rng.normal(size=(6, p - 1))])
            s_t = s_rows @ beta_true + 0.002 * rng.normal(size=(6, n_levels))
            blocks.append(ConfigurationBlock(e_row, e_t, f_rows, f_t, s_rows, s_t))
        else:
            blocks.append(ConfigurationBlock(e_row, e_t, f_rows, f_t))
    return blocks


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(b))


def assert_errors_close(stat_err, dense_err, rtol=RTOL):
    for name in ("energy_rmse", "energy_rmse_shifted", "force_rmse", "stress_rmse"):
        np.testing.assert_allclose(getattr(stat_err, name), getattr(dense_err, name), rtol=rtol, atol=0, err_msg=name)
    # the shift can be ~0 (a constant column absorbs it on the training level): compare on the scale of the RMSE
    np.testing.assert_allclose(stat_err.energy_shift, dense_err.energy_shift, rtol=rtol,
                               atol=rtol * np.max(dense_err.energy_rmse))
    assert stat_err.n_configs == dense_err.n_configs
    assert stat_err.n_force_rows == dense_err.n_force_rows
    assert stat_err.n_stress_rows == dense_err.n_stress_rows


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    blocks = make_blocks(rng, 120, offsets=[0.3, -0.1, 0.0])
    return blocks


@pytest.mark.parametrize("weights", [(1.0, 1.0), (5.0, 1.0), (300.0, 1.0), (1.0, 0.02), (12.25, 1.0)])
def test_fit_and_errors_match_dense(data, weights):
    rng = np.random.default_rng(int(weights[0] * 100))
    we, wf = weights
    order = rng.permutation(len(data))
    test_idx = order[:40]
    test_blocks = [data[i] for i in test_idx]
    test_stats = statistics_from_blocks(test_blocks, levels=LEVELS)
    test_dense = concatenate_blocks(test_blocks)
    for n_train in (8, 30, 80):
        train_blocks = [data[i] for i in order[40 : 40 + n_train]]
        train_stats = statistics_from_blocks(train_blocks, levels=LEVELS)
        train_dense = concatenate_blocks(train_blocks)
        for j, level in enumerate(LEVELS):
            f = fit(train_stats, level, we, wf)
            beta_ref, tr_ref, te_ref = dense_fit_and_errors(train_dense, test_dense, j, we, wf, levels=LEVELS)
            assert f.rank == P
            assert rel(f.coefficients, beta_ref) < RTOL
            # predictions on the test rows
            pred = np.concatenate([test_dense.energy_rows @ f.coefficients, test_dense.force_rows @ f.coefficients])
            pred_ref = np.concatenate([test_dense.energy_rows @ beta_ref, test_dense.force_rows @ beta_ref])
            assert rel(pred, pred_ref) < RTOL
            assert_errors_close(errors(train_stats, f), tr_ref)
            assert_errors_close(errors(test_stats, f.coefficients), te_ref)
            assert errors(test_stats, f).levels == LEVELS


def test_singular_values_equal_full_weighted_matrix(data):
    stats = statistics_from_blocks(data[:50])
    dense = concatenate_blocks(data[:50])
    we, wf = 50.0, 1.0
    s_full = np.linalg.svd(np.vstack([we * dense.energy_rows, wf * dense.force_rows]), compute_uv=False)
    np.testing.assert_allclose(fit(stats, 0, we, wf).singular_values, s_full, rtol=1e-10)


def test_weighting_changes_the_fit(data):
    """Guards against weights being ignored: a different ratio must give a different β and errors."""
    stats = statistics_from_blocks(data[:60])
    a, b = fit(stats, 0, 1.0, 1.0), fit(stats, 0, 300.0, 1.0)
    assert rel(a.coefficients, b.coefficients) > 1e-4
    # same ratio ⇒ same solution (Eq. 1 scaled by a constant)
    c = fit(stats, 0, 600.0, 2.0)
    assert rel(c.coefficients, b.coefficients) < 1e-10
    # more energy weight ⇒ lower training energy error
    assert errors(stats, b).energy_rmse[0] < errors(stats, a).energy_rmse[0]


def test_fit_all_levels_matches_single_fits(data):
    stats = statistics_from_blocks(data[:50], levels=LEVELS)
    fits = fit_all_levels(stats, 10.0, 1.0)
    assert list(fits) == list(LEVELS)
    for lv in LEVELS:
        assert rel(fits[lv].coefficients, fit(stats, lv, 10.0, 1.0).coefficients) < 1e-12
    assert rel(fits[1].coefficients, fits[6].coefficients) > 1e-4


def test_statistics_components_match_dense(data):
    stats = statistics_from_blocks(data[:30], levels=LEVELS)
    d = concatenate_blocks(data[:30])
    for part, x, y in ((stats.energy, d.energy_rows, d.energy_targets), (stats.force, d.force_rows, d.force_targets)):
        r, z = part.r_and_z()
        assert np.allclose(np.tril(r, -1), 0)
        np.testing.assert_allclose(r.T @ r, x.T @ x, rtol=1e-10, atol=1e-10 * np.abs(x.T @ x).max())
        np.testing.assert_allclose(r.T @ z, x.T @ y, rtol=1e-10, atol=1e-10 * np.abs(x.T @ y).max())
        np.testing.assert_allclose(part.target_sq_norms, np.sum(y**2, axis=0), rtol=1e-12)
        assert part.n_rows == x.shape[0]
        # ‖Xβ − y‖² = ‖Rβ − z‖² + (‖y‖² − ‖z‖²) for every β, so the least-squares residuals agree. (‖y‖² − ‖z‖²
        # alone is the residual only when X has full column rank; the force rows here have a zero column.)
        sol = np.linalg.lstsq(x, y, rcond=None)[0]
        resid = np.sum((x @ sol - y) ** 2, axis=0)
        sol_r = np.linalg.lstsq(r, z, rcond=None)[0]
        resid_r = np.sum((r @ sol_r - z) ** 2, axis=0) + part.target_sq_norms - np.sum(z**2, axis=0)
        np.testing.assert_allclose(resid_r, resid, rtol=1e-7)
    np.testing.assert_allclose(stats.energy.column_sums, d.energy_rows.sum(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.energy.target_sums, d.energy_targets.sum(axis=0), rtol=1e-12)
    with pytest.raises(AttributeError):
        _ = stats.force.column_sums
    assert stats.n_configs == 30 and stats.n_force_rows == d.force_rows.shape[0]


def _assert_same_statistics(a: LinearStatistics, b: LinearStatistics):
    assert a.n_configs == b.n_configs
    assert a.energy.n_rows == b.energy.n_rows and a.force.n_rows == b.force.n_rows
    for ga, gb in zip(a.gram(), b.gram(), strict=True):
        np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-10 * np.abs(gb).max())
    for we, wf in ((1.0, 1.0), (100.0, 1.0)):
        fa, fb = fit(a, a.levels[0], we, wf), fit(b, b.levels[0], we, wf)
        assert rel(fa.coefficients, fb.coefficients) < 1e-9
        ea, eb = errors(a, fa), errors(b, fa)
        assert_errors_close(ea, eb, rtol=1e-9)


def test_merge_in_any_order(data):
    chunks = [data[0:7], data[7:20], data[20:21], data[21:55], data[55:70]]
    parts = [statistics_from_blocks(c) for c in chunks]
    reference = statistics_from_blocks(data[:70])
    rng = np.random.default_rng(1)
    for _ in range(4):
        perm = rng.permutation(len(parts))
        _assert_same_statistics(merge_statistics([parts[i] for i in perm]), reference)
    # pairwise tree merge
    tree = parts[0].merge(parts[1]).merge(parts[2].merge(parts[3], parts[4]))
    _assert_same_statistics(tree, reference)
    # merging with the empty set changes nothing
    _assert_same_statistics(reference.merge(LinearStatistics.empty(P, 3)), reference)
    # and merging must not be a no-op: adding a chunk changes the result
    with pytest.raises(AssertionError):
        _assert_same_statistics(merge_statistics(parts[:4]), reference)


@pytest.mark.parametrize("batch_rows", [1, 5, 64, None])
def test_streaming_batch_size_irrelevant(data, batch_rows):
    acc = StatisticsAccumulator(batch_rows=batch_rows)
    for b in data[:40]:
        acc.add(b)
    _assert_same_statistics(acc.statistics(), statistics_from_blocks([concatenate_blocks(data[:40])]))


def test_nested_subsets_equal_fresh(data):
    sizes = [3, 10, 11, 40, 100]
    got = list(statistics_for_nested_subsets(iter(data), sizes, levels=LEVELS))
    assert [s for s, _ in got] == sizes
    for size, stats in got:
        assert stats.levels == LEVELS
        _assert_same_statistics(stats, statistics_from_blocks(data[:size], levels=LEVELS))
    # earlier snapshots are not modified by later updates
    assert got[0][1].n_configs == 3


def test_nested_subsets_lazy_and_errors(data):
    consumed = []

    def gen():
        for b in data:
            consumed.append(1)
            yield b

    list(statistics_for_nested_subsets(gen(), [5, 9]))
    assert len(consumed) == 9
    with pytest.raises(ValueError, match="strictly increasing"):
        list(statistics_for_nested_subsets(data, [5, 5]))
    with pytest.raises(ValueError, match="positive"):
        list(statistics_for_nested_subsets(data, [0, 5]))
    with pytest.raises(ValueError, match="only 120"):
        list(statistics_for_nested_subsets(data, [10, 500]))
    with pytest.raises(ValueError, match="no subset sizes"):
        list(statistics_for_nested_subsets(data, []))
    two = [concatenate_blocks(data[:2]), concatenate_blocks(data[2:4])]
    with pytest.raises(ValueError, match="inside a multi-configuration block"):
        list(statistics_for_nested_subsets(two, [1]))


def test_rank_deficient_minimum_norm():
    rng = np.random.default_rng(7)
    blocks = make_blocks(rng, 2, p=P)
    blocks = [ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows[:3], b.force_targets[:3]) for b in blocks]
    # 2 energy rows + 6 force rows = 8 rows < 20 columns
    stats = statistics_from_blocks(blocks)
    dense = concatenate_blocks(blocks)
    others = make_blocks(rng, 10, p=P)
    test_stats, test_dense = statistics_from_blocks(others), concatenate_blocks(others)
    for we, wf in ((1.0, 1.0), (30.0, 1.0)):
        f = fit(stats, 1, we, wf)
        ref = dense_fit(dense, 1, we, wf)
        assert np.all(np.isfinite(f.coefficients))
        assert f.rank == 8
        assert rel(f.coefficients, ref) < RTOL
        # minimum-norm: no component in the null space of the design
        x = np.vstack([dense.energy_rows, dense.force_rows])
        null = np.linalg.svd(x)[2][8:]
        assert np.linalg.norm(null @ f.coefficients) < 1e-10 * np.linalg.norm(f.coefficients)
        # interpolates the training data
        assert np.all(errors(stats, f).energy_rmse[1] < 1e-9)
        # errors on other configurations agree with a dense prediction
        assert_errors_close(errors(test_stats, f), dense_errors(test_dense, ref), rtol=1e-7)


def test_rank_deficient_duplicate_column(data):
    """Two identical columns: numerically singular; SVD cut-off gives lstsq's minimum-norm answer."""
    def dup(b):
        return ConfigurationBlock(
            np.hstack([b.energy_rows, b.energy_rows[:, 3:4]]),
            b.energy_targets,
            np.hstack([b.force_rows, b.force_rows[:, 3:4]]),
            b.force_targets,
        )

    blocks = [dup(b) for b in data[:40]]
    stats = statistics_from_blocks(blocks)
    dense = concatenate_blocks(blocks)
    for rcond in (None, 1e-10):
        f = fit(stats, 0, 5.0, 1.0, rcond=rcond)
        ref = dense_fit(dense, 0, 5.0, 1.0, rcond=rcond)
        assert f.rank == P
        assert np.all(np.isfinite(f.coefficients))
        assert rel(f.coefficients, ref) < 1e-7
        assert abs(f.coefficients[3] - f.coefficients[P]) < 1e-8 * np.abs(f.coefficients).max()
        assert_errors_close(errors(stats, f), dense_errors(dense, ref), rtol=1e-7)


def test_default_rcond_is_numpys(data):
    """A nearly duplicated column (singular value ~1e-9 of the largest): numpy's default cut-off keeps it, as does
    ours; a coarse cut-off drops it in both."""
    rng = np.random.default_rng(2)

    def near_dup(b):
        return ConfigurationBlock(
            np.hstack([b.energy_rows, b.energy_rows[:, 3:4] + 1e-9 * rng.normal(size=(b.n_configs, 1))]),
            b.energy_targets,
            np.hstack([b.force_rows, b.force_rows[:, 3:4] + 1e-9 * rng.normal(size=(b.force_rows.shape[0], 1))]),
            b.force_targets,
        )

    blocks = [near_dup(b) for b in data[:40]]
    stats, dense = statistics_from_blocks(blocks), concatenate_blocks(blocks)
    a = np.vstack([dense.energy_rows, dense.force_rows])
    y = np.concatenate([dense.energy_targets[:, 0], dense.force_targets[:, 0]])
    for rcond in (None, 1e-6):
        assert fit(stats, 0, 1.0, 1.0, rcond=rcond).rank == np.linalg.lstsq(a, y, rcond=rcond)[2]
    assert fit(stats, 0, 1.0, 1.0).rank == P + 1
    assert fit(stats, 0, 1.0, 1.0).rcond == pytest.approx(np.finfo(float).eps * a.shape[0])
    assert fit(stats, 0, 1.0, 1.0, rcond=1e-6).rank == P


def test_rcond_truncation_matches_lstsq(data):
    stats = statistics_from_blocks(data[:40])
    dense = concatenate_blocks(data[:40])
    s = fit(stats, 0, 1.0, 1.0).singular_values
    rcond = 0.5 * (s[5] + s[6]) / s[0]  # keep 6 singular values
    f = fit(stats, 0, 1.0, 1.0, rcond=rcond)
    assert f.rank == 6
    assert rel(f.coefficients, dense_fit(dense, 0, 1.0, 1.0, rcond=rcond)) < RTOL


@pytest.mark.parametrize("ridge", [1e-3, 0.5, 50.0])
def test_ridge_matches_dense_ridge(data, ridge):
    stats = statistics_from_blocks(data[:30], levels=LEVELS)
    dense = concatenate_blocks(data[:30])
    f = fit(stats, 6, 20.0, 1.0, ridge=ridge)
    ref = dense_fit(dense, 2, 20.0, 1.0, ridge=ridge)
    assert rel(f.coefficients, ref) < RTOL
    assert f.ridge == ridge and f.rcond is None
    # and it is not the unregularised answer
    assert rel(f.coefficients, fit(stats, 6, 20.0, 1.0).coefficients) > 1e-7


def test_shift_is_stable_for_large_offsets():
    """Level 1 = level 0 + 1000 eV/atom with 10 meV-scale scatter: the shifted RMSE must not change, and
    mean(r²) − mean(r)² (which would lose ~10 digits here) is not what is computed."""
    rng = np.random.default_rng(3)
    base = make_blocks(rng, 60, n_levels=1)
    blocks = [
        ConfigurationBlock(b.energy_rows, np.hstack([b.energy_targets, b.energy_targets + 1000.0]),
                           b.force_rows, np.hstack([b.force_targets, b.force_targets]))
        for b in base
    ]
    stats = statistics_from_blocks(blocks)
    dense = concatenate_blocks(blocks)
    f = fit(stats, 0, 1.0, 1.0)
    e, ref = errors(stats, f), dense_errors(dense, f.coefficients)
    assert_errors_close(e, ref)
    assert e.energy_shift[1] - e.energy_shift[0] == pytest.approx(-1e6, rel=1e-12)
    assert e.energy_rmse_shifted[1] == pytest.approx(e.energy_rmse_shifted[0], rel=1e-8)
    assert e.energy_rmse[1] > 1e4 * e.energy_rmse_shifted[1]
    # the naive formula really is inaccurate here, so the comparison above can fail
    r = dense.energy_rows @ f.coefficients - dense.energy_targets[:, 1]
    naive = 1e3 * np.sqrt(max(np.mean(r**2) - np.mean(r) ** 2, 0.0))
    assert abs(naive - ref.energy_rmse_shifted[1]) > 1e-8 * ref.energy_rmse_shifted[1]
    assert force_equal(e.force_rmse)


def force_equal(x) -> bool:
    return bool(np.isclose(x[0], x[1], rtol=1e-12))


def test_errors_without_constant_column():
    rng = np.random.default_rng(11)
    blocks = []
    for _ in range(25):
        n = int(rng.integers(2, 9))
        blocks.append(ConfigurationBlock(rng.normal(size=(1, 6)), rng.normal(size=(1, 2)) + 3.0,
                                         rng.normal(size=(3 * n, 6)), rng.normal(size=(3 * n, 2))))
    stats = statistics_from_blocks(blocks[:15])
    test = statistics_from_blocks(blocks[15:])
    f = fit(stats, 1, 2.0, 1.0)
    ref_beta, tr, te = dense_fit_and_errors(concatenate_blocks(blocks[:15]), concatenate_blocks(blocks[15:]), 1, 2.0, 1.0)
    assert rel(f.coefficients, ref_beta) < RTOL
    assert_errors_close(errors(stats, f), tr)
    assert_errors_close(errors(test, f), te)


def test_units_are_meV():
    """One configuration of one atom, β = 0: errors are |target| in meV."""
    block = ConfigurationBlock(np.ones((1, 2)), [[0.002]], np.ones((3, 2)), [[0.01], [0.0], [0.0]])
    stats = statistics_from_blocks([block])
    e = errors(stats, np.zeros(2))
    assert e.energy_rmse[0] == pytest.approx(2.0)
    assert e.energy_shift[0] == pytest.approx(-2.0)
    assert e.energy_rmse_shifted[0] == pytest.approx(0.0, abs=1e-12)
    assert e.force_rmse[0] == pytest.approx(10.0 / np.sqrt(3))
    assert e.for_level(0)["force_rmse"] == pytest.approx(10.0 / np.sqrt(3))


def test_configuration_blocks_from_dataset_arrays():
    rng = np.random.default_rng(5)
    n_atoms = np.array([2, 3, 1])
    total = n_atoms.sum()
    e_rows = rng.normal(size=(3, 4))
    f_rows = rng.normal(size=(3 * total, 4))
    energy = rng.normal(size=(2, 3))
    forces = rng.normal(size=(2, total, 3))
    blocks = list(configuration_blocks(e_rows, f_rows, n_atoms, energy, forces, indices=[2, 0]))
    assert [b.n_configs for b in blocks] == [1, 1]
    np.testing.assert_allclose(blocks[0].energy_targets, (energy[:, 2] / 1)[None])
    np.testing.assert_allclose(blocks[1].energy_targets, (energy[:, 0] / 2)[None])
    # config 0: atoms 0,1 → force rows 0..5, atom-major x,y,z
    np.testing.assert_array_equal(blocks[1].force_rows, f_rows[:6])
    assert blocks[1].force_targets[4, 1] == forces[1, 1, 1]
    np.testing.assert_array_equal(blocks[0].force_rows, f_rows[15:18])
    np.testing.assert_array_equal(blocks[0].force_targets[:, 0], forces[0, 5])
    with pytest.raises(IndexError):
        list(configuration_blocks(e_rows, f_rows, n_atoms, energy, forces, indices=[3]))
    with pytest.raises(ValueError, match="force rows"):
        list(configuration_blocks(e_rows, f_rows[:-3], n_atoms, energy, forces))


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, "heavy", None])
def test_bad_weights(data, bad):
    stats = statistics_from_blocks(data[:10])
    with pytest.raises(ValueError, match="energy_weight"):
        fit(stats, 0, bad, 1.0)
    with pytest.raises(ValueError, match="force_weight"):
        fit_all_levels(stats, 1.0, bad)
    with pytest.raises(ValueError, match="energy_weight"):
        dense_fit(concatenate_blocks(data[:10]), 0, bad, 1.0)


def test_bad_input(data):
    stats = statistics_from_blocks(data[:10], levels=LEVELS)
    with pytest.raises(ValueError, match=r"unknown level 2.*\[1, 3, 6\]"):
        fit(stats, 2, 1.0, 1.0)
    with pytest.raises(ValueError, match="unknown level"):
        fit(stats, True, 1.0, 1.0)
    empty = LinearStatistics.empty(P, 3, LEVELS)
    with pytest.raises(ValueError, match="empty"):
        fit(empty, 1, 1.0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        errors(empty, np.zeros(P))
    with pytest.raises(ValueError, match="empty"):
        statistics_from_blocks([])
    with pytest.raises(ValueError, match="shape"):
        errors(stats, np.zeros(P + 1))
    with pytest.raises(ValueError, match="non-finite"):
        errors(stats, np.full(P, np.nan))
    with pytest.raises(ValueError, match="ridge"):
        fit(stats, 1, 1.0, 1.0, ridge=-1.0)
    with pytest.raises(ValueError, match="rcond"):
        fit(stats, 1, 1.0, 1.0, rcond=np.nan)
    with pytest.raises(ValueError, match="cannot merge"):
        stats.merge(statistics_from_blocks(data[10:12]))  # levels 0,1,2 vs 1,3,6
    b = data[0]
    with pytest.raises(ValueError, match="failed"):
        ConfigurationBlock(b.energy_rows, np.full_like(b.energy_targets, np.nan), b.force_rows, b.force_targets)
    with pytest.raises(ValueError, match="columns"):
        ConfigurationBlock(b.energy_rows[:, :-1], b.energy_targets, b.force_rows, b.force_targets)
    with pytest.raises(ValueError, match="targets do not match"):
        ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets[:-1])
    acc = StatisticsAccumulator(levels=LEVELS)
    acc.add(b)
    with pytest.raises(ValueError, match="expected p=20"):
        acc.add(ConfigurationBlock(b.energy_rows[:, :5], b.energy_targets, b.force_rows[:, :5], b.force_targets))
    with pytest.raises(ValueError, match="distinct level labels"):
        LinearStatistics.empty(P, 3, (1, 1, 2))


def test_all_combinations_of_train_and_reference_levels(data):
    """Train at each level, test against each level: every pair agrees with dense."""
    train, test = data[:50], data[50:90]
    st_tr, st_te = statistics_from_blocks(train), statistics_from_blocks(test)
    d_tr, d_te = concatenate_blocks(train), concatenate_blocks(test)
    for (we, wf), j in itertools.product([(10.0, 1.0), (150.0, 1.0)], range(3)):
        f = fit(st_tr, j, we, wf)
        beta, _, te = dense_fit_and_errors(d_tr, d_te, j, we, wf)
        assert_errors_close(errors(st_te, f), te)


def _assert_errors_close_on_scale(stat_err, dense_err, rtol=RTOL):
    for name in ("energy_rmse", "energy_rmse_shifted", "energy_shift", "force_rmse", "stress_rmse"):
        ref = getattr(dense_err, name)
        if np.all(np.isnan(ref)):
            assert np.all(np.isnan(getattr(stat_err, name))), name
            continue
        np.testing.assert_allclose(getattr(stat_err, name), ref, rtol=rtol, atol=rtol * np.max(np.abs(ref)),
                                   err_msg=name)


def _few_row_blocks(rng: np.random.Generator, p: int, n_configs: int, max_atoms: int = 4):
    """Well-conditioned blocks without a structurally zero column (a general design, Gaussian rows)."""
    blocks = []
    for _ in range(n_configs):
        n = int(rng.integers(1, max_atoms + 1))
        blocks.append(ConfigurationBlock(rng.normal(size=(1, p)), rng.normal(size=(1, 3)),
                                         rng.normal(size=(3 * n, p)), rng.normal(size=(3 * n, 3))))
    return blocks


def test_factors_keep_only_the_rows_of_the_data():
    """A set with fewer rows than columns keeps an n_rows × k factor (never padded), also after merging and in
    nested subsets, so the stacked system of a fit has min(n_E, p + 1) + min(n_F, p) rows."""
    rng = np.random.default_rng(11)
    p = 30
    blocks = _few_row_blocks(rng, p, 12)
    ke, kf = 1 + p + 3, p + 3
    for size, st in statistics_for_nested_subsets(blocks, [1, 2, 5, 12]):
        d = concatenate_blocks(blocks[:size])
        n_e, n_f = d.energy_rows.shape[0], d.force_rows.shape[0]
        assert st.energy.factor.shape == (min(n_e, ke), ke)
        assert st.force.factor.shape == (min(n_f, kf), kf)
        assert st.energy.descriptor_columns.shape == (min(n_e, p + 1), p)
        assert st.force.descriptor_columns.shape == (min(n_f, p), p)
        for ga, gb in zip(st.gram(), statistics_from_blocks(blocks[:size]).gram(), strict=True):
            np.testing.assert_allclose(ga, gb, rtol=1e-10, atol=1e-10 * np.abs(gb).max())
    merged = merge_statistics([statistics_from_blocks(blocks[:1]), statistics_from_blocks(blocks[1:2])])
    assert merged.force.factor.shape[0] == min(concatenate_blocks(blocks[:2]).force_rows.shape[0], kf)
    empty = LinearStatistics.empty(p, 3)
    assert empty.energy.factor.shape == (0, ke) and empty.force.factor.shape == (0, kf)
    r, z = statistics_from_blocks(blocks[:1]).force.r_and_z()
    assert r.shape == (p, p) and z.shape == (p, 3)


@pytest.mark.parametrize("n_configs", [1, 2, 4, 9])
@pytest.mark.parametrize("weights", [(1.0, 1.0), (12.25, 1.0), (300.0, 1.0), (1.0, 0.02)])
def test_few_row_subsets_match_dense(n_configs, weights):
    """Subsets with fewer rows than the stacked system (n_E + n_F < 2p + 1, mostly even < p): the fit from the
    trimmed factors equals dense lstsq on the weighted rows (minimum-norm solution, same rank and singular values)
    and the errors equal dense predictions, to 1e-8 relative, for every training level at once."""
    p = 60
    rng = np.random.default_rng(100 * n_configs + int(weights[0]))
    blocks = _few_row_blocks(rng, p, n_configs)
    others = _few_row_blocks(rng, p, 30)
    stats, dense = statistics_from_blocks(blocks, levels=LEVELS), concatenate_blocks(blocks)
    test_stats, test_dense = statistics_from_blocks(others, levels=LEVELS), concatenate_blocks(others)
    we, wf = weights
    n_rows = dense.energy_rows.shape[0] + dense.force_rows.shape[0]
    assert n_rows < 2 * p + 1
    full = np.vstack([we * dense.energy_rows, wf * dense.force_rows])
    s_full = np.linalg.svd(full, compute_uv=False)
    fits = fit_all_levels(stats, we, wf)
    (shared,) = fit_weights(stats, [(we, wf)])
    for j, lv in enumerate(LEVELS):
        f = fits[lv]
        ref = dense_fit(dense, j, we, wf)
        assert f.rank == min(n_rows, p) == np.linalg.lstsq(full, full @ ref, rcond=None)[2]
        np.testing.assert_allclose(f.singular_values, s_full, rtol=1e-10)
        assert f.rcond == pytest.approx(default_rcond(n_rows, p))
        assert rel(f.coefficients, ref) < RTOL
        assert rel(shared[lv].coefficients, ref) < RTOL
        # training errors: the fit interpolates its own level (RMSE at rounding level there), so compare on the
        # scale of the largest error over the levels
        _assert_errors_close_on_scale(errors(stats, f), dense_errors(dense, ref, LEVELS))
        assert_errors_close(errors(test_stats, f), dense_errors(test_dense, ref, LEVELS))


@pytest.mark.parametrize("n_configs", [2, 5, 40])
@pytest.mark.parametrize("options", [{}, {"rcond": 1e-3}, {"ridge": 0.3}])
def test_fit_weights_equals_separate_fits(n_configs, options):
    """The weight-shared solve (factor once, small problem per weight) equals a separate solve per weight, for
    systems wider and taller than p, with the default cut-off, a coarse cut-off and ridge."""
    p = 40
    rng = np.random.default_rng(n_configs)
    stats = statistics_from_blocks(_few_row_blocks(rng, p, n_configs), levels=LEVELS)
    pairs = [(5.0, 1.0), (50.0, 1.0), (300.0, 2.0)]
    shared = fit_weights(stats, pairs, **options)
    assert len(shared) == len(pairs) and fit_weights(stats, [], **options) == []
    for (we, wf), fits in zip(pairs, shared, strict=True):
        separate = fit_all_levels(stats, we, wf, **options)
        for lv in LEVELS:
            a, b = fits[lv], separate[lv]
            assert (a.energy_weight, a.force_weight, a.rank, a.rcond, a.ridge) == (
                b.energy_weight, b.force_weight, b.rank, b.rcond, b.ridge)
            np.testing.assert_allclose(a.singular_values, b.singular_values, rtol=1e-10)
            assert rel(a.coefficients, b.coefficients) < 1e-9
    with pytest.raises(ValueError, match="energy_weight"):
        fit_weights(stats, [(5.0, 1.0), (0.0, 1.0)])


def test_errors_many_equals_errors(data):
    train, test = statistics_from_blocks(data[:30], levels=LEVELS), statistics_from_blocks(data[30:60], levels=LEVELS)
    betas = np.column_stack([f.coefficients for f in fit_all_levels(train, 12.25, 1.0).values()])
    for st in (train, test):
        many = errors_many(st, betas)
        assert len(many) == betas.shape[1]
        for j, e in enumerate(many):
            _assert_errors_close_on_scale(e, errors(st, betas[:, j]), rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        errors_many(train, betas[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        errors_many(train, np.full_like(betas, np.nan))


def test_real_qsnap_descriptors_against_dense():
    """Real qSNAP rows (2Jmax 4, p = 120) with Lennard-Jones labels as three "levels".

    Real quadratic descriptors are ill-conditioned (condition number ~1e9–1e10 of the weighted matrix here), so
    both the dense lstsq and the statistics path carry forward errors of order cond × eps; agreement is checked
    to 1e-6 relative rather than 1e-8 (observed ~1e-9 for β and ≤ ~5e-8 for the errors).
    """
    pytest.importorskip("lammps")
    descriptors = pytest.importorskip("pyiron_mlip_tradeoff.descriptors")
    from ase.build import bulk
    from ase.calculators.lj import LennardJones

    rng = np.random.default_rng(0)
    structures = []
    for i in range(16):
        a = bulk("Be", "hcp", a=2.29, c=3.58).repeat((1 + i % 2, 2, 1))
        a.rattle(0.08, seed=i)
        a.set_cell(a.cell * (1 + 0.02 * rng.normal()), scale_atoms=True)
        structures.append(a)
    d = descriptors.compute_descriptors(structures, 4)
    energy, forces = [], []
    for sigma in (2.0, 2.05, 2.1):
        e, f = [], []
        for a in structures:
            b = a.copy()
            b.calc = LennardJones(sigma=sigma, epsilon=0.1, rc=5.0, smooth=True)
            e.append(b.get_potential_energy())
            f.append(b.get_forces())
        energy.append(e)
        forces.append(np.concatenate(f))
    blocks = list(configuration_blocks(d.energy_rows, d.force_rows, d.n_atoms, np.array(energy), np.array(forces)))
    train, test = blocks[:10], blocks[10:]
    st_tr, st_te = statistics_from_blocks(train), statistics_from_blocks(test)
    d_tr, d_te = concatenate_blocks(train), concatenate_blocks(test)
    for we in (1.0, 50.0):
        for j in range(3):
            f = fit(st_tr, j, we, 1.0)
            beta, tr, te = dense_fit_and_errors(d_tr, d_te, j, we, 1.0)
            assert f.rank == d.energy_rows.shape[1]
            assert rel(f.coefficients, beta) < 1e-6
            assert_errors_close(errors(st_tr, f), tr, rtol=1e-6)
            assert_errors_close(errors(st_te, f), te, rtol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# stress rows


@pytest.fixture(scope="module")
def stress_data():
    """120 synthetic configurations, every third with 6 stress rows (the others without stress)."""
    return make_blocks(np.random.default_rng(9), 120, offsets=[0.3, -0.1, 0.0], stress_every=3)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 0.5), (12.25, 1.0, 30.0), (150.0, 1.0, 1000.0), (5.0, 0.5, 0.0)])
def test_stress_fit_and_errors_match_dense(stress_data, weights):
    we, wf, wv = weights
    test_blocks = stress_data[80:]
    test_stats, test_dense = statistics_from_blocks(test_blocks, levels=LEVELS), concatenate_blocks(test_blocks)
    for n_train in (2, 7, 30, 80):  # 2 and 7: fewer rows than columns in the stacked system
        train = stress_data[:n_train]
        stats, dense = statistics_from_blocks(train, levels=LEVELS), concatenate_blocks(train)
        assert stats.n_stress_rows == dense.stress_rows.shape[0] == 6 * len(range(0, n_train, 3))
        fits = fit_all_levels(stats, we, wf, wv)
        for j, lv in enumerate(LEVELS):
            f = fits[lv]
            beta, tr, te = dense_fit_and_errors(dense, test_dense, j, we, wf, wv, levels=LEVELS)
            a, _ = dense_weighted_system([(dense, (we, wf, wv))], j)
            assert f.stress_weight == wv
            assert f.rank == np.linalg.matrix_rank(a)
            np.testing.assert_allclose(f.singular_values, np.linalg.svd(a, compute_uv=False), rtol=1e-10)
            assert f.rcond == pytest.approx(default_rcond(a.shape[0], P))
            assert rel(f.coefficients, beta) < RTOL
            assert rel(fit(stats, lv, we, wf, wv).coefficients, beta) < RTOL
            _assert_errors_close_on_scale(errors(stats, f), tr)
            assert_errors_close(errors(test_stats, f), te)
            assert te.n_stress_rows == test_dense.stress_rows.shape[0] > 0


def test_stress_weight_changes_the_fit_and_zero_is_the_energy_force_fit(stress_data):
    """w_V = 0 (the default) gives exactly — bit for bit — the fit and errors of the same set without any stress
    rows; w_V > 0 changes the fit and lowers the training stress error."""
    with_stress = statistics_from_blocks(stress_data[:60], levels=LEVELS)
    without = statistics_from_blocks(
        [ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets) for b in stress_data[:60]],
        levels=LEVELS,
    )
    assert with_stress.n_stress_rows == 120 and without.n_stress_rows == 0
    for n in (3, 60):  # the wide (few rows) and the tall path
        ws, wo = statistics_from_blocks(stress_data[:n], levels=LEVELS), statistics_from_blocks(
            [ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets)
             for b in stress_data[:n]], levels=LEVELS)
        for a, b in zip(fit_weights(ws, [(5.0, 1.0), (150.0, 1.0, 0.0)]), fit_weights(wo, [(5.0, 1.0), (150.0, 1.0)]),
                        strict=True):
            for lv in LEVELS:
                assert np.array_equal(a[lv].coefficients, b[lv].coefficients)
                assert np.array_equal(a[lv].singular_values, b[lv].singular_values)
                assert a[lv].rcond == b[lv].rcond and a[lv].stress_weight == 0.0
        e_ws, e_wo = errors(ws, a[1]), errors(wo, b[1])
        for name in ("energy_rmse", "energy_rmse_shifted", "energy_shift", "force_rmse"):
            assert np.array_equal(getattr(e_ws, name), getattr(e_wo, name))
        assert np.all(np.isnan(e_wo.stress_rmse)) and np.all(np.isfinite(e_ws.stress_rmse))
    plain, stressed = fit(with_stress, 1, 10.0, 1.0), fit(with_stress, 1, 10.0, 1.0, 300.0)
    assert rel(plain.coefficients, stressed.coefficients) > 1e-4
    assert errors(with_stress, stressed).stress_rmse[0] < errors(with_stress, plain).stress_rmse[0]
    # the weighted fits share work per set of parts used, and give what a separate fit gives
    mixed = fit_weights(with_stress, [(5.0, 1.0, 3.0), (5.0, 1.0), (50.0, 1.0, 30.0)])
    for (we, wf, wv), got in zip([(5.0, 1.0, 3.0), (5.0, 1.0, 0.0), (50.0, 1.0, 30.0)], mixed, strict=True):
        assert rel(got[3].coefficients, fit(with_stress, 3, we, wf, wv).coefficients) < 1e-12


def test_stress_units_are_gpa():
    """One configuration, β = 0: the stress RMSE is the RMS of the targets converted to GPa."""
    targets = np.array([[0.01], [0.02], [-0.01], [0.0], [0.0], [0.005]])
    block = ConfigurationBlock(np.ones((1, 2)), [[0.0]], np.ones((3, 2)), np.zeros((3, 1)), np.ones((6, 2)), targets)
    e = errors(statistics_from_blocks([block]), np.zeros(2))
    assert e.stress_rmse[0] == pytest.approx(EV_PER_A3_IN_GPA * np.sqrt(np.mean(targets**2)), rel=1e-12)
    assert e.for_level(0)["stress_rmse"] == pytest.approx(e.stress_rmse[0])
    assert e.n_stress_rows == 6
    assert 1.0 * EV_PER_A3_IN_GPA == pytest.approx(160.21766208)


def test_stress_input_is_validated(stress_data):
    b = stress_data[0]
    assert b.has_stress and not stress_data[1].has_stress
    assert stress_data[1].stress_rows.shape == (0, P) and stress_data[1].stress_targets.shape == (0, 3)
    with pytest.raises(ValueError, match="together"):
        ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets, b.stress_rows)
    with pytest.raises(ValueError, match="6 per configuration"):
        ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets, b.stress_rows[:5],
                           b.stress_targets[:5])
    with pytest.raises(ValueError, match="6 per configuration"):
        ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets,
                           np.vstack([b.stress_rows] * 2), np.vstack([b.stress_targets] * 2))
    with pytest.raises(ValueError, match="stress targets"):
        ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets, b.stress_rows,
                           b.stress_targets[:, :2])
    with pytest.raises(ValueError, match="stress_targets contains non-finite"):
        ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets, b.stress_rows,
                           np.full_like(b.stress_targets, np.nan))
    with pytest.raises(ValueError, match="stress_weight"):
        fit(statistics_from_blocks(stress_data[:10]), 0, 1.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="stress_weight"):
        fit_weights(statistics_from_blocks(stress_data[:10]), [(1.0, 1.0, np.nan)])
    with pytest.raises(ValueError, match="w_E, w_F"):
        fit_weights(statistics_from_blocks(stress_data[:10]), [(1.0,)])
    # a multi-configuration block: 6 rows for each configuration that has stress
    both = concatenate_blocks(stress_data[:4])
    assert both.stress_rows.shape[0] == 12
    # virial rows → stress rows
    w = np.arange(12.0).reshape(6, 2)
    np.testing.assert_array_equal(stress_rows_from_virial(w, 4.0), -w / 4.0)
    np.testing.assert_array_equal(stress_rows_from_virial(np.vstack([w, w]), [2.0, 4.0])[6:], -w / 4.0)
    with pytest.raises(ValueError, match="volumes"):
        stress_rows_from_virial(w, [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        stress_rows_from_virial(w, 0.0)


def test_configuration_blocks_with_stress():
    rng = np.random.default_rng(6)
    n_atoms = np.array([2, 1, 3])
    e_rows, f_rows, s_rows = rng.normal(size=(3, 4)), rng.normal(size=(18, 4)), rng.normal(size=(18, 4))
    energy, forces, stress = rng.normal(size=(2, 3)), rng.normal(size=(2, 6, 3)), rng.normal(size=(2, 3, 6))
    stress[:, 1] = np.nan  # configuration 1 has no stress at any level
    blocks = list(configuration_blocks(e_rows, f_rows, n_atoms, energy, forces, stress_rows=s_rows, stress=stress))
    assert [b.stress_rows.shape[0] for b in blocks] == [6, 0, 6]
    np.testing.assert_array_equal(blocks[2].stress_rows, s_rows[12:])
    np.testing.assert_array_equal(blocks[2].stress_targets, stress[:, 2].T)  # Voigt order per level column
    stress[1, 2, 3] = np.nan  # configuration 2 with stress at level 0 only
    with pytest.raises(ValueError, match="configuration 2 has stress at some levels"):
        list(configuration_blocks(e_rows, f_rows, n_atoms, energy, forces, stress_rows=s_rows, stress=stress))
    with pytest.raises(ValueError, match="together"):
        list(configuration_blocks(e_rows, f_rows, n_atoms, energy, forces, stress=stress))
    with pytest.raises(ValueError, match="stress rows"):
        list(configuration_blocks(e_rows, f_rows, n_atoms, energy, forces, stress_rows=s_rows[:-6], stress=stress))


# --------------------------------------------------------------------------------------------------------------
# groups


def _group_blocks(blocks, names=("bulk", "surface", "strained")):
    """Blocks dealt to groups round-robin: {group: [blocks]} and the group of each block in order."""
    labels = [names[i % len(names)] for i in range(len(blocks))]
    groups = {n: [b for b, lb in zip(blocks, labels, strict=True) if lb == n] for n in names}
    return groups, labels


GROUP_WEIGHTS = [
    {},
    {"bulk": (1.0, 1.0, 1.0), "surface": (3.0, 0.5, 2.0), "strained": (0.2, 4.0, 10.0)},
    {"surface": (0.0, 1.0, 1.0), "strained": (2.0, 0.0, 0.0)},  # a part of a group switched off
]


@pytest.mark.parametrize("group_weights", GROUP_WEIGHTS)
@pytest.mark.parametrize("weights", [(12.25, 1.0, 0.0), (150.0, 1.0, 30.0)])
def test_group_weighted_fit_equals_dense(stress_data, weights, group_weights):
    """The fit from per-group statistics with multipliers = dense lstsq with every row scaled by w·g, to 1e-10;
    unweighted errors per group and for *ALL = dense predictions."""
    groups, labels = _group_blocks(stress_data[:90])
    gs = grouped_statistics(stress_data[:90], labels, levels=LEVELS)
    assert gs.names == ("bulk", "surface", "strained") and gs.n_configs == 90
    for n_train in (90, 4):
        if n_train != 90:  # a small set: the wide path
            groups, labels = _group_blocks(stress_data[:n_train])
            gs = grouped_statistics(stress_data[:n_train], labels, levels=LEVELS)
        fits = gs.fit(*weights, group_weights=group_weights)
        (shared,) = gs.fit_weights([weights], group_weights=group_weights)
        for j, lv in enumerate(LEVELS):
            ref = dense_group_fit(groups, j, weights, group_weights)
            assert rel(fits[lv].coefficients, ref) < 1e-10
            assert rel(shared[lv].coefficients, ref) < 1e-10
            assert dict(fits[lv].group_weights) == gs.multipliers(group_weights)
            assert fits[lv].stress_weight == weights[2]
            got, want = gs.errors(fits[lv]), dense_group_errors(groups, ref, LEVELS)
            assert set(got) == {"bulk", "surface", "strained", ALL_GROUPS}
            for name in want:
                _assert_errors_close_on_scale(got[name], want[name], rtol=1e-8)
    # multipliers that are all 1 give the plain fit of all configurations together
    plain = fit_all_levels(gs.all, *weights)
    ones = gs.fit(*weights, group_weights={n: (1, 1, 1) for n in gs.names})
    assert all(rel(ones[lv].coefficients, plain[lv].coefficients) < 1e-10 for lv in LEVELS)
    # and they matter: a different multiplier gives a different fit
    if group_weights:
        assert rel(fits[1].coefficients, plain[1].coefficients) > 1e-6


def test_group_multipliers_scale_like_weights(stress_data):
    """A common multiplier on every group equals the same factor on the global weights."""
    groups, labels = _group_blocks(stress_data[:60])
    gs = grouped_statistics(stress_data[:60], labels, levels=LEVELS)
    a = gs.fit(10.0, 1.0, 5.0, group_weights={n: (2.0, 3.0, 0.5) for n in gs.names})
    b = fit_all_levels(gs.all, 20.0, 3.0, 2.5)
    assert all(rel(a[lv].coefficients, b[lv].coefficients) < 1e-10 for lv in LEVELS)


def test_grouped_statistics_merge_nested_and_accumulate(stress_data):
    groups, labels = _group_blocks(stress_data[:50])
    whole = grouped_statistics(stress_data[:50], labels, levels=LEVELS)
    halves = grouped_statistics(stress_data[:20], labels[:20], levels=LEVELS).merge(
        grouped_statistics(stress_data[20:50], labels[20:50], levels=LEVELS))
    gw = GROUP_WEIGHTS[1]
    for lv in LEVELS:
        assert rel(halves.fit(5.0, 1.0, 2.0, group_weights=gw)[lv].coefficients,
                   whole.fit(5.0, 1.0, 2.0, group_weights=gw)[lv].coefficients) < 1e-10
    sizes = [3, 10, 50]
    nested = list(grouped_statistics_for_nested_subsets(stress_data, labels + ["bulk"] * 70, sizes, levels=LEVELS))
    assert [n for n, _ in nested] == sizes
    for size, gs in nested:
        fresh = grouped_statistics(stress_data[:size], labels[:size], levels=LEVELS)
        assert gs.names == fresh.names
        for name in gs.names:
            _assert_same_statistics(gs.groups[name], fresh.groups[name])
    acc = GroupedAccumulator(levels=LEVELS)
    for b, lb in zip(stress_data[:10], labels[:10], strict=True):
        acc.add(b, lb)
    assert acc.n_configs == 10 and acc.statistics().n_configs == 10
    # one buffer budget for all groups (3 · batch_rows rows), whatever the number of groups; same statistics
    many = [f"g{i % 7}" for i in range(50)]
    acc = GroupedAccumulator(levels=LEVELS, batch_rows=40)
    for b, lb in zip(stress_data[:50], many, strict=True):
        acc.add(b, lb)
        assert sum(qr.buffered_rows for a in acc._groups.values() for qr in a._qr) <= 3 * 40
    fresh = grouped_statistics(stress_data[:50], many, levels=LEVELS)
    for name, st in acc.statistics().groups.items():
        _assert_same_statistics(st, fresh.groups[name])
    # a group whose configurations were never added is simply absent; a group with no stress gives NaN stress
    no_stress = grouped_statistics(stress_data[1:3], ["a", "b"], levels=LEVELS)
    e = no_stress.errors(np.zeros(P))
    assert np.all(np.isnan(e["a"].stress_rmse)) and e[ALL_GROUPS].n_configs == 2


@pytest.mark.parametrize(
    "group_weights, match",
    [
        ({"liquid": (1.0, 1.0, 1.0)}, "'liquid'.*not in the statistics"),
        ({"surface": (-1.0, 1.0, 1.0)}, "group 'surface': multiplier g_E"),
        ({"strained": (1.0, np.nan, 1.0)}, "group 'strained': multiplier g_F"),
        ({"bulk": (1.0, 1.0, np.inf)}, "group 'bulk': multiplier g_V"),
        ({"bulk": (1.0, 1.0)}, "group 'bulk': multipliers must be three numbers"),
        ({"bulk": "heavy"}, "group 'bulk': multipliers must be three numbers"),
    ],
)
def test_bad_group_weights(stress_data, group_weights, match):
    _, labels = _group_blocks(stress_data[:12])
    gs = grouped_statistics(stress_data[:12], labels, levels=LEVELS)
    with pytest.raises(ValueError, match=match):
        gs.fit(1.0, 1.0, group_weights=group_weights)


def test_bad_groups(stress_data):
    with pytest.raises(ValueError, match="reserved"):
        grouped_statistics(stress_data[:2], ["bulk", ALL_GROUPS])
    with pytest.raises(ValueError, match="no groups"):
        GroupedStatistics({})
    a = statistics_from_blocks(stress_data[:3], levels=LEVELS)
    with pytest.raises(ValueError, match="group 'b' has p=20, levels=\\[0, 1, 2\\]"):
        GroupedStatistics({"a": a, "b": statistics_from_blocks(stress_data[3:5])})
    with pytest.raises(ValueError):
        grouped_statistics(stress_data[:3], ["a", "b"])  # one label per block
    gs = grouped_statistics(stress_data[:6], ["a", "b"] * 3, levels=LEVELS)
    with pytest.raises(ValueError, match="every group multiplier is 0"):
        gs.fit(1.0, 1.0, group_weights={"a": (0, 0, 0), "b": (0, 0, 0)})
    gs.fit(1.0, 1.0, 1.0, group_weights={"a": (0, 0, 1), "b": (0, 0, 1)})  # stress rows alone: a fit
    no_stress = grouped_statistics(stress_data[1:3], ["a", "b"], levels=LEVELS)
    with pytest.raises(ValueError, match="no rows of positive weight"):  # only stress rows weighted, none present
        no_stress.fit(1.0, 1.0, 1.0, group_weights={"a": (0, 0, 1), "b": (0, 0, 1)})


# --------------------------------------------------------------------------------------------------------------
# real data: bundled Be ladder (GPAW energies, forces and stresses) with real qSNAP descriptors


@pytest.fixture(scope="module")
def be_stress_blocks():
    """Every configuration of the bundled Be dataset (410, levels 1–6, GPAW stresses) as blocks with energy,
    force and stress rows from real 2Jmax-4 qSNAP descriptors (p = 120); stress rows = −virial rows / volume."""
    pytest.importorskip("lammps")
    from pyiron_mlip_tradeoff.dataset import load_bundled
    from pyiron_mlip_tradeoff.descriptors import compute_descriptors

    data = load_bundled(warn_interim=False)
    if data.stress is None or not np.all(np.isfinite(data.stress)):
        pytest.skip("the bundled dataset has no complete stresses")
    desc = compute_descriptors(data.structures, 4, virial=True)
    volumes = np.array([a.get_volume() for a in data.structures])
    rows = stress_rows_from_virial(desc.virial_rows, volumes)
    blocks = list(configuration_blocks(desc.energy_rows, desc.force_rows, desc.n_atoms, data.energy, data.forces,
                                       stress_rows=rows, stress=data.stress))
    return data, blocks


def test_real_stress_sign(be_stress_blocks):
    """The sign of stress = −W/V is checked, not assumed: a model fitted to level-6 energies and forces only
    predicts the GPAW stresses (never seen in the fit) far better with −W/V than with +W/V, and a fit including
    the stress rows then barely loses energy and force accuracy with −W/V but does with +W/V."""
    data, blocks = be_stress_blocks
    stats = statistics_from_blocks(blocks, levels=data.levels)
    flipped = [ConfigurationBlock(b.energy_rows, b.energy_targets, b.force_rows, b.force_targets, -b.stress_rows,
                                  b.stress_targets) for b in blocks]
    stats_flipped = statistics_from_blocks(flipped, levels=data.levels)
    ef = fit(stats, 6, 150.0, 1.0)  # energies and forces only
    right, wrong = errors(stats, ef).for_level(6), errors(stats_flipped, ef).for_level(6)
    assert right["stress_rmse"] < 0.5 * wrong["stress_rmse"]
    with_stress, with_stress_flipped = fit(stats, 6, 150.0, 1.0, 100.0), fit(stats_flipped, 6, 150.0, 1.0, 100.0)
    a, b = errors(stats, with_stress).for_level(6), errors(stats_flipped, with_stress_flipped).for_level(6)
    assert a["stress_rmse"] < right["stress_rmse"] and a["stress_rmse"] < b["stress_rmse"]
    assert a["force_rmse"] < b["force_rmse"] and a["energy_rmse"] < b["energy_rmse"]


def test_real_stress_and_group_fits_against_dense(be_stress_blocks):
    """Real rows (condition number ~1e9 of the weighted matrix): stress- and group-weighted fits equal the dense
    weighted lstsq to 1e-10 relative; per-group and *ALL errors equal dense predictions."""
    data, blocks = be_stress_blocks
    train, test = blocks[::2], blocks[1::2]
    labels = ["small" if b.force_rows.shape[0] <= 12 else "large" if b.force_rows.shape[0] >= 24 else "medium"
              for b in train]
    groups = {n: [b for b, lb in zip(train, labels, strict=True) if lb == n] for n in ("small", "medium", "large")}
    assert all(len(g) > 20 for g in groups.values())
    gs = grouped_statistics(train, labels, levels=data.levels)
    st_test, d_test = statistics_from_blocks(test, levels=data.levels), concatenate_blocks(test)
    group_weights = {"small": (2.0, 0.5, 1.0), "large": (1.0, 2.0, 0.0)}
    for weights in ((150.0, 1.0, 0.0), (12.25, 1.0, 10.0)):
        fits = gs.fit(*weights, group_weights=group_weights)
        plain = fit_all_levels(gs.all, *weights)
        for j, lv in enumerate(data.levels):
            ref = dense_group_fit(groups, j, weights, group_weights)
            assert rel(fits[lv].coefficients, ref) < 1e-10
            plain_ref = dense_fit(concatenate_blocks(train), j, *weights)
            assert rel(plain[lv].coefficients, plain_ref) < 1e-10
            got, want = gs.errors(fits[lv]), dense_group_errors(groups, ref, data.levels)
            for name in want:
                _assert_errors_close_on_scale(got[name], want[name], rtol=1e-7)
            assert_errors_close(errors(st_test, plain[lv]), dense_errors(d_test, plain_ref, data.levels), rtol=1e-7)


def test_real_fold_order_independence(be_stress_blocks):
    """Statistics folded in any order, in any batch size, and merged in any grouping give the same fit (every
    level, with stress rows) to 1e-10 relative; every part has more rows than columns."""
    data, blocks = be_stress_blocks
    reference = statistics_from_blocks(blocks, levels=data.levels)
    assert min(part.n_rows for part in reference.parts) > reference.n_params
    ref_fits = fit_all_levels(reference, 150.0, 1.0, 10.0)
    rng = np.random.default_rng(0)
    for trial in range(3):
        order = rng.permutation(len(blocks))
        variants = [statistics_from_blocks([blocks[i] for i in order], levels=data.levels,
                                           batch_rows=[1, 37, None][trial])]
        cuts = np.sort(rng.choice(np.arange(1, len(blocks)), size=6, replace=False))
        parts = [statistics_from_blocks([blocks[i] for i in chunk], levels=data.levels)
                 for chunk in np.split(order, cuts)]
        variants.append(merge_statistics(parts[::-1]))
        variants.append(parts[0].merge(*parts[1:3]).merge(merge_statistics(parts[3:])))
        for stats in variants:
            assert stats.n_configs == len(blocks) and stats.n_stress_rows == reference.n_stress_rows
            fits = fit_all_levels(stats, 150.0, 1.0, 10.0)
            for lv in data.levels:
                assert rel(fits[lv].coefficients, ref_fits[lv].coefficients) < 1e-10
