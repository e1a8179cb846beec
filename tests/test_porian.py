"""The Porian et al. step ladder: plans, per-step recipes, exponent fits, the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace
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
    data = json.loads(out.read_text())
    assert (data["summary_method"], data["summary_convention"]) == (
        porian.SUMMARY_METHOD, "own")
    head = data["summary"]["head"]
    assert set(head) == {"a", "ci", "budgets", "bracketed", "convention", "reason"}
    assert head["convention"] == "with_head"  # the head rung's budgets are exact FLOP
    assert head["budgets"] == 2 and 0 <= head["bracketed"] <= 2
    if head["a"] is not None:
        assert head["ci"][0] <= head["a"] <= head["ci"][1]


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


THROUGHPUT = (Path(__file__).resolve().parents[1] / "book" / "data" / "porian_shakespeare"
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
    """Every a in book/data/porian_shakespeare/exponents.json comes back from its five stores."""
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


# --- the laptop ladder (BPE 4096 on gutenberg_en, the measured lr rule) -------------------

RULE = {"coef": 5e-3, "exponent": 0.3, "n_ref": 1e5, "n_min": 1e4, "n_max": 3e6,
        "budget_exponent": 0.3, "c_ref": 2e12, "c_min": 1e12, "c_max": 5e12}
# corpus_tokens given: planning never loads (or BPE-encodes) the corpus
LAPTOP = porian.laptop_spec(RULE, budgets=(1e12, 3e12), sizes_per_budget=4,
                            corpus_tokens=30_000_000)


@pytest.fixture(scope="module")
def laptop():
    recipe = porian.fixed_recipe(LAPTOP)
    return recipe, {r.name: porian.plan_rung(r, LAPTOP, recipe=recipe)
                    for r in porian.LAPTOP_RUNGS}


def test_laptop_ladder_corrects_one_factor_per_step():
    fields = ("budget_count", "warmup", "schedule", "tuned")
    order = porian.ladder_order(porian.LAPTOP_RUNGS)
    changed = [sum(getattr(a, f) != getattr(b, f) for f in fields)
               for a, b in zip(order, order[1:], strict=False)]
    assert changed == [1] * (len(order) - 1)
    assert [r.name for r in porian.LAPTOP_RUNGS[:2]] == ["kaplan", "corrected"]
    assert [order[0].name, order[-1].name] == ["kaplan", "corrected"]
    assert {r.ladder for r in porian.LAPTOP_RUNGS} == {"laptop"}
    assert porian.get_rung("corrected", "laptop").tuned
    assert "--ladder laptop" in porian.rung_command(porian.LAPTOP_RUNGS[0])


def test_fixed_recipe_is_the_rule_in_the_middle(laptop):
    recipe, plans = laptop
    ks = sorted({k for b in LAPTOP.budgets for k in LAPTOP.rungs(b)})
    n_mid = np.exp(np.mean(np.log([porian.byte_twin_params(LAPTOP, k) for k in ks])))
    assert recipe.lr == pytest.approx(RULE["coef"] * (n_mid / 1e5) ** -0.3
                                      * (np.sqrt(3e12 * 1e12) / 2e12) ** -0.3)
    assert recipe.horizon_tokens == max(r.tokens for r in plans["kaplan"].runs)


@pytest.mark.parametrize("name", [r.name for r in porian.LAPTOP_RUNGS])
def test_laptop_rungs_differ_exactly_as_documented(laptop, name):
    recipe, plans = laptop
    rung, plan = porian.get_rung(name, "laptop"), plans[name]
    assert len(plan.runs) >= 6
    for run in plan.runs:
        config = TrainConfig.from_dict(run.config)
        model = config.model
        assert config.tokenizer == "bpe:4096" and model.vocab_size == 4096
        exact = flops.training_flops_per_token(model.shape)
        per_token = 6 * model.n_params_non_embedding() if rung.budget_count == "kaplan" else exact
        assert abs(per_token * config.tokens - run.budget) <= per_token * config.tokens_per_step
        assert run.flops_exact == pytest.approx(exact * config.tokens)
        warm = (min(porian.LAPTOP_WARMUP_TOKENS, config.tokens / 2) if rung.warmup == "fixed"
                else round(0.05 * config.tokens))
        assert config.warmup_tokens == int(warm)
        assert config.schedule == rung.schedule
        assert config.horizon_tokens == (recipe.horizon_tokens
                                         if rung.schedule == "cosine_fixed" else None)
        k = run.size_index  # the ladder rung; the lr rule is read at its byte-level twin
        rule_lr = LAPTOP.lr_for(porian.byte_twin_params(LAPTOP, k), run.budget)
        assert config.lr == pytest.approx(rule_lr if rung.tuned else recipe.lr)
        assert (config.batch_size, config.sampler) == (16, "epoch")
    if rung.tuned:  # the rule falls with size: one lr per size
        assert len({r.config["lr"] for r in plan.runs}) > 3


def test_kaplan_count_gives_small_models_far_more_tokens_with_bpe(laptop):
    _, plans = laptop
    kaplan = {(r.budget, r.params): r.tokens for r in plans["kaplan"].runs}
    exact = {(r.budget, r.params): r.tokens for r in plans["head"].runs}
    common = sorted(set(kaplan) & set(exact), key=lambda key: key[1])
    ratios = [kaplan[c] / exact[c] for c in common]
    assert all(r > 1.5 for r in ratios) and ratios[0] > ratios[-1]


def test_head_flop_share_of_the_planned_shapes(laptop):
    _, plans = laptop
    share = porian.head_flop_share(plans["corrected"])
    assert np.all(np.diff(share["head_share"]) < 0) and share["head_share"].iloc[0] > 0.5
    model = GPTConfig(d_model=int(share["d_model"][0]), n_layer=int(share["n_layer"][0]),
                      n_head=1, n_ctx=128, vocab_size=4096)
    assert share["head_flop_per_token"][0] == pytest.approx(3 * 2 * model.d_model * 4096)
    assert share["flop_per_token"][0] == pytest.approx(
        flops.training_flops_per_token(model.shape))
    # the runs themselves (planned runs or a store's records) give the same table
    assert porian.head_flop_share(list(plans["corrected"].runs)).equals(share)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: porian.get_rung("tuned", "laptop"), "unknown Porian rung"),
    (lambda: porian.ladder_rungs("new"), "unknown ladder"),
    (lambda: porian.plan_rung(porian.LAPTOP_RUNGS[0]), "needs a spec"),
    (lambda: porian.run_rung(porian.RUNGS[0], porian.rung_spec(), "x"), "laptop rungs"),
    (lambda: porian.fixed_recipe(replace(LAPTOP, lr_rule=None)), "lr rule"),
])
def test_laptop_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _valley(optimum: float, exponent: float = 0.0):
    """A stand-in trainer: loss is a parabola in ln N, minimum at ``optimum (C/1e12)^exponent``
    with C the run's exact FLOP."""
    def train(config, *, run_dir=None, progress=False):
        cfg = TrainConfig.from_dict(config)
        n = cfg.model.n_params()
        c = flops.training_flops_per_token(cfg.model.shape) * cfg.tokens
        best = optimum * (c / 1e12) ** exponent
        return {"status": "done", "final_loss": 2.0 + 0.05 * math.log(n / best) ** 2,
                "epochs": 0.01}
    return train


