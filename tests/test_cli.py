"""The command-line entry point: dispatch, JSON output and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

from scalingkit import cli, flops


def test_flops_command_json_matches_library(capsys):
    rc = cli.main(["flops", "--d-model", "128", "--n-layer", "4", "--n-ctx", "256",
                   "--tokens", "1e9", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    shape = flops.TransformerShape(d_model=128, n_layer=4, n_ctx=256, vocab_size=256)
    assert out["training_flop"] == flops.training_flops(shape, 1e9)
    assert out["params_total"] == flops.param_counts(shape).total


def test_flops_command_bad_input_is_one_line_error(capsys):
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
