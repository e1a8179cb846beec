"""Kaplan's experiments: the plan, a tiny end-to-end run, the fits and the committed results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from scalingkit.cli import main
from scalingkit.core.train import TrainConfig
from scalingkit.fit import KaplanNDFit
from scalingkit.studies import kaplan2020 as kaplan
from scalingkit.tolerances import CLOSED_FORM_RTOL, FIT_OBJECTIVE_RTOL, FIT_PREDICTION_RTOL

ROOT = Path(__file__).resolve().parents[1]
LAWS = ROOT / "book" / "data" / "kaplan_laws.json"
STORE = ROOT / "book" / "data" / "kaplan_runs"

TINY = dict(sizes=(2e3, 4e3, 1.2e4), tokens_n=4096, d_size=4e3, subsets=(256, 512, 1024),
            grid_sizes=(2e3,), grid_subsets=(256,), subset_epochs=4.0, subset_tokens_min=1024,
            subset_tokens_max=4096, shape_size=4e3, shape_layers=(1, 2), tokens_shape=2048,
            n_ctx=16, batch_size=8, evals_per_run=4, eval_tokens=256, noise_points=2,
            noise_b_small=2, noise_b_big=4, noise_repeats=1, horizon_tokens=(1024,))


@pytest.fixture(autouse=True)
def _env(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SCALINGKIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------ the plan


def test_reference_plan_meets_the_issue_requirements():
    runs = kaplan.plan_kaplan(kaplan.preset("reference"))
    by = {e: [r for r in runs if r.experiment == e] for e in kaplan.EXPERIMENTS}
    sizes = [r.plan["params"] for r in by["L(N)"]]
    assert len(set(sizes)) >= 6 and math.log10(max(sizes) / min(sizes)) >= 1.5
    assert all(r.plan["subset"] is None and "train_tokens_limit" not in r.config
               for r in by["L(N)"])
    assert all(r.noise for r in by["L(N)"])
    # near convergence: every L(N) size trains over 2 passes of the 4.8M training bytes,
    # and again for the subset runs' budget (the horizon runs)
    assert all(r.config["tokens"] >= 2 * 4.8e6 for r in by["L(N)"])
    assert sorted(r.plan["params"] for r in by["horizon"]) == sorted(2 * sizes)
    assert by["L(D)"][0].config["tokens"] in {r.config["tokens"] for r in by["horizon"]}
    subsets = [r.config["train_tokens_limit"] for r in by["L(D)"]]
    assert len(set(subsets)) >= 6 and math.log10(max(subsets) / min(subsets)) >= 1.5
    assert len({json.dumps(r.config["model"]) for r in by["L(D)"]}) == 1  # one model
    # every subset is seen at least once, the smallest many times (room to overfit)
    assert all(r.config["tokens"] >= r.config["train_tokens_limit"] for r in by["L(D)"])
    assert by["L(D)"][0].config["tokens"] >= 8 * subsets[0]
    aspects = [r.plan["aspect"] for r in by["shape"]]
    shape_n = [r.plan["params"] for r in by["shape"]]
    assert max(aspects) / min(aspects) >= 20
    assert max(shape_n) / min(shape_n) < 1.15
    for r in runs:  # every config is a valid TrainConfig and round-trips
        assert TrainConfig.from_dict(r.config).to_dict() == r.config


@pytest.mark.parametrize("n_layer, target", [(1, 1e5), (2, 1e5), (4, 1e5), (8, 1e5), (3, 3e4)])
def test_shape_config_is_close_to_the_target_size(n_layer, target):
    cfg = kaplan.shape_config(target, n_layer, n_ctx=64, head_dim=16)
    assert cfg.n_layer == n_layer and cfg.d_model % 16 == 0
    assert abs(12 * n_layer * cfg.d_model**2 / target - 1) < 0.3


@pytest.mark.parametrize("overrides, match", [
    ({"sizes": ()}, "sizes must not be empty"),
    ({"subsets": (1024, -5)}, "subsets must hold positive finite numbers"),
    ({"tokens_n": 0}, "tokens_n must be a positive integer"),
    ({"noise_b_small": 3, "noise_b_big": 8}, "noise_b_big must be a larger multiple"),
    ({"subset_tokens_min": 10, "subset_tokens_max": 5}, "must not exceed"),
    ({"tokenizer": "bpe:512"}, "byte tokenizer"),
    ({"subset_epochs": 0.0}, "subset_epochs must be > 0"),
    ({"horizon_tokens": (1024, 0)}, "horizon_tokens must hold positive integers"),
])
def test_bad_specs_raise(overrides, match):
    with pytest.raises(ValueError, match=match):
        kaplan.preset("quick", **overrides)


def test_unknown_preset_and_experiment_raise(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        kaplan.preset("huge")
    with pytest.raises(ValueError, match="unknown experiment"):
        kaplan.run_kaplan(kaplan.preset("quick"), tmp_path, experiments=["L(X)"])


# ------------------------------------------------------------------------ the threshold


def test_overfit_threshold_reproduces_kaplans_rule():
    """Kaplan et al.'s joint fit (Table 2 of their paper) gives their D >= 5e3 N^0.74."""
    joint = {"alpha_N": 0.076, "alpha_D": 0.103, "N_c": 6.4e13, "D_c": 1.8e13}
    coef, exponent = kaplan.overfit_threshold(joint)
    assert exponent == pytest.approx(0.74, abs=0.005)
    assert coef == pytest.approx(5e3, rel=0.15)


