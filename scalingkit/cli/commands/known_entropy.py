"""``python -m scalingkit known-entropy``: IsoFLOP sweep on a source of known entropy, fit E vs H.

Plans an IsoFLOP sweep on a synthetic corpus whose entropy rate is known
(``markov:<k>``, ``ngram:<preset>`` or ``words:<preset>``, exact, or ``hmm:<preset>``,
estimated with a standard error), trains it resumably into a run store, fits Approach 3
with a bootstrap and writes the comparison, with its provenance, to a JSON file.

Two recipes: the default one (fixed learning rate, the ``nearest`` ladder, the options
below) and ``--recipe laptop``, the project's tuned recipe
(:func:`scalingkit.runs.sweep.preset`: monotone ladder, width-scaled init, each window
seen once, a measured learning-rate rule), which ``--bracket`` extends until every
budget's optimum is bracketed (:func:`scalingkit.runs.bracket.run_bracketed`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from scalingkit.cli._output import check_output
from scalingkit.fit._base import plain_json
from scalingkit.runs.provenance import provenance

HELP = ("sweep a source of known entropy rate H (Markov chain or HMM), fit Approach 3, "
        "and report the fitted E against H")

#: Options of the default recipe, with their defaults; ``--recipe`` fixes them itself.
PLAIN_DEFAULTS = {"span": 16.0, "centre_coef": 120.0**-0.5, "n_ctx": 128, "batch_size": 32,
                  "lr": 3e-3, "evals_per_run": 5, "eval_tokens": 65536}
#: Markov order used when neither ``--source`` nor ``--order`` is given.
DEFAULT_ORDER = 2
RECIPES = ("laptop",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the options of ``known-entropy``."""
    from scalingkit.runs.executors import EXECUTORS

    d = PLAIN_DEFAULTS
    p.add_argument("--out", required=True, metavar="DIR", help="run store folder (resumable)")
    p.add_argument("--source", default=None, metavar="SPEC",
                   help="'markov:<k>', 'ngram:<preset>' (v48k3), 'words:<preset>' (z12) "
                        "or 'hmm:<preset>' (small, medium, large, zipf64); "
                        "default markov:<--order>")
    p.add_argument("--order", type=int, default=None,
                   help=f"Markov order k when --source is not given (default {DEFAULT_ORDER})")
    p.add_argument("--budgets", type=float, nargs="+", required=True, metavar="FLOP",
                   help="compute budgets (FLOP, exact count)")
    p.add_argument("--recipe", choices=RECIPES, default=None,
                   help="train with this preset's tuned recipe (needs --lr-rule) instead of "
                        "the options below")
    p.add_argument("--lr-rule", metavar="FILE",
                   help="with --recipe: learning-rate rule from 'hparams fit-lr --output FILE'")
    p.add_argument("--bracket", action="store_true",
                   help="with --recipe: pilot on the two smallest budgets, re-centre, and add "
                        "rungs until every budget's optimum is bracketed")
    p.add_argument("--no-pilot", action="store_true",
                   help="with --bracket: keep the recipe's centre (no pilot)")
    p.add_argument("--sizes-per-budget", type=int, default=None, metavar="K",
                   help="model sizes per budget (default 7)")
    p.add_argument("--span", type=float, default=None,
                   help=f"largest / smallest target size per budget (default {d['span']:g})")
    p.add_argument("--centre-coef", type=float, default=None,
                   help="N_c = coef * C^0.5 (default: D/N = 20 under 6ND)")
    p.add_argument("--n-ctx", type=int, default=None,
                   help=f"context length (tokens, default {d['n_ctx']})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"sequences per step (default {d['batch_size']})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default {d['lr']:g})")
    p.add_argument("--evals-per-run", type=int, default=None,
                   help=f"validation points per run (default {d['evals_per_run']})")
    p.add_argument("--eval-tokens", type=int, default=None,
                   help=f"validation tokens per evaluation (default {d['eval_tokens']})")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="K",
                   help="bootstrap resamples for the interval on E")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--noise-sd", type=float, default=None, metavar="NATS",
                   help="the seed noise floor (nats/token, e.g. from 'hparams run seeds "
                        "--corpus SPEC'): adds E_ci_noise, an interval on E from refits of "
                        "the losses plus noise of this size")
    p.add_argument("--output", type=Path, default=None,
                   help="write the result JSON here (e.g. book/data/known_entropy.json)")
    p.add_argument("--export", type=Path, default=None, metavar="DEST",
                   help="copy the store's records (no checkpoints) here for committing")
    p.add_argument("--executor", choices=EXECUTORS, default="sequential")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the source's entropy rate, train nothing")
    p.add_argument("--fit-only", action="store_true",
                   help="fit the runs already finished in the store, train nothing")
    p.add_argument("--no-progress", action="store_true")


