"""The triangular route of the weighted fits (``regression._triangular_solve``) against dense SVD least squares.

A fit whose combined triangular factor is provably well-conditioned against the cut-off is solved by
back-substitution (``LinearFit.solver == "triangular"``); one whose smallest singular value is provably the only one
below the cut-off by back-substitution with that direction deflated (``"deflated"``); every other one takes the
truncated-SVD route (``"svd"``), or ridge. Every test asserts which route was taken, so none passes by taking the other one.
"""

from __future__ import annotations

import numpy as np
import pytest
from dense_reference import dense_fit, dense_group_fit, dense_weighted_system
from test_regression import LEVELS, P, make_blocks, rel

from pyiron_mlip_tradeoff.qr import StreamedQR, fold_into_triangle
from pyiron_mlip_tradeoff.regression import (
    TRIANGULAR_SAFETY,
    ConfigurationBlock,
    _n_rows_weighted,
    _solve_stacked,
    _weighted_system,
    concatenate_blocks,
    default_rcond,
    fit_all_levels,
    fit_weights,
    grouped_statistics,
    statistics_from_blocks,
)

#: relative agreement of coefficients and predictions with dense SVD least squares on well-conditioned systems
RTOL = 1e-9
RATIOS = (5.0, 10.0, 12.25, 50.0, 150.0, 300.0)


@pytest.fixture(scope="module")
def data():
    return make_blocks(np.random.default_rng(7), 80, stress_every=2)


def _dense_matrix(block: ConfigurationBlock, weights) -> np.ndarray:
    return dense_weighted_system([(block, tuple(weights))], 0)[0]


def _check_against_dense(fits, block, weights):
    a = _dense_matrix(block, weights)
    s_full = np.linalg.svd(a, compute_uv=False)
    for j, level in enumerate(LEVELS):
        f = fits[level]
        assert f.solver == "triangular" and f.rank == P
        beta_ref = dense_fit(block, j, *weights)
        assert rel(f.coefficients, beta_ref) < RTOL
        assert rel(a @ f.coefficients, a @ beta_ref) < RTOL  # predictions on every weighted training row
        np.testing.assert_allclose(f.singular_values, s_full, rtol=1e-10)


@pytest.mark.parametrize("n_train", [8, 30, 80])
def test_triangular_route_equals_dense_svd(data, n_train):
    """Energy + force (2 parts) at the study's weight ratios: triangular route, equal to numpy's lstsq."""
    block = concatenate_blocks(data[:n_train])
    stats = statistics_from_blocks(data[:n_train], levels=LEVELS)
    all_fits = fit_weights(stats, [(r, 1.0) for r in RATIOS])
    for ratio, fits in zip(RATIOS, all_fits, strict=True):
        _check_against_dense(fits, block, (ratio, 1.0, 0.0))


@pytest.mark.parametrize("n_train", [8, 80])
def test_triangular_route_with_stress_rows(data, n_train):
    """Energy, force and stress (3 parts): the stress factor is folded in as a second pentagon."""
    block = concatenate_blocks(data[:n_train])
    assert block.has_stress
    stats = statistics_from_blocks(data[:n_train], levels=LEVELS)
    for weights in ((50.0, 1.0, 30.0), (5.0, 1.0, 1.0)):
        _check_against_dense(fit_all_levels(stats, *weights), block, weights)


def test_triangular_route_with_fewer_force_rows_than_columns(data):
    """A set whose force factor has fewer rows than columns (zero-padded triangle) but m ≥ p rows in all."""
    two_atoms = [b for b in data if b.force_rows.shape[0] == 6][:3]
    assert len(two_atoms) == 3
    stats = statistics_from_blocks(two_atoms, levels=LEVELS)
    assert stats.force.factor.shape[0] < P + len(LEVELS) and 3 + 18 >= P
    _check_against_dense(fit_all_levels(stats, 12.25, 1.0), concatenate_blocks(two_atoms), (12.25, 1.0, 0.0))


def test_grouped_fit_takes_the_triangular_route(data):
    groups = {"bulk": data[:30], "surface": data[30:60]}
    stats = grouped_statistics(data[:60], ["bulk"] * 30 + ["surface"] * 30, levels=LEVELS)
    multipliers = {"surface": (2.0, 0.5, 0.0)}
    fits = stats.fit(50.0, 1.0, group_weights=multipliers)
    for j, level in enumerate(LEVELS):
        assert fits[level].solver == "triangular"
        beta_ref = dense_group_fit(groups, j, (50.0, 1.0, 0.0), multipliers)
        assert rel(fits[level].coefficients, beta_ref) < RTOL


def _duplicated_column(blocks, column: int = 3):
    def dup(rows):
        return np.hstack([rows, rows[:, column : column + 1]])

    return [ConfigurationBlock(dup(b.energy_rows), b.energy_targets, dup(b.force_rows), b.force_targets)
            for b in blocks]


