"""``python -m scalingkit hparams``: the hyperparameter study (learning-rate grid, seeds).

``hparams plan PART`` prints a part's runs and cost; ``hparams run PART --out DIR``
trains them, resumably, into a run store. Parts: ``lr-grid`` (rates x sizes at two
budgets). ``hparams fit-lr DIR`` fits the learning-rate rule to a finished grid.
"""

from __future__ import annotations

import argparse
import shlex
import sys

HELP = "hyperparameters across scale: plan, run and fit the learning-rate grid"
PARTS = ("lr-grid",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``plan`` and ``run`` actions."""
    from scalingkit.runs.executors import EXECUTORS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("plan", help="print a part's runs and their cost")
    p.add_argument("part", choices=PARTS)
    p.add_argument("--flop-per-s", type=float, default=1.3e11, metavar="R",
                   help="sustained training throughput for the time estimate (FLOP/s)")
    r = sub.add_parser("run", help="train a part into a run store (resumable)")
    r.add_argument("part", choices=PARTS)
    r.add_argument("--out", required=True, metavar="DIR", help="run store folder")
    r.add_argument("--executor", choices=EXECUTORS, default="sequential",
                   help="where runs train (as for 'python -m scalingkit sweep')")
    r.add_argument("--workers", type=int, metavar="W",
                   help="pool workers (default: one per core; threads = cores // W)")
    r.add_argument("--export", metavar="DEST",
                   help="afterwards, copy the store without checkpoints to DEST")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _plan(part: str):
    from scalingkit.studies.hparams.plan import lr_grid_plan

    if part == "lr-grid":
        return lr_grid_plan()
    raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")


def run(args: argparse.Namespace) -> int:
    """Dispatch on the action."""
    from scalingkit.runs.sweep import run_sweep

    plan = _plan(args.part)
    if args.action == "plan":
        frame = plan.to_frame()
        frame["lr"] = [r.config["lr"] for r in plan.runs]
        print(f"{args.part}: {len(plan.runs)} runs, {plan.total_flops:.3g} FLOP, about "
              f"{plan.estimate_seconds(args.flop_per_s) / 60:.0f} min at "
              f"{args.flop_per_s:.3g} FLOP/s")
        for d in plan.dropped:
            print(f"  dropped: C={d.budget:.3g} rung {d.size_index}: {d.reason}")
        print(frame.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        return 0
    command = "python -m scalingkit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    store = run_sweep(plan, args.out, executor=args.executor, workers=args.workers,
                      progress=not args.no_progress, command=command)
    counts = store.counts()
    print(", ".join(f"{k}: {v}" for k, v in counts.items() if v) + f"  ({args.out})")
    if args.export:
        n = store.export(args.export)
        print(f"exported {n} run records to {args.export}")
    return 0 if counts["failed"] == 0 else 1
