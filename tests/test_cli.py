"""The command-line entry point: dispatch, JSON output and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
from conftest import ROOT, one_line_error

from scalingkit import cli
from scalingkit.core import flops


def test_flops_command_json_matches_library(capsys):
    rc = cli.main(["flops", "--d-model", "128", "--n-layer", "4", "--n-ctx", "256",
                   "--tokens", "1e9", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    shape = flops.TransformerShape(d_model=128, n_layer=4, n_ctx=256, vocab_size=256)
    assert out["training_flop"] == flops.training_flops(shape, 1e9)
    assert out["params_total"] == flops.param_counts(shape).total


def test_flops_command_bad_input_isone_line_error(capsys):
    rc = cli.main(["flops", "--d-model", "-3", "--n-layer", "4", "--n-ctx", "256"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: d_model must be positive")
    assert "Traceback" not in err


def test_python_dash_m_runs():
    proc = subprocess.run([sys.executable, "-m", "scalingkit", "flops", "--d-model", "64",
                           "--n-layer", "2", "--n-ctx", "64"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "training FLOP per token" in proc.stdout


# ------------------------------------------------- bad input: one line, no traceback
PORIAN = ROOT / "book" / "data" / "porian_shakespeare"  # the old ladder: five steps




@pytest.mark.parametrize("exc,status", [
    (ValueError("bad\ninput"), 2), (RuntimeError("solver gave up"), 1),
    (FileNotFoundError(2, "No such file or directory", "x/y.json"), 1),
])
def test_errors_are_one_line_with_consistent_status(capsys, monkeypatch, exc, status):
    from scalingkit.cli.commands import flops as command

    def fails(args):
        raise exc

    monkeypatch.setattr(command, "run", fails)
    one_line_error(capsys, ["flops", "--d-model", "64", "--n-layer", "2", "--n-ctx", "64"],
                    status)


def test_warnings_are_one_line(capsys, monkeypatch):
    from scalingkit.cli.commands import flops as command
    from scalingkit.fit import ScalingFitWarning

    def warns(args):
        warnings.warn("3 of 10 bootstrap resamples\nfailed", ScalingFitWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(command, "run", warns)
    assert cli.main(["flops", "--d-model", "64", "--n-layer", "2", "--n-ctx", "64"]) == 0
    assert capsys.readouterr().err == "warning: 3 of 10 bootstrap resamples failed\n"


@pytest.mark.parametrize("budget", [["--tokens", "10"], ["--flops", "1"]])
def test_train_refuses_a_budget_below_one_step(capsys, budget):
    one_line_error(capsys, ["train", "--d-model", "32", "--n-layer", "1", *budget,
                             "--device", "cpu", "--quiet"], 2,
                    "less than one optimiser step", "32 * 128 = 4,096 tokens")


@pytest.mark.parametrize("content,fragments", [
    ('{"loss": 2.0}', ["other.json is not a prediction", "'config'", "'predicted_at'"]),
    ("[1, 2]", ["other.json holds a JSON list"]),
    ('{"config": {"tokens": 5}, "predicted_at": "2026-01-01T00:00:00+00:00", '
     '"predicted_loss": 2.0, "predicted_loss_envelope": 2.0}',
     ["other.json: its 'config' is not a training config"]),
])
def test_predict_outcome_names_the_file_and_what_it_lacks(tmp_path, capsys, content, fragments):
    path = tmp_path / "other.json"
    path.write_text(content)
    one_line_error(capsys, ["predict", "outcome", "--prediction", str(path)], 2, *fragments)
    assert path.read_text() == content


@pytest.mark.parametrize("argv,fragments", [
    (["kaplan=" + str(PORIAN / "head")], ["holds runs of step(s) head, not 'kaplan'"]),
    (["kaplan=" + str(ROOT / "book" / "data" / "sweep_shakespeare")],
     ["holds runs of step(s) (none), not 'kaplan'"]),
    (["bogus=" + str(PORIAN / "head")], ["unknown step 'bogus'", "kaplan, head"]),
    (["head=" + str(PORIAN / "head"), "head=" + str(PORIAN / "head")], ["given twice"]),
])
def test_porian_fit_checks_each_store_holds_its_step(capsys, argv, fragments):
    one_line_error(capsys, ["porian", "fit", *argv, "--bootstrap", "0"], 2, *fragments)


def test_porian_fit_output_may_not_land_in_a_store(capsys, tmp_path):
    one_line_error(capsys, ["porian", "fit", "head=" + str(PORIAN / "head"), "--bootstrap", "0",
                             "--output", str(PORIAN / "head" / "x.json")], 2,
                    "inside the input folder")
    assert not (PORIAN / "head" / "x.json").exists()


def test_notebooks_refuse_to_write_into_the_chapters(tmp_path, capsys):
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (tmp_path / "book" / "data").mkdir(parents=True)
    for out in (tmp_path / "book", tmp_path / "book" / "data" / "nb"):
        one_line_error(capsys, ["notebooks", "--out", str(out), "--book-root", str(tmp_path)],
                        2, "lies inside the chapters' folder")
    assert sorted(p.name for p in (tmp_path / "book").iterdir()) == ["data"]
    assert list((tmp_path / "book" / "data").iterdir()) == []


def test_known_entropy_checks_its_output_before_training(tmp_path, capsys):
    (tmp_path / "store").mkdir()
    one_line_error(capsys, ["known-entropy", "--out", str(tmp_path / "store"), "--budgets", "1e12",
                             "--output", str(tmp_path / "store" / "ke.json")], 2,
                    "inside the input folder")


def test_a_bad_fit_through_python_dash_m_has_no_traceback(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("params,tokens,loss\n" + "".join(
        f"{n},{20 * n},{2 + 100 / n ** 0.3}\n" for n in (1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7)))
    proc = subprocess.run([sys.executable, "-m", "scalingkit", "fit", str(csv), "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: tokens are a fixed power of params")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["0", "-0.01", "nan"])
def test_known_entropy_refuses_a_bad_noise_floor_before_training(tmp_path, capsys, value):
    one_line_error(capsys, ["known-entropy", "--out", str(tmp_path / "store"), "--budgets",
                            "1e12", "--noise-sd", value], 2, "--noise-sd must be a positive")
    assert not (tmp_path / "store").exists()
