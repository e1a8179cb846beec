"""``python -m scalingkit sweep``: plan an IsoFLOP sweep and train it into a run store."""

from __future__ import annotations

import argparse

from scalingkit.cli._output import command_line, finish_training

HELP = "plan an IsoFLOP sweep (budgets x model sizes) and train it, resumably, into DIR"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``sweep``."""
    from scalingkit.runs.executors import EXECUTORS
    from scalingkit.runs.sweep import PRESETS

    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="a named sweep (default: quick unless --budgets is given)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run store folder; re-running resumes it, and sweeps running at the "
                             "same time on it share its runs")
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
                        help="afterwards, copy the store without checkpoints to DEST, a new or "
                             "empty folder (records, curves, provenance: what gets committed)")
    parser.add_argument("--merge", action="store_true",
                        help="with --export: add the records to the run store already at DEST, "
                             "keeping both sweep logs")
    parser.add_argument("--allow-other-spec", action="store_true",
                        help="add the runs to DIR even if it holds a sweep with another "
                             "recipe (fit and predict will then read both)")
    parser.add_argument("--lr-rule", metavar="FILE",
                        help="learning-rate rule lr*(N) from 'hparams fit-lr --output FILE'; "
                             "sizes outside the sizes it was measured on are dropped")
    parser.add_argument("--bracket", action="store_true",
                        help="monotone-ladder presets: run a pilot on the two smallest budgets, "
                             "re-centre on its tokens per parameter, then add rungs at the "
                             "edge of any budget whose optimum is not bracketed")
    parser.add_argument("--no-pilot", action="store_true",
                        help="with --bracket: keep the spec's centre (no pilot)")
    parser.add_argument("--tokens-per-param", type=float, metavar="R",
                        help="monotone-ladder presets: centre every budget on the size whose "
                             "run gets R tokens per parameter, e.g. an earlier pilot's "
                             "(with --bracket, no pilot is run)")
    parser.add_argument("--min-depth", type=float, default=0.0, metavar="NATS",
                        help="with --bracket: each wall of a budget's valley must rise this "
                             "far above its lowest loss (e.g. twice the seed noise floor), "
                             "else a rung is added on the shallow side")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_slurm_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Plan, store and train the sweep; print a one-line summary per status."""
    from scalingkit.runs.store import RunStore
    from scalingkit.runs.sweep import GRID_FIELDS, plan_sweep, preset, run_sweep, spec_dict

    overrides = {}
    if args.budgets:
        overrides["budgets"] = tuple(args.budgets)
    if args.sizes_per_budget is not None:
        overrides["sizes_per_budget"] = args.sizes_per_budget
    if args.budget_flops:
        overrides["budget_flops"] = args.budget_flops
    if args.tokens_per_param is not None:
        if not (args.tokens_per_param > 0):
            raise ValueError(f"--tokens-per-param must be a positive ratio, got "
                             f"{args.tokens_per_param:g}")
        overrides["centre_tokens_per_param"] = args.tokens_per_param
    if args.lr_rule:
        from scalingkit.studies.hparams.lr_rule import read_lr_rule

        overrides["lr_rule"] = read_lr_rule(args.lr_rule)
    spec = preset(args.preset or "quick", **overrides)
    if args.merge and not args.export:
        raise ValueError("--merge only applies to --export DEST")
    if (args.no_pilot or args.min_depth) and not args.bracket:
        raise ValueError("--no-pilot and --min-depth only apply to --bracket")
    if not (args.min_depth >= 0):
        raise ValueError(f"--min-depth must be >= 0 nats, got {args.min_depth:g}")
    if args.tokens_per_param is not None and spec.ladder != "monotone":
        raise ValueError(f"--tokens-per-param needs a monotone-ladder preset (laptop), not "
                         f"{args.preset or 'quick'!r}")
    if args.bracket and spec.ladder != "monotone":
        raise ValueError(f"--bracket needs a monotone-ladder preset (laptop), not "
                         f"{args.preset or 'quick'!r}")
    executor_options = slurm_options(args)  # checked before planning, like the store
    if args.executor == "slurm" and not args.dry_run:
        _check_slurm(args.out, executor_options)
    if not args.dry_run:  # fail before planning loads the corpus, and before any training
        store = RunStore(args.out)
        store.ensure_writable()
        store.check_spec(spec_dict(spec), extensible=GRID_FIELDS,
                         allow_other=args.allow_other_spec)
        if args.export:
            store.check_export(args.export, merge=args.merge)
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
    command = command_line()
    options = {"executor": args.executor, "workers": args.workers,
               "progress": not args.no_progress, "command": command,
               "allow_other_spec": args.allow_other_spec, **executor_options}
    if args.bracket:
        from scalingkit.runs.bracket import run_bracketed

        pilot = not (args.no_pilot or args.tokens_per_param is not None)
        spec, table = run_bracketed(spec, args.out, pilot=pilot,
                                    min_depth=args.min_depth, **options)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        store = RunStore(args.out)
    else:
        store = run_sweep(plan, args.out, **options)
    return finish_training(store, args.out, args.export, merge=args.merge)


