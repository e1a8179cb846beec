"""The Porian et al. step ladder: plans, per-step recipes, exponent fits, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalingkit.cli import main
from scalingkit.core import flops
from scalingkit.core.models import GPTConfig
from scalingkit.core.train import TrainConfig
from scalingkit.runs.store import RunStore
from scalingkit.studies import porian2024 as porian
from scalingkit.tolerances import FIT_EXPONENT_RTOL

SHAKESPEARE_TRAIN_TOKENS = 4_848_042  # measured by scalingkit.runs.sweep.train_tokens
SPEC = porian.rung_spec(budgets=(2.5e11, 1e12), sizes_per_budget=4,
                        corpus_tokens=SHAKESPEARE_TRAIN_TOKENS)
LAW = {"E": 1.0, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.34}


@pytest.fixture(scope="module")
def plans():
    return {s.name: porian.plan_rung(s, SPEC) for s in porian.RUNGS}


def test_ladder_corrects_one_factor_per_step():
    fields = ("budget_count", "warmup", "schedule", "tuned")
    changed = [sum(getattr(a, f) != getattr(b, f) for f in fields)
               for a, b in zip(porian.RUNGS, porian.RUNGS[1:], strict=False)]
    assert changed == [1] * (len(porian.RUNGS) - 1)
    assert porian.RUNGS[0].name == "kaplan"
    assert porian.rung_command("warmup") == (
        "python -m scalingkit porian run warmup --out runs/porian/warmup")


@pytest.mark.parametrize("name", [s.name for s in porian.RUNGS])
def test_each_step_plans_valid_runs_on_budget(plans, name):
    step, plan = porian.get_rung(name), plans[name]
    assert len(plan.runs) >= 6
    for run in plan.runs:
        config = TrainConfig.from_dict(run.config)
        model = config.model
        per_token = (6 * model.n_params_non_embedding() if step.budget_count == "kaplan"
                     else flops.training_flops_per_token(model.shape))
        # whole steps: within half a step of the budget
        assert abs(per_token * config.tokens - run.budget) <= per_token * config.tokens_per_step
        assert config.schedule == step.schedule
        assert config.warmup_tokens <= config.tokens / 2
        expected_warm = porian.KAPLAN_WARMUP_TOKENS if step.warmup == "fixed" else run.params
        assert config.warmup_tokens == int(min(expected_warm, config.tokens / 2))
        assert run.flops_exact == pytest.approx(
            flops.training_flops_per_token(model.shape) * config.tokens)
        if step.tuned:
            hp = porian.tuned_hyperparameters(run.params)
            assert (config.lr, config.batch_size, config.beta2) == (
                hp["lr"], hp["batch_size"], hp["beta2"])
        else:
            assert (config.lr, config.batch_size, config.beta2) == (3e-3, 32, 0.95)
    if step.schedule == "cosine_fixed":
        horizons = {r.config["horizon_tokens"] for r in plan.runs}
        assert len(horizons) == 1
        assert horizons.pop() >= max(r.tokens for r in plan.runs) - 32 * 128


def test_kaplan_count_gives_small_models_more_compute(plans):
    kaplan = {(r.budget, r.params): r for r in plans["kaplan"].runs}
    exact = {(r.budget, r.params): r for r in plans["head"].runs}
    common = sorted(set(kaplan) & set(exact), key=lambda k: k[1])
    ratios = [kaplan[k].flops_exact / exact[k].flops_exact for k in common]
    assert all(r > 1 for r in ratios)
    assert ratios[0] > ratios[-1]  # the head's share is largest in the smallest model


@pytest.mark.parametrize("n", [1e4, 1e5, 1e6, 1e7])
def test_tuned_hyperparameters_rule(n):
    hp = porian.tuned_hyperparameters(n)
    bigger = porian.tuned_hyperparameters(10 * n)
    assert bigger["lr"] <= hp["lr"] and bigger["batch_size"] >= hp["batch_size"]
    assert hp["beta2"] == (0.99 if hp["batch_size"] < 32 else 0.95)
    assert 1e-3 <= hp["lr"] <= 1e-2 and 8 <= hp["batch_size"] <= 64


@pytest.mark.parametrize(("call", "match"), [
    (lambda: porian.get_rung("chinchilla"), "unknown Porian rung"),
    (lambda: porian.tuned_hyperparameters(0.0), "n_params"),
    (lambda: porian.tuned_hyperparameters(math.nan), "n_params"),
    (lambda: porian.counting_experiment({"E": 1.0}, [1e12]), "lacks"),
    (lambda: porian.counting_experiment(LAW, [1e12], sizes_per_budget=2), "at least 3"),
    (lambda: porian.counting_experiment(LAW, [-1.0]), "positive"),
    (lambda: porian.counting_experiment(LAW, [1e12], noise=0.1), "rng"),
    (lambda: porian.fit_exponent(porian.counting_experiment(LAW, [1e12, 1e13]), "6nd"),
     "unknown convention"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_counting_experiment_recovers_exponent_and_shows_head_bias():
    budgets = np.geomspace(1e15, 1e18, 4)
    frame = porian.counting_experiment(LAW, budgets, vocab_size=50257, n_ctx=1024)
    table = porian.exponent_table({"synthetic": frame}, n_bootstrap=0).set_index("convention")
    assert table.loc["with_head", "a"] == pytest.approx(0.5, abs=0.05)
    assert table.loc["kaplan", "a"] > table.loc["with_head", "a"] + 0.05
    assert table.loc["with_head", "n_budgets"] == 4


def test_optimum_method_matches_parabolas_when_bracketed_and_counts_edges():
    budgets = np.geomspace(1e15, 1e18, 4)
    frame = porian.counting_experiment(LAW, budgets, vocab_size=256, n_ctx=128)
    both = porian.exponent_table({"s": frame}, conventions=["with_head"],
                                 methods=porian.METHODS, n_bootstrap=20).set_index("method")
    # every budget bracketed: the local parabolas (optimum) and the full ones agree closely
    assert both.loc["optimum", "a"] == pytest.approx(both.loc["parabola", "a"], abs=1e-3)
    assert both.loc["optimum", "a"] == pytest.approx(0.5, abs=1e-3)
    assert (both["n_edge"] == 0).all()
    low, high = both.loc["optimum", ["a_low", "a_high"]]
    assert low <= both.loc["optimum", "a"] <= high
    # keep only the larger half of every budget's sizes: each minimum sits at the small edge,
    # the optimum method falls back to the smallest size, and says so in n_edge
    big = frame[frame.groupby("budget")["params_with_head"].rank(pct=True) > 0.5]
    row = porian.fit_exponent(big, "with_head", method="optimum", n_bootstrap=0)
    smallest = big.groupby("budget")["params_with_head"].min().to_numpy()
    assert row["n_edge"] == 4 and math.isnan(row["a_low"])
    slope = np.polyfit(np.log(big.groupby("budget")["flops_exact"].apply(
        lambda c: np.exp(np.log(c).mean())).to_numpy()), np.log(smallest), 1)[0]
    assert row["a"] == pytest.approx(slope)
    table = porian.optimum_table(big)
    assert not table["bracketed"].any() and np.allclose(table["n_opt"], smallest)
    assert (table["compute"] > 0).all()
    with pytest.raises(ValueError, match="unknown method"):
        porian.fit_exponent(frame, method="spline")


def test_parametric_method_recovers_the_law_and_parabola_failures_are_reported():
    frame = porian.counting_experiment(LAW, np.geomspace(1e15, 1e18, 4), vocab_size=256)
    row = porian.fit_exponent(frame, "with_head", method="parametric", n_bootstrap=0)
    truth = LAW["beta"] / (LAW["alpha"] + LAW["beta"])
    assert row["a"] == pytest.approx(truth, abs=2e-3) and row["note"] == ""
    # one budget whose loss falls all the way to the largest size, concave: no parabola
    bent = frame.copy()
    first = bent["budget"] == bent["budget"].min()
    x = np.log(bent.loc[first, "params_with_head"])
    bent.loc[first, "loss"] = 3.0 - 0.05 * (x - x.min()) ** 2
    row = porian.fit_exponent(bent, "with_head", method="parabola", n_bootstrap=0)
    assert math.isnan(row["a"]) and "not convex" in row["note"]


def test_head_share_shrinks_with_size():
    share = porian.head_share(np.geomspace(1e4, 1e9, 8), vocab_size=50257, n_ctx=1024)
    assert np.all(np.diff(share["param_ratio"]) < 0)
    assert np.all(share["param_ratio"] > 1) and np.all(share["flop_ratio"] > 1)
    model = GPTConfig(d_model=int(share["d_model"][0]), n_layer=int(share["n_layer"][0]),
                      n_head=1, n_ctx=1024, vocab_size=50257)
    assert share["param_ratio"][0] == pytest.approx(
        model.n_params_with_head() / model.n_params_non_embedding())


def _synthetic_store(root, plan, law):
    """A run store holding a plan's runs, 'trained' to the law's loss (with-head N)."""
    store = RunStore(root)
    store.ensure_writable()
    for run in plan.runs:
        model = GPTConfig.from_dict(run.config["model"])
        loss = (law["E"] + law["A"] / model.n_params_with_head() ** law["alpha"]
                + law["B"] / run.tokens ** law["beta"])
        run_id = store.add(run.config, plan={**run.plan_dict("exact"), "step": "head"})
        store.update(run_id, "done", result={"status": "done", "final_loss": loss,
                                             "tokens": run.tokens})
    return store


def test_step_frame_and_fit_cli(plans, tmp_path, capsys):
    plan = plans["head"]
    _synthetic_store(tmp_path / "head", plan, LAW)
    frame = porian.rung_frame(tmp_path / "head")
    assert len(frame) == len(plan.runs)
    assert np.all(frame["params_with_head"] > frame["params_non_embedding"])
    out = tmp_path / "table.json"
    assert main(["porian", "fit", f"head={tmp_path / 'head'}", "--bootstrap", "20",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "with_head" in printed and "kaplan" in printed
    rows = {(r["convention"], r["method"]): r for r in json.loads(out.read_text())["table"]}
    assert len(rows) == 6 and {r["step"] for r in rows.values()} == {"head"}
    truth = LAW["beta"] / (LAW["alpha"] + LAW["beta"])  # the losses follow LAW in N with head
    exact = rows["with_head", "parametric"]
    assert exact["a"] == pytest.approx(truth, abs=1e-3)
    assert exact["a_low"] - 1e-6 <= truth <= exact["a_high"] + 1e-6
    # counting N without the embedding head shifts the fitted exponent (Porian's factor a)
    assert rows["kaplan", "parametric"]["a"] > truth + 0.05


def test_fit_cli_rejects_bad_argument(tmp_path, capsys):
    assert main(["porian", "fit", "no-equals-sign"]) == 2
    assert "NAME=DIR" in capsys.readouterr().err
    assert main(["porian", "fit", f"kaplan={tmp_path}"]) == 2
    assert "not a run store" in capsys.readouterr().err


def test_plots_draw(plans):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalingkit import plots

    ax = plots.plot_head_share(porian.head_share(np.geomspace(1e4, 1e7, 5)), label="V=256")
    assert len(ax.lines) == 3
    frame = porian.counting_experiment(LAW, np.geomspace(1e13, 1e15, 3))
    table = porian.exponent_table({"synthetic": frame}, n_bootstrap=10)
    ax = plots.plot_exponents(table, reference={"Chinchilla": 0.5})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["synthetic"]
    two = porian.exponent_table({"synthetic": frame}, methods=porian.METHODS, n_bootstrap=0)
    with pytest.raises(ValueError, match="one row per step and convention"):
        plots.plot_exponents(two)
    plt.close("all")


def test_measure_throughput_times_real_steps(plans):
    table = porian.measure_throughput(plans["kaplan"], n_steps=2, which=[0])
    assert len(table) == 1 and table["tokens_per_s"][0] > 0
    model = GPTConfig.from_dict(plans["kaplan"].runs[0].config["model"])
    assert table["flop_per_s"][0] == pytest.approx(
        table["tokens_per_s"][0] * flops.training_flops_per_token(model.shape))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_steps": 0}, "n_steps"), ({"which": [10_000]}, "outside"),
])
def test_measure_throughput_rejects(plans, kwargs, match):
    with pytest.raises(ValueError, match=match):
        porian.measure_throughput(plans["kaplan"], **kwargs)


THROUGHPUT = (Path(__file__).resolve().parents[1] / "book" / "data" / "porian"
              / "throughput_kaplan.json")


@pytest.mark.skipif(not THROUGHPUT.exists(), reason="no committed throughput measurement")
def test_committed_throughput_rederives():
    data = json.loads(THROUGHPUT.read_text())
    plan = porian.plan_rung("kaplan", porian.rung_spec(corpus_tokens=SHAKESPEARE_TRAIN_TOKENS))
    assert data["plan_flops"] == pytest.approx(plan.total_flops, rel=1e-12)
    assert data["estimated_seconds"] == pytest.approx(
        porian.estimate_seconds(plan, pd.DataFrame(data["timings"])), rel=1e-12)
    assert data["provenance"]["command"].startswith("python -m scalingkit porian throughput")
    for t in data["timings"]:
        model = next(r for r in plan.runs if r.params == t["params"])
        per_token = flops.training_flops_per_token(
            GPTConfig.from_dict(model.config["model"]).shape)
        assert t["flop_per_s"] == pytest.approx(t["tokens_per_s"] * per_token)


def test_estimate_seconds_interpolates_rates(plans):
    plan = plans["head"]
    sizes = sorted({r.params for r in plan.runs})
    flat = pd.DataFrame({"params": [sizes[0], sizes[-1]], "flop_per_s": [1e9, 1e9]})
    assert porian.estimate_seconds(plan, flat) == pytest.approx(plan.total_flops / 1e9)
    rising = pd.DataFrame({"params": [sizes[0], sizes[-1]], "flop_per_s": [1e8, 1e10]})
    smallest = sum(r.flops_exact for r in plan.runs if r.params == sizes[0]) / 1e8
    assert smallest < porian.estimate_seconds(plan, rising) < plan.total_flops / 1e8
    with pytest.raises(ValueError, match="positive"):
        porian.estimate_seconds(plan, pd.DataFrame({"params": [1e5], "flop_per_s": [0.0]}))


def test_committed_exponents_rederive_from_the_committed_rungs():
    """Every a in book/data/porian/exponents.json comes back from the five exported stores."""
    data = json.loads((THROUGHPUT.parent / "exponents.json").read_text())
    assert data["provenance"]["command"].startswith("python -m scalingkit porian fit")
    committed = pd.DataFrame(data["table"])
    frames = {s.name: porian.rung_frame(THROUGHPUT.parent / s.name) for s in porian.RUNGS}
    live = porian.exponent_table(frames, methods=porian.METHODS, n_bootstrap=0)
    both = live.merge(committed, on=["step", "method", "convention"], suffixes=("", "_json"))
    assert len(both) == len(committed) == len(porian.RUNGS) * 2 * len(porian.METHODS)
    # to the spread measured across CPUs (scalingkit.tolerances)
    assert np.allclose(both["a"], both["a_json"], rtol=FIT_EXPONENT_RTOL, equal_nan=True)
    assert (both["n_edge"] == both["n_edge_json"]).all()
    ok = committed.dropna(subset=["a_low"])
    assert (ok["a_low"] <= ok["a_high"]).all()
