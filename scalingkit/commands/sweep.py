"""``python -m scalingkit sweep``: plan an IsoFLOP sweep and train it into a run store."""

from __future__ import annotations

import argparse
import shlex
import sys

HELP = "plan an IsoFLOP sweep (budgets x model sizes) and train it, resumably, into DIR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``sweep``."""
    from scalingkit.executors import EXECUTORS
    from scalingkit.sweep import PRESETS

    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="a named sweep (default: quick unless --budgets is given)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run store folder; re-running resumes it")
    parser.add_argument("--budgets", type=float, nargs="+", metavar="FLOP",
                        help="compute budgets in FLOP (replace the preset's)")
    parser.add_argument("--sizes-per-budget", type=int, metavar="K",
                        help="model sizes per budget (replace the preset's)")
    parser.add_argument("--budget-flops", choices=("exact", "6nd"),
                        help="FLOP count that defines a budget (default: exact)")
    parser.add_argument("--executor", choices=EXECUTORS, default="sequential",
                        help="how to run: in this process, a local pool, or Slurm via submitit")
    parser.add_argument("--workers", type=int, metavar="W",
                        help="pool workers (default: one per core; threads = cores // W)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan and the dropped configs, train nothing")
    parser.add_argument("--export", metavar="DEST",
                        help="afterwards, copy the store without checkpoints to DEST "
                             "(records, curves, provenance: what gets committed)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    """Plan, store and train the sweep; print a one-line summary per status."""
    from scalingkit.store import RunStore
    from scalingkit.sweep import plan_sweep, preset, run_sweep

    overrides = {}
    if args.budgets:
        overrides["budgets"] = tuple(args.budgets)
    if args.sizes_per_budget is not None:
        overrides["sizes_per_budget"] = args.sizes_per_budget
    if args.budget_flops:
        overrides["budget_flops"] = args.budget_flops
    spec = preset(args.preset or "quick", **overrides)
    if not args.dry_run:
        RunStore(args.out).ensure_writable()  # fail before planning loads the corpus
    plan = plan_sweep(spec)
    if not plan.runs:
        raise ValueError("every candidate run was dropped: " +
                         "; ".join(d.reason for d in plan.dropped))
    frame = plan.to_frame()
    print(f"{len(plan.runs)} runs over {len(spec.budgets)} budgets "
          f"(budget defined by {spec.budget_flops} FLOP), "
          f"{plan.total_flops:.3g} FLOP in all")
    for d in plan.dropped:
        print(f"  dropped: C={d.budget:.3g} size {d.size_index}: {d.reason}")
    if args.dry_run:
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
