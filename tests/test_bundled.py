"""The bundled Be dataset: stored calculations are reproducible, progress bookkeeping, the loader."""

import json
import warnings

import numpy as np
import pytest

from pyiron_mlip_tradeoff.bundled import DEFAULT_UNIT_STORE, EMBEDDED_LADDER, collect_bundled, store_status
from pyiron_mlip_tradeoff.dataset import BUNDLED_PATH, load_bundled
from pyiron_mlip_tradeoff.ladder import make_unit, run_ladder
from pyiron_mlip_tradeoff.precision import REFERENCE_LADDER

pytestmark = pytest.mark.skipif(not DEFAULT_UNIT_STORE.is_dir(), reason="no bundled unit store in this checkout")


def _bundled_indexed():
    from pyiron_mlip_tradeoff.bundled import bundled_structures

    structures, _ = bundled_structures()
    return range(len(structures)), structures


@pytest.fixture(scope="module")
def finished_low_levels():
    dataset = collect_bundled(levels=[1, 2])
    if dataset.n_configs < 3:
        pytest.skip("fewer than 3 bundled configurations are finished at levels 1–2")
    return dataset


def test_embedded_ladder_keeps_reference_levels_1_to_4():
    for level in (1, 2, 3, 4):
        assert EMBEDDED_LADDER[level] == REFERENCE_LADDER[level]
    # the cheaper top levels are still ordered: denser k-points and higher cutoff than level 4
    assert EMBEDDED_LADDER[4].kspacing > EMBEDDED_LADDER[5].kspacing > EMBEDDED_LADDER[6].kspacing
    assert EMBEDDED_LADDER[4].cutoff < EMBEDDED_LADDER[5].cutoff <= EMBEDDED_LADDER[6].cutoff


def test_three_stored_configurations_regenerate(finished_low_levels, tmp_path):
    dataset = finished_low_levels
    picks = np.argsort(dataset.n_atoms, kind="stable")[:3]
    sample = dataset.subset(picks)
    fresh = run_ladder(sample.structures, [EMBEDDED_LADDER[1], EMBEDDED_LADDER[2]], tmp_path, cores=2)
    assert not fresh.failed.any()
    per_atom = np.abs(fresh.energy - sample.energy) / sample.n_atoms[None, :]
    assert per_atom.max() < 1e-4  # eV/atom; the SCF is converged to 1e-6 eV per electron
    np.testing.assert_allclose(fresh.forces, sample.forces, atol=2e-3)
    assert (fresh.kmesh == sample.kmesh).all()


def test_status_counts_match_the_store():
    status = store_status()
    files = list((DEFAULT_UNIT_STORE / "units").glob("*.json"))
    assert status.finished.sum() + status.failed.sum() == len(files)
    assert (status.finished + status.failed + status.missing == 410).all()
    some = json.loads(files[0].read_text())
    assert some["engine"] == "gpaw" and "fingerprint" in some


def test_loader():
    if not BUNDLED_PATH.is_file():
        with pytest.raises(FileNotFoundError, match="make-dataset"):
            load_bundled()
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_bundled()
    pending = dataset.metadata["pending_levels"]
    assert dataset.n_configs >= 400
    assert dataset.levels + tuple(pending) == (1, 2, 3, 4, 5, 6)  # the finished levels are a prefix of the ladder
    assert bool(pending) == any("interim" in str(w.message) for w in caught)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_bundled(warn_interim=False)
    assert not any("interim" in str(w.message) for w in caught)
    assert np.isfinite(dataset.energy).all() and np.isfinite(dataset.forces).all()
    assert np.isfinite(dataset.stress).all() and (dataset.core_seconds > 0).all()
    assert not dataset.failed.any()
    assert dataset.metadata["generator_seed"] == 2026 and len(dataset.metadata["families"]) == dataset.n_configs


def test_bundled_file_matches_the_unit_store():
    """The shipped HDF5 file is exactly what the committed calculations give (nothing edited by hand)."""
    if not BUNDLED_PATH.is_file():
        pytest.skip("no bundled file in this checkout")
    shipped = load_bundled(warn_interim=False)
    fresh = collect_bundled(list(shipped.levels))
    assert fresh.n_configs == shipped.n_configs
    np.testing.assert_array_equal(fresh.energy, shipped.energy)
    np.testing.assert_array_equal(fresh.forces, shipped.forces)
    np.testing.assert_array_equal(fresh.core_seconds, shipped.core_seconds)
    np.testing.assert_array_equal(fresh.seconds, shipped.seconds)
    np.testing.assert_array_equal(fresh.stress, shipped.stress)
    np.testing.assert_array_equal(fresh.kmesh, shipped.kmesh)


