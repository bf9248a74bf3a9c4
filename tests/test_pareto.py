"""Pareto fronts and recipe recommendation against brute force."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyiron_mlip_tradeoff.pareto import (
    add_md_cost_proxy,
    n_bispectrum_components,
    pareto_front,
    pareto_rows,
    qsnap_column_count,
    recommend,
    summarize_repetitions,
)


def brute_force_front(values: np.ndarray) -> np.ndarray:
    """O(n²) definition: not dominated by any row (≤ everywhere, < somewhere); NaN rows excluded."""
    n = len(values)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if np.isnan(values[i]).any():
            continue
        dominated = False
        for j in range(n):
            if j == i or np.isnan(values[j]).any():
                continue
            if np.all(values[j] <= values[i]) and np.any(values[j] < values[i]):
                dominated = True
                break
        out[i] = not dominated
    return out


def random_grid(rng: np.random.Generator, n: int = 300) -> pd.DataFrame:
    """A synthetic trade-off table with the grid's column names and plausible trends."""
    level = rng.integers(1, 7, n)
    size = rng.choice([100, 300, 1000, 3000], n)
    twojmax = rng.choice([4, 6, 8], n)
    seconds_per = np.array([8.33, 10.02, 14.80, 19.18, 91.99, 996.14])[level - 1]
    base_e = np.array([400.0, 60.0, 15.0, 6.0, 3.0, 2.5])[level - 1]
    energy = base_e + 300.0 / np.sqrt(size) + 10.0 / twojmax + rng.gamma(2.0, 1.0, n)
    force = 4 * base_e + 3000.0 / np.sqrt(size) + 400.0 / twojmax + rng.gamma(2.0, 5.0, n)
    return pd.DataFrame(
        {
            "training_level": level,
            "subset_size": size,
            "sampling": rng.choice(["energy", "block", "random"], n),
            "repetition": rng.integers(0, 5, n),
            "energy_weight": rng.choice([5.0, 10.0, 50.0], n),
            "force_weight": 1.0,
            "twojmax": twojmax,
            "n_train": size,
            "dft_seconds": np.round(seconds_per * size, 2),
            "test_energy_rmse": energy,
            "test_energy_rmse_shifted": 0.8 * energy,
            "test_force_rmse": force,
            "md_speed": np.array([4e5, 1e5, 4e4])[(twojmax - 4) // 2],
        },
        index=pd.RangeIndex(1000, 1000 + n),
    )


# ---------------------------------------------------------------------------------------------------------------
# column counts


def test_column_count_formula_reproduces_reference_counts():
    assert [qsnap_column_count(t) for t in (4, 6, 8, 10)] == [120, 496, 1596, 4278]
    assert [n_bispectrum_components(t) for t in (4, 6, 8, 10)] == [14, 30, 55, 91]
    # quadratic terms alone, as quoted in the design notes
    assert [qsnap_column_count(t) - n_bispectrum_components(t) - 1 for t in (4, 6, 8, 10)] == [105, 465, 1540, 4186]
    assert qsnap_column_count(6, quadratic=False) == 31
    assert qsnap_column_count(6, n_elements=2) == 992
    with pytest.raises(ValueError):
        qsnap_column_count(5.5)
    with pytest.raises(ValueError):
        qsnap_column_count(-2)


def test_add_md_cost_proxy():
    t = pd.DataFrame({"twojmax": [4, 8, 4, 10]})
    out = add_md_cost_proxy(t)
    assert out["md_cost_proxy"].tolist() == [120, 1596, 120, 4278]
    assert "md_cost_proxy" not in t.columns
    with pytest.raises(KeyError):
        add_md_cost_proxy(pd.DataFrame({"x": [1]}))


# ---------------------------------------------------------------------------------------------------------------
# Pareto front


@pytest.mark.parametrize("seed", range(6))
def test_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 250))
    m = int(rng.integers(1, 4))
    # small integer grid → many ties and exact duplicates
    values = rng.integers(0, 6, size=(n, m)).astype(float)
    if seed % 2:
        values[rng.random(n) < 0.1, 0] = np.nan
    cols = [f"o{k}" for k in range(m)]
    table = pd.DataFrame(values, columns=cols, index=rng.permutation(n) + 7)
    mask = pareto_front(table, cols)
    assert mask.index.equals(table.index) and mask.dtype == bool
    np.testing.assert_array_equal(mask.to_numpy(), brute_force_front(values))


