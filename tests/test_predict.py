"""The prediction protocol: fit, predict once, train, record the outcome."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalingkit.cli import main
from scalingkit.core import flops
from scalingkit.core.models import GPTConfig, shape_for_params
from scalingkit.core.train import TrainConfig
from scalingkit.fit import relative_error
from scalingkit.studies import forecasting as predict

ROOT = Path(__file__).resolve().parents[1]
LAW = {"E": 1.2, "A": 60.0, "B": 300.0, "alpha": 0.34, "beta": 0.36}
RECIPE = TrainConfig(model=GPTConfig(d_model=32, n_layer=2, n_head=2, n_ctx=64, vocab_size=256),
                     tokens=64 * 16 * 100, batch_size=16, warmup_tokens=64 * 16 * 5,
                     eval_every=10, eval_tokens=1024).to_dict()


def law_loss(n, d):
    return LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]


def synthetic_sweep(budgets=(1e11, 3e11, 1e12, 3e12), k=7):
    """IsoFLOP runs on the ladder whose loss follows LAW exactly (N = every parameter)."""
    rows = []
    for c in budgets:
        for target in np.sqrt(c / 120) * np.geomspace(1 / 6, 6, k):
            model = shape_for_params(float(target), n_ctx=64, vocab_size=256, count="total",
                                     head_dim=16)
            d = c / flops.training_flops_per_token(model.shape)
            rows.append({"params": model.n_params(), "tokens": d, "budget": c,
                         "loss": law_loss(model.n_params(), d)})
    return pd.DataFrame(rows).drop_duplicates(["budget", "params"])


@pytest.fixture(scope="module")
def prediction():
    return predict.make_prediction(synthetic_sweep(), RECIPE)


def test_prediction_extrapolates_the_law(prediction):
    assert prediction["budget"] == pytest.approx(4 * 3e12)
    assert prediction["max_fitted_budget"] == 3e12
    config = TrainConfig.from_dict(prediction["config"])
    assert config.model.n_params() == prediction["params"]
    truth = law_loss(prediction["params"], prediction["tokens"])
    assert prediction["predicted_loss"] == pytest.approx(truth, rel=5e-3)
    # the chosen shape is the best ladder shape under the true law, too
    spent = flops.training_flops_per_token(config.model.shape) * config.tokens
    assert spent == pytest.approx(prediction["budget"], rel=0.02)
    # the recipe is kept: same batch, lr, schedule, warmup share
    assert (config.batch_size, config.lr, config.schedule) == (16, RECIPE["lr"], "cosine")
    assert config.warmup_tokens / config.tokens == pytest.approx(0.05, abs=0.01)
    assert np.isfinite(prediction["predicted_loss_envelope"])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"factor": 2.0}, "at least 4"),
    ({"budget": 3.0 * 3e12}, "not at least 4x"),
    ({"budget": float("nan")}, "not at least 4x"),
])
def test_refuses_short_extrapolation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        predict.make_prediction(synthetic_sweep(), RECIPE, **kwargs)


def test_missing_column():
    with pytest.raises(ValueError, match="budget"):
        predict.make_prediction(synthetic_sweep().drop(columns="budget"), RECIPE)


@pytest.mark.parametrize(("predicted", "actual", "expected"),
                         [(2.0, 2.0, 0.0), (2.1, 2.0, 0.05), (1.9, 2.0, 0.05)])
def test_relative_error(predicted, actual, expected):
    assert relative_error(predicted, actual) == pytest.approx(expected)


@pytest.mark.parametrize("actual", [0.0, -1.0, float("nan")])
def test_relative_error_rejects(actual):
    with pytest.raises(ValueError, match="reference > 0"):
        relative_error(2.0, actual)


def test_protocol_order(prediction, tmp_path):
    path = tmp_path / "prediction.json"
    with pytest.raises(ValueError, match="no prediction"):
        predict.record_outcome(path, {"status": "done", "final_loss": 2.0})
    rec = predict.write_prediction(path, prediction, command="predict make")
    assert rec["actual_loss"] is None and rec["predicted_at"]
    with pytest.raises(ValueError, match="already holds a prediction"):
        predict.write_prediction(path, prediction)
    with pytest.raises(ValueError, match="did not finish"):
        predict.record_outcome(path, {"status": "diverged", "final_loss": float("nan")})
    with pytest.raises(ValueError, match="not after predicted_at"):
        predict.record_outcome(path, {"status": "done", "final_loss": 2.0},
                               trained_at=rec["predicted_at"])
    later = "2999-01-01T00:00:00+00:00"
    out = predict.record_outcome(path, {"status": "done", "final_loss": 2.0},
                                 trained_at=later, command="predict outcome")
    stored = json.loads(path.read_text())
    assert stored == json.loads(json.dumps(out))
    assert stored["relative_error"] == pytest.approx(
        abs(stored["predicted_loss"] - stored["actual_loss"]) / stored["actual_loss"])
    with pytest.raises(ValueError, match="already records an outcome"):
        predict.record_outcome(path, {"status": "done", "final_loss": 2.0}, trained_at=later)


def test_train_prediction_rejects_experiment_changes(prediction):
    with pytest.raises(ValueError, match="may be overridden"):
        predict.train_prediction(prediction, lr=1.0)


def test_cli_outcome_needs_prediction(tmp_path, capsys):
    assert main(["predict", "outcome", "--prediction", str(tmp_path / "none.json")]) == 2
    assert "no prediction" in capsys.readouterr().err


def test_cli_make_refuses_to_overwrite(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text("{}")
    assert main(["predict", "make", "--sweep", str(tmp_path), "--out", str(path)]) == 2
    assert "already holds a prediction" in capsys.readouterr().err


PREDICTION = ROOT / "book" / "data" / "prediction_shakespeare.json"


def test_committed_prediction():
    import datetime as dt

    rec = json.loads(PREDICTION.read_text())
    for key in ("budget", "max_fitted_budget", "predicted_loss", "actual_loss",
                "relative_error", "predicted_at", "trained_at"):
        assert rec[key] is not None, key
    assert rec["budget"] >= 4 * rec["max_fitted_budget"]
    assert dt.datetime.fromisoformat(rec["predicted_at"]) < dt.datetime.fromisoformat(
        rec["trained_at"])
    assert rec["relative_error"] == pytest.approx(
        abs(rec["predicted_loss"] - rec["actual_loss"]) / rec["actual_loss"], rel=1e-12)
    assert rec["relative_error_envelope"] == pytest.approx(
        abs(rec["predicted_loss_envelope"] - rec["actual_loss"]) / rec["actual_loss"], rel=1e-12)
    assert rec["commands"]["predict"].startswith("python -m scalingkit predict make")
    assert rec["commands"]["outcome"].startswith("python -m scalingkit predict outcome")
    # The predicted model is what the committed sweep's fit picks: refit and compare.
    from scalingkit.runs.frames import load_points
    from scalingkit.runs.store import RunStore
    from scalingkit.studies.forecasting import make_prediction
    from scalingkit.tolerances import FIT_PREDICTION_RTOL

    sweep = ROOT / "book" / "data" / "sweep_shakespeare"
    recipe = max(RunStore(sweep).records(), key=lambda r: r.plan["budget"]).config
    again = make_prediction(load_points(sweep), recipe)
    assert again["budget"] == rec["budget"] and again["params"] == rec["params"]
    assert again["tokens"] == rec["tokens"]
    # predictions of two fits: to the spread measured across CPUs (scalingkit.tolerances)
    assert again["predicted_loss"] == pytest.approx(rec["predicted_loss"],
                                                    rel=FIT_PREDICTION_RTOL)
    assert again["predicted_loss_envelope"] == pytest.approx(rec["predicted_loss_envelope"],
                                                             rel=FIT_PREDICTION_RTOL)


def _store_from_law(root):
    """A run store whose runs 'finished' at LAW's loss (N = every parameter)."""
    from scalingkit.runs.store import RunStore
    from scalingkit.runs.sweep import SweepSpec, plan_sweep

    spec = SweepSpec(budgets=(1e11, 3e11, 1e12, 3e12), sizes_per_budget=6, span=16.0,
                     n_ctx=64, corpus_tokens=4_848_042, min_steps=10, min_params=5e3)
    store = RunStore(root)
    store.ensure_writable()
    for run in plan_sweep(spec).runs:
        run_id = store.add(run.config, plan=run.plan_dict("exact"))
        store.update(run_id, "done", result={"status": "done", "tokens": run.tokens,
                                             "final_loss": law_loss(run.params, run.tokens)})
    return store