@pytest.mark.parametrize("name", ["kaplan", "corrected"])
def test_run_rung_brackets_every_budget(tmp_path, name):
    spec = replace(LAPTOP, budgets=(1e12, 2e12, 4e12), sizes_per_budget=3)
    sizes = sorted({r.params for r in porian.plan_rung(name, spec).runs})
    lines = []
    final, table = porian.run_rung(name, spec, str(tmp_path / name), log=lines.append,
                                   trainer=_valley(sizes[1], 0.5), progress=False)
    assert table["bracketed"].all() and len(table) == 3
    assert any("pilot" in line for line in lines) and final.centre_tokens_per_param
    records = list(RunStore(tmp_path / name).records())
    assert {(r.plan["step"], r.plan["ladder"]) for r in records} == {(name, "laptop")}
    horizons = {r.config.get("horizon_tokens") for r in records}
    assert len(horizons) == 1  # one fixed horizon (or none) across pilot, sweep and edges
    frame = porian.rung_frame(tmp_path / name)
    row = porian.rung_summary(frame, n_bootstrap=10)
    assert row["bracketed"] == row["budgets"] == 3


def test_rung_summary_brackets_and_noise_widening():
    frame = porian.counting_experiment(LAW, np.geomspace(1e15, 1e18, 3), sizes_per_budget=5)
    row = porian.rung_summary(frame, n_bootstrap=20)
    assert (row["budgets"], row["bracketed"]) == (3, 3) and row["reason"] is None
    assert row["a"] == pytest.approx(0.5, abs=0.02)
    assert row["ci"] == pytest.approx([row["a"]] * 2, abs=5e-3)  # noiseless losses
    wide = porian.rung_summary(frame, n_bootstrap=20, noise_sd=0.01)
    assert wide["ci"][0] <= row["ci"][0] and wide["ci"][1] >= row["ci"][1]
    both = porian.summary({"s": frame}, n_bootstrap=0)
    assert both["summary_convention"] == "own" and both["summary"]["s"]["ci"] is None
    assert both["summary"]["s"]["convention"] == "with_head"  # no budget count: exact
    with pytest.raises(ValueError, match="noise_sd"):
        porian.rung_summary(frame, noise_sd=-1.0)


