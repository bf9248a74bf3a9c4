"""The grid's per-draw path: one streamed pass over a draw reads each chunk file once, and a grid point's error
table is built only on request, with the same numbers.

The data are real: the bundled Be ladder (GPAW) and its 2Jmax 4 descriptors in a chunked cache (LAMMPS).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pyiron_mlip_tradeoff.dataset import load_bundled
from pyiron_mlip_tradeoff.descriptor_cache import compute_chunked_descriptors
from pyiron_mlip_tradeoff.fitting import (
    _Clock,
    _once_per_grid_parts,
    draw_statistics,
    errors_table,
    labelled_blocks,
    plan_grid,
    run_grid,
)
from pyiron_mlip_tradeoff.leverage import leverage_scores
from pyiron_mlip_tradeoff.regression import statistics_for_nested_subsets

N_CONFIGS = 60


@pytest.fixture(scope="module")
def chunked(tmp_path_factory):
    """The first 60 configurations of the bundled dataset and their descriptors in chunks of 7."""
    dataset = load_bundled(warn_interim=False).subset(range(N_CONFIGS))
    cache = compute_chunked_descriptors(tmp_path_factory.mktemp("chunks"), dataset.structures, 4, chunk_size=7)
    return dataset, cache


def _count_opens(monkeypatch, folder) -> list[str]:
    """Names of the chunk files of ``folder`` h5py opens from now on."""
    opened = []
    original = h5py.File.__init__

    def counting(self, name, *args, **kwargs):
        if str(name).startswith(str(folder)):
            opened.append(str(name))
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "__init__", counting)
    return opened


def test_a_draw_opens_each_chunk_once_and_gives_the_same_statistics(chunked, monkeypatch):
    """Nested subsets folded segment by segment (each segment spread over all chunks): every chunk file is opened
    once for the whole pass (it was once per segment), and every snapshot is bit for bit that of the same segments
    folded with a file opened per read."""
    dataset, cache = chunked
    order = np.random.default_rng(3).permutation(N_CONFIGS)[:45]
    sizes = [5, 12, 30, 45]
    segments = [np.sort(order[a:b]) for a, b in zip([0, *sizes[:-1]], sizes, strict=True)]

    def blocks():
        for segment in segments:
            yield from labelled_blocks(dataset, cache, segment)

    opened = _count_opens(monkeypatch, cache.path)
    expected = list(statistics_for_nested_subsets(blocks(), sizes, levels=tuple(dataset.levels)))
    assert len(opened) == sum(len({int(k) // cache.chunk_size for k in s}) for s in segments)  # per segment
    opened.clear()
    kept = []
    for size, stats in draw_statistics(dataset, cache, order, sizes):
        kept.append((size, stats))
        assert cache._keep is not None  # the pass holds its files open while it runs
    assert cache._keep is None  # and closes them when it ends
    chunks_read = {int(k) // cache.chunk_size for k in order}
    assert sorted(opened) == sorted({str(cache.chunk_path(k)) for k in chunks_read})  # once each
    assert len(chunks_read) < sum(len({int(k) // cache.chunk_size for k in s}) for s in segments)
    with cache.kept_open(max_open=cache.n_chunks - 1):  # more chunks than the cap: none kept (all or nothing)
        assert cache._keep is None
    for (size, a), (size_b, b) in zip(expected, kept, strict=True):
        assert size == size_b
        for part_a, part_b in zip(a.parts, b.parts, strict=True):
            np.testing.assert_array_equal(part_a.factor, part_b.factor)


def test_grid_point_errors_are_built_on_request_with_the_same_numbers(chunked):
    """A grid point keeps its error sets; its table (built on first access) is what errors_table gives, and its
    summary, taken from the sets without the table, is what the table gives."""
    dataset, cache = chunked
    spec = plan_grid(dataset, [6, 14], levels=[1, 3], weight_ratios=[10.0, 150.0], twojmax=[4], sampling=["random"],
                     repetitions=1)
    points = list(run_grid(dataset, spec, descriptors={4: cache}))
    assert len(points) == 8
    for point in points:
        result = point.result
        assert result._errors is None  # nothing built yet
        sets = dict(result._error_sets)
        lazy = result.summary()
        assert result._errors is None  # the summary did not build it either
        table = result.errors
        assert table.equals(errors_table(sets))
        result._error_sets = None  # the summary from the table only
        from_table = result.summary()
        assert lazy.keys() == from_table.keys()
        for key, value in lazy.items():
            assert value == from_table[key] or (np.isnan(value) and np.isnan(from_table[key])), key
        assert not np.isnan(lazy["test_force_rmse"]) and not np.isnan(lazy["validation_energy_rmse"])


def test_sketched_leverage_is_opt_in_for_a_grid(chunked):
    """A grid's leverage scores are the exact ones unless ``leverage_sketch`` is given; then they are the sketched
    scores of that many columns, seeded by the grid's seed. A bad value is refused before anything is computed."""
    dataset, cache = chunked
    exact = plan_grid(dataset, [6], twojmax=[4], sampling=["block"], seed=5)
    sketched = plan_grid(dataset, [6], twojmax=[4], sampling=["block"], seed=5, leverage_sketch=16)
    assert exact.leverage_sketch is None and sketched.leverage_sketch == 16
    for spec, columns in ((exact, None), (sketched, 16)):
        common = {"offsets": None, "stress": False, "grouped": False}
        scores = _once_per_grid_parts(dataset, spec, cache, 4, common, lambda key: False, _Clock(None))
        expected = leverage_scores(lambda s=spec: cache.iter_blocks(s.pool), "block", spec.leverage_energy_weight,
                                   sketch_columns=columns, sketch_seed=5)
        assert expected.sketch_columns == columns
        np.testing.assert_array_equal(scores["leverage_block"](), expected.scores)
    with pytest.raises(ValueError, match="sketch_columns"):
        plan_grid(dataset, [6], twojmax=[4], sampling=["block"], leverage_sketch=0)