def test_front_continuous_and_mixed_directions():
    rng = np.random.default_rng(11)
    table = random_grid(rng, 400)
    objectives = ["test_energy_rmse", "dft_seconds", "md_speed"]
    mask = pareto_front(table, objectives, minimize={"md_speed": False})
    signed = table[objectives].to_numpy() * np.array([1.0, 1.0, -1.0])
    np.testing.assert_array_equal(mask.to_numpy(), brute_force_front(signed))
    # all-maximise equals minimising the negatives
    np.testing.assert_array_equal(
        pareto_front(table, objectives, minimize=False).to_numpy(), brute_force_front(-table[objectives].to_numpy())
    )
    rows = pareto_rows(table, ["test_energy_rmse", "dft_seconds"])
    assert rows["test_energy_rmse"].is_monotonic_increasing
    assert rows["dft_seconds"].is_monotonic_decreasing  # a 2-D front trades one objective for the other


def test_front_ties():
    t = pd.DataFrame({"a": [1.0, 1.0, 1.0, 2.0, 0.5], "b": [2.0, 2.0, 3.0, 1.0, 5.0]})
    # rows 0 and 1 identical → both on the front; row 2 dominated by 0 (equal a, larger b)
    assert pareto_front(t, ["a", "b"]).tolist() == [True, True, False, True, True]


def test_front_bad_input():
    t = pd.DataFrame({"a": [1.0], "b": [2.0]})
    with pytest.raises(KeyError, match="nope"):
        pareto_front(t, ["a", "nope"])
    with pytest.raises(ValueError, match="objective"):
        pareto_front(t, [])
    with pytest.raises(ValueError, match="not objectives"):
        pareto_front(t, ["a"], minimize={"b": False})
    assert pareto_front(t.iloc[:0], ["a"]).tolist() == []


# ---------------------------------------------------------------------------------------------------------------
# recommendation: the ranking core, on single draws chosen on the test columns (what recommend did before the
# three-way split; still available for comparison as summarize=None, select_on="test")

SINGLE = {"summarize": None, "select_on": "test"}


def brute_force_cheapest(table, max_e=None, max_f=None, min_speed=None, max_tj=None, cost="dft_seconds"):
    ok = pd.Series(True, index=table.index)
    if max_e is not None:
        ok &= table["test_energy_rmse"] <= max_e
    if max_f is not None:
        ok &= table["test_force_rmse"] <= max_f
    if min_speed is not None:
        ok &= table["md_speed"] >= min_speed
    if max_tj is not None:
        ok &= table["twojmax"] <= max_tj
    feasible = table[ok]
    if feasible.empty:
        return None
    return feasible[cost].min(), feasible


@pytest.mark.parametrize("seed", range(5))
def test_recommend_is_cheapest_feasible(seed):
    rng = np.random.default_rng(100 + seed)
    table = random_grid(rng, 500)
    found = 0
    for max_e, max_f, min_speed, max_tj in [
        (20.0, None, None, None),
        (10.0, 80.0, None, None),
        (8.0, 60.0, 9e4, None),
        (12.0, None, None, 6),
        (None, 40.0, None, None),
        (None, None, None, None),
    ]:
        rec = recommend(table, max_energy_rmse=max_e, max_force_rmse=max_f, min_md_speed=min_speed,
                        max_twojmax=max_tj, **SINGLE)
        bf = brute_force_cheapest(table, max_e, max_f, min_speed, max_tj)
        if bf is None:
            assert not rec.targets_met
            continue
        found += 1
        min_cost, feasible = bf
        assert rec.targets_met, rec.message
        assert rec.unmet_targets == ()
        assert rec.cost == min_cost
        assert rec.row.name in feasible.index
        # ties on cost broken by lower energy error
        tied = feasible[feasible["dft_seconds"] == min_cost]
        assert rec.row["test_energy_rmse"] == tied["test_energy_rmse"].min()
        # the recipe fields are the row's
        assert rec.training_level == rec.row["training_level"] and rec.twojmax == rec.row["twojmax"]
        assert set(rec.recipe()) == {"training_level", "subset_size", "sampling", "energy_weight",
                                     "force_weight", "twojmax"}
        assert "Cheapest" in rec.message
    assert found >= 3


