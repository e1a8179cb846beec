"""``python -m scalingkit status``: per-run epochs, steps and lr, and the per-budget optima."""

from __future__ import annotations

import json
import math

import pytest

from scalingkit.cli import main
from scalingkit.runs.store import RunStore

#: A trainer config small enough to validate (its steps come from the config).
MODEL = {"d_model": 32, "n_layer": 1, "n_head": 1, "n_ctx": 16, "vocab_size": 256}


def _add(store: RunStore, budget: float, params: int, loss: float | None,
         status: str = "done") -> str:
    """One fake run on ``budget``'s IsoFLOP line (D = C / 6N), finished with ``loss``."""
    tokens = int(budget / (6 * params))
    rid = store.add({"params": params, "budget": budget, "lr": 1e-3},
                    plan={"budget": budget, "params": params, "tokens": tokens,
                          "steps": 100, "epochs": 0.25})
    if status == "done":
        store.update(rid, "done", result={"final_loss": loss, "epochs": 0.5})
    elif status != "planned":
        store.update(rid, status, error="boom" if status == "failed" else None)
    return rid


@pytest.fixture
def store(tmp_path) -> RunStore:
    """1e12 FLOP: a valley at N=4,000; 1e13: lowest loss at the largest size;
    1e14: one done run; and one run with no budget in its plan."""
    s = RunStore(tmp_path)
    for n in (1000, 2000, 4000, 8000, 16000):
        _add(s, 1e12, n, 3.0 + 0.1 * math.log(n / 4000) ** 2)
    for n, loss in ((10000, 3.0), (20000, 2.9), (40000, 2.8)):
        _add(s, 1e13, n, loss)
    _add(s, 1e13, 80000, None, status="planned")
    _add(s, 1e14, 50000, 2.5)
    _add(s, 1e14, 100000, None, status="failed")
    s.add({"model": MODEL, "tokens": 1000, "batch_size": 4, "lr": 2e-3}, plan={})
    return s


def _status_json(capsys, root) -> dict:
    assert main(["status", str(root), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_rows_carry_epochs_steps_and_lr(store, capsys):
    data = _status_json(capsys, store.root)
    assert len(data["runs"]) == 12 and data["unreadable"] == []
    keys = {"id", "status", "budget", "params", "tokens", "loss", "epochs", "steps", "lr"}
    assert all(set(r) == keys for r in data["runs"])
    done = [r for r in data["runs"] if r["status"] == "done"]
    assert {(r["epochs"], r["steps"], r["lr"]) for r in done} == {(0.5, 100, 1e-3)}
    planned = next(r for r in data["runs"] if r["params"] == 80000)
    assert (planned["epochs"], planned["loss"]) == (0.25, None)
    unplanned = next(r for r in data["runs"] if r["lr"] == 2e-3)
    assert unplanned["steps"] == 16  # round(1000 tokens / (4 * 16) tokens per step)


def test_json_budgets_say_which_are_bracketed(store, capsys):
    budgets = _status_json(capsys, store.root)["budgets"]
    assert [b["budget"] for b in budgets] == [1e12, 1e13, 1e14]
    valley, edge, one = budgets
    assert (valley["runs"], valley["done"], valley["bracketed"], valley["reason"]) \
        == (5, 5, True, "")
    assert valley["n_opt"] == pytest.approx(4000, rel=1e-6)
    assert (edge["runs"], edge["done"], edge["bracketed"], edge["n_opt"]) == (4, 3, False, None)
    assert edge["reason"] == "lowest loss at the largest size"
    assert (one["runs"], one["done"], one["bracketed"], one["n_opt"]) == (2, 1, False, None)
    assert "at least 3" in one["reason"]


def test_json_budgets_are_empty_without_done_runs(tmp_path, capsys):
    s = RunStore(tmp_path)
    _add(s, 1e12, 1000, None, status="planned")
    assert _status_json(capsys, tmp_path)["budgets"] == []


def test_table_has_the_new_columns_and_one_line_per_budget(store, capsys):
    assert main(["status", str(store.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-3:] == ["epochs", "steps", "lr"]
    assert lines[-4:-1] == [
        "C=1e+12: 5/5 done, bracketed, N_opt=4,000",
        "C=1e+13: 3/4 done, not bracketed (lowest loss at the largest size)",
        "C=1e+14: 1/2 done, not bracketed (1 size(s) done; at least 3 are needed)",
    ]
    assert "12 runs: done 9, failed 1, planned 2" in lines[-1]