def test_overfit_threshold_keeps_the_penalty_at_two_percent():
    joint = {"alpha_N": 0.2, "alpha_D": 0.3, "N_c": 1e4, "D_c": 1e5}
    coef, exponent = kaplan.overfit_threshold(joint)
    for n in (1e5, 1e7):
        d = coef * n**exponent
        ratio = ((joint["N_c"] / n) ** exponent + joint["D_c"] / d) ** 0.3 / (
            (joint["N_c"] / n) ** 0.2)
        assert ratio == pytest.approx(1.02, rel=1e-9)
    with pytest.raises(ValueError, match="penalty must be > 0"):
        kaplan.overfit_threshold(joint, penalty=0)


# -------------------------------------------------------------------- fits on known laws


def synthetic_frame(alpha_n=0.2, alpha_d=0.3, n_c=1e4, d_c=1e5) -> pd.DataFrame:
    """Runs whose best loss follows L(N, D) exactly, laid out like kaplan_frame."""
    def law(n, d):
        return ((n_c / n) ** (alpha_n / alpha_d) + d_c / d) ** alpha_d

    rows = []
    big_d = 1e14  # the L(N) runs: data-rich
    for n in (1e3, 3e3, 1e4, 3e4, 1e5, 1e6):
        rows.append(("L(N)", n, big_d, law(n, big_d)))
    for d in np.geomspace(1e4, 1e7, 6):  # the L(D) runs: a huge model
        rows.append(("L(D)", 1e12, d, law(1e12, d)))
    for n in (1e3, 1e5):
        for d in (1e4, 1e6):
            rows.append(("grid", n, d, law(n, d)))
    frame = pd.DataFrame(rows, columns=["experiment", "params", "D", "best_loss"])
    frame["params_total"] = frame["params"] + 8000
    frame["id"] = [f"run{i}" for i in range(len(frame))]
    return frame


def test_fit_kaplan_laws_recovers_known_exponents():
    laws = kaplan.fit_kaplan_laws(synthetic_frame(), n_bootstrap=30, joint_bootstrap=2,
                                  random_state=0)
    assert laws["alpha_N"]["value"] == pytest.approx(0.2, rel=1e-3)
    assert laws["alpha_D"]["value"] == pytest.approx(0.3, rel=1e-3)
    assert laws["N_c"]["value"] == pytest.approx(1e4, rel=1e-2)
    assert laws["overfit_exponent"]["value"] == pytest.approx(0.2 / 0.3, rel=1e-3)
    joint = laws["L(N, D)"]["coef"]
    assert set(laws["L(N, D)"]["ci"]) == {"N_c", "D_c", "alpha_N", "alpha_D"}
    assert joint["alpha_N"] == pytest.approx(0.2, rel=1e-3)
    assert joint["D_c"] == pytest.approx(1e5, rel=1e-2)
    low, high = laws["overfit_exponent"]["interval"]
    assert low <= laws["overfit_exponent"]["value"] <= high
    # total counts add a constant: the power law in total N is a worse fit
    assert laws["L(N) total"]["objective"] > laws["L(N)"]["objective"]