def test_recommend_tie_break_on_energy():
    t = pd.DataFrame({
        "dft_seconds": [10.0, 10.0, 5.0, 10.0],
        "test_energy_rmse": [3.0, 2.0, 9.0, 2.5],
        "test_force_rmse": [50.0, 50.0, 50.0, 50.0],
        "twojmax": [6, 6, 6, 6],
    })
    rec = recommend(t, max_energy_rmse=5.0, **SINGLE)
    assert rec.row.name == 1 and rec.targets_met
    assert rec.training_level is None  # column absent → None
    rec2 = recommend(t, max_energy_rmse=5.0, cost="test_force_rmse", **SINGLE)
    assert rec2.row.name == 1  # all costs tied → lowest energy error


def test_recommend_unreachable_target_gives_closest():
    rng = np.random.default_rng(5)
    table = random_grid(rng, 300)
    best_e = table["test_energy_rmse"].min()
    rec = recommend(table, max_energy_rmse=0.5 * best_e, max_force_rmse=1e6, **SINGLE)
    assert not rec.targets_met
    assert rec.unmet_targets == ("max_energy_rmse",)
    assert rec.unreachable_targets == ("max_energy_rmse",)
    assert "max_energy_rmse" in rec.message and "Unreachable" in rec.message
    assert "max_force_rmse" not in rec.unreachable_targets
    # closest = smallest largest relative violation: here the lowest energy error
    assert rec.row["test_energy_rmse"] == best_e


def test_recommend_jointly_unreachable():
    t = pd.DataFrame({
        "dft_seconds": [1.0, 2.0, 3.0],
        "test_energy_rmse": [1.0, 6.0, 5.0],
        "test_force_rmse": [100.0, 10.0, 50.0],
        "twojmax": [4, 4, 4],
    })
    rec = recommend(t, max_energy_rmse=2.0, max_force_rmse=20.0, **SINGLE)
    assert not rec.targets_met
    assert rec.unreachable_targets == ()
    assert "not together" in rec.message
    # relative violations: row0 (0, 4); row1 (2, 0); row2 (1.5, 1.5) → the largest is smallest for row 2
    # (a sum of violations would pick row 1 instead)
    assert rec.row.name == 2
    assert set(rec.unmet_targets) == {"max_energy_rmse", "max_force_rmse"}
    # brute-force the "closest" definition
    viol = np.maximum.reduce([
        np.maximum((t["test_energy_rmse"] - 2.0) / 2.0, 0), np.maximum((t["test_force_rmse"] - 20.0) / 20.0, 0)
    ])
    assert rec.row.name == int(np.argmin(viol))


def test_recommend_speed_target_and_proxy():
    rng = np.random.default_rng(9)
    table = random_grid(rng, 200)
    rec = recommend(table, min_md_speed=1e6, **SINGLE)
    assert not rec.targets_met and rec.unreachable_targets == ("min_md_speed",)
    assert rec.row["md_speed"] == table["md_speed"].max()
    with pytest.raises(KeyError, match="max_twojmax"):
        recommend(table.drop(columns="md_speed"), min_md_speed=1e5, **SINGLE)
    rec = recommend(table, max_twojmax=4, **SINGLE)
    assert rec.targets_met and rec.twojmax == 4


def test_recommend_skips_rows_with_missing_values():
    t = pd.DataFrame({
        "dft_seconds": [1.0, 2.0],
        "test_energy_rmse": [np.nan, 3.0],
        "test_force_rmse": [10.0, 10.0],
    })
    assert recommend(t, max_energy_rmse=5.0, **SINGLE).row.name == 1
    with pytest.raises(ValueError, match="no row has finite values"):
        recommend(t.iloc[:1], max_energy_rmse=5.0, **SINGLE)
    # a dataset without DFT timings (extended XYZ): the error says so and names another cost; that cost works
    untimed = t.assign(dft_seconds=np.nan, n_train=[4, 8])
    with pytest.raises(ValueError, match="no DFT seconds.*cost='n_train'"):
        recommend(untimed, max_energy_rmse=5.0, **SINGLE)
    assert recommend(untimed, max_energy_rmse=5.0, cost="n_train", **SINGLE).row.name == 1


