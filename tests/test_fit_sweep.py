"""``python -m scalingkit fit-sweep``: three approaches, one FLOP convention."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import one_line_error

from scalingkit import cli
from scalingkit.core import flops
from scalingkit.core.models import shape_for_params
from scalingkit.fit.simulate import chinchilla_law
from scalingkit.runs.approaches import flops_per_token_curve
from scalingkit.runs.store import RunStore

#: alpha == beta: a = 0.5 under C = 6ND; the exact FLOP count moves it a little.
LAW = {"E": 1.7, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}
BUDGETS = (1e13, 1e14, 1e15)


def _write_store(path, offsets=(0.0, 0.0, 0.0)):
    """A finished sweep whose losses follow LAW exactly, with validation curves.

    Each budget has 7 sizes 0.15 decades apart around ``sqrt(C / 6)`` (the 6ND
    optimum) shifted by its offset (decades); tokens ``D = C / f(N)`` with
    ``f`` the model's exact training FLOP per token.
    """
    law = chinchilla_law(**LAW)
    store = RunStore(path)
    store.ensure_writable()
    for budget, offset in zip(BUDGETS, offsets, strict=True):
        centre = np.log10(np.sqrt(budget / 6)) + offset
        for target in 10 ** (centre + np.linspace(-0.45, 0.45, 7)):
            model = shape_for_params(float(target), n_ctx=64, vocab_size=256, count="total",
                                     head_dim=16)
            n, fpt = model.n_params(), flops.training_flops_per_token(model.shape)
            tokens = budget / fpt
            seen = np.geomspace(tokens / 30, tokens, 12)
            curve = [{"step": i, "tokens": float(d), "flops": 6.0 * n * d,
                      "loss": float(law(n, d))} for i, d in enumerate(seen)]
            rid = store.add({"model": model.to_dict(), "tokens": tokens, "budget": budget},
                            plan={"budget": budget, "params": n, "tokens": tokens,
                                  "flops_exact": fpt * tokens, "flops_6nd": 6.0 * n * tokens})
            store.update(rid, "done", result={"final_loss": float(law(n, tokens)),
                                              "curve": curve})
    return path


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory):
    return _write_store(tmp_path_factory.mktemp("sweep") / "store")


def _fit_json(capsys, *argv):
    assert cli.main(["fit-sweep", *map(str, argv), "--json", "--grid", "small"]) == 0
    return json.loads(capsys.readouterr().out)


def test_three_approaches_agree_on_clean_data(sweep_store, capsys):
    out = _fit_json(capsys, sweep_store, "--bootstrap", "20", "--seed", "1")
    assert out["convention"] == "exact"
    assert set(out["approaches"]) == {"1", "2", "3"}
    a = {k: v["a"] for k, v in out["approaches"].items()}
    for res in out["approaches"].values():
        assert res["reason"] is None
        lo, hi = res["ci"]
        assert lo <= res["a"] <= hi
    assert max(a.values()) - min(a.values()) < 0.05, a
    assert all(abs(v - 0.5) < 0.1 for v in a.values()), a
    assert [b["bracketed"] for b in out["budgets"]] == [True] * len(BUDGETS)
    assert [b["planned"] for b in out["budgets"]] == pytest.approx(BUDGETS)
    assert [b["budget"] for b in out["budgets"]] == pytest.approx(BUDGETS, rel=1e-9)


def test_noise_floor_bounds_approach_2_and_tests_each_valley(sweep_store, capsys):
    out = _fit_json(capsys, sweep_store, "--bootstrap", "30", "--noise-sd", "0.002")
    two = out["approaches"]["2"]
    lo, hi = two["ci_noise"]
    assert lo <= two["a"] <= hi and hi - lo > 0
    assert out["noise_sd"] == 0.002
    assert all(b["resolved"] == (b["depth"] > 0.004) for b in out["budgets"])
    wide = _fit_json(capsys, sweep_store, "--bootstrap", "30", "--noise-sd", "0.02")
    w_lo, w_hi = wide["approaches"]["2"]["ci_noise"] or (-np.inf, np.inf)
    assert w_hi - w_lo > hi - lo  # more noise, a wider interval


def test_unbracketed_budget_is_flagged_and_left_out(tmp_path, capsys):
    store = _write_store(tmp_path / "store", offsets=(0.0, 0.0, -0.8))
    out = _fit_json(capsys, store, "--bootstrap", "0")
    flags = [b["bracketed"] for b in out["budgets"]]
    assert flags == [True, True, False]
    assert out["budgets"][2]["n_opt"] is None and out["budgets"][0]["n_opt"] > 0
    assert out["approaches"]["2"]["budgets_used"] == 2
    assert out["approaches"]["2"]["a"] is not None and out["approaches"]["2"]["ci"] is None


def test_min_budget_leaves_the_smaller_budgets_out(sweep_store, capsys):
    out = _fit_json(capsys, sweep_store, "--bootstrap", "0", "--min-budget", "1e14")
    assert [b["planned"] for b in out["budgets"]] == pytest.approx(BUDGETS[1:])
    assert out["min_budget"] == 1e14 and out["max_budget"] is None  # what it fitted
    top = _fit_json(capsys, sweep_store, "--bootstrap", "0", "--max-budget", str(BUDGETS[-2]))
    assert [b["planned"] for b in top["budgets"]] == pytest.approx(BUDGETS[:-1])
    assert top["max_budget"] == pytest.approx(BUDGETS[-2])
    assert all(v["a"] is not None for v in out["approaches"].values())
    one_line_error(capsys, ["fit-sweep", str(sweep_store), "--min-budget", "1e15"], 2,
                   "leaves fewer than 2 budgets")
    one_line_error(capsys, ["fit-sweep", str(sweep_store), "--min-budget", "-1"], 2,
                   "min_budget must be a positive number")


def test_fewer_than_two_bracketed_budgets_gives_a_reason(tmp_path, capsys):
    store = _write_store(tmp_path / "store", offsets=(0.0, 0.8, -0.8))
    out = _fit_json(capsys, store, "--bootstrap", "0")
    res = out["approaches"]["2"]
    assert res["a"] is None and "only 1 of 3 budgets" in res["reason"]
    assert out["approaches"]["3"]["a"] is not None


def test_readable_table_and_output_file(sweep_store, tmp_path, capsys):
    dest = tmp_path / "fit.json"
    argv = ["fit-sweep", str(sweep_store), "--bootstrap", "0", "--grid", "small",
            "--output", str(dest)]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    assert "exact training FLOP" in text and "bracketed" in text
    saved = json.loads(dest.read_text())
    assert set(saved["approaches"]) == {"1", "2", "3"}
    assert "command" in json.loads((tmp_path / "fit.meta.json").read_text())


def test_refuses_to_write_into_the_store(sweep_store, capsys):
    one_line_error(capsys, ["fit-sweep", str(sweep_store), "--output",
                            str(sweep_store / "fit.json")], 2, "inside the input folder")


def test_folder_that_is_not_a_store_is_one_line_error(tmp_path, capsys):
    one_line_error(capsys, ["fit-sweep", str(tmp_path)], 2, "not a run store")


def test_store_without_finished_runs_is_one_line_error(tmp_path, capsys):
    store = RunStore(tmp_path / "store")
    store.add({"run": 0}, plan={"budget": 1e13, "params": 1e5, "tokens": 1e7})
    one_line_error(capsys, ["fit-sweep", str(tmp_path / "store")], 2, "no finished runs")


def test_flops_per_token_curve_is_smooth_in_log_log_and_extends_straight():
    f = flops_per_token_curve([1e6, 1e7, 1e7], [1e7, 8e7, 1.2e8])
    mid = np.exp(0.5 * (np.log(8e7) + np.log(1.2e8)))  # runs of one size: mean of ln f
    assert f(np.array([1e7]))[0] == pytest.approx(mid)
    slope = np.log(mid / 1e7) / np.log(10)
    assert f(np.array([1e8]))[0] == pytest.approx(mid * 10**slope)
    x = np.log([1e5, 1e6, 1e7, 1e8])

    def quad(v):
        return 1.0 + 1.1 * v - 0.004 * v**2

    g = flops_per_token_curve(np.exp(x), np.exp(quad(x)))
    assert g(np.exp([14.0]))[0] == pytest.approx(np.exp(quad(14.0)))
    end_slope = 1.1 - 0.008 * x[-1]
    assert np.log(g(np.exp([x[-1] + 1]))[0]) == pytest.approx(quad(x[-1]) + end_slope)
    with pytest.raises(ValueError, match="at least 2 sizes"):
        flops_per_token_curve([1e6, 1e6], [1e7, 1e7])