def test_store_is_keyed_by_fingerprint():
    """Every committed calculation sits under its own fingerprint (the store was migrated from the positional
    ``c<config>_L<level>.json`` layout), and each bundled (configuration, level) has its own file."""
    from pyiron_mlip_tradeoff.bundled import DEFAULT_VALIDATION_STORE

    for store in (DEFAULT_UNIT_STORE, DEFAULT_VALIDATION_STORE):
        files = list((store / "units").glob("*.json"))
        assert files and not list((store / "units").glob("c*_L*.json"))
        for path in files:
            assert json.loads(path.read_text())["fingerprint"] == path.stem
    status = store_status()
    assert status.missing.sum() == 0 and status.finished.sum() + status.failed.sum() == 6 * 410


def test_validation_sample_is_the_stored_top_level_check():
    """The sample rule picks one configuration per family first, cheapest at the reference level, and it still picks
    the configurations whose embedded level 6 is stored in the repository's top-level check."""
    from pyiron_mlip_tradeoff.bundled import DEFAULT_VALIDATION_STORE, REFERENCE_TOP_LEVEL, validation_sample

    dataset = load_bundled(warn_interim=False)
    labels = dataset.metadata["families"]
    families = [label.split("_")[0] for label in labels]
    cost = [len(a) * np.prod(REFERENCE_TOP_LEVEL.kpoint_mesh(a.cell[:])) for a in dataset.structures]
    chosen = validation_sample(dataset.structures, labels, 10, REFERENCE_TOP_LEVEL)
    n_families = len(set(families))
    assert len(chosen) == 10 == len(set(chosen))
    head = chosen[:n_families]
    assert len({families[i] for i in head}) == n_families
    for i in head:
        assert cost[i] == min(c for c, f in zip(cost, families, strict=True) if f == families[i])
    rest = [c for j, c in enumerate(cost) if j not in head]
    assert sorted(cost[i] for i in chosen[n_families:]) == sorted(rest)[: 10 - n_families]
    assert validation_sample(dataset.structures, labels, 3, REFERENCE_TOP_LEVEL) == chosen[:3]

    if 6 not in dataset.levels:
        return
    top = dataset.levels.index(6)
    n_checked = 0
    for index in chosen:
        stored = make_unit(index, dataset.structures[index], EMBEDDED_LADDER[6], DEFAULT_VALIDATION_STORE, "gpaw").path
        if stored.is_file():
            n_checked += 1
            assert json.loads(stored.read_text())["energy"] == pytest.approx(dataset.energy[top, index], abs=1e-6)
    assert n_checked == 10


def test_validate_top_level_table_from_stored_units(tmp_path):
    """The check's table, on cheap stand-in levels (1 against 2), equals the differences of the stored calculations."""
    from pyiron_mlip_tradeoff.bundled import validate_top_level

    table = validate_top_level(3, unit_store=tmp_path, cores=2, progress=False,
                               embedded=REFERENCE_LADDER[1], reference=REFERENCE_LADDER[2])
    assert len(table) == 3
    structures = {int(i): a for i, a in zip(*_bundled_indexed(), strict=True)}
    for _, row in table.iterrows():
        atoms = structures[int(row.config)]
        low, high = (json.loads(make_unit(0, atoms, REFERENCE_LADDER[lv], tmp_path, "gpaw").path.read_text())
                     for lv in (1, 2))
        assert low["error"] is None and high["error"] is None
        n = len(low["forces"])
        assert row.n_atoms == n
        assert row.energy_diff == pytest.approx((low["energy"] - high["energy"]) / n * 1e3, rel=1e-12)
        dforce = (np.array(low["forces"]) - np.array(high["forces"])) * 1e3
        assert row.force_rmse == pytest.approx(np.sqrt(np.mean(dforce**2)), rel=1e-12)
        assert row.max_force_diff == pytest.approx(np.abs(dforce).max(), rel=1e-12)
        assert row.core_seconds_embedded == low["core_seconds"] and row.core_seconds_reference == high["core_seconds"]
    assert (table.energy_diff.abs() > 0).all()  # Γ only and a k-mesh really differ