def test_rank_deficient_system_falls_back_to_the_svd_route(data):
    """A duplicated column: the SVD route (gelsd on the combined triangular factor), with the singular values and
    rank of gelsd on the stacked weighted factors and the minimum-norm solution of numpy's lstsq."""
    blocks = _duplicated_column(data[:40])
    stats = statistics_from_blocks(blocks, levels=LEVELS)
    block = concatenate_blocks(blocks)
    for ratio in (5.0, 300.0):
        weights = (ratio, 1.0, 0.0)
        fits = fit_all_levels(stats, *weights)
        a, b, _ = _weighted_system(stats, weights)
        beta, s, rank, _ = _solve_stacked(a, b, _n_rows_weighted(stats, weights), None, None)
        for j, level in enumerate(LEVELS):
            f = fits[level]
            assert f.solver == "svd" and f.rank == rank == P
            assert rel(f.coefficients, beta[:, j]) < 1e-10
            assert np.abs(f.singular_values - s).max() < 1e-13 * s[0]
            assert rel(f.coefficients, dense_fit(block, j, *weights)) < 1e-8


def test_route_follows_the_stated_bound(data):
    """Triangular exactly when ‖A‖_F (Σ σ⁻²)^½ · TRIANGULAR_SAFETY · cut-off ≤ 1, computed here from the dense
    weighted matrix's own SVD: one column scaled down step by step takes the system from one route to the other;
    on the SVD side of the bound gelsd still keeps every singular value (the margin), until it does not."""
    routes = []
    for scale in 10.0 ** -np.arange(8, 14, 0.25):
        blocks = [ConfigurationBlock(b.energy_rows * np.r_[np.ones(P - 1), scale],
                                     b.energy_targets, b.force_rows * np.r_[np.ones(P - 1), scale], b.force_targets)
                  for b in data[:30]]
        block = concatenate_blocks(blocks)
        weights = (12.25, 1.0, 0.0)
        a = _dense_matrix(block, weights)
        s = np.linalg.svd(a, compute_uv=False)
        bound = np.linalg.norm(a) * np.sqrt(np.sum(s**-2.0))
        cut = default_rcond(a.shape[0], P)
        margin = 1.0 / (bound * TRIANGULAR_SAFETY * cut)
        if abs(margin - 1.0) < 0.05:  # too close to call in floating point
            continue
        f = fit_all_levels(statistics_from_blocks(blocks, levels=LEVELS), *weights)[LEVELS[0]]
        assert f.solver == ("triangular" if margin > 1 else "svd"), (scale, margin)
        routes.append((f.solver, f.rank == P))
        if f.solver == "triangular":
            assert rel(f.coefficients, dense_fit(block, 0, *weights)) < 1e-6
    assert ("triangular", True) in routes and ("svd", True) in routes and ("svd", False) in routes


def _one_weak_column(data, scale: float) -> list[ConfigurationBlock]:
    factor = np.r_[scale, np.ones(P - 1)]
    return [ConfigurationBlock(b.energy_rows * factor, b.energy_targets, b.force_rows * factor, b.force_targets)
            for b in data[:30]]


@pytest.mark.parametrize("ratio", [12.25, 300.0])
def test_one_dropped_singular_value_takes_the_deflated_route(data, ratio):
    """One column scaled down so that exactly one singular value lies below the cut-off (well clear of it) and all
    others far above: the deflated route, rank p − 1, equal to numpy's truncated-SVD lstsq with the same rcond."""
    rcond = 1e-8
    blocks = _one_weak_column(data, 1e-10)
    block = concatenate_blocks(blocks)
    weights = (ratio, 1.0, 0.0)
    a = _dense_matrix(block, weights)
    s = np.linalg.svd(a, compute_uv=False)
    assert s[-1] < 0.5 * rcond * s[0] and s[-2] > 10 * rcond * s[0]  # the set-up the test is about
    fits = fit_all_levels(statistics_from_blocks(blocks, levels=LEVELS), *weights, rcond=rcond)
    for j, level in enumerate(LEVELS):
        f = fits[level]
        assert f.solver == "deflated" and f.rank == P - 1 and f.rcond == rcond
        beta_ref = dense_fit(block, j, *weights, rcond=rcond)
        assert rel(f.coefficients, beta_ref) < 1e-8
        assert rel(a @ f.coefficients, a @ beta_ref) < 1e-10
        np.testing.assert_allclose(f.singular_values, s, rtol=1e-6, atol=1e-12 * s[0])


