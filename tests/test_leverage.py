"""Leverage scores from streamed statistics vs the dense SVD, rank handling, and subset selection."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator
from dense_reference import dense_leverage

from pyiron_mlip_tradeoff.descriptors import DescriptorSet, compute_descriptors
from pyiron_mlip_tradeoff.leverage import (
    DEFAULT_LEVERAGE_RIDGE,
    block_leverage,
    energy_leverage,
    leverage_scores,
    ranking,
    select,
    selections,
)
from pyiron_mlip_tradeoff.qr import StreamedQR


def _random_set(n_configs=40, p=12, rank=None, seed=0) -> DescriptorSet:
    """Synthetic descriptor blocks (1–4 atoms each); ``rank`` < p makes X rank-deficient."""
    rng = np.random.default_rng(seed)
    n_atoms = rng.integers(1, 5, n_configs)
    rows = n_configs + 3 * int(n_atoms.sum())
    if rank is None:
        x = rng.normal(size=(rows, p)) * np.logspace(0, 3, p)  # columns of very different scale
    else:
        x = rng.normal(size=(rows, rank)) @ rng.normal(size=(rank, p))
    return DescriptorSet(x[:n_configs], x[n_configs:], n_atoms, twojmax=4)


def _stacked(d: DescriptorSet, energy_weight=1.0) -> tuple[np.ndarray, np.ndarray]:
    """Dense X of the block kind (config order: energy row then its force rows) and each row's configuration."""
    rows, owner = [], []
    for b in d.iter_blocks():
        rows += [energy_weight * b.energy_row[None], b.force_rows]
        owner += [b.index] * (1 + len(b.force_rows))
    return np.vstack(rows), np.array(owner)


