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
    assert again["exponent_ci"] == pytest.approx(committed["exponent_ci"], rel=1e-9)


def test_lr_grid_meets_the_design():
    frame = run_frame(HPARAMS / "lr_grid")
    done = frame[frame.status == "done"]
    assert done.budget.nunique() >= 2
    for _, runs in done.groupby("budget"):
        assert runs.params.nunique() >= 5 and runs.lr.nunique() >= 5
    assert (done.epochs <= 1).all() and (done.steps >= 150).all()
