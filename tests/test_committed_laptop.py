"""The committed laptop-scale results: the learning-rate grid and its rule.

Each test re-derives a committed number from the committed runs with the package's
own code, at the tolerance measured across CPUs (:mod:`scalingkit.tolerances`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalingkit.runs.frames import run_frame
from scalingkit.studies.hparams.lr_rule import fit_lr_rule, lr_optima
from scalingkit.tolerances import CLOSED_FORM_RTOL

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
HPARAMS = DATA / "hparams"


def test_committed_lr_rule_rederives_from_the_committed_grid():
    committed = json.loads((HPARAMS / "lr_rule.json").read_text())
    optima = lr_optima(run_frame(HPARAMS / "lr_grid"))
    again = fit_lr_rule(optima, n_boot=committed["n_boot"], seed=committed["seed"])
    for key in ("coef", "exponent", "n_ref", "n_min", "n_max"):
        assert again["rule"][key] == pytest.approx(committed["rule"][key], rel=CLOSED_FORM_RTOL)
    # the bootstrap resamples cells with a seeded generator: the same draws everywhere
    assert again["exponent_ci"] == pytest.approx(committed["exponent_ci"], rel=CLOSED_FORM_RTOL)
    assert again["budget_exponent_ci"] == pytest.approx(committed["budget_exponent_ci"],
                                                        rel=CLOSED_FORM_RTOL)


def test_lr_grid_meets_the_design():
    frame = run_frame(HPARAMS / "lr_grid")
    done = frame[frame.status == "done"]
    assert done.budget.nunique() >= 2
    for _, runs in done.groupby("budget"):
        assert runs.params.nunique() >= 5 and runs.lr.nunique() >= 5
    assert (done.epochs <= 1).all() and (done.steps >= 150).all()


def _differences(a: dict, b: dict, prefix: str = "") -> set[str]:
    keys = set(a) | set(b)
    out = set()
    for k in keys:
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out |= _differences(a[k], b[k], f"{prefix}{k}.")
        elif a.get(k) != b.get(k):
            out.add(prefix + k)
    return out


def _planned_ids(plan) -> set[str]:
    from scalingkit.runs.store import config_hash

    return {config_hash(r.config) for r in plan.runs}


def test_recipe_and_lr_check_runs_are_the_plans_of_their_commands():
    """Every committed recipe run is one that ``hparams run PART`` plans today, with the
    arguments the data README records, and each differs from the sweep's run of its
    size in the one setting its part varies."""
    from scalingkit.runs.store import RunStore
    from scalingkit.studies.hparams.lr_rule import read_lr_rule
    from scalingkit.studies.hparams.plan import base_spec, recipe_plan, seed_plan

    spec = base_spec(lr_rule=read_lr_rule(str(HPARAMS / "lr_rule.json")))
    planned = _planned_ids(seed_plan(spec, 2.38e12, [2, 3, 4, 5, 6], seeds=[1, 2]))
    for part in ("init", "warmup", "horizon", "batch"):
        planned |= _planned_ids(recipe_plan(part, spec, 2.38e12, [2, 4, 6]))
    # the recipe's own 5% warmup at rungs 2, 4 and 6 (seed 0): the warmup part planned
    # these too before parts learned to skip the sweep's own setting
    planned |= _planned_ids(seed_plan(spec, 2.38e12, [2, 4, 6], seeds=[0]))
    records = list(RunStore(HPARAMS / "recipe").records())
    assert records and all(r.status == "done" for r in records)
    assert {r.id for r in records} <= planned
    check = list(RunStore(HPARAMS / "lr_check").records())
    assert {r.id for r in check} == _planned_ids(
        recipe_plan("lr", spec, 3.2e13, [7], [0.5, 2.0]))
    baseline = {(r.plan["budget"], r.plan["params"]): r.config
                for r in RunStore(DATA / "sweep_reference").records()}
    varied = (set(), {"seed"}, {"model.init_std"}, {"warmup_tokens"},
              {"schedule", "horizon_tokens"}, {"lr"})
    for r in records + check:
        changed = _differences(r.config, baseline[(r.plan["budget"], r.plan["params"])])
        # a batch run keeps its tokens; its evaluation and checkpoint steps follow its steps
        assert changed in varied or "batch_size" in changed, (r.id, changed)


def test_reference_sweep_uses_the_committed_rule_and_meets_its_design():
    import numpy as np

    from scalingkit.runs.store import RunStore
    from scalingkit.runs.sweep import preset, spec_from_dict

    store = RunStore(DATA / "sweep_reference")
    spec = spec_from_dict(store.made_for())
    rule = json.loads((HPARAMS / "lr_rule.json").read_text())["rule"]
    assert spec.lr_rule == pytest.approx(rule, rel=1e-12)
    laptop = preset("laptop")
    for field in ("corpus", "tokenizer", "ladder", "sampler", "init_std", "batch_size"):
        assert getattr(spec, field) == getattr(laptop, field), field
    frame = run_frame(store)
    done = frame[frame.status == "done"]
    assert (frame.status == "done").all()
    assert done.budget.nunique() >= 5
    assert np.log10(done.budget.max() / done.budget.min()) >= 1.5
    assert done.groupby("budget").params.nunique().min() >= 7
    assert (done.epochs <= 1).all() and (done.steps >= laptop.min_steps).all()
    lrs = [spec.lr_for(n, c) for n, c in zip(done.params, done.budget, strict=True)]
    assert np.allclose(done.lr, lrs, rtol=1e-12)


def test_every_reference_budget_is_bracketed(capsys):
    from scalingkit.cli import main

    assert main(["status", str(DATA / "sweep_reference"), "--json"]) == 0
    budgets = json.loads(capsys.readouterr().out)["budgets"]
    assert len(budgets) >= 5 and all(b["bracketed"] for b in budgets)


def test_committed_fits_rederive():
    from scalingkit.runs.approaches import fit_sweep
    from scalingkit.tolerances import FIT_EXPONENT_RTOL

    committed = json.loads((DATA / "sweep_reference_fits.json").read_text())
    again = fit_sweep(DATA / "sweep_reference", n_bootstrap=0, noise_sd=None,
                      min_budget=committed.get("min_budget"),
                      max_budget=committed.get("max_budget"))
    for name in ("1", "2", "3"):
        assert again["approaches"][name]["a"] == pytest.approx(
            committed["approaches"][name]["a"], rel=FIT_EXPONENT_RTOL), name


@pytest.mark.parametrize("name", ["prediction", "prediction_next"])
def test_committed_prediction_was_made_from_the_sweep_and_rederives(name):
    from scalingkit.runs.frames import load_points, runs_from_budget
    from scalingkit.runs.store import RunStore
    from scalingkit.runs.sweep import spec_from_dict
    from scalingkit.studies.forecasting import check_in_regime, make_prediction
    from scalingkit.tolerances import FIT_PREDICTION_RTOL

    rec = json.loads((DATA / f"{name}.json").read_text())
    assert rec["budget"] >= 4 * rec["max_fitted_budget"] and rec["predicted_at"]
    store = RunStore(DATA / "sweep_reference")
    spec = spec_from_dict(store.made_for())
    # the runs the prediction was fitted on: the sweep may have grown since
    points = runs_from_budget(load_points(DATA / "sweep_reference"), rec.get("min_budget"),
                              max_budget=rec["max_fitted_budget"])
    assert len(points) == rec["n_fitted_runs"]
    recipe = max((r for r in store.records() if r.plan["budget"] <= rec["max_fitted_budget"]),
                 key=lambda r: r.plan["budget"]).config
    again = make_prediction(points, recipe, spec=spec)
    assert (again["params"], again["tokens"]) == (rec["params"], rec["tokens"])
    for key in ("predicted_loss", "predicted_loss_envelope"):
        assert again[key] == pytest.approx(rec[key], rel=FIT_PREDICTION_RTOL), key
    check_in_regime(points, rec["params"], rec["tokens"], corpus_tokens=spec.corpus_tokens,
                    lr_rule=spec.lr_rule, lr=rec["config"]["lr"], budget=rec["budget"])
    assert rec["tokens"] <= spec.corpus_tokens  # one pass at most


@pytest.mark.parametrize("name", ["prediction", "prediction_next", "prediction_words",
                                  "prediction_words_z14", "prediction_words_z18"])
def test_committed_prediction_outcome_was_recorded_after_the_prediction(name):
    import datetime as dt

    rec = json.loads((DATA / f"{name}.json").read_text())
    assert dt.datetime.fromisoformat(rec["predicted_at"]) < dt.datetime.fromisoformat(
        rec["trained_at"])
    assert rec["commands"]["outcome"].startswith("python -m scalingkit predict outcome")
    assert rec["result"]["tokens"] == rec["tokens"]
    assert rec["actual_loss"] == rec["result"]["curve"][-1]["loss"]  # the final evaluation
    for key, pred in (("relative_error", "predicted_loss"),
                      ("relative_error_envelope", "predicted_loss_envelope")):
        assert rec[key] == pytest.approx(abs(rec[pred] - rec["actual_loss"]) / rec["actual_loss"],
                                         rel=1e-12), key


def test_committed_noise_scale_runs_are_the_recipe_runs():
    """``hparams noise-scale`` trained the sweep's own config at each rung it names,
    and measured B_simple at every evaluation of each."""
    from scalingkit.runs.store import config_hash
    from scalingkit.studies.hparams.lr_rule import read_lr_rule
    from scalingkit.studies.hparams.plan import base_spec, seed_plan

    noise = json.loads((HPARAMS / "noise_scale.json").read_text())
    spec = base_spec(lr_rule=read_lr_rule(str(HPARAMS / "lr_rule.json")))
    rungs = [r["rung"] for r in noise["runs"]]
    plan = seed_plan(spec, noise["budget"], rungs, seeds=[spec.seed])
    assert [config_hash(r["config"]) for r in noise["runs"]] == [
        config_hash(r.config) for r in plan.runs]
    for run in noise["runs"]:
        steps = [p["step"] for p in run["points"]]
        assert steps == sorted(steps) and len(steps) >= 5
        assert all(p["b_simple_tokens"] > 0 for p in run["points"])