@pytest.fixture(scope="module")
def be_descriptors():
    """Real 2Jmax 4 descriptors of 12 small rattled/strained Be cells."""
    rng = np.random.default_rng(3)
    cells = []
    for i in range(12):
        atoms = bulk("Be", "hcp", a=2.29, c=3.58) * (1 + i % 2, 1 + (i // 2) % 2, 1)
        atoms.set_cell(atoms.cell @ (np.eye(3) + rng.normal(scale=0.02, size=(3, 3))), scale_atoms=True)
        atoms.positions += rng.normal(scale=0.08, size=atoms.positions.shape)
        cells.append(atoms)
    return compute_descriptors(cells, 4)


# ---------------------------------------------------------------------------------------------------------------
def test_streamed_qr_reproduces_gram_and_merges():
    """The one QR class of leverage and regression: any batch size, merges in any grouping, copies and restarts
    from a factor all give RᵀR = XᵀX; bad input is refused."""
    d = _random_set(p=8, seed=1)
    x, _ = _stacked(d)
    gram = x.T @ x
    for batch_rows in (1, 7, None):
        factor = StreamedQR(8, batch_rows=batch_rows)
        for start in range(0, len(x), 5):
            factor.update(x[start : start + 5])
        np.testing.assert_allclose(factor.r.T @ factor.r, gram, rtol=1e-10, atol=1e-8)
        assert factor.n_rows == len(x) and factor.r.shape == (8, 8)
        assert np.allclose(np.tril(factor.r, -1), 0)
    left, middle, right = StreamedQR(8), StreamedQR(8), StreamedQR(8)
    left.update(x[:30])
    middle.update(x[30:33])  # fewer rows than columns: a 3 × 8 factor, not padded
    right.update(x[33:])
    assert middle.r.shape == (3, 8)
    snapshot = left.copy()
    left.merge(middle, right)
    np.testing.assert_allclose(left.r.T @ left.r, gram, rtol=1e-10, atol=1e-8)
    assert left.n_rows == len(x)
    assert snapshot.n_rows == 30  # the copy is independent
    stacked = StreamedQR.stacked([right.r, snapshot.r, middle.r], len(x), 8)
    np.testing.assert_allclose(stacked.r.T @ stacked.r, gram, rtol=1e-10, atol=1e-8)
    restarted = StreamedQR(8, r=snapshot.r, n_rows=30)
    restarted.update(x[30:])
    np.testing.assert_allclose(restarted.r.T @ restarted.r, gram, rtol=1e-10, atol=1e-8)
    with pytest.raises(ValueError, match="columns"):
        left.update(np.ones((2, 7)))
    with pytest.raises(ValueError, match="non-finite"):
        left.update(np.full((1, 8), np.nan))
    with pytest.raises(ValueError, match="cannot merge"):
        left.merge(StreamedQR(7))
    with pytest.raises(ValueError, match="does not fit"):
        StreamedQR(8, r=np.eye(8), n_rows=3)


@pytest.mark.parametrize("energy_weight", [1.0, 150.0])
def test_streamed_block_leverage_equals_dense_svd(energy_weight):
    d = _random_set(seed=2)
    x, owner = _stacked(d, energy_weight)
    h, rank = dense_leverage(x)
    expected = np.bincount(owner, weights=h)
    result = block_leverage(d, energy_weight=energy_weight)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.energy_part, h[np.r_[0, np.cumsum(1 + 3 * d.n_atoms)[:-1]]], rtol=1e-9)
    assert result.rank == rank == 12
    assert np.isclose(result.scores.sum(), rank)
    # the weight matters: heavier energy rows carry more of the leverage
    if energy_weight > 1:
        assert result.energy_part.sum() > block_leverage(d, energy_weight=1.0).energy_part.sum()
    assert result.ridge is None  # more rows than columns: plain leverage


def test_streamed_energy_leverage_equals_dense_svd():
    d = _random_set(n_configs=50, seed=4)
    h, rank = dense_leverage(d.energy_rows)
    result = energy_leverage(d)
    np.testing.assert_allclose(result.scores, h, rtol=1e-9)
    assert result.rank == rank == 12 and np.isclose(result.scores.sum(), 12)


def test_rank_deficient_leverage_sums_to_rank():
    d = _random_set(p=15, rank=6, seed=5)
    x, owner = _stacked(d)
    assert np.linalg.matrix_rank(x) == 6
    result = block_leverage(d, energy_weight=1.0)
    assert result.rank == 6
    assert np.isclose(result.scores.sum(), 6.0, rtol=1e-9)
    h, _ = dense_leverage(x)
    np.testing.assert_allclose(result.scores, np.bincount(owner, weights=h), rtol=1e-8, atol=1e-10)


def _dense_ridge_leverage(x: np.ndarray, lam: float) -> np.ndarray:
    """Test reference: diag of X (XᵀX + λI)⁻¹ Xᵀ by a dense solve."""
    return np.einsum("ij,ji->i", x, np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T))


def test_energy_leverage_of_a_pool_smaller_than_p_is_ridge_leverage_not_uniform():
    """Fewer configurations than columns: plain leverage would be 1 for every configuration (uniform sampling in
    disguise); ridge leverage with the stated λ is used and recorded instead."""
    rng = np.random.default_rng(6)
    # 5 energy rows in 12 columns with singular values over eight decades, as real qSNAP rows have
    u, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    v, _ = np.linalg.qr(rng.normal(size=(12, 5)))
    energy_rows = u @ np.diag(np.logspace(3, -5, 5)) @ v.T
    d = DescriptorSet(energy_rows, rng.normal(size=(15, 12)), np.ones(5, dtype=int), twojmax=4)
    plain, rank = dense_leverage(d.energy_rows)
    np.testing.assert_allclose(plain, 1.0, rtol=1e-10)  # what plain leverage gives here
    few = energy_leverage(d)
    assert few.rank == rank == 5
    assert few.ridge == DEFAULT_LEVERAGE_RIDGE
    assert few.ridge_lambda == pytest.approx(DEFAULT_LEVERAGE_RIDGE * few.singular_values[0] ** 2)
    np.testing.assert_allclose(few.scores, _dense_ridge_leverage(d.energy_rows, few.ridge_lambda), rtol=1e-7)
    assert np.ptp(few.scores) > 1e-3 * few.scores.max()  # not uniform
    assert few.scores.sum() < 5
    # an explicit λ is used as given, also where plain leverage would be informative
    d_many = _random_set(n_configs=50, seed=4)
    explicit = energy_leverage(d_many, ridge=1e-4)
    assert explicit.ridge == 1e-4
    np.testing.assert_allclose(explicit.scores, _dense_ridge_leverage(d_many.energy_rows, explicit.ridge_lambda),
                               rtol=1e-7)
    for bad in (0.0, -1e-3, float("nan"), True):
        with pytest.raises(ValueError, match="λ|ridge"):
            energy_leverage(d, ridge=bad)