def source_spec(args: argparse.Namespace) -> str:
    """The corpus spec of the source: ``--source``, else ``markov:<--order>``."""
    if args.order is not None and args.order < 0:
        raise ValueError(f"--order must be >= 0, got {args.order}")
    if args.source is None:
        return f"markov:{DEFAULT_ORDER if args.order is None else args.order}"
    if args.order is not None:
        raise ValueError("--order only applies without --source; write "
                         f"--source markov:{args.order}")
    return args.source


def sweep_spec(args: argparse.Namespace, corpus: str):
    """The :class:`~scalingkit.runs.spec.SweepSpec` the options describe.

    Raises
    ------
    ValueError
        For an option that does not apply to the chosen recipe.
    """
    from scalingkit.runs.sweep import SweepSpec, preset

    given = [k for k in PLAIN_DEFAULTS if getattr(args, k) is not None]
    if args.recipe is None:
        for flag in ("lr_rule", "bracket"):
            if getattr(args, flag):
                raise ValueError(f"--{flag.replace('_', '-')} only applies with "
                                 f"--recipe {RECIPES[0]}")
        if args.no_pilot:
            raise ValueError("--no-pilot only applies with --bracket")
        fields = {k: getattr(args, k) if k in given else v for k, v in PLAIN_DEFAULTS.items()}
        return SweepSpec(budgets=tuple(args.budgets), corpus=corpus,
                         sizes_per_budget=7 if args.sizes_per_budget is None
                         else args.sizes_per_budget, **fields)
    from scalingkit.studies.hparams.lr_rule import read_lr_rule

    if given:
        raise ValueError(f"--{given[0].replace('_', '-')} does not apply with --recipe "
                         f"{args.recipe}, which fixes it")
    if args.lr_rule is None:
        raise ValueError(f"--recipe {args.recipe} needs --lr-rule FILE (a measured "
                         "learning-rate rule, from 'hparams fit-lr --output FILE')")
    if args.no_pilot and not args.bracket:
        raise ValueError("--no-pilot only applies with --bracket")
    extra = {} if args.sizes_per_budget is None else {"sizes_per_budget": args.sizes_per_budget}
    return preset(args.recipe, corpus=corpus, corpus_tokens=None, budgets=tuple(args.budgets),
                  lr_rule=read_lr_rule(args.lr_rule), **extra)


def describe_source(corpus: str, meta: dict) -> str:
    """One line: the source's entropy rate, its standard error and bounds (nats/token)."""
    from scalingkit.studies.known_entropy import true_entropy

    h, se = true_entropy(meta)
    if se == 0:
        return f"source {corpus}: H = {h:.4f} nats/token (exact)"
    lo, hi = meta.get("entropy_bounds_nats_per_byte", (float("nan"), float("nan")))
    return (f"source {corpus}: H = {h:.4f} +- {se:.4f} nats/token (estimate +- stderr "
            f"from {meta.get('entropy_rate_tokens', 0):,} tokens); exact bounds "
            f"H(X_t|S_t-1) = {lo:.4f} <= H <= H(X_t|X_t-1) = {hi:.4f}")