def test_deflated_route_is_refused_near_the_cutoff_and_for_two_weak_columns(data):
    """The smallest singular value within rounding reach of the cut-off, or two below it: the SVD route."""
    blocks = _one_weak_column(data, 1.0)
    block = concatenate_blocks(blocks)
    s = np.linalg.svd(_dense_matrix(block, (12.25, 1.0, 0.0)), compute_uv=False)
    at_cut = fit_all_levels(statistics_from_blocks(blocks, levels=LEVELS), 12.25, 1.0,
                            rcond=s[-1] / s[0] * (1 + 1e-14))[LEVELS[0]]
    assert at_cut.solver == "svd"
    factor = np.r_[1e-10, 1e-10 * 3.0, np.ones(P - 2)]
    two = [ConfigurationBlock(b.energy_rows * factor, b.energy_targets, b.force_rows * factor, b.force_targets)
           for b in data[:30]]
    both = fit_all_levels(statistics_from_blocks(two, levels=LEVELS), 12.25, 1.0, rcond=1e-8)
    for j, level in enumerate(LEVELS):
        assert both[level].solver == "svd" and both[level].rank == P - 2
        assert rel(both[level].coefficients, dense_fit(concatenate_blocks(two), j, 12.25, 1.0, rcond=1e-8)) < 1e-8


def test_given_cutoff_is_respected(data):
    """A large rcond that drops singular values: the SVD route (rank < p); a tiny one: the default cut-off guards."""
    stats = statistics_from_blocks(data[:30], levels=LEVELS)
    s = np.linalg.svd(_dense_matrix(concatenate_blocks(data[:30]), (12.25, 1.0, 0.0)), compute_uv=False)
    rcond = np.sqrt(s[-1] * s[-2]) / s[0]  # between the two smallest: exactly one dropped
    big = fit_all_levels(stats, 12.25, 1.0, rcond=rcond)[LEVELS[0]]
    assert big.solver == "svd" and big.rank == P - 1 and big.rcond == rcond
    tiny = fit_all_levels(stats, 12.25, 1.0, rcond=0.0)[LEVELS[0]]
    assert tiny.solver == "triangular" and tiny.rcond == 0.0


def test_wide_set_and_ridge_keep_their_routes(data):
    """Fewer stacked rows than columns (one configuration): the shared LQ + SVD route; ridge: its SVD filter."""
    one = [b for b in data if b.force_rows.shape[0] == 6][:1]
    stats = statistics_from_blocks(one, levels=LEVELS)
    assert stats.energy.descriptor_columns.shape[0] + stats.force.descriptor_columns.shape[0] < P
    wide = fit_all_levels(stats, 12.25, 1.0)
    block = concatenate_blocks(one)
    for j, level in enumerate(LEVELS):
        assert wide[level].solver == "svd"
        assert rel(wide[level].coefficients, dense_fit(block, j, 12.25, 1.0)) < 1e-8
    ridged = fit_all_levels(statistics_from_blocks(data[:30], levels=LEVELS), 12.25, 1.0, ridge=1e-3)
    assert {f.solver for f in ridged.values()} == {"ridge"}


def test_singular_values_are_computed_once_per_weight(data):
    stats = statistics_from_blocks(data[:30], levels=LEVELS)
    fits = fit_all_levels(stats, 50.0, 1.0)
    first, second = fits[LEVELS[0]], fits[LEVELS[1]]
    assert first._singular_values is second._singular_values  # one lazy source for all levels of the weight
    assert first.singular_values is second.singular_values


def test_fold_into_triangle_equals_a_dense_qr_of_the_stack():
    """The ?tpqrt fold (streamed QR updates once R is square, and the combined factor of the fits) gives the R of a
    dense QR of ``[T; B]`` up to the signs of its rows, for plain rows and for a trapezoid of rows."""
    rng = np.random.default_rng(3)
    k = 30
    t = np.triu(rng.normal(size=(k, k)))
    for rows, trapezoid in ((rng.normal(size=(70, k)), 0), (np.triu(rng.normal(size=(k, k))), k),
                            (np.vstack([rng.normal(size=(1, k)), np.triu(rng.normal(size=(k - 1, k)))]), k - 1)):
        dense = np.linalg.qr(np.vstack([t, rows]), mode="r")
        folded = fold_into_triangle(np.asfortranarray(t), rows.copy(), trapezoid)
        assert np.array_equal(np.tril(folded, -1), np.zeros((k, k)))
        signs = np.sign(np.diag(folded)) * np.sign(np.diag(dense))
        np.testing.assert_allclose(signs[:, None] * folded, dense, rtol=0, atol=1e-12 * np.abs(dense).max())


def test_streamed_qr_does_not_write_into_a_factor_it_was_given():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 8))
    first = StreamedQR(8, batch_rows=8)
    first.update(x[:30])
    given = np.asfortranarray(first.r)
    kept = given.copy()
    restarted = StreamedQR(8, r=given, n_rows=30, batch_rows=8)
    restarted.update(x[30:])
    assert np.array_equal(given, kept)
    np.testing.assert_allclose(restarted.r.T @ restarted.r, x.T @ x, rtol=1e-10, atol=1e-10)
