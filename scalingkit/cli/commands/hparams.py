"""``python -m scalingkit hparams``: the hyperparameter study.

``hparams plan PART`` prints a part's runs and cost; ``hparams run PART --out DIR``
trains them, resumably, into a run store. Parts: ``lr-grid`` (rates x sizes at two
budgets); and, with the ``laptop`` recipe and a measured rule (``--lr-rule FILE
--budget C --rungs K ...``), ``seeds`` (the same runs under more seeds), ``batch``
(sequences per step), ``warmup`` (share of tokens in warmup), ``horizon`` (a
cosine longer than the run), ``init`` (GPT-2's initial weight scale), ``lr``
(multiples of the rule's rate, to check the rule at a new budget) and ``tokenizer``
(bytes against BPE, same shapes).
``hparams fit-lr DIR`` fits the learning-rate rule ``lr*(N)`` to a finished grid;
``hparams noise-scale`` measures the gradient noise scale along runs of the recipe.
"""

from __future__ import annotations

import argparse
import json

from scalingkit.cli._output import check_output, command_line, finish_training

HELP = "hyperparameters across scale: the learning-rate grid, seeds, and the lr rule"
PARTS = ("lr-grid", "seeds", "batch", "warmup", "horizon", "init", "lr", "tokenizer")


def _part_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("part", choices=PARTS)
    p.add_argument("--lr-rule", metavar="FILE",
                   help="all but lr-grid: the rule from 'hparams fit-lr --output FILE'")
    p.add_argument("--budget", type=float, metavar="FLOP",
                   help="all but lr-grid: the compute budget")
    p.add_argument("--rungs", type=int, nargs="+", metavar="K",
                   help="all but lr-grid: ladder rungs (1 is the smallest)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="S",
                   help="seeds: seeds besides the sweep's own seed 0 (default: 1 2); "
                        "tokenizer: the seeds of every run (default: 0)")
    p.add_argument("--tokenizers", nargs="+", default=["byte", "bpe:4096"], metavar="T",
                   help="tokenizer: the tokenizers compared (default: byte bpe:4096)")
    p.add_argument("--corpus", metavar="SPEC",
                   help="all but lr-grid: the corpus instead of the preset's gutenberg_en, "
                        "e.g. a source of known entropy such as words:z12:256")
    p.add_argument("--values", type=float, nargs="+", metavar="V",
                   help="batch, warmup, horizon, lr: the values tried (default: "
                        "scalingkit.studies.hparams.plan.RECIPE_VALUES)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``plan``, ``run`` and ``fit-lr`` actions."""
    from scalingkit.runs.executors import EXECUTORS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("plan", help="print a part's runs and their cost")
    _part_arguments(p)
    p.add_argument("--flop-per-s", type=float, default=1.3e11, metavar="R",
                   help="sustained training throughput for the time estimate (FLOP/s)")
    r = sub.add_parser("run", help="train a part into a run store (resumable)")
    _part_arguments(r)
    r.add_argument("--out", required=True, metavar="DIR", help="run store folder")
    r.add_argument("--executor", choices=EXECUTORS, default="sequential",
                   help="where runs train (as for 'python -m scalingkit sweep')")
    r.add_argument("--workers", type=int, metavar="W",
                   help="pool workers (default: one per core; threads = cores // W)")
    r.add_argument("--export", metavar="DEST",
                   help="afterwards, copy the store without checkpoints to DEST")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    n = sub.add_parser("noise-scale", help="train runs of the recipe, measuring the gradient "
                       "noise scale B_simple at every evaluation")
    n.add_argument("--lr-rule", required=True, metavar="FILE",
                   help="the rule from 'hparams fit-lr --output FILE'")
    n.add_argument("--budget", required=True, type=float, metavar="FLOP")
    n.add_argument("--rungs", required=True, type=int, nargs="+", metavar="K")
    n.add_argument("--repeats", type=int, default=8, help="big batches per measurement")
    n.add_argument("--output", required=True, metavar="FILE", help="JSON to write")
    f = sub.add_parser("fit-lr", help="fit lr*(N) to a finished learning-rate grid")
    f.add_argument("dir", metavar="DIR", help="the grid's run store (or its export)")
    f.add_argument("--bootstrap", type=int, default=2000, metavar="B",
                   help="bootstrap resamples of the grid's cells")
    f.add_argument("--json", action="store_true", help="print the result as JSON")
    f.add_argument("--output", metavar="FILE", help="also write the result as JSON")


def _plan(args: argparse.Namespace):
    from scalingkit.studies.hparams.lr_rule import read_lr_rule
    from scalingkit.studies.hparams.plan import (
        base_spec,
        lr_grid_plan,
        recipe_plan,
        seed_plan,
        tokenizer_plan,
    )

    if args.seeds is not None and args.part not in ("seeds", "tokenizer"):
        raise ValueError(f"--seeds does not apply to part {args.part!r}")
    if args.part == "lr-grid":
        if args.corpus is not None:
            raise ValueError("--corpus does not apply to part 'lr-grid'")
        return lr_grid_plan()
    missing = [flag for flag, value in (("--lr-rule", args.lr_rule), ("--budget", args.budget),
                                        ("--rungs", args.rungs)) if value is None]
    if missing:
        raise ValueError(f"part {args.part!r} needs {', '.join(missing)}")
    if args.values is not None and args.part == "seeds":
        raise ValueError("--values does not apply to part 'seeds' (use --seeds)")
    spec = base_spec(lr_rule=read_lr_rule(args.lr_rule), **corpus_override(args.corpus))
    if args.part == "seeds":
        return seed_plan(spec, args.budget, args.rungs, seeds=args.seeds or [1, 2])
    if args.part == "tokenizer":
        return tokenizer_plan(spec, args.budget, args.rungs, args.tokenizers,
                              seeds=args.seeds or [spec.seed])
    return recipe_plan(args.part, spec, args.budget, args.rungs, args.values)


def corpus_override(corpus: str | None) -> dict:
    """Spec fields for ``--corpus``: the corpus, with its size read from the data.

    Raises
    ------
    ValueError
        A spec that names no corpus or source (before anything is planned).
    """
    if corpus is None:
        return {}
    from scalingkit.core.data.dataset import SYNTHETIC_PREFIXES

    if corpus.startswith(SYNTHETIC_PREFIXES):
        from scalingkit.studies.known_entropy import source_of

        source_of(corpus)
    else:
        from scalingkit.core.data.corpora import resolve_corpus

        resolve_corpus(corpus)
    return {"corpus": corpus, "corpus_tokens": None}


def _fit_lr(args: argparse.Namespace) -> int:
    from scalingkit.runs.frames import run_frame
    from scalingkit.studies.hparams.lr_rule import fit_lr_rule, lr_optima

    if args.output:
        check_output(args.output, reads=[args.dir])
    optima = lr_optima(run_frame(args.dir))
    result = fit_lr_rule(optima, n_boot=args.bootstrap)
    result["optima"] = json.loads(optima.to_json(orient="records"))
    result["units"] = {"lr": "peak learning rate per optimizer step", "params": "parameters",
                       "budget": "FLOP (exact count)", "loss_opt": "nats/token"}
    result["command"] = command_line()
    text = json.dumps(result, indent=1)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(text + "\n")
    if args.json:
        print(text)
        return 0
    print(optima.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    rule = result["rule"]
    lo, hi = result["exponent_ci"]
    term = ""
    if "budget_exponent" in rule:
        glo, ghi = result["budget_exponent_ci"]
        term = (f" * (C / {rule['c_ref']:.3g})^(-{rule['budget_exponent']:.3f}) "
                f"[95% CI {glo:.3f} to {ghi:.3f}], C in [{rule['c_min']:.3g}, "
                f"{rule['c_max']:.3g}] FLOP,")
    print(f"lr* = {rule['coef']:.3g} * (N / {rule['n_ref']:.3g})^(-{rule['exponent']:.3f}) "
          f"[95% CI {lo:.3f} to {hi:.3f}]{term} measured on N in "
          f"[{rule['n_min']:.3g}, {rule['n_max']:.3g}] from {result['cells_used']} of "
          f"{result['cells']} cells")
    return 0


def _noise_scale(args: argparse.Namespace) -> int:
    from scalingkit.runs.provenance import provenance
    from scalingkit.studies.hparams.lr_rule import read_lr_rule
    from scalingkit.studies.hparams.noise import noise_along_run
    from scalingkit.studies.hparams.plan import base_spec, seed_plan

    check_output(args.output, reads=[args.lr_rule])
    spec = base_spec(lr_rule=read_lr_rule(args.lr_rule))
    plan = seed_plan(spec, args.budget, args.rungs, seeds=[spec.seed])
    if plan.dropped:
        raise ValueError("; ".join(f"rung {d.size_index}: {d.reason}" for d in plan.dropped))
    runs = []
    for r in plan.runs:
        print(f"rung {r.size_index}: {r.params:,} params, {r.steps} steps", flush=True)
        runs.append({"rung": r.size_index, "params": r.params,
                     **noise_along_run(r.config, repeats=args.repeats)})
    command = command_line()
    out = {"budget": args.budget, "runs": runs, "provenance": provenance(command),
           "units": {"b_simple": "windows of n_ctx tokens", "b_simple_tokens": "tokens",
                     "val_loss": "nats/token"}}
    with open(args.output, "w") as fh:
        fh.write(json.dumps(out, indent=1) + "\n")
    for run_ in runs:
        last = run_["points"][-1]
        print(f"rung {run_['rung']}: final loss {run_['final_loss']:.4f} nats/token, "
              f"B_simple {last['b_simple_tokens']:,.0f} tokens at the end "
              f"(batch {run_['batch_tokens']:,} tokens)")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch on the action."""
    from scalingkit.runs.store import RunStore
    from scalingkit.runs.sweep import run_sweep

    if args.action == "fit-lr":
        return _fit_lr(args)
    if args.action == "noise-scale":
        return _noise_scale(args)
    plan = _plan(args)
    if args.action == "plan":
        frame = plan.to_frame()
        frame["lr"] = [r.config["lr"] for r in plan.runs]
        frame["seed"] = [r.config["seed"] for r in plan.runs]
        print(f"{args.part}: {len(plan.runs)} runs, {plan.total_flops:.3g} FLOP, about "
              f"{plan.estimate_seconds(args.flop_per_s) / 60:.0f} min at "
              f"{args.flop_per_s:.3g} FLOP/s")
        for d in plan.dropped:
            print(f"  dropped: C={d.budget:.3g} rung {d.size_index}: {d.reason}")
        print(frame.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        return 0
    if not plan.runs:
        raise ValueError("every run of the part was dropped: " +
                         "; ".join(d.reason for d in plan.dropped))
    if args.export:  # refuse a bad destination before any training
        RunStore(args.out).check_export(args.export)
    store = run_sweep(plan, args.out, executor=args.executor, workers=args.workers,
                      progress=not args.no_progress, command=command_line())
    return finish_training(store, args.out, args.export)
