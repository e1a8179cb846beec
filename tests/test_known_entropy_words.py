"""The committed known-entropy experiment on the word source (``words:z12``).

Each test re-derives a committed number from the committed runs with the package's own
code, at the tolerance measured across CPUs (:mod:`scalingkit.tolerances`): the sweep,
the seed noise floor, the Approach 3 fit against the exact entropy rate, and the
prediction made from the sweep before its run was trained.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalingkit.runs.frames import load_points, run_frame
from scalingkit.runs.store import RunStore
from scalingkit.studies import known_entropy as ke
from scalingkit.tolerances import FIT_PREDICTION_RTOL

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
SWEEP = DATA / "known_entropy_words"
SEEDS = DATA / "known_entropy_seeds"
RESULT = json.loads((DATA / "known_entropy.json").read_text())
PREDICTION = json.loads((DATA / "prediction_words.json").read_text())


def test_result_keeps_its_keys_and_names_its_source():
    for key in ("true_entropy_rate", "fitted_E", "E_ci", "relative_error", "units",
                "source", "source_params", "noise_sd", "E_ci_noise", "context_floor"):
        assert key in RESULT, key
    assert RESULT["units"] == "nats/token" and RESULT["source"] == "words:z12:256"
    src = ke.source_of(RESULT["source"])
    assert RESULT["source_params"] == src.params
    assert RESULT["true_entropy_rate"] == pytest.approx(src.entropy_rate(), rel=1e-12)
    assert RESULT["relative_error"] == pytest.approx(
        abs(RESULT["fitted_E"] - RESULT["true_entropy_rate"]) / RESULT["true_entropy_rate"],
        rel=1e-12)
    for lo, hi in (RESULT["E_ci"], RESULT["E_ci_noise"]):
        assert lo <= RESULT["fitted_E"] <= hi
    assert RESULT["provenance"]["command"].startswith("python -m scalingkit known-entropy")
    assert f"--noise-sd {RESULT['noise_sd']!r}" in RESULT["provenance"]["command"]


def test_sweep_is_bracketed_and_is_what_was_fitted():
    from scalingkit.runs.optimum import compute_optimal
    from scalingkit.runs.sweep import spec_from_dict

    runs = run_frame(SWEEP).query("status == 'done'")
    assert len(runs) == RESULT["n_runs"] == len(RESULT["runs"]["loss"])
    np.testing.assert_array_equal(np.sort(runs.loss), np.sort(RESULT["runs"]["loss"]))
    opt, _ = compute_optimal(runs)
    assert len(opt) >= 5 and opt.bracketed.all()
    assert (runs.epochs <= 1).all()  # fresh tokens in every run
    spec = spec_from_dict(RunStore(SWEEP).made_for())
    for n, c, lr in zip(runs.params, runs.budget, runs.lr, strict=True):
        assert lr == pytest.approx(spec.lr_for(n, c), rel=1e-9)  # the measured rule
    assert RESULT["best_run_loss"] == runs.loss.min() > RESULT["context_floor"]


def test_noise_floor_is_the_seed_study_of_the_same_configs():
    from scalingkit.studies.hparams.analysis import seed_noise

    seeds = run_frame(SEEDS).query("status == 'done'")
    sweep = run_frame(SWEEP).query("status == 'done' and budget == 2.38e12")
    both = sweep[sweep.params.isin(seeds.params)]
    assert len(both) == seeds.params.nunique() and set(seeds.seed) == {1, 2}
    floor = seed_noise(pd.concat([both, seeds]))
    assert RESULT["noise_sd"] == pytest.approx(floor["median_sd"], rel=1e-12)
    # the seed runs differ from the sweep's own only in their seed
    made = {r.config["model"]["d_model"]: r.config for r in RunStore(SWEEP).records()
            if r.status == "done" and r.plan["budget"] == 2.38e12}
    for r in RunStore(SEEDS).records():
        assert {**r.config, "seed": 0} == made[r.config["model"]["d_model"]]


def test_fit_rederives_at_the_runs_and_at_the_prediction():
    """The committed law's predictions (identified), not its coefficients, are compared."""
    from scalingkit.fit import ParametricFit

    runs = load_points(SWEEP)
    again = ke.fit_known_entropy(runs["params"], runs["tokens"], runs["loss"],
                                 RESULT["true_entropy_rate"], n_bootstrap=0)
    committed = ParametricFit.from_coefficients(**RESULT["coef"])
    refit = ParametricFit.from_coefficients(**again["coef"])
    n = np.append(runs["params"].to_numpy(float), PREDICTION["params"])
    d = np.append(runs["tokens"].to_numpy(float), PREDICTION["tokens"])
    np.testing.assert_allclose(refit.predict(n, d), committed.predict(n, d),
                               rtol=FIT_PREDICTION_RTOL)


def test_prediction_was_made_from_the_sweep_and_rederives():
    from scalingkit.cli.commands.predict import _corpus_tokens
    from scalingkit.runs.sweep import spec_from_dict
    from scalingkit.studies.forecasting import check_in_regime, make_prediction

    rec = PREDICTION
    store = RunStore(SWEEP)
    spec = spec_from_dict(store.made_for())
    points = load_points(SWEEP)
    assert len(points) == rec["n_fitted_runs"] and rec["budget"] >= 4 * rec["max_fitted_budget"]
    records = [r for r in store.records() if r.status == "done"]
    recipe = max(records, key=lambda r: r.plan["budget"]).config
    again = make_prediction(points, recipe, spec=spec)
    assert (again["params"], again["tokens"]) == (rec["params"], rec["tokens"])
    for key in ("predicted_loss", "predicted_loss_envelope"):
        assert again[key] == pytest.approx(rec[key], rel=FIT_PREDICTION_RTOL), key
    check_in_regime(points, rec["params"], rec["tokens"],
                    corpus_tokens=_corpus_tokens(store.made_for(), records),
                    lr_rule=spec.lr_rule, lr=rec["config"]["lr"], budget=rec["budget"])


def test_prediction_outcome_was_trained_on_the_source():
    """The outcome's timing and errors are checked with the other predictions
    (tests/test_committed_laptop.py); here, that it trained on the source and above H."""
    assert PREDICTION["config"]["corpus"] == RESULT["source"]
    assert PREDICTION["actual_loss"] > RESULT["true_entropy_rate"]
    assert math.isfinite(PREDICTION["predicted_loss_ci"][0])