@pytest.mark.parametrize("kwargs", [
    {"max_energy_rmse": 0.0}, {"max_energy_rmse": -1.0}, {"max_force_rmse": np.nan}, {"max_twojmax": 0},
    {"max_twojmax": 5.5}, {"max_energy_rmse": "small"},
])
def test_recommend_bad_targets(kwargs):
    table = random_grid(np.random.default_rng(0), 20)
    with pytest.raises(ValueError):
        recommend(table, **kwargs, **SINGLE)


def test_recommend_bad_table():
    with pytest.raises(ValueError, match="empty"):
        recommend(random_grid(np.random.default_rng(0), 5).iloc[:0], max_energy_rmse=1.0)
    with pytest.raises(KeyError, match="dft_seconds"):
        recommend(pd.DataFrame({"test_energy_rmse": [1.0], "test_force_rmse": [1.0]}), max_energy_rmse=1.0,
                  **SINGLE)


def test_summarize_repetitions():
    rng = np.random.default_rng(3)
    table = random_grid(rng, 200)
    out = summarize_repetitions(table, how="max")
    assert out["n_repetitions"].sum() == len(table)
    key = out.iloc[0][["training_level", "subset_size", "sampling", "energy_weight", "force_weight", "twojmax"]]
    sel = table
    for c, v in key.items():
        sel = sel[sel[c] == v]
    assert out.iloc[0]["test_energy_rmse"] == sel["test_energy_rmse"].max()
    assert "repetition" not in out.columns
    with pytest.raises(ValueError):
        summarize_repetitions(table, how="sum")


# ---------------------------------------------------------------------------------------------------------------
# recommendations judged over draws, chosen on validation errors


def draws_grid(rng: np.random.Generator, n_recipes: int = 60, n_draws: int = 5) -> pd.DataFrame:
    """Synthetic draws: every recipe drawn ``n_draws`` times, with validation and test errors and job names."""
    recipes = random_grid(rng, n_recipes).drop(columns="repetition")
    recipes = recipes.drop_duplicates(subset=["training_level", "subset_size", "sampling", "energy_weight",
                                              "force_weight", "twojmax"]).reset_index(drop=True)
    rows = []
    for i, recipe in recipes.iterrows():
        for r in range(n_draws):
            noise = rng.lognormal(0.0, 0.3, 4)
            row = recipe.to_dict()
            row.update(repetition=r, job_name=f"fit_{i}_r{r}",
                       dft_seconds=recipe["dft_seconds"] * rng.uniform(0.9, 1.1),
                       validation_energy_rmse=recipe["test_energy_rmse"] * noise[0],
                       validation_energy_rmse_shifted=0.8 * recipe["test_energy_rmse"] * noise[0],
                       validation_force_rmse=recipe["test_force_rmse"] * noise[1],
                       test_energy_rmse=recipe["test_energy_rmse"] * noise[2],
                       test_energy_rmse_shifted=0.8 * recipe["test_energy_rmse"] * noise[2],
                       test_force_rmse=recipe["test_force_rmse"] * noise[3])
            rows.append(row)
    return pd.DataFrame(rows)


RECIPE = ["training_level", "subset_size", "sampling", "energy_weight", "force_weight", "twojmax"]


