"""GPAW run for real on tiny Be cells at low levels: physics checks, not stored numbers."""

import numpy as np
import pytest

from pyiron_mlip_tradeoff.dft.gpaw import gpaw_parameters, missing_setups, run_gpaw
from pyiron_mlip_tradeoff.ladder import run_ladder
from pyiron_mlip_tradeoff.precision import REFERENCE_LADDER, PrecisionLevel


@pytest.fixture(scope="module")
def ladder_results(tmp_path_factory, request):
    """Perfect and displaced 2-atom hcp Be at levels 1–3, two calculations side by side."""
    from ase.build import bulk

    perfect = bulk("Be", "hcp", a=2.29, c=3.58)
    displaced = perfect.copy()
    displaced.positions[0] += [0.08, 0.0, 0.0]
    workdir = tmp_path_factory.mktemp("ladder")
    results = run_ladder([perfect, displaced], [1, 2, 3], workdir, cores=2, engine_options={"symmetry": "off"})
    return results, workdir


def test_parameters_follow_the_level(hcp_be):
    params = gpaw_parameters(hcp_be, REFERENCE_LADDER[3])
    assert params["ecut"] == 400.0 and params["xc"] == "PBE"
    assert params["kpts"] == {"size": (5, 5, 3), "gamma": True}
    assert params["occupations"] == {"name": "methfessel-paxton", "width": 0.2, "order": 1}
    assert params["convergence"]["energy"] <= 1e-6


def test_perfect_hcp_forces_vanish_by_symmetry(ladder_results):
    results, _ = ladder_results
    # symmetry is switched off in GPAW, so vanishing forces come from the physics, not from symmetrisation
    assert np.abs(results.forces[:, 0:2]).max() < 2e-3


def test_displaced_cell_has_restoring_forces_summing_to_zero(ladder_results):
    results, _ = ladder_results
    forces = results.forces[:, 2:4]  # configuration 1, levels 1–3
    assert np.abs(forces.sum(axis=1)).max() < 5e-3  # Newton's third law / translation invariance
    # atom 0 was pushed along +x: at converged-enough levels it is pulled back
    assert (forces[1:, 0, 0] < -0.05).all()
    assert np.abs(forces).max() > 0.05


def test_kmesh_and_levels_differ(ladder_results):
    results, _ = ladder_results
    assert tuple(results.kmesh[0, 0]) == (1, 1, 1)
    assert tuple(results.kmesh[1, 0]) == (4, 4, 2)
    energies = results.energy[:, 0]
    assert np.isfinite(energies).all()
    assert abs(energies[0] - energies[1]) > 0.05 and abs(energies[1] - energies[2]) > 1e-4
    # the displaced cell is higher in energy than the perfect one at every level beyond Γ-only
    assert (results.energy[1:, 1] > results.energy[1:, 0]).all()


def test_cost_and_bookkeeping_recorded(ladder_results):
    results, _ = ladder_results
    assert (results.seconds > 0).all() and (results.core_seconds > 0).all()
    assert (results.scf_iterations > 1).all()
    assert np.isfinite(results.stress).all()
    assert not results.failed.any() and results.pending == []
    assert results.metadata["engine_versions"][0].startswith("gpaw ")


def test_rerun_recomputes_nothing(ladder_results):
    results, workdir = ladder_results
    files = sorted((workdir / "units").glob("*.json"))
    assert len(files) == 6
    stamps = {f: f.stat().st_mtime_ns for f in files}
    from ase.build import bulk

    perfect = bulk("Be", "hcp", a=2.29, c=3.58)
    displaced = perfect.copy()
    displaced.positions[0] += [0.08, 0.0, 0.0]
    again = run_ladder([perfect, displaced], [1, 2, 3], workdir, engine_options={"symmetry": "off"})
    assert {f: f.stat().st_mtime_ns for f in files} == stamps
    np.testing.assert_array_equal(again.energy, results.energy)


def test_changed_structure_is_recomputed(tmp_path, hcp_be):
    run_ladder([hcp_be], [1], tmp_path)
    (first,) = (tmp_path / "units").glob("*.json")
    stamp = first.stat().st_mtime_ns
    moved = hcp_be.copy()
    moved.positions[1] += [0.0, 0.0, 0.05]
    changed = run_ladder([moved], [1], tmp_path)
    files = sorted((tmp_path / "units").glob("*.json"))
    assert len(files) == 2 and first.stat().st_mtime_ns == stamp  # a new calculation, the first one kept
    assert not changed.failed.any()


def test_scf_not_converged_is_a_failed_result(hcp_be):
    result = run_gpaw(hcp_be, REFERENCE_LADDER[1], maxiter=2)
    assert result.failed and "onverge" in result.error
    assert np.isnan(result.energy) and np.isnan(result.forces).all()


def test_failed_level_leaves_the_others_intact(tmp_path, hcp_be, rattled_be):
    broken = PrecisionLevel(7, None, 2.0)  # a 2 eV cutoff: GPAW itself fails on it
    results = run_ladder([hcp_be, rattled_be], [1, broken], tmp_path)
    assert results.failed.tolist() == [[False, False], [True, True]]
    assert all(msg for msg in results.messages[1]) and results.messages[0] == ["", ""]
    assert np.isfinite(results.energy[0]).all() and np.isnan(results.energy[1]).all()
    dataset = results.to_dataset()
    assert dataset.failed.sum() == 2
    assert dataset.select_levels([1]).failed.sum() == 0


def test_missing_setup_detected():
    assert missing_setups(["Be", "Al"]) == []
    assert missing_setups(["Be", "Tc"]) == ["Tc"]
