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


def test_recipe_runs_differ_from_their_sweep_baseline_in_one_setting():
    from scalingkit.runs.store import RunStore

    baseline = {(r.plan["budget"], r.plan["params"]): r.config
                for r in RunStore(DATA / "sweep_reference").records()}
    records = list(RunStore(HPARAMS / "recipe").records())
    assert records and all(r.status == "done" for r in records)
    for r in records:
        base = baseline[(r.plan["budget"], r.plan["params"])]
        changed = _differences(r.config, base)
        assert changed in ({"seed"}, {"model.init_std"}), (r.id, changed)