def test_overfitting_and_tokens_to_reach():
    frame = synthetic_frame()
    frame["subset"] = frame["D"].astype(int)
    frame["best_epochs"] = 1.0
    table = kaplan.overfitting(frame, threshold=(5e3, 0.74))
    assert set(table["params"]) == {1e3, 1e5}  # grid sizes that have an L(N) run
    assert (table["penalty_pct"] > 0).all()
    assert (table["below_threshold"] == (table["D"] < 5e3 * table["params"] ** 0.74)).all()
    curves = {10: pd.DataFrame({"tokens": [10.0, 100.0, 1000.0], "loss": [3.0, 2.0, 1.0]}),
              20: pd.DataFrame({"tokens": [10.0, 100.0], "loss": [3.0, 2.5]})}
    reach = kaplan.tokens_to_reach(curves, 1.5)
    assert reach[10] == pytest.approx(math.sqrt(100 * 1000))
    assert math.isnan(reach[20])


def test_ample_data_runs_match_the_subset_runs_training_length():
    frame = synthetic_frame()
    frame["tokens"] = np.where(frame["experiment"] == "L(N)", 8e6, 2e6)
    assert kaplan.ample_data_runs(frame)["experiment"].eq("L(N)").all()  # no horizon runs
    horizon = []
    for tokens, shift in ((1e6, 0.3), (2.5e6, 0.1)):
        h = frame[frame["experiment"] == "L(N)"].assign(
            experiment="horizon", tokens=tokens, best_loss=lambda f, s=shift: f.best_loss + s)
        horizon.append(h.assign(id=h["id"] + f"-{tokens:g}"))
    frame = pd.concat([frame, *horizon], ignore_index=True)
    chosen = kaplan.ample_data_runs(frame)
    assert chosen["experiment"].eq("horizon").all() and chosen["tokens"].eq(2.5e6).all()
    # the overfitting reference is the horizon run of the same size and length
    over = kaplan.overfitting(frame.assign(subset=frame["D"], best_epochs=1.0))
    ref = chosen.set_index("params")["best_loss"]
    assert np.allclose(over["reference_loss"], ref.loc[over["params"]])
    table = kaplan.convergence(frame)
    assert list(table.columns[:3]) == [1e6, 2.5e6, 8e6]
    longest = frame[frame["experiment"] == "L(N)"].set_index("params")["best_loss"]
    assert np.allclose(table["gain_pct"], 100 * (1 - longest / (longest + 0.1)))
    with pytest.raises(ValueError, match="at least two budgets"):
        kaplan.convergence(synthetic_frame().assign(tokens=1e6))


def test_compare_with_kaplan_lists_both_sides():
    laws = kaplan.fit_kaplan_laws(synthetic_frame(), n_bootstrap=0)
    table = kaplan.compare_with_kaplan(laws)
    assert table.loc["alpha_N", "Kaplan 2020"] == 0.076
    assert table.loc["alpha_D", "ours"] == pytest.approx(0.3, rel=1e-3)
    assert np.isnan(table.loc["alpha_D", "low"])  # no bootstrap, no interval


# ----------------------------------------------------------------- a tiny run, end to end


