"""How far each re-derivation of a committed result moves across CPU instruction paths.

Tests and chapters re-derive committed numbers (``book/data``) on whatever CPU runs
them. The same code gives slightly different floats on AVX-512, AVX2 and plain SSE
(other SIMD kernels in numpy, OpenBLAS and torch, other summation orders), and a
training run amplifies such differences step by step. This script measures the
spread: it runs every re-derivation in a child process under several instruction
paths of this machine,

``native``   whatever numpy, OpenBLAS and torch pick on this CPU;
``avx2``     ``ATEN_CPU_CAPABILITY=avx2``, numpy without its AVX-512 dispatch,
             ``OPENBLAS_CORETYPE=Haswell``;
``sse``      ``ATEN_CPU_CAPABILITY=default``, numpy without AVX2/AVX-512 dispatch,
             ``OPENBLAS_CORETYPE=Sandybridge``;

and prints, per quantity, the largest deviation from the committed value (made on
another machine: its CPU is in the committed provenance) and from the other paths. The
tolerances in :mod:`scalingkit.tolerances` are set from this output.

Usage::

    python benchmarks/cross_cpu.py                  # everything (about 10 min on 2 cores)
    python benchmarks/cross_cpu.py --skip-training  # fits only (about 1 min)
    python benchmarks/cross_cpu.py --output spread.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "book" / "data"

NO_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"
PATHS: dict[str, dict[str, str]] = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "NPY_DISABLE_CPU_FEATURES": NO_AVX512,
             "OPENBLAS_CORETYPE": "Haswell"},
    "sse": {"ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": "X86_V3 " + NO_AVX512,
            "OPENBLAS_CORETYPE": "Sandybridge"},
}
#: Committed stores whose smallest run a test re-trains.
STORES = ("sweep_quick", "sweep_shakespeare", "sweep_reference", "hparams/lr_grid",
          "hparams/recipe",
          "porian/kaplan", "porian/corrected", "porian_shakespeare/kaplan",
          "porian_shakespeare/head", "porian_shakespeare/warmup", "porian_shakespeare/decay",
          "porian_shakespeare/tuned")


# ------------------------------------------------------------------ child side
def _kaplan() -> dict[str, tuple[float, float]]:
    import numpy as np

    from scalingkit.fit import KaplanNDFit
    from scalingkit.studies import kaplan2020 as kaplan

    laws = json.loads((DATA / "kaplan_laws.json").read_text())
    frame = kaplan.kaplan_frame(DATA / "kaplan_runs")
    again = kaplan.fit_kaplan_laws(frame, n_bootstrap=0)
    out = {f"kaplan/{k}": (again[k]["value"], laws[k]["value"])
           for k in ("alpha_N", "N_c", "alpha_D", "D_c", "overfit_exponent")}
    for k, v in again["L(N, D)"]["coef"].items():
        out[f"kaplan/L(N, D)/{k}"] = (v, laws["L(N, D)"]["coef"][k])
    # identified quantities of the joint fit: its objective and its predictions
    joint = frame["experiment"].isin(["L(D)", "grid"]) | frame.index.isin(
        kaplan.ample_data_runs(frame).index)
    grid = frame[joint].drop_duplicates("id")
    fit = KaplanNDFit().fit(grid["params"], grid["D"], grid["best_loss"])
    committed = KaplanNDFit.from_json(json.dumps(laws["L(N, D)"]))
    pred, pred_c = fit.predict(grid["params"], grid["D"]), committed.predict(
        grid["params"], grid["D"])
    # largest relative gap between the live and the committed law over the fitted points
    out["kaplan/L(N, D)/prediction_max_rel"] = (float(np.max(np.abs(pred / pred_c - 1))), 0.0)
    out["kaplan/L(N, D)/objective"] = (fit.objective_, laws["L(N, D)"]["objective"])
    return out


def _chinchilla() -> dict[str, tuple[float, float]]:
    import pandas as pd

    from scalingkit.fit import ParametricFit
    from scalingkit.fit.points import drop_highest_loss

    committed = json.loads((DATA / "chinchilla_fit_240.json").read_text())
    pts = drop_highest_loss(pd.read_csv(DATA / "chinchilla_fig4_points.csv"), 5)
    fit = ParametricFit(grid="small").fit(pts["params"], pts["tokens"], pts["loss"])
    out = {f"chinchilla/{k}": (fit.coef_[k], committed[k])
           for k in ("E", "A", "B", "alpha", "beta")}
    out["chinchilla/objective"] = (fit.objective_, committed["objective"])
    return out


def _porian() -> dict[str, tuple[float, float]]:
    import pandas as pd

    from scalingkit.runs.frames import runs_from_budget
    from scalingkit.studies import porian2024 as porian

    data = json.loads((DATA / "porian" / "exponents.json").read_text())
    out = {}
    for name, row in data["summary"].items():
        frame = porian.rung_frame(DATA / "porian" / name)
        low, high = data["min_budget"].get(name), data["max_budget"].get(name)
        live = porian.rung_summary(runs_from_budget(frame, low, name, max_budget=high),
                                   n_bootstrap=0)
        out[f"porian/{name}/summary/a"] = (live["a"], row["a"])
    old = DATA / "porian_shakespeare"
    data = json.loads((old / "exponents.json").read_text())
    committed = pd.DataFrame(data["table"])
    frames = {s.name: porian.rung_frame(old / s.name) for s in porian.RUNGS}
    live = porian.exponent_table(frames, methods=porian.METHODS, n_bootstrap=0)
    both = live.merge(committed, on=["step", "method", "convention"], suffixes=("", "_json"))
    out.update({f"porian_shakespeare/{r.step}/{r.method}/{r.convention}/a": (r.a, r.a_json)
                for r in both.itertuples()})
    return out


def _prediction() -> dict[str, tuple[float, float]]:
    from scalingkit.runs.frames import load_points, runs_from_budget
    from scalingkit.runs.spec import spec_from_dict
    from scalingkit.runs.store import RunStore
    from scalingkit.studies.forecasting import make_prediction

    out = {}
    for name, sweep_name in (("prediction", "sweep_reference"),
                             ("prediction_shakespeare", "sweep_shakespeare")):
        rec = json.loads((DATA / f"{name}.json").read_text())
        store = RunStore(DATA / sweep_name)
        spec = spec_from_dict(store.made_for()) if name == "prediction" else None
        top = rec["max_fitted_budget"]  # the sweep may have grown since the prediction
        recipe = max((r for r in store.records() if r.plan["budget"] <= top),
                     key=lambda r: r.plan["budget"]).config
        points = runs_from_budget(load_points(DATA / sweep_name), rec.get("min_budget"),
                                  max_budget=top)
        again = make_prediction(points, recipe, spec=spec)
        out.update({f"{name}/{k}": (again[k], rec[k])
                    for k in ("params", "tokens", "predicted_loss", "predicted_loss_envelope")})
    return out


#: The word-source experiments: name -> (fit result, sweep store, prediction), in DATA.
KNOWN_ENTROPY = {
    "z12": ("known_entropy_z12.json", "known_entropy_words", "prediction_words.json"),
    "z14": ("known_entropy_z14.json", "known_entropy_words_z14", "prediction_words_z14.json"),
    "z18": ("known_entropy.json", "known_entropy_words_z18", "prediction_words_z18.json"),
}


def _known_entropy() -> dict[str, tuple[float, float]]:
    """Each word-source fit (its predictions at the runs, identified) and its prediction."""
    import numpy as np

    from scalingkit.fit import ParametricFit
    from scalingkit.runs.frames import load_points
    from scalingkit.runs.spec import spec_from_dict
    from scalingkit.runs.store import RunStore
    from scalingkit.studies import known_entropy as ke
    from scalingkit.studies.forecasting import make_prediction

    out = {}
    for name, (result, sweep, prediction) in KNOWN_ENTROPY.items():
        res = json.loads((DATA / result).read_text())
        runs = load_points(DATA / sweep)
        again = ke.fit_known_entropy(runs["params"], runs["tokens"], runs["loss"],
                                     res["true_entropy_rate"], n_bootstrap=0)
        live, committed = (ParametricFit.from_coefficients(**c["coef"]).predict(
            runs["params"], runs["tokens"]) for c in (again, res))
        out[f"known_entropy_{name}/prediction_at_runs_max_rel"] = (
            float(np.max(np.abs(live / committed - 1))), 0.0)
        out[f"known_entropy_{name}/fitted_E"] = (again["fitted_E"], res["fitted_E"])
        rec = json.loads((DATA / prediction).read_text())
        store = RunStore(DATA / sweep)
        recipe = max((r for r in store.records() if r.status == "done"),
                     key=lambda r: r.plan["budget"]).config
        pred = make_prediction(runs, recipe, spec=spec_from_dict(store.made_for()))
        out.update({f"prediction_words_{name}/{k}": (pred[k], rec[k])
                    for k in ("params", "tokens", "predicted_loss", "predicted_loss_envelope")})
    return out


def _lr_rule() -> dict[str, tuple[float, float]]:
    from scalingkit.runs.frames import run_frame
    from scalingkit.studies.hparams.lr_rule import fit_lr_rule, lr_optima

    committed = json.loads((DATA / "hparams" / "lr_rule.json").read_text())
    again = fit_lr_rule(lr_optima(run_frame(DATA / "hparams" / "lr_grid")),
                        n_boot=committed["n_boot"], seed=committed["seed"])
    out = {f"lr_rule/{k}": (again["rule"][k], committed["rule"][k])
           for k in ("coef", "exponent", "budget_exponent")}
    out["lr_rule/exponent_ci_low"] = (again["exponent_ci"][0], committed["exponent_ci"][0])
    return out


def _retrain(name: str) -> dict[str, tuple[float, float]]:
    import torch

    from scalingkit.runs.executors import train_from_dict
    from scalingkit.runs.store import RunStore

    store = RunStore(DATA / name)
    smallest = min(store.records(), key=lambda r: r.result["flops_exact"])
    threads = smallest.result.get("torch_threads") or 1
    torch.set_num_threads(threads)
    again = train_from_dict(smallest.config)
    return {f"retrain/{name}/final_loss": (again["final_loss"],
                                           smallest.result["final_loss"])}


def child(parts: list[str]) -> None:
    """Compute every requested re-derivation; print ``{name: [live, committed]}``."""
    jobs = {"kaplan": _kaplan, "chinchilla": _chinchilla, "porian": _porian,
            "prediction": _prediction, "lr_rule": _lr_rule,
            "known_entropy": _known_entropy}
    out: dict[str, tuple[float, float]] = {}
    for part in parts:
        if part.startswith("retrain:"):
            out.update(_retrain(part.split(":", 1)[1]))
        else:
            out.update(jobs[part]())
    print(json.dumps({k: [float(a), float(b)] for k, a, b in
                      ((k, *v) for k, v in out.items())}))


# ----------------------------------------------------------------- parent side
def measure(parts: list[str]) -> dict[str, dict[str, float]]:
    """Run the re-derivations under every path; per quantity, values and spreads."""
    values: dict[str, dict[str, float]] = {}
    for path, env in PATHS.items():
        proc = subprocess.run(
            [sys.executable, __file__, "--child", *parts], capture_output=True, text=True,
            env={**os.environ, **env}, cwd=ROOT, check=False)
        if proc.returncode:
            sys.exit(f"path {path} failed:\n{proc.stderr[-3000:]}")
        for name, (live, committed) in json.loads(proc.stdout.splitlines()[-1]).items():
            values.setdefault(name, {"committed": committed})[path] = live
    return values


def _rel(a: float, b: float) -> float:
    """Relative difference of ``a`` from ``b``; the absolute one where ``b`` is 0 (a gap)."""
    if a == b:
        return 0.0
    return abs(a - b) / abs(b) if b else abs(a - b)


def summarise(values: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Largest absolute and relative deviation, from the committed value and across paths."""
    rows = {}
    for name, v in values.items():
        live = [v[p] for p in PATHS if p in v and math.isfinite(v[p])]
        c = v["committed"]
        if not live or not math.isfinite(c):
            rows[name] = {**v, "note": "not finite"}
            continue
        rows[name] = {
            **v,
            "abs_vs_committed": max(abs(x - c) for x in live),
            "rel_vs_committed": max(_rel(x, c) for x in live),
            "rel_across_paths": max(_rel(x, y) for x in live for y in live),
        }
    return rows


def main() -> None:
    """Command line: measure and print the spread of every re-derived quantity."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--skip-training", action="store_true",
                    help="skip re-training the smallest run of each committed store")
    ap.add_argument("--only", nargs="*", help="parts to run (kaplan, chinchilla, porian, "
                    "prediction, lr_rule, known_entropy, retrain:<store>)")
    ap.add_argument("--output", type=Path, help="also write the table as JSON here")
    args = ap.parse_args()
    if args.child is not None:
        child(args.child)
        return
    parts = args.only or ["kaplan", "chinchilla", "porian", "prediction", "lr_rule",
                          "known_entropy"] + (
        [] if args.skip_training else [f"retrain:{s}" for s in STORES])
    rows = summarise(measure(parts))
    for name, r in rows.items():
        if "note" in r:
            print(f"{name:50s} {r['note']}")
            continue
        print(f"{name:50s} rel_vs_committed={r['rel_vs_committed']:.2e} "
              f"abs_vs_committed={r['abs_vs_committed']:.2e} "
              f"rel_across_paths={r['rel_across_paths']:.2e}")
    if args.output:
        args.output.write_text(json.dumps({"paths": PATHS, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
