"""The recipe planner's core: bad input, the cost model, learning curves, determinism and a small replay on the
bundled (really computed) Be ladder."""

import math

import numpy as np
import pytest

from pyiron_mlip_tradeoff.cost_model import CostModel, cost_features
from pyiron_mlip_tradeoff.dataset import load_bundled
from pyiron_mlip_tradeoff.learning_curves import fit_learning_curve
from pyiron_mlip_tradeoff.planner import Planner, PlannerTargets, Request
from pyiron_mlip_tradeoff.planner_replay import (
    ReplayEngine,
    recipe_test_errors,
    replay_sets,
    run_plan,
    true_cheapest,
)
from pyiron_mlip_tradeoff.precision import PrecisionLevel


@pytest.fixture(scope="module")
def bundled():
    return load_bundled(warn_interim=False)


@pytest.fixture(scope="module")
def small_replay(bundled):
    """A reduced candidate pool (150 of the split's 308) and the held-out test set."""
    candidates, test, _, _ = replay_sets(bundled)
    rng = np.random.default_rng(7)
    return np.sort(rng.choice(candidates, 150, replace=False)), test


FAST = {"twojmax_values": (4,), "energy_weights": (5.0, 50.0), "start_size": 20, "pilot_size": 6,
        "validation_size": 10}


# ---------------------------------------------------------------------------------------------------------------
# bad input, each refused before anything is computed


