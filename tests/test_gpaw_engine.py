"""GPAW run for real on tiny Be cells at low levels: physics checks, not stored numbers."""

import json

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


# ---------------------------------------------------------------------------------------------------------------
# a store keyed by what is computed
def _counting():
    computed = []
    return computed, lambda unit, result: computed.append(unit.fingerprint)


def test_two_ladders_share_a_store(tmp_path, hcp_be, rattled_be):
    """Ladders with different structure lists share one store: nothing finished is recomputed or overwritten."""
    from ase.build import bulk

    bcc = bulk("Be", "bcc", a=2.55)
    first_done, on_first = _counting()
    first = run_ladder([hcp_be, rattled_be], [1, 2], tmp_path, cores=2, on_result=on_first)
    assert len(first_done) == 4
    stamps = {f: f.stat().st_mtime_ns for f in (tmp_path / "units").glob("*.json")}
    assert len(stamps) == 4

    # another list: a new structure first, the first ladder's two swapped, one of them twice
    second_done, on_second = _counting()
    second = run_ladder([bcc, rattled_be, hcp_be, rattled_be], [1, 2], tmp_path, cores=2, on_result=on_second)
    assert len(second_done) == 2  # only bcc at levels 1 and 2: the first ladder's four are reused
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps  # and none of them was rewritten
    np.testing.assert_array_equal(second.energy[:, [2, 1]], first.energy)
    np.testing.assert_array_equal(second.energy[:, 3], second.energy[:, 1])

    # the first ladder again, and a ladder of the same calculations under other level numbers: 0 recomputed
    third_done, on_third = _counting()
    again = run_ladder([hcp_be, rattled_be], [1, 2], tmp_path, on_result=on_third)
    renamed = run_ladder([rattled_be], [PrecisionLevel(11, None, 300.0)], tmp_path, on_result=on_third)
    assert third_done == []
    np.testing.assert_array_equal(again.energy, first.energy)
    assert renamed.energy[0, 0] == first.energy[0, 1]
    assert len(list((tmp_path / "units").glob("*.json"))) == 6


def test_old_positional_store_is_adopted(tmp_path, hcp_be):
    """A store written in the old layout (``units/c<config>_L<level>.json``) is used, not recomputed."""
    import json

    from pyiron_mlip_tradeoff.dft.base import legacy_fingerprint

    result = run_gpaw(hcp_be, REFERENCE_LADDER[1])
    old = tmp_path / "units" / "c00000_L1.json"
    old.parent.mkdir(parents=True)
    data = result.to_dict()
    data["fingerprint"] = legacy_fingerprint(hcp_be, REFERENCE_LADDER[1], "gpaw", {})
    old.write_text(json.dumps(data))
    foreign = tmp_path / "units" / "c00001_L1.json"  # another ladder's calculation at that position
    foreign.write_text(json.dumps({**data, "fingerprint": "0" * 24}))
    done, on_result = _counting()
    results = run_ladder([hcp_be, hcp_be.repeat((1, 1, 2))], [1], tmp_path, on_result=on_result)
    assert len(done) == 1 and results.energy[0, 0] == result.energy  # the second structure is computed
    assert not old.exists() and foreign.exists()


# ---------------------------------------------------------------------------------------------------------------
# engine options
def test_spin_polarised_iron_from_initial_moments(tmp_path):
    """bcc Fe with initial moments of 2.5 μB ends near its moment of ~2.2 μB and below the non-magnetic state."""
    from ase.build import bulk

    level = PrecisionLevel(1, 1.0, 250.0)  # 4 × 4 × 4 k-points on the 1-atom cell: seconds
    magnetic = bulk("Fe", "bcc", a=2.83)
    magnetic.set_initial_magnetic_moments([2.5])
    flat = bulk("Fe", "bcc", a=2.83)
    flat.set_initial_magnetic_moments([0.0])  # ASE's bulk() would start Fe at 2.3 μB
    options = {"convergence": {"energy": 1e-5, "density": 1e-4}, "mixer": {"beta": 0.1, "nmaxold": 5, "weight": 50.0}}
    results = run_ladder([magnetic, flat], [level], tmp_path, cores=2, engine_options=options)
    assert not results.failed.any(), results.messages
    stored = sorted(json.loads(p.read_text())["extra"].get("magnetic_moment", 0.0)
                    for p in (tmp_path / "units").glob("*.json"))
    assert stored[0] == 0.0 and 1.8 < stored[1] < 2.6  # μB per atom; the flat start stays non-magnetic
    assert results.energy[0, 0] < results.energy[0, 1] - 0.2  # ferromagnetic bcc Fe is far below (~0.5 eV)


def test_engine_options_checked_and_passed(hcp_be):
    from pyiron_mlip_tradeoff.dft.base import InputError
    from pyiron_mlip_tradeoff.dft.gpaw import check_engine_options
    from pyiron_mlip_tradeoff.ladder import validate_ladder_input

    options = {"spinpol": True, "mixer": {"name": "pulay", "beta": 0.05, "nmaxold": 5, "weight": 50.0},
               "nbands": "150%", "setups": {"Be": "paw"}}
    params = gpaw_parameters(hcp_be, REFERENCE_LADDER[1], **options)
    assert all(params[key] == value for key, value in options.items())
    for bad, match in [
        ({"kpts": 3}, r"unknown GPAW engine option\(s\) \['kpts'\]"),
        ({"mixer": {"beta": 2.0}}, "beta must be in"),
        ({"mixer": {"betta": 0.1}}, "not accepted by GPAW"),
        ({"nbands": "lots"}, "nbands"),
        ({"spinpol": "yes"}, "spinpol"),
        ({"convergence": {"energie": 1e-5}}, "convergence"),
    ]:
        with pytest.raises(InputError, match=match):
            check_engine_options(bad)
    with pytest.raises(InputError, match=r"no GPAW PAW setup installed for \['Be \(sc\)'\]"):
        validate_ladder_input([hcp_be], [1], "gpaw", {"setups": {"Be": "sc"}})
    assert missing_setups(["Ag"], setups={"Ag": "11"}) == []  # Ag.11.PBE ships with gpaw-data


def test_result_without_energy_or_timing_is_failed():
    from pyiron_mlip_tradeoff.dft.base import CalculationResult

    good = CalculationResult(-1.0, np.zeros((2, 3)), np.zeros(6), 1.0, 1.0, (1, 1, 1), engine="vasp")
    assert good.checked(2) is good
    no_time = CalculationResult(-1.0, np.zeros((2, 3)), np.zeros(6), float("nan"), 1.0, (1, 1, 1), engine="vasp")
    assert no_time.checked(2).failed and "no timing" in no_time.checked(2).error
    no_energy = CalculationResult(float("nan"), np.zeros((2, 3)), np.zeros(6), 1.0, 1.0, (1, 1, 1))
    assert "no energy" in no_energy.checked(2).error
    assert "forces" in good.checked(3).error