@pytest.mark.parametrize("seed", range(3))
def test_recommend_picks_the_cheapest_recipe_by_validation_medians(seed):
    table = draws_grid(np.random.default_rng(200 + seed))
    medians = table.groupby(RECIPE)[["dft_seconds", "validation_energy_rmse", "validation_force_rmse"]].median()
    e_target = float(medians["validation_energy_rmse"].quantile(0.3))
    f_target = float(medians["validation_force_rmse"].quantile(0.5))
    rec = recommend(table, max_energy_rmse=e_target, max_force_rmse=f_target)
    ok = medians[(medians.validation_energy_rmse <= e_target) & (medians.validation_force_rmse <= f_target)]
    assert not ok.empty and rec.targets_met
    assert rec.cost == ok["dft_seconds"].min()
    chosen = ok["dft_seconds"].idxmin()
    assert tuple(rec.recipe()[c] for c in RECIPE) == chosen
    draws = table.set_index(RECIPE).sort_index().loc[chosen]
    # medians and spreads of both sets, over the recipe's draws
    for prefix, stats in (("validation", rec.validation_errors), ("test", rec.test_errors)):
        for name in ("energy_rmse", "energy_rmse_shifted", "force_rmse"):
            values = draws[f"{prefix}_{name}"].to_numpy()
            assert stats[name]["median"] == pytest.approx(np.median(values))
            q75, q25 = np.percentile(values, [75, 25])
            assert stats[name]["spread"] == pytest.approx(q75 - q25)
            assert stats[name]["n_draws"] == len(values) == rec.n_draws == 5
    # the fit job is the draw closest to the medians, and a draw of this recipe
    assert rec.fit_job in set(draws["job_name"]) and rec.row["job_name"] == rec.fit_job
    distance = (np.abs(draws.validation_energy_rmse / draws.validation_energy_rmse.median() - 1)
                + np.abs(draws.validation_force_rmse / draws.validation_force_rmse.median() - 1))
    assert rec.fit_job == draws["job_name"].to_numpy()[int(np.argmin(distance.to_numpy()))]
    # how many draws meet the targets, on each set
    v_ok = int(((draws.validation_energy_rmse <= e_target) & (draws.validation_force_rmse <= f_target)).sum())
    t_ok = int(((draws.test_energy_rmse <= e_target) & (draws.test_force_rmse <= f_target)).sum())
    assert (rec.draws_meeting_validation, rec.draws_meeting_test) == (v_ok, t_ok)
    assert f"{v_ok} of 5 draws meet the targets on the validation set, {t_ok} of 5 on the test set" in rec.message
    if v_ok < 5:
        assert "only some draws" in rec.message


def test_recommend_never_looks_at_test_errors():
    table = draws_grid(np.random.default_rng(7))
    rec = recommend(table, max_energy_rmse=30.0, max_force_rmse=300.0)
    shuffled = table.copy()
    test_columns = [c for c in table.columns if c.startswith("test_")]
    shuffled[test_columns] = shuffled[test_columns].to_numpy()[np.random.default_rng(1).permutation(len(table))]
    assert recommend(shuffled, max_energy_rmse=30.0, max_force_rmse=300.0).recipe() == rec.recipe()
    # single draws chosen on the test set (the old way) can differ: a lucky draw wins
    single = recommend(table, max_energy_rmse=30.0, max_force_rmse=300.0, summarize=None, select_on="test")
    assert single.summarize is None and single.n_draws == 1


def test_recommend_without_validation_columns_says_why():
    table = random_grid(np.random.default_rng(0), 50)
    with pytest.raises(KeyError, match="validation"):
        recommend(table, max_energy_rmse=10.0)
    with pytest.raises(ValueError, match="summarize"):
        recommend(draws_grid(np.random.default_rng(0), 5), max_energy_rmse=10.0, summarize="mode")
    with pytest.raises(ValueError, match="select_on"):
        recommend(draws_grid(np.random.default_rng(0), 5), max_energy_rmse=10.0, select_on="holdout")


def test_summarize_keeps_spread_and_representative_job():
    table = draws_grid(np.random.default_rng(4), 10)
    out = summarize_repetitions(table)
    assert (out["n_repetitions"] == 5).all()
    first = table.set_index(RECIPE).sort_index().loc[tuple(out.iloc[0][RECIPE])]
    assert out.iloc[0]["test_force_rmse"] == pytest.approx(first["test_force_rmse"].median())
    q75, q25 = np.percentile(first["test_force_rmse"], [75, 25])
    assert out.iloc[0]["test_force_rmse_spread"] == pytest.approx(q75 - q25)
    assert out.iloc[0]["job_name"] in set(first["job_name"])