def test_energy_leverage_of_the_bundled_pool_at_2jmax_6_is_not_uniform(tmp_path):
    """The bundled training pool (205 configurations) has fewer configurations than 2Jmax-6 columns (496):
    notebook 03's energy sampling must not be uniform sampling under another name."""
    from pyiron_mlip_tradeoff.dataset import load_bundled
    from pyiron_mlip_tradeoff.fitting import dataset_descriptors, dataset_split

    dataset = load_bundled()
    pool, _, _ = dataset_split(dataset)
    desc = dataset_descriptors(dataset, 6, cache_dir=tmp_path)
    result = leverage_scores(lambda: desc.iter_blocks(pool, forces=False), "energy")
    assert result.rank == pool.size < desc.n_columns
    assert result.ridge == DEFAULT_LEVERAGE_RIDGE
    assert result.scores.max() > 5 * result.scores.min()


def test_real_descriptor_leverage(be_descriptors):
    d = be_descriptors
    x, owner = _stacked(d, 150.0)
    rank = np.linalg.matrix_rank(x)
    result = block_leverage(d, energy_weight=150.0)
    assert result.rank == rank
    assert np.isclose(result.scores.sum(), rank, rtol=1e-8)
    h, dense_rank = dense_leverage(x)
    assert dense_rank == rank
    np.testing.assert_allclose(result.scores, np.bincount(owner, weights=h), rtol=1e-6, atol=1e-8)
    e = energy_leverage(d)  # 12 configurations, 120 columns: full row rank, so ridge leverage
    assert e.rank == np.linalg.matrix_rank(d.energy_rows) == 12
    assert e.ridge == DEFAULT_LEVERAGE_RIDGE
    np.testing.assert_allclose(e.scores, _dense_ridge_leverage(d.energy_rows, e.ridge_lambda), rtol=1e-5)


def test_sketched_leverage_approximates_the_exact_scores_and_is_off_by_default(be_descriptors):
    """Sketched block leverage (opt-in) on real descriptors (rank 120 > r): every configuration's score within
    3·√(2/r) relative of the exact one (√(2/r) bounds the relative standard deviation), their mean over 20 sketch
    seeds within 3·√(2/r)/√20, the seed reproducible; without a sketch (the default) or with r ≥ the rank the
    scores are the exact ones, bit for bit."""
    d = be_descriptors
    exact = block_leverage(d, energy_weight=150.0)
    assert exact.sketch_columns is None and exact.rank == 120
    r = 48
    bound = 3 * np.sqrt(2 / r)
    runs = [leverage_scores(d, "block", 150.0, sketch_columns=r, sketch_seed=seed) for seed in range(20)]
    assert all(run.sketch_columns == r for run in runs)
    for run in runs:
        assert np.max(np.abs(run.scores / exact.scores - 1)) < bound
        np.testing.assert_array_equal(run.singular_values, exact.singular_values)  # pass 1 is exact
    mean = np.mean([run.scores for run in runs], axis=0)
    assert np.max(np.abs(mean / exact.scores - 1)) < bound / np.sqrt(len(runs))
    assert not np.allclose(runs[0].scores, exact.scores, rtol=1e-3)  # it is an approximation
    np.testing.assert_array_equal(leverage_scores(d, "block", 150.0, sketch_columns=r, sketch_seed=0).scores,
                                  runs[0].scores)
    full = leverage_scores(d, "block", 150.0, sketch_columns=exact.rank)
    assert full.sketch_columns is None
    np.testing.assert_array_equal(full.scores, exact.scores)
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="sketch_columns"):
            leverage_scores(d, "block", sketch_columns=bad)


