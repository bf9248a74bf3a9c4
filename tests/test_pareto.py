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
# recommendation


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
                        max_twojmax=max_tj)
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
    rec = recommend(t, max_energy_rmse=5.0)
    assert rec.row.name == 1 and rec.targets_met
    assert rec.training_level is None  # column absent → None
    rec2 = recommend(t, max_energy_rmse=5.0, cost="test_force_rmse")
    assert rec2.row.name == 1  # all costs tied → lowest energy error


def test_recommend_unreachable_target_gives_closest():
    rng = np.random.default_rng(5)
    table = random_grid(rng, 300)
    best_e = table["test_energy_rmse"].min()
    rec = recommend(table, max_energy_rmse=0.5 * best_e, max_force_rmse=1e6)
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
    rec = recommend(t, max_energy_rmse=2.0, max_force_rmse=20.0)
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
    rec = recommend(table, min_md_speed=1e6)
    assert not rec.targets_met and rec.unreachable_targets == ("min_md_speed",)
    assert rec.row["md_speed"] == table["md_speed"].max()
    with pytest.raises(KeyError, match="max_twojmax"):
        recommend(table.drop(columns="md_speed"), min_md_speed=1e5)
    rec = recommend(table, max_twojmax=4)
    assert rec.targets_met and rec.twojmax == 4


def test_recommend_skips_rows_with_missing_values():
    t = pd.DataFrame({
        "dft_seconds": [1.0, 2.0],
        "test_energy_rmse": [np.nan, 3.0],
        "test_force_rmse": [10.0, 10.0],
    })
    assert recommend(t, max_energy_rmse=5.0).row.name == 1
    with pytest.raises(ValueError, match="no row has finite values"):
        recommend(t.iloc[:1], max_energy_rmse=5.0)


@pytest.mark.parametrize("kwargs", [
    {"max_energy_rmse": 0.0}, {"max_energy_rmse": -1.0}, {"max_force_rmse": np.nan}, {"max_twojmax": 0},
    {"max_twojmax": 5.5}, {"max_energy_rmse": "small"},
])
def test_recommend_bad_targets(kwargs):
    table = random_grid(np.random.default_rng(0), 20)
    with pytest.raises(ValueError):
        recommend(table, **kwargs)


def test_recommend_bad_table():
    with pytest.raises(ValueError, match="empty"):
        recommend(random_grid(np.random.default_rng(0), 5).iloc[:0], max_energy_rmse=1.0)
    with pytest.raises(KeyError, match="dft_seconds"):
        recommend(pd.DataFrame({"test_energy_rmse": [1.0], "test_force_rmse": [1.0]}), max_energy_rmse=1.0)


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
