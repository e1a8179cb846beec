"""``python -m scalingkit fit``: fit a scaling law to runs in a CSV or a run store."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from scalingkit.cli._output import check_output
from scalingkit.fit import EnvelopeFit, IsoFLOPFit, ParametricFit, ScalingFitWarning
from scalingkit.fit._base import plain_json
from scalingkit.fit.points import drop_highest_loss
from scalingkit.runs.frames import load_curves, load_points
from scalingkit.runs.provenance import provenance

HELP = "Fit a scaling law (Chinchilla Approach 1, 2 or 3) to runs in a CSV file or a run store."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="CSV with columns params, tokens, loss [, flops, budget] "
                                  "or a run-store folder written by `sweep`")
    p.add_argument("--approach", type=int, choices=[1, 2, 3], default=3,
                   help="3: L(N, D) = E + A/N^alpha + B/D^beta (default); 2: IsoFLOP "
                        "parabolas; 1: lower envelope of the training curves (run store only)")
    p.add_argument("--bootstrap", type=int, default=0, metavar="K",
                   help="bootstrap resamples of the runs for 95%% intervals (default 0)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--grid", choices=["full", "small"], default="full",
                   help="initial-value grid for approach 3 (default: the 4500-start grid)")
    p.add_argument("--huber-delta", type=float, default=1e-3,
                   help="Huber threshold on log-loss residuals (default 1e-3)")
    p.add_argument("--rule", choices=["local", "all"], default="local",
                   help="approach 2: each budget's optimum from a parabola through the 5 "
                        "sizes nearest its lowest loss, budgets not bracketed left out "
                        "(local, default), or through every run, extrapolated vertices kept "
                        "(all)")
    p.add_argument("--drop-highest", type=int, default=0, metavar="K",
                   help="drop the K runs with the highest loss first (Besiroglu et al.: 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--output", type=Path, default=None,
                   help="also write the JSON to this file, with provenance in <name>.meta.json")


def _result(args: argparse.Namespace, frame) -> dict:
    cols = {c: frame[c].to_numpy(float) for c in ("params", "tokens", "loss")}
    if args.approach == 3:
        est = ParametricFit(huber_delta=args.huber_delta, grid=args.grid,
                            n_bootstrap=args.bootstrap, random_state=args.seed)
        est.fit(cols["params"], cols["tokens"], cols["loss"])
        keys = ("E", "A", "B", "alpha", "beta")
        out = {k: est.coef_[k] for k in keys}
        out.update(objective=est.objective_, a=est.a_, b=est.b_, G=est.G_)
        extra = {"n_converged_starts": est.n_converged_}
    elif args.approach == 1:
        est = EnvelopeFit(n_bootstrap=args.bootstrap, random_state=args.seed)
        est.fit(cols["params"], cols["tokens"], cols["loss"], flops=frame["flops"].to_numpy(float),
                run=frame["run"].to_numpy())
        out = dict(est.coef_)
        extra = {}
    else:
        kwargs = {}
        if "flops" in frame:
            kwargs["flops"] = frame["flops"].to_numpy(float)
        if "budget" in frame:
            kwargs["budget"] = frame["budget"].to_numpy()
        est = IsoFLOPFit(rule=args.rule, n_bootstrap=args.bootstrap, random_state=args.seed)
        est.fit(cols["params"], cols["tokens"], cols["loss"], **kwargs)
        out = dict(est.coef_)
        # budgets/n_opt: the budgets in the exponent fit; budget_table: every budget
        extra = {"budgets": est.budgets_.tolist(), "n_opt": est.n_opt_.tolist(),
                 "a_stderr": est.a_stderr_, "rule": est.rule,
                 "budgets_used": est.budgets_used_.tolist(),
                 "budgets_dropped": [{"budget": c, "reason": why}
                                     for c, why in est.budgets_dropped_.items()],
                 "budget_table": est.budget_records()}
    out["ci"] = est.ci_
    out.update(extra, success=est.success_, message=est.message_, n_points=est.n_points_,
               approach=args.approach, estimator=est.to_dict())
    return out


def _numeric(frame, source: str):
    """Return ``frame`` once its params, tokens and loss are numbers; else name the column."""
    import pandas as pd

    for col in ("params", "tokens", "loss"):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            raise ValueError(f"{source}: column {col} holds a non-number "
                             f"({frame[col][bad].iloc[0]!r})")
    return frame


def _outputs(args: argparse.Namespace) -> tuple[Path, Path] | None:
    """The result file and its ``.meta.json``, checked before any fitting."""
    if args.output is None:
        return None
    out = check_output(args.output, reads=[args.source])
    meta = check_output(out.with_name(out.stem + ".meta.json"), reads=[args.source],
                        option="--output's provenance file")
    return out, meta


def run(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    if args.approach == 1:
        if args.drop_highest:
            raise ValueError("--drop-highest applies to final losses, not to approach 1")
        frame = load_curves(args.source)
    else:
        frame = _numeric(load_points(args.source), args.source)
    if args.drop_highest:
        frame = drop_highest_loss(frame, args.drop_highest)
    with warnings.catch_warnings():  # reported below as the reason the fit failed
        warnings.filterwarnings("ignore", "the fitted law is degenerate", ScalingFitWarning)
        out = _result(args, frame)
    # Strict JSON: a value that is not finite (an undefined allocation) is null.
    text = json.dumps(plain_json(out), allow_nan=False, default=str)
    if outputs is not None:
        outputs[0].write_text(text + "\n")
        meta = {**provenance(), "source": str(args.source)}
        outputs[1].write_text(json.dumps(meta, indent=2) + "\n")
    if args.json:
        print(text)
    else:
        cls = {1: EnvelopeFit, 2: IsoFLOPFit, 3: ParametricFit}[args.approach]
        print(cls.from_json(json.dumps(out["estimator"])).summary())
    if not out["success"]:
        print(f"error: the fit did not succeed: {out['message']}", file=sys.stderr)
        return 1
    return 0