def test_leverage_from_plain_block_callable_and_errors():
    d = _random_set(seed=7)
    pairs = [(b.energy_row, b.force_rows) for b in d.iter_blocks()]
    np.testing.assert_allclose(leverage_scores(lambda: iter(pairs), "block").scores, block_leverage(d).scores)
    with pytest.raises(ValueError, match="kind"):
        leverage_scores(d, "forces")
    with pytest.raises(ValueError, match="energy_weight"):
        block_leverage(d, energy_weight=0.0)
    with pytest.raises(ValueError, match="no descriptor blocks"):
        leverage_scores(lambda: iter([]), "energy")


# ---------------------------------------------------------------------------------------------------------------
def test_same_seed_same_subsets_different_seed_differs():
    scores = np.random.default_rng(0).random(200)
    for method in ("proportional", "uniform"):
        a = select(scores, 20, method, seed=11, repetition=2)
        b = select(scores, 20, method, seed=11, repetition=2)
        np.testing.assert_array_equal(a, b)
        assert len(set(a.tolist())) == 20
        assert not np.array_equal(a, select(scores, 20, method, seed=12, repetition=2))
        assert not np.array_equal(a, select(scores, 20, method, seed=11, repetition=3))
    s1 = selections(scores, [5, 20, 50], "proportional", n_repetitions=4, seed=3)
    s2 = selections(scores, [5, 20, 50], "proportional", n_repetitions=4, seed=3)
    for size in (5, 20, 50):
        np.testing.assert_array_equal(s1[size], s2[size])
        assert s1[size].shape == (4, size)
    # nested within a repetition
    np.testing.assert_array_equal(s1[50][:, :20], s1[20])


def test_top_is_deterministic_and_nested():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.0, 0.3])
    np.testing.assert_array_equal(ranking(scores, "top"), [1, 3, 2, 5, 0, 4])
    np.testing.assert_array_equal(select(scores, 3, "top", seed=1), select(scores, 3, "top", seed=99))


def test_proportional_sampling_follows_scores():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    rng = np.random.default_rng(5)
    first = np.array([ranking(scores, "proportional", rng)[0] for _ in range(20000)])
    frequency = np.bincount(first, minlength=5) / len(first)
    np.testing.assert_allclose(frequency, scores / scores.sum(), atol=0.015)
    # zero-leverage configurations are only taken once every positive one is
    order = ranking(scores, "proportional", np.random.default_rng(1))
    assert order[-1] == 4


@pytest.mark.parametrize(
    "args, match",
    [
        (dict(size=0), "outside 1..4"),
        (dict(size=5), "outside 1..4"),
        (dict(size=2, method="best"), "unknown selection method"),
        (dict(size=2, scores=[1.0, -1.0, 0.5, 0.2]), "non-negative"),
        (dict(size=2, scores=[]), "empty"),
    ],
)
def test_bad_selection_input(args, match):
    args = {"scores": [0.1, 0.4, 0.2, 0.3], "method": "proportional", **args}
    with pytest.raises(ValueError, match=match):
        select(args["scores"], args["size"], args["method"], seed=0)


class _LabelTrap(Calculator):
    """A calculator that fails on any request: reading a DFT label would raise."""

    implemented_properties = ["energy", "forces", "stress", "free_energy"]

    def calculate(self, *args, **kwargs):
        raise AssertionError("a DFT label was requested")


def test_selection_reads_no_dft_labels():
    rng = np.random.default_rng(8)
    bare = []
    for i in range(8):
        atoms = bulk("Be", "hcp", a=2.29, c=3.58) * (1 + i % 2, 1, 1)
        atoms.positions += rng.normal(scale=0.05, size=atoms.positions.shape)
        assert atoms.calc is None and "energy" not in atoms.info and "forces" not in atoms.arrays
        bare.append(atoms)
    trapped = [a.copy() for a in bare]
    for atoms in trapped:
        atoms.calc = _LabelTrap()
    for structures in (bare, trapped):
        d = compute_descriptors(structures, 4)
        scores = block_leverage(d, energy_weight=150.0).scores
        picked = select(scores, 3, "proportional", seed=0)
        assert len(set(picked.tolist())) == 3
    bare_scores = block_leverage(compute_descriptors(bare, 4), energy_weight=150.0).scores
    np.testing.assert_allclose(scores, bare_scores)  # the trapped calculators changed nothing