@pytest.mark.parametrize("kwargs, match", [
    ({"max_energy_rmse": 0.0, "max_force_rmse": 100.0}, "max_energy_rmse"),
    ({"max_energy_rmse": 10.0, "max_force_rmse": -1.0}, "max_force_rmse"),
    ({"max_energy_rmse": float("nan"), "max_force_rmse": 100.0}, "max_energy_rmse"),
    ({"max_energy_rmse": 10.0, "max_force_rmse": 100.0, "min_md_speed": 0}, "min_md_speed"),
    ({"max_energy_rmse": 10.0, "max_force_rmse": 100.0, "max_twojmax": 0}, "max_twojmax"),
])
def test_bad_targets(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PlannerTargets(**kwargs)


def _pool(bundled, n=60):
    return [bundled.structures[i] for i in range(n)]


@pytest.mark.parametrize("options, match", [
    ({"budget_seconds": 0.0}, "budget_seconds"),
    ({"budget_seconds": -5.0}, "budget_seconds"),
    ({"reference_level": 9}, "reference_level 9 is not a level"),
    ({"validation_size": 4, "pilot_size": 8}, "at least pilot_size"),
    ({"pilot_size": 2}, "pilot_size"),
    ({"validation_size": 40, "start_size": 30}, "fewer than the pilot/validation set"),
    ({"twojmax_values": (5,)}, "even integers"),
    ({"energy_weights": (0.0,)}, "w_E/w_F"),
    ({"safety": -1.0}, "safety"),
    ({"cv_folds": 1}, "cv_folds"),
])
def test_bad_planner_options(bundled, options, match):
    targets = PlannerTargets(100.0, 500.0)
    with pytest.raises(ValueError, match=match):
        Planner(_pool(bundled), bundled.level_settings, targets, **options)


def test_one_level_ladder_refused(bundled):
    with pytest.raises(ValueError, match="at least two precision levels"):
        Planner(_pool(bundled), [bundled.level_settings[6]], PlannerTargets(100.0, 500.0))


def test_pool_too_small_refused(bundled):
    with pytest.raises(ValueError, match="the pool has 20 configurations"):
        Planner(_pool(bundled, 20), bundled.level_settings, PlannerTargets(100.0, 500.0))


def test_budget_smaller_than_pilot_refused_up_front(bundled):
    prior = CostModel.from_dataset(bundled)
    # the cheapest possible 8-configuration pilot costs more than 10 CPU s on the bundled ladder
    with pytest.raises(ValueError, match="smaller than the cheapest possible pilot"):
        Planner(_pool(bundled), bundled.level_settings, PlannerTargets(100.0, 500.0), budget_seconds=10.0,
                cost_prior=prior)
    # a budget that pays the pilot is accepted
    Planner(_pool(bundled), bundled.level_settings, PlannerTargets(100.0, 500.0), budget_seconds=5000.0,
            cost_prior=prior, twojmax_values=(4,))


def test_twojmax_and_md_speed_limits(bundled):
    with pytest.raises(ValueError, match="excludes every 2Jmax"):
        Planner(_pool(bundled), bundled.level_settings, PlannerTargets(100.0, 500.0, max_twojmax=2))
    with pytest.raises(ValueError, match="needs md_speeds"):
        Planner(_pool(bundled), bundled.level_settings, PlannerTargets(100.0, 500.0, min_md_speed=1e4))
    with pytest.raises(ValueError, match="no 2Jmax tried runs at"):
        Planner(_pool(bundled), bundled.level_settings, PlannerTargets(100.0, 500.0, min_md_speed=1e6),
                md_speeds={4: 4e5, 6: 1e5})


def test_ambiguous_ladder_needs_reference_level(bundled):
    levels = [PrecisionLevel(1, 0.5, 400.0), PrecisionLevel(2, 0.5, 400.0)]
    with pytest.raises(ValueError, match="ambiguous ladder"):
        Planner(_pool(bundled), levels, PlannerTargets(100.0, 500.0))


# ---------------------------------------------------------------------------------------------------------------
# cost model and learning curves


def test_cost_model_recovers_recorded_seconds(bundled):
    """Fitted to 8 configurations per level, the model predicts the other 402 configurations' recorded CPU seconds:
    per-level totals within 15 %, the median configuration within 25 %."""
    rng = np.random.default_rng(0)
    pick = rng.choice(bundled.n_configs, 8, replace=False)
    rest = np.setdiff1d(np.arange(bundled.n_configs), pick)
    model = CostModel.from_dataset(bundled.subset(pick))
    log_atoms, log_k = cost_features(bundled.structures, [bundled.level_settings[lv] for lv in bundled.levels])
    for j, lv in enumerate(bundled.levels):
        predicted = model.predict(lv, log_atoms[rest], log_k[j, rest])
        recorded = bundled.core_seconds[j, rest]
        assert abs(predicted.sum() / recorded.sum() - 1) < 0.15, lv
        assert np.median(np.abs(predicted / recorded - 1)) < 0.25, lv
    # the atom exponent of plane-wave DFT on these small cells is close to linear
    assert 0.8 < model.atom_exponent < 1.3


def test_learning_curve_recovers_parameters():
    sizes = np.array([10, 15, 20, 30, 45, 70, 100, 150, 200])
    floor, limit, a, b = 20.0, 25.0, 4.0e5, 1.3
    asymptote = math.hypot(floor, limit)
    values = np.sqrt(asymptote**2 + a * sizes**-b)
    curve = fit_learning_curve(sizes, values, floor, n_trials=400)
    assert curve.asymptote == pytest.approx(asymptote, rel=0.02)
    assert curve.exponent == pytest.approx(b, rel=0.05)
    assert curve.amplitude == pytest.approx(a, rel=0.3)
    assert curve.sigma < 0.02
    # carried to a level with a lower floor, the model's own limit is kept
    lower = curve.at_floor(5.0)
    assert lower.asymptote == pytest.approx(math.hypot(5.0, limit), rel=0.05)
    # the size needed for an error on the curve is where the curve crosses it
    target = float(np.sqrt(asymptote**2 + a * 60.0**-b))
    assert curve.size_needed(target) == pytest.approx(60.0, rel=0.05)
    assert math.isinf(curve.size_needed(0.9 * asymptote))
    # noisy points: an uncertainty and an upper prediction above the central one
    noisy = values * np.exp(np.random.default_rng(1).normal(0, 0.05, sizes.size))
    c2 = fit_learning_curve(sizes, noisy, floor)
    assert c2.sigma > 0 and c2.predict(50, 1.0) > c2.predict(50)
    with pytest.raises(ValueError, match="do not fall"):
        fit_learning_curve([10, 20, 40], [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------------------------------------------------
# the protocol on replayed DFT


def _requests(bundled, candidates, targets, **options):
    planner = Planner([bundled.structures[i] for i in candidates], bundled.level_settings, targets,
                      **{**FAST, **options})
    engine = ReplayEngine(bundled, candidates)
    seen = []
    while (request := planner.next_request()) is not None:
        assert planner.next_request() == request  # the same answer until told
        seen.append(request)
        planner.tell(request, engine(request))
    return planner, seen


def test_small_replay_meets_target_on_test_set_and_is_deterministic(bundled, small_replay):
    candidates, test = small_replay
    targets = PlannerTargets(200.0, 800.0)
    planner, requests = _requests(bundled, candidates, targets)
    report = planner.report()
    assert report.finished and report.targets_met, report.messages
    assert [r.stage for r in requests[:6]] == ["pilot"] * 6
    # nothing is ever asked twice at one level
    asked = [(r.level, i) for r in requests for i in r.indices]
    assert len(asked) == len(set(asked))
    # validation configurations are never trained on; the recipe's configurations were computed at its level
    recipe = report.recipe
    assert not set(recipe.indices) & set(report.validation_indices)
    assert all((recipe.level, i) in set(asked) for i in recipe.indices)
    # spend: pilot at every level + the rest, equal to the recorded CPU seconds of what was served
    served = sum(bundled.core_seconds[bundled.level_index(lv), candidates[i]] for lv, i in asked)
    assert report.total_seconds == pytest.approx(served)
    assert report.total_seconds < 0.2 * bundled.core_seconds[:, candidates].sum()
    # judged on the held-out test set at the reference level
    e, f = recipe_test_errors(bundled, candidates, recipe.indices, recipe.level, recipe.energy_weight, recipe.twojmax,
                       test, 6)
    assert e <= targets.max_energy_rmse and f <= targets.max_force_rmse
    # the planner's own coefficients judged on the same test set agree with the fit_qsnap refit (another fold order)
    judged = planner.report(test=bundled.subset(test))
    assert judged.test_energy_rmse == pytest.approx(e, rel=1e-6)
    assert judged.test_force_rmse == pytest.approx(f, rel=1e-6)
    # the same inputs and results give the same requests
    _, again = _requests(bundled, candidates, targets)
    assert again == requests
    _, other_seed = _requests(bundled, candidates, targets, seed=3)
    assert other_seed[0] != requests[0]


def test_failed_calculations_are_excluded_and_never_asked_again(bundled, small_replay):
    candidates, _ = small_replay
    planner = Planner([bundled.structures[i] for i in candidates], bundled.level_settings,
                      PlannerTargets(150.0, 800.0), **FAST)
    engine = ReplayEngine(bundled, candidates)
    request = planner.next_request()
    with pytest.raises(ValueError, match="waiting for"):
        planner.tell(Request("pilot", request.level, request.indices[:1]), engine(request))
    results = engine(request)
    results.failed[0, 1] = True
    planner.tell(request, results)
    assert any("failed" in m for m in planner.report().messages)
    while (nxt := planner.next_request()) is not None:
        if nxt.level == request.level:
            assert request.indices[1] not in nxt.indices
        planner.tell(nxt, engine(nxt))
    assert request.indices[1] not in planner.report().recipe.indices or planner.report().recipe.level != request.level


def test_budget_stops_the_plan_and_says_so(bundled, small_replay):
    candidates, _ = small_replay
    # after the pilot every batch is priced by the cost model: a batch that would overrun is cut, then the plan stops
    planner, engine = run_plan(bundled, candidates, PlannerTargets(40.0, 250.0), budget_seconds=1000.0, **FAST)
    report = planner.report()
    assert not report.targets_met
    assert report.spent_seconds["recipe"] > 0
    assert report.total_seconds <= 1000.0 * 1.1  # the cost model's error on the last, cut batch
    assert any("is cut from" in m for m in report.messages)
    assert "budget cannot pay" in report.messages[-1]
    # without a cost prior the pilot itself cannot be priced: a budget below it stops the plan right after it
    planner, _ = run_plan(bundled, candidates, PlannerTargets(40.0, 250.0), budget_seconds=300.0, **FAST)
    report = planner.report()
    assert {r["stage"] for r in report.requests} == {"pilot"}
    assert "budget cannot pay" in report.messages[-1]


def test_unreachable_targets_are_reported(bundled, small_replay):
    candidates, _ = small_replay
    planner, _ = run_plan(bundled, candidates, PlannerTargets(1.0, 5.0), **FAST)
    report = planner.report()
    assert report.finished and not report.targets_met
    # only the reference level's floor (0) is below such targets: one batch there shows the model cannot get close
    assert "cannot be reached" in report.messages[-1]
    assert {r["level"] for r in report.requests if r["stage"] in ("recipe", "extend")} == {6}
    assert report.total_seconds < report.whole_pool_reference_seconds


def test_tiny_pool_on_three_levels_finishes(bundled):
    """The live job's set-up in small (a dozen cells, levels 1-3): the plan runs to the end without asking twice."""
    three = bundled.select_levels([1, 2, 3])
    candidates = np.arange(12)
    planner, requests = None, []
    planner = Planner([three.structures[i] for i in candidates], three.level_settings, PlannerTargets(1.0, 5.0),
                      pilot_size=3, validation_size=4, start_size=4, twojmax_values=(4,))
    assert planner.reference_level == 3
    engine = ReplayEngine(three, candidates)
    while (request := planner.next_request()) is not None:
        requests.append(request)
        planner.tell(request, engine(request))
    report = planner.report()
    assert [r.stage for r in requests[:4]] == ["pilot", "pilot", "pilot", "validation"]
    asked = [(r.level, i) for r in requests for i in r.indices]
    assert len(asked) == len(set(asked))
    assert report.finished and not report.targets_met
    assert "pool is used up" in report.messages[-1]
    assert report.cost_model is not None and set(report.dft_errors) == {1, 2, 3}


def test_default_validation_set_is_the_pilot(bundled):
    """By default the pilot's reference-level calculations are the whole validation set: no extra stage."""
    candidates, _, _, _ = replay_sets(bundled)
    planner = Planner([bundled.structures[i] for i in candidates], bundled.level_settings, PlannerTargets(150, 800),
                      twojmax_values=(4,))
    assert planner.validation_indices == planner.pilot_indices and len(planner.pilot_indices) == 6
    engine = ReplayEngine(bundled, candidates)
    stages = []
    while (request := planner.next_request()) is not None and request.stage == "pilot":
        stages.append(request.level)
        planner.tell(request, engine(request))
    assert sorted(stages) == list(bundled.levels)  # every level once
    assert request is not None and request.stage == "recipe"  # straight from the pilot to training
    # with a larger validation set the extra configurations are asked for at the reference level only
    planner = Planner([bundled.structures[i] for i in candidates], bundled.level_settings, PlannerTargets(150, 800),
                      twojmax_values=(4,), validation_size=9)
    engine = ReplayEngine(bundled, candidates)
    while (request := planner.next_request()).stage == "pilot":
        planner.tell(request, engine(request))
    assert request.stage == "validation" and request.level == 6 and len(request.indices) == 3


def test_true_cheapest_is_judged_on_the_test_set():
    """The replay's true answer is the cheapest recipe whose test errors (median over draws) meet the targets; the
    grid's own validation choice can differ. Two recipes × two draws: the cheap one looks good on validation only."""
    import pandas as pd

    rows = []
    for level, cost, val, tst in ((2, 100.0, 50.0, 90.0), (4, 400.0, 55.0, 60.0)):
        for rep in range(2):
            rows.append({"training_level": level, "subset_size": 20, "sampling": "block", "repetition": rep,
                         "weight_ratio": 5.0, "energy_weight": 5.0, "force_weight": 1.0, "twojmax": 4,
                         "n_train": 20, "dft_seconds": cost + rep, "reference_level": 6,
                         "validation_energy_rmse": val, "validation_force_rmse": 3 * val,
                         "test_energy_rmse": tst, "test_force_rmse": 3 * tst})
    table = pd.DataFrame(rows)
    targets = PlannerTargets(70.0, 210.0)
    truth = true_cheapest(table, targets)
    choice = true_cheapest(table, targets, judged_on="validation")
    assert truth.targets_met and truth.training_level == 4 and truth.cost == pytest.approx(400.5)
    assert choice.targets_met and choice.training_level == 2 and choice.cost == pytest.approx(100.5)