def test_cli_make_then_outcome(tmp_path, monkeypatch, capsys):
    _store_from_law(tmp_path / "sweep")
    out = tmp_path / "prediction.json"
    assert main(["predict", "make", "--sweep", str(tmp_path / "sweep"), "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["budget"] == pytest.approx(4 * rec["max_fitted_budget"])
    assert rec["commands"]["predict"].startswith("python -m scalingkit")
    assert rec["provenance"]["predict"]["version"]
    truth = law_loss(rec["params"], rec["tokens"])
    assert rec["predicted_loss"] == pytest.approx(truth, rel=5e-3)

    def fake_train(record, run_dir=None, **overrides):
        return {"status": "done", "final_loss": 1.01 * truth, "tokens": record["tokens"]}

    monkeypatch.setattr(predict, "train_prediction", fake_train)
    assert main(["predict", "outcome", "--prediction", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["relative_error"] == pytest.approx(
        abs(rec["predicted_loss"] - rec["actual_loss"]) / rec["actual_loss"])
    import datetime as dt

    assert dt.datetime.fromisoformat(rec["trained_at"]) > dt.datetime.fromisoformat(
        rec["predicted_at"])
    assert main(["predict", "outcome", "--prediction", str(out)]) == 2
    assert "already records an outcome" in capsys.readouterr().err


def test_train_prediction_trains_the_stored_config(tmp_path):
    config = {**RECIPE, "tokens": 64 * 16 * 4, "warmup_tokens": 64 * 16, "eval_every": 0}
    result = predict.train_prediction({"config": config}, tmp_path / "run", device="cpu")
    assert result["status"] == "done"
    assert result["tokens"] == config["tokens"]
    assert np.isfinite(result["final_loss"])


def test_backtest_on_the_true_law_is_nearly_exact():
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e5), np.log(1e9), 300))
    d = np.exp(rng.uniform(np.log(1e7), np.log(1e11), 300))
    frame = pd.DataFrame({"params": n, "tokens": d, "loss": law_loss(n, d), "flops": 6 * n * d})
    runs, env = predict.backtest(frame, 1e16, grid="small")
    assert runs["flops"].min() >= 4 * frame.loc[frame["flops"] <= 1e16, "flops"].max()
    assert runs["relative_error"].max() < 1e-6
    assert len(env) >= 1 and np.all(np.isfinite(env["relative_error"]))
    # L(C) through the envelope extrapolates less well than the true functional form.
    assert runs["relative_error"].max() < env["relative_error"].min()
    assert env["relative_error"].max() < 0.1


@pytest.mark.parametrize(("cutoff", "kwargs", "match"), [
    (1.0, {}, "only 0 runs"),
    (1e30, {}, "no run has at least"),
    (1e16, {"bin_decades": 0.0}, "bin_decades"),
])
def test_backtest_rejects(cutoff, kwargs, match):
    n, d = np.geomspace(1e5, 1e9, 50), np.geomspace(1e7, 1e11, 50)[::-1] * 10
    frame = pd.DataFrame({"params": n, "tokens": d, "loss": law_loss(n, d), "flops": 6 * n * d})
    with pytest.raises(ValueError, match=match):
        predict.backtest(frame, cutoff, **kwargs)


# --------------------------------------------------------------------------- regime checks

SWEEP_POINTS = pd.DataFrame({"params": [1e4, 1e4, 4e4, 4e4], "tokens": [2e5, 8e5, 4e5, 1.6e6]})
RULE = {"coef": 3e-3, "exponent": 0.25, "n_ref": 1e4, "n_min": 5e3, "n_max": 1e5}


def test_check_in_regime_accepts_a_run_inside():
    # D/N in [10, 80]; passes in [0.2, 1.6] of a 1e6-token corpus; N inside the rule
    lr = RULE["coef"] * (5e4 / RULE["n_ref"]) ** -RULE["exponent"]
    predict.check_in_regime(SWEEP_POINTS, 5e4, 1.5e6, corpus_tokens=1e6, lr_rule=RULE, lr=lr)
    predict.check_in_regime(SWEEP_POINTS, 5e4, 1.6e6 * 1.04, corpus_tokens=1e6)


@pytest.mark.parametrize(("n", "d", "corpus", "kwargs", "match"), [
    (5e4, 2e6, 1e6, {}, r"2 passes over the training corpus lie outside the sweep's range "
                        r"\[0\.2, 1\.6\]"),
    (5e4, 1.7e6, 2e6, {}, r"0\.85 passes .* \[0\.1, 0\.8\]"),
    # 1.02 passes is within 5 % of the sweep's most (0.988) but repeats data none of it did
    (1e5, 1.65e6, 1.62e6, {}, r"1\.02 passes .* \(every run of the sweep saw each token at most"),
    (1e5, 5e5, 1e7, {}, r"D/N = 5 tokens per parameter lies outside the sweep's range \[10, 80\]"),
    (1e4, 9e5, 1e7, {}, r"D/N = 90 tokens per parameter .* \[10, 80\]"),
    (1.5e5, 1.5e6, 1e7, {"lr_rule": RULE},
     r"N = 150,000 parameters lies outside the lr rule's sizes \[5,000, 100,000\]"),
    (5e4, 1e6, 1e7, {"lr_rule": RULE, "lr": 3e-3}, r"lr = 0\.003 is not the lr rule's"),
])
def test_check_in_regime_refuses(n, d, corpus, kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        predict.check_in_regime(SWEEP_POINTS, n, d, corpus_tokens=corpus, **kwargs)
    assert "\n" not in str(info.value)


def _bound_store(root, budgets=(1e11, 3e11, 1e12, 3e12), **fields):
    """A run store made for a spec (``store.json`` records it) whose runs finished at LAW."""
    from scalingkit.runs.store import RunStore
    from scalingkit.runs.sweep import SweepSpec, plan_sweep, spec_dict

    spec = SweepSpec(budgets=budgets, sizes_per_budget=6, span=16.0,
                     n_ctx=64, corpus_tokens=4_848_042, min_steps=10, min_params=5e3, **fields)
    store = RunStore(root)
    store.ensure_writable()
    store.bind_spec(spec_dict(spec))
    for run in plan_sweep(spec).runs:
        run_id = store.add(run.config, plan=run.plan_dict("exact"))
        store.update(run_id, "done", result={"status": "done", "tokens": run.tokens,
                                             "final_loss": law_loss(run.params, run.tokens)})
    return spec


def test_cli_make_refuses_lr_rule_outside_its_sizes(tmp_path, capsys):
    rule = {"coef": 3e-3, "exponent": 0.2, "n_ref": 1e5, "n_min": 5e3, "n_max": 1.5e5}
    _bound_store(tmp_path / "sweep", lr_rule=rule)
    out = tmp_path / "prediction.json"
    assert main(["predict", "make", "--sweep", str(tmp_path / "sweep"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "outside the lr rule's sizes [5,000, 150,000]" in err and "\n" not in err
    assert not out.exists()


def test_cli_make_uses_the_spec_ladder_sampler_and_lr_rule(tmp_path):
    rule = {"coef": 3e-3, "exponent": 0.2, "n_ref": 1e5, "n_min": 5e3, "n_max": 1e8}
    spec = _bound_store(tmp_path / "sweep", ladder="monotone", sampler="epoch", lr_rule=rule)
    out = tmp_path / "prediction.json"
    assert main(["predict", "make", "--sweep", str(tmp_path / "sweep"), "--out", str(out)]) == 0
    config = TrainConfig.from_dict(json.loads(out.read_text())["config"])
    n = config.model.n_params()
    assert config.model == spec.model_for(n)  # a rung of the monotone ladder
    assert config.sampler == "epoch"
    assert config.lr == pytest.approx(spec.lr_for(n))


def test_min_budget_leaves_the_smaller_budgets_out():
    sweep = synthetic_sweep(budgets=(3e10, 1e11, 3e11, 1e12, 3e12))
    pred = predict.make_prediction(sweep, RECIPE, min_budget=1e11)
    assert pred["min_budget"] == 1e11 and pred["max_fitted_budget"] == 3e12
    assert pred["n_fitted_runs"] == int((sweep["budget"] >= 1e11).sum()) < len(sweep)
    truth = law_loss(pred["params"], pred["tokens"])
    assert pred["predicted_loss"] == pytest.approx(truth, rel=5e-3)
    assert predict.make_prediction(sweep, RECIPE)["min_budget"] is None
    for bad, match in ((3e12, "leaves fewer than 2 budgets"), (-1.0, "positive number")):
        with pytest.raises(ValueError, match=match):
            predict.make_prediction(sweep, RECIPE, min_budget=bad)


def test_cli_make_min_budget_fits_and_checks_only_those_runs(tmp_path, capsys):
    rule = {"coef": 3e-3, "exponent": 0.2, "n_ref": 1e5, "n_min": 5e3, "n_max": 1e8}
    _bound_store(tmp_path / "sweep", budgets=(3e10, 1e11, 3e11, 1e12, 3e12),
                 ladder="monotone", sampler="epoch", lr_rule=rule)
    out = tmp_path / "prediction.json"
    args = ["predict", "make", "--sweep", str(tmp_path / "sweep"), "--out", str(out)]
    assert main(args + ["--min-budget", "1e11"]) == 0
    rec = json.loads(out.read_text())
    assert rec["min_budget"] == 1e11 and rec["n_fitted_runs"] < 5 * 6
    assert main(args[:-1] + [str(tmp_path / "again.json"), "--min-budget", "3e12"]) == 2
    assert "leaves fewer than 2 budgets" in capsys.readouterr().err
