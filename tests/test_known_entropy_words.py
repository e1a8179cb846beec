"""The committed known-entropy experiments on the word sources (``words:z12``, ``z14``, ``z18``).

Each test re-derives a committed number from the committed runs with the package's own
code, at the tolerance measured across CPUs (:mod:`scalingkit.tolerances`): the sweep,
the seed noise floor, the Approach 3 fit against the exact entropy rate, and the
prediction made from the sweep before its run was trained. Every test runs on each
experiment of :data:`EXPERIMENTS`.
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
#: source -> (fit result, sweep store, seed store, prediction) under book/data, and the
#: budgets (FLOP) of the sweep that do not bracket their optimum, as measured.
EXPERIMENTS = {
    "words:z12:256": ("known_entropy_z12.json", "known_entropy_words", "known_entropy_seeds",
                      "prediction_words.json", set()),
    "words:z14:256": ("known_entropy_z14.json", "known_entropy_words_z14",
                      "known_entropy_seeds_z14", "prediction_words_z14.json", {3.2e13}),
    "words:z18:256": ("known_entropy.json", "known_entropy_words_z18", "known_entropy_seeds_z18",
                      "prediction_words_z18.json", set()),
}


@pytest.fixture(params=sorted(EXPERIMENTS), scope="module")
def experiment(request):
    result, sweep, seeds, prediction, unbracketed = EXPERIMENTS[request.param]
    return {"source": request.param, "result": json.loads((DATA / result).read_text()),
            "sweep": DATA / sweep, "seeds": DATA / seeds, "unbracketed": unbracketed,
            "prediction": json.loads((DATA / prediction).read_text())}


def test_result_keeps_its_keys_and_names_its_source(experiment):
    result = experiment["result"]
    for key in ("true_entropy_rate", "fitted_E", "E_ci", "relative_error", "units",
                "source", "source_params", "noise_sd", "E_ci_noise", "context_floor"):
        assert key in result, key
    assert result["units"] == "nats/token" and result["source"] == experiment["source"]
    src = ke.source_of(result["source"])
    assert result["source_params"] == src.params
    assert result["true_entropy_rate"] == pytest.approx(src.entropy_rate(), rel=1e-12)
    assert result["relative_error"] == pytest.approx(
        abs(result["fitted_E"] - result["true_entropy_rate"]) / result["true_entropy_rate"],
        rel=1e-12)
    for lo, hi in (result["E_ci"], result["E_ci_noise"]):
        assert lo <= result["fitted_E"] <= hi
    assert result["provenance"]["command"].startswith("python -m scalingkit known-entropy")
    assert f"--noise-sd {result['noise_sd']!r}" in result["provenance"]["command"]


def test_sweep_brackets_as_recorded_and_is_what_was_fitted(experiment):
    from scalingkit.runs.optimum import compute_optimal
    from scalingkit.runs.sweep import spec_from_dict

    result, sweep_dir = experiment["result"], experiment["sweep"]
    runs = run_frame(sweep_dir).query("status == 'done'")
    assert len(runs) == result["n_runs"] == len(result["runs"]["loss"])
    np.testing.assert_array_equal(np.sort(runs.loss), np.sort(result["runs"]["loss"]))
    opt, _ = compute_optimal(runs)
    assert len(opt) >= 5 and set(opt.budget[~opt.bracketed]) == experiment["unbracketed"]
    assert (runs.epochs <= 1).all()  # fresh tokens in every run
    spec = spec_from_dict(RunStore(sweep_dir).made_for())
    for n, c, lr in zip(runs.params, runs.budget, runs.lr, strict=True):
        assert lr == pytest.approx(spec.lr_for(n, c), rel=1e-9)  # the measured rule
    assert result["best_run_loss"] == runs.loss.min() > result["context_floor"]


def test_noise_floor_is_the_seed_study_of_the_same_configs(experiment):
    from scalingkit.studies.hparams.analysis import seed_noise

    result, sweep_dir, seeds_dir = experiment["result"], experiment["sweep"], experiment["seeds"]
    seeds = run_frame(seeds_dir).query("status == 'done'")
    sweep = run_frame(sweep_dir).query("status == 'done' and budget == 2.38e12")
    both = sweep[sweep.params.isin(seeds.params)]
    assert len(both) == seeds.params.nunique() and set(seeds.seed) == {1, 2}
    floor = seed_noise(pd.concat([both, seeds]))
    assert result["noise_sd"] == pytest.approx(floor["median_sd"], rel=1e-12)
    # the seed runs differ from the sweep's own only in their seed
    made = {r.config["model"]["d_model"]: r.config for r in RunStore(sweep_dir).records()
            if r.status == "done" and r.plan["budget"] == 2.38e12}
    for r in RunStore(seeds_dir).records():
        assert {**r.config, "seed": 0} == made[r.config["model"]["d_model"]]


def test_fit_rederives_at_the_runs_and_at_the_prediction(experiment):
    """The committed law's predictions (identified), not its coefficients, are compared."""
    from scalingkit.fit import ParametricFit

    result, sweep_dir, prediction = (experiment[k] for k in ("result", "sweep", "prediction"))
    runs = load_points(sweep_dir)
    again = ke.fit_known_entropy(runs["params"], runs["tokens"], runs["loss"],
                                 result["true_entropy_rate"], n_bootstrap=0)
    committed = ParametricFit.from_coefficients(**result["coef"])
    refit = ParametricFit.from_coefficients(**again["coef"])
    n = np.append(runs["params"].to_numpy(float), prediction["params"])
    d = np.append(runs["tokens"].to_numpy(float), prediction["tokens"])
    np.testing.assert_allclose(refit.predict(n, d), committed.predict(n, d),
                               rtol=FIT_PREDICTION_RTOL)


def test_prediction_was_made_from_the_sweep_and_rederives(experiment):
    from scalingkit.cli.commands.predict import _corpus_tokens
    from scalingkit.runs.sweep import spec_from_dict
    from scalingkit.studies.forecasting import check_in_regime, make_prediction

    sweep_dir, prediction = experiment["sweep"], experiment["prediction"]
    rec = prediction
    store = RunStore(sweep_dir)
    spec = spec_from_dict(store.made_for())
    points = load_points(sweep_dir)
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


def test_prediction_outcome_was_trained_on_the_source(experiment):
    """The outcome's timing and errors are checked with the other predictions
    (tests/test_committed_laptop.py); here, that it trained on the source and above H."""
    result, prediction = experiment["result"], experiment["prediction"]
    assert prediction["config"]["corpus"] == result["source"]
    assert prediction["actual_loss"] > result["true_entropy_rate"]
    assert math.isfinite(prediction["predicted_loss_ci"][0])


def test_result_table_reads_h_against_both_intervals(experiment):
    result = experiment["result"]
    table = ke.result_table(result)
    h = result["true_entropy_rate"]
    assert table["H (exact)"] == h and table["fitted E"] == result["fitted_E"]
    for label, key in (("bootstrap", "E_ci"), ("seed-noise", "E_ci_noise")):
        lo, hi = result[key]
        assert table[f"H inside the {label} interval"] is (lo <= h <= hi)
        assert table[f"E, {label} 95%"] == f"{lo:.4f} - {hi:.4f}"
