"""The IsoFLOP planner, presets, ``run_sweep`` and the ``sweep``/``status`` commands."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalingkit.cli import main
from scalingkit.core import flops
from scalingkit.core.models import GPTConfig
from scalingkit.runs.frames import results_frame
from scalingkit.runs.optimum import compute_optimal, tokens_at_size
from scalingkit.runs.store import RunStore
from scalingkit.runs.sweep import SweepSpec, add_to_store, plan_sweep, preset, run_sweep

TESTS = Path(__file__).resolve().parent
SHAKESPEARE_TRAIN_TOKENS = 4_848_042  # measured by scalingkit.runs.sweep.train_tokens
SMALL = SweepSpec(budgets=(1e11, 1e12), sizes_per_budget=4, span=8.0,
                  corpus_tokens=SHAKESPEARE_TRAIN_TOKENS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budgets": ()}, "budgets must be positive"),
        ({"budgets": (1e12, -1.0)}, "budgets must be positive"),
        ({"budgets": (math.inf,)}, "budgets must be positive"),
        ({"budgets": (1e12,), "sizes_per_budget": 0}, "sizes_per_budget"),
        ({"budgets": (1e12,), "span": 1.0}, "span must be > 1"),
        ({"budgets": (1e12,), "budget_flops": "4nd"}, "budget_flops"),
        ({"budgets": (1e12,), "lr": 0.0}, "lr must be"),
        ({"budgets": (1e12,), "batch_size": 0}, "batch_size"),
        ({"budgets": (1e12,), "warmup_fraction": 1.0}, "warmup_fraction"),
    ],
)
def test_spec_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SweepSpec(**kwargs)


def test_targets_are_log_spaced_around_the_centre():
    spec = SweepSpec(budgets=(1.2e13,), sizes_per_budget=5, span=16.0)
    t = spec.targets(1.2e13)
    assert np.allclose(np.diff(np.log(t)), math.log(16.0) / 4)
    assert math.sqrt(t[0] * t[-1]) == pytest.approx(math.sqrt(1.2e13 / 120))
    assert SweepSpec(budgets=(1e12,), sizes_per_budget=1).targets(1e12) == pytest.approx(
        [math.sqrt(1e12 / 120)])


@pytest.mark.parametrize("budget_flops", ["exact", "6nd"])
def test_plan_spends_the_budget_by_the_chosen_count_and_records_both(budget_flops):
    plan = plan_sweep(replace(SMALL, budget_flops=budget_flops))
    assert len(plan.runs) + len(plan.dropped) == 8
    for r in plan.runs:
        model = GPTConfig.from_dict(r.config["model"])
        assert r.params == model.n_params()
        exact = flops.training_flops_per_token(model.shape) * r.tokens
        assert r.flops_exact == pytest.approx(exact)
        assert r.flops_6nd == pytest.approx(6 * r.params * r.tokens)
        spent = r.flops_exact if budget_flops == "exact" else r.flops_6nd
        assert spent == pytest.approx(r.budget, rel=0.5 / r.steps)  # whole steps
        assert r.tokens == r.steps * SMALL.batch_size * SMALL.n_ctx
        assert r.config["tokens"] == r.tokens and r.config["schedule"] == "cosine"
        assert r.epochs == pytest.approx(r.tokens / SHAKESPEARE_TRAIN_TOKENS)


def test_plan_sizes_grow_and_tokens_shrink_within_a_budget():
    plan = plan_sweep(SMALL)
    frame = plan.to_frame()
    for _, group in frame.groupby("budget"):
        assert group["params"].is_monotonic_increasing
        assert group["tokens"].is_monotonic_decreasing
    # exact FLOP per token exceeds 6N (attention over the context, output head)
    assert (frame["flops_exact"] > frame["flops_6nd"]).all()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"min_steps": 10_000}, "optimizer steps"),
        ({"corpus_tokens": 10_000}, "epochs over the corpus"),
        ({"sizes_per_budget": 9, "span": 1.05}, "same shape"),
        ({"min_params": 1e8}, "params outside"),
    ],
)
def test_out_of_bounds_configs_are_dropped_with_a_reason(changes, reason):
    plan = plan_sweep(replace(SMALL, **changes))
    assert any(reason in d.reason for d in plan.dropped)


def test_reference_preset_meets_the_issue():
    spec = preset("reference", corpus_tokens=SHAKESPEARE_TRAIN_TOKENS)
    plan = plan_sweep(spec)
    frame = plan.to_frame()
    assert len(spec.budgets) >= 5 and max(spec.budgets) / min(spec.budgets) >= 10**1.5
    assert (frame.groupby("budget").size() >= 7).all() and not plan.dropped
    # the run nearest the Chinchilla centre of each budget sees at most about 4 epochs
    centre = frame.loc[(frame["tokens_per_param"] - 20).abs().groupby(frame["budget"]).idxmin()]
    assert (centre["epochs"] <= 4).all()
    assert all(r.config["schedule"] == "cosine" and r.config["corpus"] == "shakespeare"
               for r in plan.runs)


def test_presets_by_name():
    assert preset("quick").sizes_per_budget >= 3
    assert preset("quick", budgets=(5e10,)).budgets == (5e10,)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")


def test_add_to_store_is_idempotent(tmp_path):
    plan = plan_sweep(SMALL)
    store = RunStore(tmp_path)
    ids = add_to_store(plan, store)
    assert add_to_store(plan, store) == ids and len(store) == len(set(ids)) == len(plan.runs)
    rec = store.get(ids[0])
    assert rec.plan["budget_flops"] == "exact" and rec.plan["flops_6nd"] > 0


def test_run_sweep_with_a_stand_in_trainer(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    plan = plan_sweep(SMALL)

    calls = []

    def trainer(config, *, run_dir=None, progress=False):
        calls.append(config["tokens"])
        return {"status": "done", "final_loss": 3.0 - 0.1 * math.log10(config["tokens"]),
                "epochs": config["tokens"] / SHAKESPEARE_TRAIN_TOKENS}

    store = run_sweep(plan, tmp_path / "s", trainer=trainer, progress=False)
    assert sorted(calls) == sorted(r.tokens for r in plan.runs)
    largest_first = sorted(plan.runs, key=lambda r: -r.flops_exact)
    assert calls == [r.tokens for r in largest_first]
    run_sweep(plan, tmp_path / "s", trainer=trainer, progress=False, command="again")
    assert len(calls) == len(plan.runs)  # resumed: nothing left to do
    frame = results_frame(list(store.records()))
    assert (frame["status"] == "done").all() and frame["loss"].notna().all()
    sweeps = json.loads((tmp_path / "s" / "sweeps.json").read_text())
    assert [s["pending_at_start"] for s in sweeps] == [len(plan.runs), 0]
    assert sweeps[0]["spec"]["budgets"] == [1e11, 1e12]
    prov = sweeps[1]["provenance"]
    assert prov["command"] == "again" and prov["version"] and prov["cores"] >= 1
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40


def _unwritable(tmp_path: Path) -> str:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    return str(blocker / "sweep")


def test_cli_unwritable_output_fails_before_training(tmp_path, capsys):
    assert main(["sweep", "--preset", "quick", "--out", _unwritable(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output folder") and "not writable" in err


def test_cli_dry_run_prints_the_plan(capsys, tmp_path):
    assert main(["sweep", "--budgets", "1e11", "3e11", "--sizes-per-budget", "3",
                 "--out", str(tmp_path / "x"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "runs over 2 budgets (budget defined by exact FLOP)" in out
    assert not (tmp_path / "x").exists()


def test_cli_status_json_and_table(tmp_path, capsys):
    store = RunStore(tmp_path)
    store.ensure_writable()
    a = store.add({"a": 1}, plan={"budget": 1e12, "params": 1000, "tokens": 5000})
    b = store.add({"a": 2}, plan={"budget": 1e12, "params": 2000, "tokens": 2500})
    store.update(a, "done", result={"final_loss": 2.5})
    store.update(b, "diverged", result={"final_loss": math.nan}, error="nan")
    assert main(["status", str(tmp_path), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    keys = {"id", "status", "budget", "params", "tokens", "loss", "epochs", "steps", "lr"}
    assert [set(r) for r in runs] == [keys] * 2
    assert {(r["id"], r["status"], r["loss"]) for r in runs} == {(a, "done", 2.5),
                                                                 (b, "diverged", None)}
    assert main(["status", str(tmp_path)]) == 0
    assert "2 runs: diverged 1, done 1" in capsys.readouterr().out


def test_cli_status_rejects_a_non_store(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "is not a run store" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_store_under_proc_is_unwritable_even_for_root(tmp_path, capsys):
    assert main(["sweep", "--out", "/proc/scalingkit-sweep", "--budgets", "1e11"]) == 2
    assert "not writable" in capsys.readouterr().err


# -- with the real trainer (small budgets: seconds per run on 2 cores) ----------------

ROOT = TESTS.parent
TINY = ["--budgets", "2e10", "--sizes-per-budget", "3", "--no-progress"]  # 2 runs


@pytest.mark.slow
def test_cli_sweep_survives_sigkill_and_resumes(tmp_path):
    """SIGKILL a real sweep mid-run, rerun the same command: each run done exactly once."""
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "scalingkit", "sweep", *TINY, "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    store = RunStore(out)
    deadline = time.time() + 300
    killed_mid_run = False
    while time.time() < deadline and proc.poll() is None:
        records = list(store.records()) if store.runs_dir.is_dir() else []
        running = [r for r in records if r.status == "running"
                   and (store.run_dir(r.id) / "checkpoint.pt").exists()]
        if running and any(r.status == "done" for r in records):
            os.kill(proc.pid, signal.SIGKILL)
            killed_mid_run = True
            break
        time.sleep(0.05)
    proc.wait()
    assert killed_mid_run, "the sweep ended before it could be killed mid-run"
    planned = store.ids()
    assert len(planned) == 2 and store.counts()["done"] == 1

    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    records = list(store.records())  # each parses: no record is corrupt
    assert sorted(r.id for r in records) == planned
    for r in records:
        assert r.status == "done" and math.isfinite(r.result["final_loss"])
        assert [h["status"] for h in r.history].count("done") == 1
        assert r.result["tokens"] == r.plan["tokens"]
    assert any([h["status"] for h in r.history].count("running") == 2 for r in records)
    assert not list(out.rglob("checkpoint.pt"))


@pytest.mark.slow
def test_diverging_learning_rate_is_recorded_while_the_rest_completes(tmp_path):
    base = preset("quick", budgets=(2e10,), corpus_tokens=SHAKESPEARE_TRAIN_TOKENS)
    good = plan_sweep(base)
    bad = plan_sweep(replace(base, lr=30.0))  # far beyond any stable step size
    both = replace(good, runs=good.runs + bad.runs)
    store = run_sweep(both, tmp_path, progress=False)
    by_lr = {r.config["lr"]: r for r in store.records()}
    assert by_lr[30.0].status == "diverged"
    assert "divergence limit" in by_lr[30.0].error or "not finite" in by_lr[30.0].error
    assert by_lr[base.lr].status == "done"
    assert math.isfinite(by_lr[base.lr].result["final_loss"])


def test_tokens_at_size_follows_the_isoflop_line():
    plan = plan_sweep(SMALL)
    frame = plan.to_frame()
    runs = plan.runs
    got = tokens_at_size(frame, [r.budget for r in runs], [r.params for r in runs])
    tokens = np.array([r.tokens for r in runs])
    assert got == pytest.approx(tokens, rel=0.08)  # ladder shapes are not a smooth family
    six_nd = np.array([r.budget / (6 * r.params) for r in runs])
    assert np.abs(np.log(got / tokens)).mean() < np.abs(np.log(six_nd / tokens)).mean()
    with pytest.raises(ValueError, match="at least 2 sizes"):
        tokens_at_size(frame.iloc[:1], [runs[0].budget], [1e5])


COMMITTED_SWEEPS = ["sweep_quick", "sweep_shakespeare", "sweep_reference", "hparams/lr_grid",
                    "hparams/recipe",
                    "porian/kaplan", "porian/corrected", "porian/seeds",
                    *(f"porian_shakespeare/{step}"
                      for step in ("kaplan", "head", "warmup", "decay", "tuned"))]


@pytest.mark.slow
@pytest.mark.parametrize("name", COMMITTED_SWEEPS)
def test_committed_sweep_is_complete_and_its_smallest_run_reproduces(name, capsys):
    committed = ROOT / "book" / "data" / name
    assert (committed / "store.json").exists(), f"{committed} is not a run store"
    assert main(["status", str(committed), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs and all(r["status"] == "done" for r in runs)
    sweeps = json.loads((committed / "sweeps.json").read_text())
    prov = sweeps[-1]["provenance"]
    assert prov["command"].startswith(("python -m scalingkit sweep",
                                       "python -m scalingkit porian run",
                                       "python -m scalingkit hparams run")) and prov["git_commit"]
    assert not list(committed.rglob("*.pt"))  # no checkpoints committed

    import torch

    from scalingkit.core.hardware import same_cpu
    from scalingkit.runs.executors import plan_workers, train_from_dict
    from scalingkit.tolerances import RETRAIN_ATOL, SAME_CPU_RETRAIN_ATOL

    store = RunStore(committed)
    smallest = min(store.records(), key=lambda r: r.result["flops_exact"])
    # CPU results are bitwise reproducible only with the thread count the run had:
    # recorded per run since torch_threads exists, else what the executor chose.
    threads = smallest.result.get("torch_threads")
    if not threads:
        threads = prov["torch_threads"]
        if sweeps[-1]["executor"] == "pool":
            words = prov["command"].split()
            workers = int(words[words.index("--workers") + 1]) if "--workers" in words else None
            threads = plan_workers(len(sweeps[-1]["runs"]), workers=workers,
                                   cores=prov["cores"])[1]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        again = train_from_dict(smallest.config)
    finally:
        torch.set_num_threads(before)
    # Bitwise equality is a fair demand only on the same CPU model, SIMD flags, torch
    # kernel set and thread count; elsewhere the loss may move by the spread measured
    # across CPUs (scalingkit.tolerances, benchmarks/cross_cpu.py).
    tol = SAME_CPU_RETRAIN_ATOL if same_cpu(smallest.result, threads) else RETRAIN_ATOL
    assert again["final_loss"] == pytest.approx(smallest.result["final_loss"], abs=tol)
    assert again["tokens"] == smallest.result["tokens"]


def test_committed_reference_sweep_meets_its_design(capsys):
    """At least 35 done runs over at least 5 budgets spanning 1.5 decades, 7 sizes each."""
    assert main(["status", str(ROOT / "book" / "data" / "sweep_shakespeare"), "--json"]) == 0
    runs = pd.DataFrame(json.loads(capsys.readouterr().out)["runs"])
    done = runs[runs.status == "done"]
    assert len(done) >= 35 and done.budget.nunique() >= 5
    assert np.log10(done.budget.max() / done.budget.min()) >= 1.5
    assert done.groupby("budget").params.nunique().min() >= 7
    assert np.isfinite(done.loss).all() and (done.loss > 0).all()


def _valley(budgets, n_opt_of, sizes=7):
    """Runs whose loss is an exact parabola in ln N with its vertex at n_opt_of(C)."""
    rows = []
    for c in budgets:
        for n in np.geomspace(n_opt_of(c) / 8, n_opt_of(c) * 8, sizes):
            rows.append({"budget": c, "params": n, "tokens": c / (6 * n), "flops_exact": c,
                         "loss": 2.0 + 0.1 * np.log(n / n_opt_of(c)) ** 2})
    return pd.DataFrame(rows)


def test_compute_optimal_finds_the_vertex_of_bracketed_valleys():
    frame = _valley([1e12, 1e13, 1e14], lambda c: 0.1 * c**0.5)
    table, fit = compute_optimal(frame)
    assert fit is not None and (table["method"] == "parabola").all()
    assert table["n_opt"].to_numpy() == pytest.approx(0.1 * table["budget"] ** 0.5, rel=1e-6)
    assert table["d_opt"].to_numpy() == pytest.approx(
        table["budget"] / (6 * table["n_opt"]), rel=1e-6)
    assert fit.a_ == pytest.approx(0.5)


def test_compute_optimal_falls_back_to_the_best_sampled_size_at_an_edge():
    frame = _valley([1e12, 1e13], lambda c: 0.1 * c**0.5)
    frame = frame[frame["params"] >= 0.999 * 0.1 * frame["budget"] ** 0.5]  # right half
    table, fit = compute_optimal(frame)
    assert fit is None and not table["bracketed"].any()
    assert (table["method"] == "best sampled").all()
    assert table["n_opt"].to_numpy() == pytest.approx(0.1 * table["budget"] ** 0.5)
    with pytest.raises(ValueError, match="no finished runs"):
        compute_optimal(frame.assign(loss=np.nan))


def test_compute_optimal_mixes_parabolas_and_bounds_per_budget():
    frame = _valley([1e12, 1e13, 1e14], lambda c: 0.1 * c**0.5)
    edge = (frame["budget"] == 1e12) & (frame["params"] < 0.999 * 0.1 * 1e12**0.5)
    table, fit = compute_optimal(frame[~edge])  # the smallest budget loses its left half
    assert table["method"].tolist() == ["best sampled", "parabola", "parabola"]
    assert table["bracketed"].tolist() == [False, True, True]
    assert fit is not None and fit.a_ == pytest.approx(0.5)
    assert table["n_opt"].to_numpy() == pytest.approx(0.1 * table["budget"] ** 0.5, rel=1e-6)