#: ``--slurm-*`` flag -> SlurmResources field (defaults live in SlurmResources only).
_SLURM_RESOURCE_FLAGS = {"slurm_partition": "partition", "slurm_cpus": "cpus",
                         "slurm_mem_gb": "mem_gb", "slurm_time": "time_min",
                         "slurm_gpus": "gpus"}


def _add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    """The per-job Slurm request and the sweep's waiting limits (``--executor slurm``)."""
    group = parser.add_argument_group(
        "Slurm (with --executor slurm; defaults from scalingkit.runs.slurm.SlurmResources)")
    group.add_argument("--slurm-partition", metavar="NAME",
                       help="partition for every job (default: the cluster's default)")
    group.add_argument("--slurm-cpus", type=int, metavar="N",
                       help="CPU cores per job, also its torch threads (default: 1)")
    group.add_argument("--slurm-mem-gb", type=float, metavar="GB",
                       help="memory per job in GB (default: the partition's default)")
    group.add_argument("--slurm-time", type=int, metavar="MIN",
                       help="time limit per job in minutes; a longer run is checkpointed "
                            "and requeued (default: 1440)")
    group.add_argument("--slurm-gpus", type=int, metavar="N",
                       help="GPUs per job (default: 0)")
    group.add_argument("--slurm-pending-limit", type=float, metavar="MIN",
                       help="cancel a job, and mark its run failed, after it has waited this "
                            "long for a down node or partition (default: 60)")
    group.add_argument("--slurm-wait-limit", type=float, metavar="MIN",
                       help="stop waiting for the jobs after this long, cancelling those "
                            "left (default: 10080, a week)")


def slurm_options(args: argparse.Namespace) -> dict:
    """``run_sweep`` keywords from the ``--slurm-*`` flags ({} for other executors).

    Raises
    ------
    ValueError
        If a ``--slurm-*`` flag is given without ``--executor slurm``, or a
        value is out of range (a time limit below 1 minute, say).
    """
    from scalingkit.runs.slurm import SlurmResources

    given = [f for f in (*_SLURM_RESOURCE_FLAGS, "slurm_pending_limit", "slurm_wait_limit")
             if getattr(args, f, None) is not None]
    if args.executor != "slurm":
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} only applies to --executor slurm")
        return {}
    fields = {field: getattr(args, flag) for flag, field in _SLURM_RESOURCE_FLAGS.items()
              if getattr(args, flag) is not None}
    options: dict = {"resources": SlurmResources(**fields)}
    for flag, key in (("slurm_pending_limit", "pending_limit_s"),
                      ("slurm_wait_limit", "wait_limit_s")):
        minutes = getattr(args, flag)
        if minutes is not None:
            if not minutes > 0:
                raise ValueError(f"--{flag.replace('_', '-')} must be a positive number of "
                                 f"minutes, got {minutes:g}")
            options[key] = 60.0 * minutes
    return options


def _check_slurm(out: str, options: dict) -> None:
    """Refuse an unknown partition or an unwritable folder before anything is submitted."""
    from pathlib import Path

    from scalingkit.runs.executors import make_executor

    make_executor("slurm", folder=Path(out) / "submitit", **options).check(out)
