"""The per-budget optimum rule of Approach 2: one home, dropped budgets, bootstrap, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from scalingkit import cli
from scalingkit.fit import IsoFLOPFit, ScalingFitWarning
from scalingkit.fit.optimum_rule import budget_optimum, isoflop_optima
from scalingkit.fit.published import BESIROGLU_2024
from scalingkit.fit.simulate import isoflop_sweep
from scalingkit.fit.studies import isoflop_rule_study
from scalingkit.runs.optimum import compute_optimal

LADDER = np.log(10.0) * np.arange(-12, 13) * 0.125  # ln N: 25 sizes, 1/8 decade apart


def _lopsided(log_n: np.ndarray) -> np.ndarray:
    """A valley steep on the small side and flat on the large side, minimum at ln N = 0."""
    return 2.0 + np.exp(-1.5 * log_n) / 1.5 + np.exp(0.3 * log_n) / 0.3 - 1 / 1.5 - 1 / 0.3


@pytest.mark.parametrize("extra", [4, 8])
def test_local_vertex_does_not_move_with_the_window_but_the_all_rule_does(extra):
    # windows starting 4 sizes below the minimum, of 9 sizes, then widened upwards
    base, window = LADDER[8:17], LADDER[8: 17 + extra]
    local = budget_optimum(window, _lopsided(window))
    assert local.bracketed and local.used and local.n_fit == 5
    assert local.log_n_opt == budget_optimum(base, _lopsided(base)).log_n_opt
    assert abs(local.log_n_opt) < 0.06  # the true minimum is at ln N = 0
    # the textbook parabola slides toward the flat side as the window widens
    every = budget_optimum(window, _lopsided(window), rule="all")
    assert every.n_fit == window.size and every.used
    assert every.log_n_opt > budget_optimum(base, _lopsided(base), rule="all").log_n_opt + 0.1


@pytest.mark.parametrize("log_n,loss,reason", [
    ([0.0, 1.0], [3.0, 2.0], "2 run(s); at least 3 are needed"),
    ([1.0, 1.0, 1.0], [3.0, 2.0, 2.5], "all runs at one size"),
    ([0.0, 0.0, 1.0, 1.0], [3.0, 2.9, 2.0, 2.1], "2 distinct model sizes"),
    ([0.0, 1.0, 2.0, 3.0], [2.0, 2.1, 2.3, 2.6], "lowest loss at the smallest size"),
    ([0.0, 1.0, 2.0, 3.0], [2.6, 2.3, 2.1, 2.0], "lowest loss at the largest size"),
    ([0.0, 1.0, 2.0, 3.0, 4.0], [2.4, 3.0, 2.1, 6.3, 4.8], "vertex outside the sizes"),
    ([0.0, 1.0, 2.0, 3.0, 4.0], [2.4, 3.0, 2.0, 3.0, 2.4], "not convex"),
])
def test_budgets_without_a_bracketed_minimum_are_not_used(log_n, loss, reason):
    opt = budget_optimum(np.array(log_n), np.array(loss))
    assert not opt.bracketed and not opt.used and reason in opt.reason
    assert np.isnan(opt.log_n_opt) or "vertex" in reason


def test_all_rule_keeps_extrapolated_vertices_but_never_fits_unusable_budgets():
    edge = budget_optimum(np.arange(4.0), np.array([2.0, 2.1, 2.3, 2.6]), rule="all")
    assert edge.used and not edge.bracketed and edge.log_n_opt < 0
    assert "smallest size" in edge.reason
    two = budget_optimum(np.array([0.0, 0.0, 1.0]), np.array([3.0, 2.9, 2.0]), rule="all")
    assert not two.used and two.n_fit == 0 and "2 distinct" in two.reason


def test_local_window_is_symmetric_and_shrinks_near_an_edge():
    x = np.arange(9.0)
    near_edge = budget_optimum(x, 2 + 0.1 * (x - 1.2) ** 2)  # lowest loss at the second size
    assert near_edge.n_fit == 3 and (near_edge.log_n_lo, near_edge.log_n_hi) == (0.0, 2.0)
    assert near_edge.log_n_opt == pytest.approx(1.2)
    wide = budget_optimum(x, 2 + 0.1 * (x - 4.2) ** 2, n_local=7)
    assert wide.n_fit == 7 and (wide.log_n_lo, wide.log_n_hi) == (1.0, 7.0)


def _sweep_with_bad_budgets() -> pd.DataFrame:
    """Four clean budgets of an exact law, one cut at its optimum, one with 2 runs."""
    s = pd.DataFrame(isoflop_sweep(BESIROGLU_2024, np.geomspace(1e18, 1e21, 4),
                                   half_width=1.0, step=0.25))
    opt_small = s[s.flops == s.flops.min()].sort_values("loss").params.iloc[0]
    cut = s[(s.flops > s.flops.min()) | (s.params >= opt_small)]  # smallest budget: right half
    two = pd.DataFrame({"params": [1e9, 2e9], "tokens": [1e12, 5e11], "flops": 6e21,
                        "loss": [2.0, 2.1]})
    return pd.concat([cut, two], ignore_index=True)


def test_fit_reports_budgets_used_and_dropped_with_reasons():
    s = _sweep_with_bad_budgets()
    with pytest.warns(ScalingFitWarning, match="2 of 5 budgets left out"):
        fit = IsoFLOPFit().fit(s.params, s.tokens, s.loss, flops=s.flops)
    truth = BESIROGLU_2024["beta"] / (BESIROGLU_2024["alpha"] + BESIROGLU_2024["beta"])
    assert fit.a_ == pytest.approx(truth, abs=1e-3)
    assert len(fit.budgets_used_) == 3 and np.array_equal(fit.budgets_, fit.budgets_used_)
    reasons = list(fit.budgets_dropped_.values())
    assert reasons == ["lowest loss at the smallest size", "2 run(s); at least 3 are needed"]
    table = fit.budget_table_
    assert list(table.columns[:6]) == ["budget", "n_runs", "n_sizes", "n_fit", "n_opt", "loss_opt"]
    assert table.used.tolist() == [False, True, True, True, False]
    assert table.n_opt.isna().tolist() == [True, False, False, False, True]
    assert (table.reason == "").sum() == 3
    assert "dropped" in fit.summary() and "lowest loss at the smallest size" in fit.summary()
    again = IsoFLOPFit.from_json(fit.to_json())
    assert again.budgets_dropped_ == fit.budgets_dropped_
    np.testing.assert_allclose(again.budgets_used_, fit.budgets_used_)


def test_all_rule_is_the_textbook_fit_for_comparison():
    s = _sweep_with_bad_budgets()
    with pytest.warns(ScalingFitWarning) as caught:
        fit = IsoFLOPFit(rule="all").fit(s.params, s.tokens, s.loss, flops=s.flops)
    assert any("1 parabola minimum(s) lie outside" in str(w.message) for w in caught)
    assert len(fit.budgets_used_) == 4  # the cut budget's extrapolated vertex is kept
    assert list(fit.budgets_dropped_.values()) == ["2 run(s); at least 3 are needed"]
    assert "1 extrapolated" in fit.message_


def test_fewer_than_two_usable_budgets_is_a_clear_error():
    s = _sweep_with_bad_budgets()
    two = s[s.flops.isin(sorted(s.flops.unique())[:2]) | (s.flops == 6e21)]
    with pytest.raises(ValueError, match=r"only 1 of 3 budgets .* need 2 .*smallest size"):
        IsoFLOPFit().fit(two.params, two.tokens, two.loss, flops=two.flops)


@pytest.mark.parametrize("bad", [{"rule": "spline"}, {"n_local": 4}, {"n_local": 1}])
def test_bad_rule_settings(bad):
    s = _sweep_with_bad_budgets()
    with pytest.raises(ValueError, match="rule must be|n_local must be"):
        IsoFLOPFit(**bad).fit(s.params, s.tokens, s.loss, flops=s.flops)


def _exact_valleys_plus_a_slope() -> pd.DataFrame:
    """Three exact parabolic valleys (vertex 0.1 C^0.5) and a budget still falling at its edge."""
    rows = []
    for c in (1e12, 1e13, 1e14):
        for n in np.geomspace(0.1 * c**0.5 / 8, 0.1 * c**0.5 * 8, 7):
            rows.append({"budget": c, "params": n, "tokens": c / (6 * n), "flops_exact": c,
                         "loss": 2.0 + 0.1 * np.log(n / (0.1 * c**0.5)) ** 2})
    for i, n in enumerate(np.geomspace(1e5, 1e6, 6)):
        rows.append({"budget": 1e15, "params": n, "tokens": 1e15 / (6 * n), "flops_exact": 1e15,
                     "loss": 1.9 - 0.02 * i + 0.001 * i * i})
    return pd.DataFrame(rows)


def test_bootstrap_resamples_within_budgets_under_the_same_rule():
    f = _exact_valleys_plus_a_slope()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingFitWarning)
        local = IsoFLOPFit(n_bootstrap=40, random_state=0).fit(
            f.params, f.tokens, f.loss, flops=f.flops_exact, budget=f.budget)
        every = IsoFLOPFit(rule="all", n_bootstrap=40, random_state=0).fit(
            f.params, f.tokens, f.loss, flops=f.flops_exact, budget=f.budget)
    # every resample drops the sloping budget again, and the exact valleys give a = 0.5
    assert local.a_ == pytest.approx(0.5) and local.bootstrap_["a"].size >= 30
    np.testing.assert_allclose(local.bootstrap_["a"], 0.5, atol=1e-9)
    assert abs(every.a_ - 0.5) > 0.05 and np.ptp(every.bootstrap_["a"]) > 0.01


def test_compute_optimal_uses_the_fitters_rule():
    f = _exact_valleys_plus_a_slope()
    table, fit = compute_optimal(f)
    optima = isoflop_optima(f.params, f.loss, f.budget)
    assert table.bracketed.tolist() == optima.bracketed.tolist() == [True, True, True, False]
    np.testing.assert_allclose(table.n_opt[:3], optima.n_opt[:3], rtol=1e-12)
    np.testing.assert_allclose(table.n_opt[:3], fit.n_opt_, rtol=1e-12)
    assert table.method.tolist() == ["parabola"] * 3 + ["best sampled"]
    assert table.reason.iloc[3] == "lowest loss at the largest size"
    assert table.n_opt.iloc[3] == pytest.approx(1e6)
    old, _ = compute_optimal(f, rule="all")
    assert old.method.tolist() == table.method.tolist()


def _strict_json(text: str) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_cli_json_reports_budgets_used_and_dropped(tmp_path, capsys):
    path = tmp_path / "points.csv"
    _sweep_with_bad_budgets().to_csv(path, index=False)
    assert cli.main(["fit", str(path), "--approach", "2", "--json", "--bootstrap", "10"]) == 0
    out = _strict_json(capsys.readouterr().out)
    assert out["rule"] == "local" and len(out["budgets_used"]) == len(out["budgets"]) == 3
    assert [d["reason"] for d in out["budgets_dropped"]] == [
        "lowest loss at the smallest size", "2 run(s); at least 3 are needed"]
    table = out["budget_table"]
    assert len(table) == 5 and table[0]["n_opt"] is None and table[0]["used"] is False
    assert out["estimator"]["budgets_dropped"] == out["budgets_dropped"]
    assert cli.main(["fit", str(path), "--approach", "2", "--json", "--rule", "all"]) == 0
    assert len(_strict_json(capsys.readouterr().out)["budgets_used"]) == 4


def test_cli_one_usable_budget_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "points.csv"
    runs = pd.DataFrame({"params": [1e8, 2e8, 4e8, 1e9, 2e9], "tokens": [1e9] * 5,
                         "loss": [3.0, 2.9, 3.1, 2.5, 2.6], "budget": [0, 0, 0, 1, 1]})
    runs.to_csv(path, index=False)
    assert cli.main(["fit", str(path), "--approach", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "only 1 of 2 budgets" in err and "2 run(s)" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_rule_study_local_meets_the_goal_where_the_textbook_rule_does_not():
    """A cheap version of the chapter's study: 5 budgets, 2 half-widths, 30 noisy sweeps."""
    out = isoflop_rule_study(BESIROGLU_2024, np.geomspace(1e18, 1e21, 5),
                             half_widths=(0.5, 1.5), n_seeds=30, seed=1)
    assert len(out) == 2 * 3 * 2 and (out.n_fits == 30).all()
    local, every = out[out.rule == "local"], out[out.rule == "all"]
    assert local.bias.abs().max() < 0.02
    assert every.bias.abs().max() > 0.03  # wide, off-centre windows
    assert (local.budgets_used <= 5).all() and (every.budgets_used == 5).all()