def run(args: argparse.Namespace) -> int:
    """Plan, train, fit and report."""
    import numpy as np

    from scalingkit.core.data import load_corpus
    from scalingkit.runs.frames import load_points
    from scalingkit.runs.sweep import plan_sweep, run_sweep, spec_dict
    from scalingkit.studies import known_entropy as ke

    if args.noise_sd is not None and not (np.isfinite(args.noise_sd) and args.noise_sd > 0):
        raise ValueError(f"--noise-sd must be a positive number of nats/token, "
                         f"got {args.noise_sd!r}")
    corpus = source_spec(args)
    spec = sweep_spec(args, corpus)
    if args.export is not None:  # refuse a bad destination before any training
        from scalingkit.runs.store import RunStore

        RunStore(args.out).check_export(args.export)
    if args.output is not None:  # before any training or fitting
        check_output(args.output, reads=[args.out], make_parents=True)
    src = ke.source_of(corpus)  # names a bad spec before anything is trained
    command = "python -m scalingkit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not args.fit_only:
        plan = plan_sweep(spec)
        print(f"{len(plan.runs)} runs on {corpus}, {plan.total_flops:.3g} FLOP in all, "
              f"{sum(r.tokens for r in plan.runs):,} training tokens")
        for d in plan.dropped:
            print(f"  dropped: C={d.budget:.3g} size {d.size_index}: {d.reason}")
        if args.dry_run:
            print(plan.to_frame().to_string(index=False, float_format=lambda x: f"{x:.4g}"))
            if args.bracket:
                print("with --bracket this plan is a start: "
                      + ("" if args.no_pilot else "a pilot on the two smallest budgets "
                         "re-centres it, and ") + "rungs are added until every budget "
                      "is bracketed")
            print(describe_source(corpus, load_corpus(corpus).meta))
            return 0
        if not plan.runs:
            raise ValueError("every candidate run was dropped; raise the budgets")
        options = {"executor": args.executor, "workers": args.workers,
                   "progress": not args.no_progress, "command": command}
        if args.bracket:
            from scalingkit.runs.bracket import run_bracketed

            spec, table = run_bracketed(spec, args.out, pilot=not args.no_pilot, **options)
            print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        else:
            run_sweep(plan, args.out, **options)
    if args.export is not None:
        from scalingkit.runs.store import RunStore

        n = RunStore(args.out).export(args.export)
        print(f"exported {n} run records to {args.export}")
    frame = load_points(args.out)
    tc = load_corpus(corpus)
    ke.check_source(src, tc.meta)
    h, se = ke.true_entropy(tc.meta)
    result = ke.fit_known_entropy(frame["params"], frame["tokens"], frame["loss"], h,
                                  n_bootstrap=args.bootstrap, seed=args.seed,
                                  noise_sd=args.noise_sd)
    result["true_entropy_rate_stderr"] = se
    result["E_covers_H"] = result["H_inside_ci"]
    result["context_floor"] = ke.context_floor(src, spec.n_ctx)
    result["source_loss_on_val_windows"] = ke.source_loss_on_windows(
        src, np.asarray(tc.val), spec.n_ctx, spec.eval_tokens,
        doc_bytes=ke.document_bytes(tc.meta))
    result["best_run_loss"] = float(frame["loss"].min())
    result["corpus"] = corpus
    result["source"] = corpus
    result["source_params"] = ke.source_params(tc.meta)
    result["corpus_meta"] = tc.meta
    if args.recipe is None:
        result["sweep"] = {k: getattr(spec, k) for k in (
            "sizes_per_budget", "span", "centre_coef", "n_ctx", "batch_size", "lr",
            "evals_per_run", "eval_tokens")} | {"budgets": list(spec.budgets)}
    else:
        result["sweep"] = {"recipe": args.recipe, **spec_dict(spec)}
    result["runs"] = frame[["params", "tokens", "loss", "budget"]].to_dict(orient="list")
    result["provenance"] = provenance(command)
    print(f"H = {h:.4f}" + (f" +- {se:.4f}" if se else "") + " nats/token, fitted E = "
          f"{result['fitted_E']:.4f} [{result['E_ci'][0]:.4f}, {result['E_ci'][1]:.4f}], "
          f"relative error {result['relative_error']:.3%} ({result['n_runs']} runs)")
    if args.noise_sd is not None:
        lo, hi = result["E_ci_noise"]
        print(f"E from the seed noise floor ({args.noise_sd:.4g} nats/token): "
              f"[{lo:.4f}, {hi:.4f}]")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(plain_json(result), indent=1, allow_nan=False) + "\n")
        print(f"wrote {args.output}")
    return 0
