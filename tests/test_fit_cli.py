"""``python -m scalingkit fit``, its data loader, and the chapters' study helpers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error

from scalingkit import cli
from scalingkit.fit import ParametricFit
from scalingkit.fit.published import BESIROGLU_2024
from scalingkit.fit.simulate import isoflop_sweep, training_curves
from scalingkit.fit.studies import (
    compare_laws,
    grid_study,
    huber_delta_study,
    interval_table,
    isoflop_bias_study,
)
from scalingkit.runs.frames import load_curves, load_points
from scalingkit.runs.store import RunStore

BUDGETS = np.geomspace(1e18, 1e20, 4)


@pytest.fixture(scope="module")
def sweep_csv(tmp_path_factory) -> Path:
    s = isoflop_sweep(BESIROGLU_2024, BUDGETS, half_width=0.6, step=0.2, noise=0.003, seed=0)
    path = tmp_path_factory.mktemp("fit") / "sweep.csv"
    pd.DataFrame(s).to_csv(path, index=False)
    return path


def test_fit_csv_approach3_json(sweep_csv, capsys):
    rc = cli.main(["fit", str(sweep_csv), "--approach", "3", "--json", "--grid", "small",
                   "--bootstrap", "10"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("E", "A", "B", "alpha", "beta", "objective", "a", "b", "ci"):
        assert key in out
    assert set(out["ci"]) >= {"E", "A", "B", "alpha", "beta", "a", "b"}
    frame = pd.read_csv(sweep_csv)
    direct = ParametricFit(grid="small").fit(frame.params, frame.tokens, frame.loss)
    assert out["alpha"] == pytest.approx(direct.alpha_, rel=1e-10)
    assert out["objective"] == pytest.approx(direct.objective_, rel=1e-10)


def test_fit_without_bootstrap_has_null_ci(sweep_csv, capsys):
    assert cli.main(["fit", str(sweep_csv), "--json", "--grid", "small"]) == 0
    assert json.loads(capsys.readouterr().out)["ci"] is None


def test_fit_approach2_and_output_with_provenance(sweep_csv, tmp_path, capsys):
    dest = tmp_path / "iso.json"
    rc = cli.main(["fit", str(sweep_csv), "--approach", "2", "--output", str(dest)])
    assert rc == 0
    assert "IsoFLOPFit" in capsys.readouterr().out
    saved = json.loads(dest.read_text())
    assert len(saved["budgets"]) == len(BUDGETS)
    assert abs(saved["a"] - 0.5126) < 0.03
    meta = json.loads((tmp_path / "iso.meta.json").read_text())
    assert {"command", "version", "git_commit", "machine"} <= set(meta)


@pytest.mark.parametrize("content,message", [
    ("params,tokens\n1,2\n", "lacks column"),
    ("params,tokens,loss\n1e8,1e9,-3\n2e8,2e9,3\n3e8,3e9,3\n4e8,4e9,3\n5e8,5e9,3\n6e8,6e9,3\n",
     "loss must be positive"),
])
def test_fit_bad_csv_isone_line_error(tmp_path, capsys, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert cli.main(["fit", str(path), "--grid", "small"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_fit_missing_path(capsys):
    assert cli.main(["fit", "/nonexistent/runs.csv"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_fit_reads_a_run_store(tmp_path, capsys):
    s = isoflop_sweep(BESIROGLU_2024, BUDGETS, half_width=0.6, step=0.2, seed=0)
    store = RunStore(tmp_path / "store")
    store.ensure_writable()
    for i, (n, d, c, loss) in enumerate(zip(s["params"], s["tokens"], s["flops"], s["loss"],
                                            strict=True)):
        rid = store.add({"run": i}, plan={"budget": c, "params": n, "tokens": d,
                                          "flops_6nd": 6 * n * d, "flops_exact": 6 * n * d})
        store.update(rid, "done", result={"final_loss": loss})
    store.add({"run": "pending"}, plan={"budget": 1e18, "params": 1e8, "tokens": 1e9})
    frame = load_points(tmp_path / "store")
    assert len(frame) == len(s["loss"])  # the planned run has no loss and is left out
    assert cli.main(["fit", str(tmp_path / "store"), "--approach", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["a"] == pytest.approx(0.5126, abs=1e-3)


def test_fit_approach1_reads_store_curves(tmp_path, capsys):
    c = training_curves(BESIROGLU_2024, np.geomspace(1e7, 1e10, 8), 1e21, n_points=30)
    store = RunStore(tmp_path)
    store.ensure_writable()
    for run in np.unique(c["run"]):
        sel = c["run"] == run
        curve = [{"step": i, "tokens": d, "flops": f, "loss": loss} for i, (d, f, loss)
                 in enumerate(zip(c["tokens"][sel], c["flops"][sel], c["loss"][sel], strict=True))]
        rid = store.add({"run": int(run)}, plan={"params": float(c["params"][sel][0])})
        store.update(rid, "done", result={"final_loss": curve[-1]["loss"], "curve": curve})
    assert cli.main(["fit", str(tmp_path), "--approach", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["a"] - 0.5126) < 0.06 and out["ci"] is None
    assert cli.main(["fit", str(tmp_path), "--approach", "1", "--drop-highest", "2"]) == 2


def test_folder_that_is_not_a_store(tmp_path):
    with pytest.raises(ValueError, match="not a run store"):
        load_points(tmp_path)
    with pytest.raises(ValueError, match="not a run store"):
        load_curves(tmp_path)


def test_load_curves_from_store(tmp_path):
    store = RunStore(tmp_path)
    store.ensure_writable()
    for n in (1e6, 2e6):
        curve = [{"step": s, "tokens": 1e6 * s, "flops": 6 * n * 1e6 * s, "loss": 3.0 / (s + 1)}
                 for s in (0, 1, 2, 3)]
        rid = store.add({"n": n}, plan={"params": n})
        store.update(rid, "done", result={"final_loss": 1.0, "curve": curve})
    curves = load_curves(tmp_path)
    assert len(curves) == 6 and curves.run.nunique() == 2  # step 0 (no tokens) left out
    assert set(curves.columns) >= {"params", "tokens", "flops", "loss", "run"}


# ---------------------------------------------------------------- studies
def test_compare_laws_and_interval_table(sweep_csv):
    f = pd.read_csv(sweep_csv)
    true = ParametricFit.from_coefficients(**BESIROGLU_2024)
    fit = ParametricFit(grid="small").fit(f.params, f.tokens, f.loss)
    table = compare_laws({"true": true, "fit": fit}, f.params, f.tokens, f.loss, flops=1e21)
    assert table.loc["fit", "objective"] <= table.loc["true", "objective"]
    np.testing.assert_allclose(table.N_opt * table.D_opt * 6, 1e21, rtol=1e-12)
    long = interval_table({"fit": (fit.coef_, {"a": [0.4, 0.6]}), "true": (true.coef_, None)})
    assert long.query("source == 'fit' and name == 'a'").low.item() == 0.4
    assert np.isnan(long.query("source == 'true'").low).all()


def test_huber_and_grid_studies(sweep_csv):
    f = pd.read_csv(sweep_csv)
    by_delta = huber_delta_study(f.params, f.tokens, f.loss, [1e-3, 1.0])
    assert list(by_delta.delta) == [1e-3, 1.0]
    small = ParametricFit(grid="small").fit(f.params, f.tokens, f.loss)
    grids = grid_study(f.params, f.tokens, f.loss,
                       {"one": np.array([[5.0, 5.0, 0.0, 0.5, 0.5]]), "small": "small",
                        "prefitted": small})
    assert list(grids.n_starts) == [1, 243, 243]
    assert grids.loc["prefitted", "objective"] == grids.loc["small", "objective"]
    assert grids.loc["small", "objective"] <= grids.loc["one", "objective"] + 1e-12
    assert 0 < grids.loc["small", "frac_at_best"] <= 1


@pytest.mark.parametrize("slope", [0.0, 0.3])
def test_isoflop_bias_study(slope):
    kwargs = {"half_widths": [1.0], "steps": [0.1], "offset_slope": slope}
    every = isoflop_bias_study(BESIROGLU_2024, np.geomspace(1e18, 1e21, 5), rule="all", **kwargs)
    assert every.n_fits.item() == 1
    assert (abs(every.bias.item()) < 0.01) == (slope == 0.0)
    local = isoflop_bias_study(BESIROGLU_2024, np.geomspace(1e18, 1e21, 5), **kwargs)
    assert abs(local.bias.item()) < 0.01  # the local parabola does not see the drift


def test_hessian_is_symmetric_and_positive_at_optimum(sweep_csv):
    f = pd.read_csv(sweep_csv)
    fit = ParametricFit(grid="small").fit(f.params, f.tokens, f.loss)
    hess = fit.hessian(f.params, f.tokens, f.loss)
    np.testing.assert_allclose(hess, hess.T)
    assert np.linalg.eigvalsh(hess).min() > -1e-6 * np.abs(hess).max()


# ------------------------------------------------- bad input: one line, no traceback


def _write_csv(path, params, tokens, loss):
    pd.DataFrame({"params": params, "tokens": tokens, "loss": loss}).to_csv(path, index=False)
    return path


def test_fit_refuses_tokens_proportional_to_params(tmp_path, capsys):
    n = np.geomspace(1e6, 1e9, 12)
    csv = _write_csv(tmp_path / "x.csv", n, 20 * n, 1.7 + 400 / n**0.34 + 400 / (20 * n)**0.28)
    one_line_error(capsys, ["fit", str(csv), "--json", "--grid", "small"], 2,
                    "tokens are a fixed power of params")


def test_fit_refuses_a_constant_loss(tmp_path, capsys):
    n = np.repeat(np.geomspace(1e6, 1e8, 4), 3)
    csv = _write_csv(tmp_path / "c.csv", n, np.tile([1e7, 3e7, 1e8], 4), 2.5)
    one_line_error(capsys, ["fit", str(csv), "--json"], 2, "loss is the same (2.5)")


def test_fit_of_a_degenerate_law_prints_strict_json_and_fails(tmp_path, capsys):
    n = np.repeat(np.geomspace(1e6, 1e8, 4), 3)
    d = np.tile([1e7, 3e7, 1e8], 4)
    csv = _write_csv(tmp_path / "r.csv", n, d, 1 + 1e-3 * n**0.3 + 0.1 * np.log(d))
    assert cli.main(["fit", str(csv), "--json", "--grid", "small"]) == 1
    captured = capsys.readouterr()

    def strict(name):
        raise AssertionError(f"{name} is not JSON")

    out = json.loads(captured.out, parse_constant=strict)
    assert out["success"] is False and out["G"] is None and out["a"] is None
    assert captured.err.count("\n") == 1 and "the fit did not succeed" in captured.err


def test_fit_checks_the_output_folder_before_fitting(sweep_csv, tmp_path, capsys, monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("the fit ran before the output was checked")

    monkeypatch.setattr(ParametricFit, "fit", no_fit)
    one_line_error(capsys, ["fit", str(sweep_csv), "--output", str(tmp_path / "nodir" / "x.json")],
                    2, "folder", "does not exist")
    one_line_error(capsys, ["fit", str(sweep_csv), "--output", str(tmp_path)], 2, "is a folder")


def test_fit_never_writes_over_its_input(sweep_csv, tmp_path, capsys):
    csv = tmp_path / "in.csv"
    csv.write_bytes(sweep_csv.read_bytes())
    one_line_error(capsys, ["fit", str(csv), "--output", str(csv)], 2, "is the input")
    assert csv.read_bytes() == sweep_csv.read_bytes()
    meta_clash = tmp_path / "in.meta.json"  # --output in.json would write in.meta.json
    meta_clash.write_text("{}")
    one_line_error(capsys, ["fit", str(meta_clash), "--output", str(tmp_path / "in.json")], 2,
                    "provenance file")


def test_fit_never_writes_into_the_store_it_reads(tmp_path, capsys):
    store = RunStore(tmp_path / "store")
    store.ensure_writable()
    before = (tmp_path / "store" / "store.json").read_bytes()
    one_line_error(capsys, ["fit", str(tmp_path / "store"), "--output",
                             str(tmp_path / "store" / "store.json")], 2, "inside the input folder")
    assert (tmp_path / "store" / "store.json").read_bytes() == before


def test_fit_names_a_non_numeric_column(tmp_path, capsys):
    path = tmp_path / "s.csv"
    path.write_text("params,tokens,loss\n1e6,1e7,abc\n2e6,2e7,3\n")
    one_line_error(capsys, ["fit", str(path)], 2, "column loss", "'abc'")


def test_fit_refuses_one_bootstrap_resample(sweep_csv, capsys):
    one_line_error(capsys, ["fit", str(sweep_csv), "--bootstrap", "1"], 2, "n_bootstrap=1")


def test_fitter_runtime_error_is_one_line_with_status_1(sweep_csv, capsys, monkeypatch):
    def fails(self, *args, **kwargs):
        raise RuntimeError("no start converged; best start stopped with: ABNORMAL")

    monkeypatch.setattr(ParametricFit, "fit", fails)
    one_line_error(capsys, ["fit", str(sweep_csv)], 1, "no start converged")