def test_tiny_experiments_run_resume_fit_and_export(tmp_path, capsys):
    spec = kaplan.preset("quick", **TINY)
    out = tmp_path / "store"
    store = kaplan.run_kaplan(spec, out, progress=False)
    planned = {json.dumps(r.config, sort_keys=True) for r in kaplan.plan_kaplan(spec)}
    assert store.counts()["done"] == len(planned)  # a config in two experiments runs once
    manifest = json.loads((out / "kaplan.json").read_text())
    assert set(manifest["experiments"]) == set(kaplan.EXPERIMENTS)
    frame = kaplan.kaplan_frame(out)
    ld = frame[frame["experiment"] == "L(D)"]
    assert sorted(ld["subset"]) == [256, 512, 1024]
    assert (ld["D"] == ld["subset"]).all()  # every subset was passed over at least once
    assert (frame["best_loss"] <= frame["final_loss"]).all()
    conv = kaplan.convergence(frame)
    assert list(conv.columns[:2]) == [1024, 4096] and conv["gain_pct"].notna().all()
    noise = kaplan.noise_frame(out)
    assert set(noise["params"]) == set(frame.loc[frame["experiment"] == "L(N)", "params"])
    assert 0 in set(noise["step"]) and noise["step"].nunique() >= 2  # init + a checkpoint
    assert (noise["trace_cov"] > 0).all()
    assert not list(out.glob("runs/*/checkpoint.pt"))  # removed once final
    # running again trains nothing
    before = {r.id: r.history for r in store.records()}
    kaplan.run_kaplan(spec, out, progress=False)
    assert {r.id: r.history for r in store.records()} == before
    # the CLI fits and exports the same store
    assert main(["kaplan", "fit", str(out), "--bootstrap", "0", "--json"]) == 0
    laws = json.loads(capsys.readouterr().out)
    assert laws["overfit_exponent"]["value"] == pytest.approx(
        laws["alpha_N"]["value"] / laws["alpha_D"]["value"])
    # a changed plan leaves old records in the store; export copies only the current plan
    smaller = kaplan.preset("quick", **{**TINY, "shape_layers": (1,)})
    kaplan.run_kaplan(smaller, out, progress=False, experiments=[])
    assert main(["kaplan", "export", str(out), str(tmp_path / "exported")]) == 0
    again = kaplan.kaplan_frame(tmp_path / "exported")
    pd.testing.assert_frame_equal(again, frame[frame["n_layer"].ne(2) |
                                               frame["experiment"].ne("shape")]
                                  .reset_index(drop=True))
    copied = {p.parent.name for p in (tmp_path / "exported").glob("runs/*/record.json")}
    assert copied == set(again["id"]) and len(copied) < len(before)


def test_cli_rejects_a_folder_that_is_not_a_kaplan_store(tmp_path, capsys):
    assert main(["kaplan", "fit", str(tmp_path)]) == 2
    assert "not a Kaplan run store" in capsys.readouterr().err


# ------------------------------------------------------------------- committed results


def test_committed_laws_have_intervals_and_provenance():
    laws = json.loads(LAWS.read_text())
    for key in ("alpha_N", "N_c", "alpha_D", "D_c", "overfit_exponent"):
        low, high = laws[key]["interval"]
        assert low <= laws[key]["value"] <= high
    commands = [p["command"] for p in laws["provenance"]["runs"]] + [
        laws["provenance"]["fit"]["command"]]
    assert any("kaplan run" in c for c in commands) and "kaplan fit" in commands[-1]


def test_committed_laws_are_rederived_from_the_committed_runs():
    """Tolerances measured across CPUs (scalingkit.tolerances, benchmarks/cross_cpu.py)."""
    laws = json.loads(LAWS.read_text())
    frame = kaplan.kaplan_frame(STORE)
    again = kaplan.fit_kaplan_laws(frame, n_bootstrap=0)
    for key in ("alpha_N", "N_c", "alpha_D", "D_c", "overfit_exponent"):  # closed form
        assert again[key]["value"] == pytest.approx(laws[key]["value"], rel=CLOSED_FORM_RTOL)
    # L(N, D) is flat along N_c (it moved by 3e-5 between CPUs): compare what it identifies,
    # its objective and its predictions at the fitted points.
    live, committed = (KaplanNDFit.from_json(json.dumps(d))
                       for d in (again["L(N, D)"], laws["L(N, D)"]))
    assert again["L(N, D)"]["objective"] == pytest.approx(laws["L(N, D)"]["objective"],
                                                          rel=FIT_OBJECTIVE_RTOL)
    grid = frame[frame["experiment"].isin(["L(D)", "grid"])]
    np.testing.assert_allclose(live.predict(grid["params"], grid["D"]),
                               committed.predict(grid["params"], grid["D"]),
                               rtol=FIT_PREDICTION_RTOL)