def _laptop_args(tmp_path, *extra):
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps({"rule": RULE}))
    return ["--ladder", "laptop", "--budgets", "1e12", "3e12", "--lr-rule", str(rule),
            "--corpus-tokens", "30000000", *extra]


def test_laptop_plan_cli(tmp_path, capsys):
    assert main(["porian", "plan", "kaplan", *_laptop_args(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "laptop ladder" in out and "bracketed" in out
    assert main(["porian", "plan", "head", "--ladder", "old", "--budgets", "2.5e11",
                 "--corpus-tokens", str(SHAKESPEARE_TRAIN_TOKENS)]) == 0
    assert "head:" in capsys.readouterr().out


def test_laptop_run_cli_with_a_stand_in_trainer(tmp_path, capsys, monkeypatch):
    from scalingkit.runs import executors

    monkeypatch.setattr(executors, "DEFAULT_TRAINER", _valley(2.6e5))
    out = tmp_path / "corrected"
    assert main(["porian", "run", "corrected", "--out", str(out), "--no-progress",
                 *_laptop_args(tmp_path)]) == 0
    assert {r.plan["step"] for r in RunStore(out).records()} == {"corrected"}
    assert "every budget is bracketed" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "fragments"), [
    (["plan", "chinchilla", "--ladder", "laptop", "--lr-rule", "x"],
     ["unknown Porian rung", "laptop"]),
    (["plan", "kaplan", "--ladder", "laptop", "--budgets", "1e12", "-1"],
     ["--budgets", "positive"]),
    (["plan", "kaplan", "--ladder", "laptop", "--budgets", "1e12"], ["needs --lr-rule"]),
    (["plan", "kaplan", "--ladder", "old", "--lr-rule", "x"], ["laptop ladder only"]),
    (["run", "kaplan", "--ladder", "laptop", "--out", "OUT"], ["needs --lr-rule"]),
    (["run", "tuned", "--ladder", "laptop", "--out", "OUT", "--lr-rule", "x"],
     ["unknown Porian rung"]),
    (["plan", "kaplan", "--ladder", "laptop", "--lr-rule", "missing.json"], ["does not exist"]),
])
def test_step_options_fail_in_one_line(tmp_path, capsys, argv, fragments):
    from conftest import one_line_error

    argv = [a.replace("OUT", str(tmp_path / "s")) for a in argv]
    one_line_error(capsys, ["porian", *argv], 2, *fragments)


def test_rung_summary_reads_each_rung_in_its_own_count():
    """A Kaplan-count rung is an IsoFLOP sweep only in 6 N_ne D: its summary uses that count."""
    frame = porian.counting_experiment(LAW, np.geomspace(1e15, 1e18, 3), sizes_per_budget=5)
    kaplan = frame.assign(budget_flops="kaplan")
    assert porian.rung_summary(kaplan, n_bootstrap=0)["convention"] == "kaplan"
    assert porian.rung_summary(frame.assign(budget_flops="exact"),
                               n_bootstrap=0)["convention"] == "with_head"
    mixed = frame.assign(budget_flops=["kaplan"] + ["exact"] * (len(frame) - 1))
    with pytest.raises(ValueError, match="mix budget counts"):
        porian.rung_summary(mixed, n_bootstrap=0)


def test_a_rung_keeps_its_stored_recipe_when_budgets_are_added(tmp_path):
    """The untuned lr and the shared horizon are the first invocation's, not the new budgets'."""
    out = str(tmp_path / "kaplan")
    first = replace(LAPTOP, budgets=(1e12, 2e12), sizes_per_budget=3)
    sizes = sorted({r.params for r in porian.plan_rung("kaplan", first).runs})
    porian.run_rung("kaplan", first, out, log=lambda line: None,
                    trainer=_valley(sizes[1], 0.5), progress=False)
    rung = porian.get_rung("kaplan", "laptop")
    kept = porian.stored_recipe(out, rung)
    assert kept == porian.fixed_recipe(first)
    more = replace(first, budgets=(5e11, 1e12, 2e12))
    assert porian.fixed_recipe(more) != kept  # the budgets' own middle differs
    porian.run_rung("kaplan", more, out, log=lambda line: None,
                    trainer=_valley(sizes[1], 0.5), progress=False)
    configs = [r.config for r in RunStore(out).records()]
    assert {c["lr"] for c in configs} == {kept.lr}
    assert {c["horizon_tokens"] for c in configs} == {kept.horizon_tokens}
    assert {r.plan["budget"] for r in RunStore(out).records()} >= {5e11, 1e12, 2e12}
    assert porian.stored_recipe(str(tmp_path / "none"), rung) is None


def test_fit_cli_max_budget_leaves_out_the_larger_budgets(plans, tmp_path, capsys):
    plan = plans["head"]
    _synthetic_store(tmp_path / "head", plan, LAW)
    out = tmp_path / "fit.json"
    largest = max(r.budget for r in plan.runs)
    assert main(["porian", "fit", f"head={tmp_path / 'head'}", "--bootstrap", "0",
                 "--max-budget", f"head={largest}", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["max_budget"] == {"head": largest} and data["min_budget"] == {}
    smallest = min(r.budget for r in plan.runs)
    assert main(["porian", "fit", f"head={tmp_path / 'head'}", "--bootstrap", "0",
                 "--min-budget", f"head={smallest}", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["min_budget"] == {"head": smallest}
    capsys.readouterr()
    from conftest import one_line_error

    one_line_error(capsys, ["porian", "fit", f"head={tmp_path / 'head'}",
                            "--max-budget", f"head={largest / 2}"], 2, "fewer than 2 budgets")
    one_line_error(capsys, ["porian", "fit", f"head={tmp_path / 'head'}",
                            "--max-budget", "kaplan=1e12"], 2, "--max-budget", "fitted steps")
    one_line_error(capsys, ["porian", "fit", f"head={tmp_path / 'head'}",
                            "--max-budget", "head=big"], 2, "not a number")


BPE_LADDER = Path(__file__).resolve().parents[1] / "book" / "data" / "porian"


def test_committed_summary_rederives_from_the_bpe_rungs():
    """book/data/porian/exponents.json: each rung's headline a from its exported store."""
    from scalingkit.runs.frames import runs_from_budget

    data = json.loads((BPE_LADDER / "exponents.json").read_text())
    assert data["provenance"]["command"].startswith("python -m scalingkit porian fit")
    assert set(data["summary"]) == {"kaplan", "corrected"}
    for name, row in data["summary"].items():
        frame = runs_from_budget(porian.rung_frame(BPE_LADDER / name),
                                 data["min_budget"].get(name), name,
                                 max_budget=data["max_budget"].get(name))
        live = porian.rung_summary(frame, n_bootstrap=0)
        assert live["a"] == pytest.approx(row["a"], rel=FIT_EXPONENT_RTOL)
        assert live["bracketed"] == live["budgets"] == row["budgets"] == row["bracketed"]
        assert row["budgets"] >= 3 and row["ci"][0] <= row["a"] <= row["ci"][1]
    assert data["summary"]["kaplan"]["convention"] == "kaplan"
    assert data["summary"]["corrected"]["convention"] == "with_head"
