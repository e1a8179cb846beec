"""``python -m scalingkit known-entropy``: IsoFLOP sweep on a Markov source, fit E vs H.

Plans an IsoFLOP sweep on the synthetic corpus ``markov:<k>`` (whose entropy rate is
known exactly), trains it resumably into a run store, fits Approach 3 with a bootstrap
and writes the comparison, with its provenance, to a JSON file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scalingkit.cli._output import check_output
from scalingkit.fit._base import plain_json
from scalingkit.runs.provenance import provenance

HELP = ("sweep a Markov source of known entropy rate H, fit Approach 3, "
        "and report the fitted E against H")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the options of ``known-entropy``."""
    from scalingkit.runs.executors import EXECUTORS

    p.add_argument("--out", required=True, metavar="DIR", help="run store folder (resumable)")
    p.add_argument("--order", type=int, default=2, help="Markov order k (default 2)")
    p.add_argument("--budgets", type=float, nargs="+", required=True, metavar="FLOP",
                   help="compute budgets (FLOP, exact count)")
    p.add_argument("--sizes-per-budget", type=int, default=7, metavar="K")
    p.add_argument("--span", type=float, default=16.0,
                   help="largest / smallest target size per budget (default 16)")
    p.add_argument("--centre-coef", type=float, default=120.0**-0.5,
                   help="N_c = coef * C^0.5 (default: D/N = 20 under 6ND)")
    p.add_argument("--n-ctx", type=int, default=128, help="context length (tokens)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--evals-per-run", type=int, default=5)
    p.add_argument("--eval-tokens", type=int, default=65536,
                   help="validation tokens per evaluation")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="K",
                   help="bootstrap resamples for the interval on E")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--output", type=Path, default=None,
                   help="write the result JSON here (e.g. book/data/known_entropy.json)")
    p.add_argument("--export", type=Path, default=None, metavar="DEST",
                   help="copy the store's records (no checkpoints) here for committing")
    p.add_argument("--executor", choices=EXECUTORS, default="sequential")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--dry-run", action="store_true", help="print the plan, train nothing")
    p.add_argument("--fit-only", action="store_true",
                   help="fit the runs already finished in the store, train nothing")
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Plan, train, fit and report."""
    import numpy as np

    from scalingkit.core.data import load_corpus
    from scalingkit.runs.frames import load_points
    from scalingkit.runs.sweep import SweepSpec, plan_sweep, run_sweep
    from scalingkit.studies.known_entropy import (
        context_floor,
        fit_known_entropy,
        markov_source,
        source_loss_on_windows,
    )

    if args.order < 0:
        raise ValueError(f"--order must be >= 0, got {args.order}")
    if args.export is not None:  # refuse a bad destination before any training
        from scalingkit.runs.store import RunStore

        RunStore(args.out).check_export(args.export)
    if args.output is not None:  # before any training or fitting
        check_output(args.output, reads=[args.out], make_parents=True)
    corpus = f"markov:{args.order}"
    spec = SweepSpec(
        budgets=tuple(args.budgets), sizes_per_budget=args.sizes_per_budget, span=args.span,
        centre_coef=args.centre_coef, n_ctx=args.n_ctx, corpus=corpus,
        batch_size=args.batch_size, lr=args.lr, evals_per_run=args.evals_per_run,
        eval_tokens=args.eval_tokens,
    )
    if not args.fit_only:
        plan = plan_sweep(spec)
        print(f"{len(plan.runs)} runs on {corpus}, {plan.total_flops:.3g} FLOP in all, "
              f"{sum(r.tokens for r in plan.runs):,} training tokens")
        for d in plan.dropped:
            print(f"  dropped: C={d.budget:.3g} size {d.size_index}: {d.reason}")
        if args.dry_run:
            print(plan.to_frame().to_string(index=False, float_format=lambda x: f"{x:.4g}"))
            return 0
        if not plan.runs:
            raise ValueError("every candidate run was dropped; raise the budgets")
        run_sweep(plan, args.out, executor=args.executor, workers=args.workers,
                  progress=not args.no_progress)
    if args.export is not None:
        from scalingkit.runs.store import RunStore

        n = RunStore(args.out).export(args.export)
        print(f"exported {n} run records to {args.export}")
    frame = load_points(args.out)
    tc = load_corpus(corpus)
    h = float(tc.meta["entropy_rate_nats_per_byte"])
    result = fit_known_entropy(frame["params"], frame["tokens"], frame["loss"], h,
                               n_bootstrap=args.bootstrap, seed=args.seed)
    src = markov_source(args.order)
    if abs(src.entropy_rate() - h) > 1e-9 * h:
        raise RuntimeError("the refitted chain's entropy rate differs from the corpus's")
    result["context_floor"] = context_floor(src, args.n_ctx)
    result["source_loss_on_val_windows"] = source_loss_on_windows(
        src, np.asarray(tc.val), args.n_ctx, args.eval_tokens)
    result["best_run_loss"] = float(frame["loss"].min())
    result["corpus"] = corpus
    result["corpus_meta"] = tc.meta
    result["sweep"] = {k: getattr(spec, k) for k in (
        "sizes_per_budget", "span", "centre_coef", "n_ctx", "batch_size", "lr",
        "evals_per_run", "eval_tokens")} | {"budgets": list(spec.budgets)}
    result["runs"] = frame[["params", "tokens", "loss", "budget"]].to_dict(orient="list")
    result["provenance"] = provenance()
    print(f"H = {h:.4f} nats/token, fitted E = {result['fitted_E']:.4f} "
          f"[{result['E_ci'][0]:.4f}, {result['E_ci'][1]:.4f}], "
          f"relative error {result['relative_error']:.3%} ({result['n_runs']} runs)")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(plain_json(result), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.output}")
    return 0

