"""``RecipePlanner`` end to end with real GPAW: a dozen small Be cells, levels 1–3, the planner asks, children compute.

The pool is the session's ``small_dataset`` structures; the planner's children share that fixture's store of finished
calculations, so what the fixture already computed is reused (by fingerprint) and anything else runs in GPAW here.
"""

from __future__ import annotations

import numpy as np
import pytest

from pyiron_mlip_tradeoff.structures import generate_structures


@pytest.fixture(scope="module")
def pool():
    structures, _ = generate_structures(12, seed=11, oversample=3, max_atoms=4)  # as the small_dataset fixture
    return structures


def _planner(project, name, pool, store, **inp):
    plan = project.create.job.RecipePlanner(name)
    plan.input.structures = pool
    plan.input.levels = [1, 2, 3]
    plan.input.cores = 2
    plan.input.max_energy_rmse = 200.0
    plan.input.max_force_rmse = 2000.0
    plan.input.validation_size = 4
    plan.input.pilot_size = 3
    plan.input.twojmax_values = [2, 4]
    plan.input.planner_options = {"start_size": 4}
    plan.input.unit_store = str(store)
    for key, value in inp.items():
        plan.input[key] = value
    return plan


def test_planner_computes_only_what_it_asks_for_and_fits_the_recipe(project, pool, small_dataset, session_dir):
    store = session_dir / "small_dataset_ladder"
    plan = _planner(project, "plan", pool, store)
    plan.run()
    assert plan.status.finished
    out = plan.output
    children = project.job_table(recursive=True)
    ladders = children[children.hamilton == "PrecisionLadder"]
    assert sorted(ladders.job) == sorted(out.requests)
    # every calculation a child computed is one the planner asked for, each (configuration, level) at most once
    asked = []
    for name in out.requests:
        child = project.load(name)
        data = child.to_dataset()
        level = int(data.levels[0])
        asked += [(level, tuple(np.round(a.positions.ravel(), 6))) for a in data.structures]
    assert len(asked) == len(set(asked))
    assert len(asked) < 3 * len(pool)  # not the whole ladder
    # the recommended recipe as a QSnapFit child, trained on exactly the configurations the planner chose
    fit = plan.get_fit()
    assert fit.status.finished
    recipe = out.recipe
    assert int(fit.input.training_level) == int(recipe["level"])
    assert len(fit.input.train_indices) == int(recipe["n_train"])
    # its validation errors (vs level 3) are the planner's achieved ones: one fit, computed twice
    assert float(fit.output.validation_energy_rmse) == pytest.approx(out.achieved_energy_rmse, rel=1e-6)
    assert float(fit.output.validation_force_rmse) == pytest.approx(out.achieved_force_rmse, rel=1e-6)
    assert out.spent_seconds > 0
    assert bool(out.targets_met) == (out.achieved_energy_rmse <= 200.0 and out.achieved_force_rmse <= 2000.0)

    # an interrupted planner resumes: the same questions are answered by the finished children, nothing recomputed
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*.json")}
    n_jobs = len(project.job_table(recursive=True))
    plan.status.aborted = True
    plan.run()
    assert plan.status.finished
    assert len(project.job_table(recursive=True)) == n_jobs
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*.json")} == before
    assert list(plan.output.requests) == list(out.requests)


@pytest.mark.parametrize(
    ("inp", "message"),
    [
        ({"max_energy_rmse": 0.0}, "max_energy_rmse"),
        ({"max_force_rmse": -1.0}, "max_force_rmse"),
        ({"levels": [3]}, "at least two"),
        ({"validation_size": 10}, "pool has 12 configurations"),
        ({"budget_seconds": 1e-3, "planner_options": {"start_size": 4}}, "budget"),
    ],
)
def test_bad_input_is_refused_before_anything_is_saved(project, pool, session_dir, inp, message):
    plan = _planner(project, "bad", pool, session_dir / "unused_store", **inp)
    with pytest.raises((ValueError, TypeError), match=message):
        plan.run()
    assert len(project.job_table()) == 0
    assert not (session_dir / "unused_store").exists()


def test_md_speed_target_is_measured_per_twojmax_before_any_dft(project, pool, session_dir):
    """``min_md_speed``: MDSpeed probes (real LAMMPS) per 2Jmax first; a speed no 2Jmax reaches ends the plan
    before any DFT with the measured speeds in the message."""
    store = session_dir / "md_speed_store"
    plan = _planner(project, "fast", pool, store, min_md_speed=1e12)
    with pytest.raises(ValueError, match="no 2Jmax tried runs at min_md_speed"):
        plan.run()
    speeds = {tj: float(project.load(f"fast_md_2j{tj}").output.atom_steps_per_second) for tj in (2, 4)}
    assert all(0 < s < 1e12 for s in speeds.values())
    assert speeds[2] > speeds[4]  # the bigger model is slower
    assert not store.exists()  # no DFT was started
