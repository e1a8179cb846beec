"""Factor effects between two rungs under the noise floor (porian2024.factors)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scalingkit.runs.approaches import approach_2_noise, optimum_slope
from scalingkit.studies import porian2024 as porian
from scalingkit.studies.porian2024 import factors
from scalingkit.studies.porian2024.analysis import _approach_runs

LAW = {"E": 1.0, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.34}
BUDGETS = np.geomspace(1e15, 1e18, 4)
DATA = Path(__file__).resolve().parents[1] / "book" / "data" / "porian"


@pytest.fixture(scope="module")
def rung():
    """A synthetic rung on a large vocabulary, where counting the head matters."""
    return porian.counting_experiment(LAW, BUDGETS, vocab_size=50257, n_ctx=1024)


def test_optimum_slope_is_approach_2_on_the_given_losses(rung):
    runs = _approach_runs(rung, "with_head")
    assert optimum_slope(runs, runs["loss"].to_numpy()) == pytest.approx(0.5, abs=0.05)
    one = runs[runs["budget"] == BUDGETS[0]]
    assert np.isnan(optimum_slope(one, one["loss"].to_numpy()))  # one budget: no slope


def test_noisy_exponents_share_one_draw_between_the_counts(rung):
    table = factors.noisy_exponents({"r": rung}, 1e-9, n_bootstrap=5)
    assert list(table.columns) == [("r", "kaplan"), ("r", "with_head")]
    # a negligible floor: every resample is the fit on the runs as measured
    for count in factors.COUNTS:
        runs = _approach_runs(rung, count)
        assert np.allclose(table[("r", count)], optimum_slope(runs, runs["loss"].to_numpy()),
                           atol=1e-6)


def test_factor_effects_resolve_the_count_and_not_a_recipe_that_is_not_there(rung):
    # the two rungs are the same runs: the recipe effect is nil, the count effect is not
    effects = factors.factor_effects({"kaplan": rung, "corrected": rung}, 0.005,
                                     n_bootstrap=100)
    count = effects.loc["count effect (kaplan's runs)"]
    assert count["effect"] > 0.05 and count["resolved"]
    assert count["lo"] <= count["effect"] <= count["hi"]
    recipe = effects.loc["recipe effect (with_head count)"]
    assert recipe["effect"] == pytest.approx(0.0, abs=1e-12)
    assert recipe["lo"] < 0 < recipe["hi"] and not recipe["resolved"]
    assert len(effects) == 5 and effects["resolved"].dtype == bool


def test_seed_intervals_narrow_as_seeds_average_the_noise(rung):
    table = factors.seed_intervals(rung, 0.01, (1, 4, 100), n_bootstrap=100)
    assert list(table.index) == [1, 4, 100]
    assert table.loc[4, "noise_sd"] == pytest.approx(0.005)
    width = table["hi"] - table["lo"]
    assert width.is_monotonic_decreasing and width.iloc[-1] < width.iloc[0] / 3
    # the one-seed row is approach_2_noise itself
    runs = _approach_runs(rung, "with_head")
    assert list(table.loc[1, ["lo", "hi"]]) == approach_2_noise(runs, 0.01, n_bootstrap=100,
                                                                seed=0)


@pytest.mark.parametrize("call, match", [
    (lambda r: factors.noisy_exponents({"r": r}, 0.0), "noise_sd"),
    (lambda r: factors.noisy_exponents({"r": r}, float("nan")), "noise_sd"),
    (lambda r: factors.noisy_exponents({"r": r}, 0.01, n_bootstrap=1), "n_bootstrap"),
    (lambda r: factors.factor_effects({"kaplan": r}, 0.01), "no rung 'corrected'"),
    (lambda r: factors.seed_intervals(r, 0.01, (0, 3)), "at least 1"),
    (lambda r: factors.seed_intervals(r, 0.01, ()), "at least 1"),
])
def test_bad_input(rung, call, match):
    with pytest.raises(ValueError, match=match):
        call(rung)


def test_committed_ladder_count_effect_is_resolved():
    """The chapter's claim on the committed runs: both count effects exclude 0."""
    exponents = json.loads((DATA / "exponents.json").read_text())
    frames = {}
    for name in ("kaplan", "corrected"):
        frame = porian.rung_frame(DATA / name)
        low = exponents["min_budget"].get(name, 0.0)
        high = exponents["max_budget"].get(name, np.inf)
        frames[name] = frame[(frame["budget"] >= low) & (frame["budget"] <= high)]
    effects = factors.factor_effects(frames, exponents["noise_sd"], n_bootstrap=100)
    counts = effects.loc[["count effect (kaplan's runs)", "count effect (corrected's runs)"]]
    assert counts["resolved"].all() and (counts["lo"] > 0).all()
