"""``python -m scalingkit porian``: the Porian et al. (2024) step ladder.

``porian plan STEP`` prints a step's runs; ``porian throughput STEP`` times a
few optimizer steps of its smallest, median and largest model and estimates the
step's training time; ``porian run STEP --out DIR`` trains
them, resumably, into a run store; ``porian fit NAME=DIR ...`` fits
``N_opt = k C^a`` with intervals for each step under both counting conventions
and three ways of locating the optimum, and with ``--output`` writes a ``summary``
of one headline exponent per step.

``--ladder laptop`` is the rebuilt ladder
(:data:`~scalingkit.studies.porian2024.LAPTOP_RUNGS`: BPE 4096 on ``gutenberg_en``,
the measured lr rule, which ``--lr-rule FILE`` gives); ``porian run`` then trains a
step until every budget is bracketed (:func:`~scalingkit.studies.porian2024.run_rung`)
and ``porian plan`` prints the step's starting plan. ``--ladder old`` (the default,
until the rebuilt ladder's results replace it) is the first ladder, whose stores are
committed under ``book/data/porian/``. ``--budgets C ...``
replaces either ladder's budgets (FLOP, in the step's own count).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from scalingkit.cli._output import check_output as _check_output
from scalingkit.cli._output import command_line, finish_training

if TYPE_CHECKING:
    import pandas as pd

HELP = "Porian et al. ladder: plan, run and fit the Kaplan-to-Chinchilla steps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``plan``, ``run`` and ``fit`` actions."""
    from scalingkit.runs.executors import EXECUTORS
    from scalingkit.studies.porian2024 import METHODS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("plan", help="print a step's runs and its cost")
    _add_step_arguments(p)
    p.add_argument("--flop-per-s", type=float, default=5e10, metavar="R",
                   help="sustained training throughput for the time estimate (FLOP/s)")
    r = sub.add_parser("run", help="train a step's sweep into a run store (resumable)")
    _add_step_arguments(r)
    r.add_argument("--out", required=True, metavar="DIR", help="run store folder")
    r.add_argument("--export", metavar="DEST",
                   help="afterwards, copy the store without checkpoints to DEST")
    r.add_argument("--no-progress", action="store_true", help="hide progress bars")
    r.add_argument("--executor", choices=EXECUTORS, default="sequential",
                   help="where runs train (as for 'python -m scalingkit sweep')")
    r.add_argument("--workers", type=int, metavar="W",
                   help="pool workers (default: one per core; threads = cores // W)")
    r.add_argument("--no-pilot", action="store_true",
                   help="laptop ladder: skip the pilot that re-centres the sweep")
    t = sub.add_parser("throughput", help="time a few optimizer steps of a step's runs")
    _add_step_arguments(t)
    t.add_argument("--steps", type=int, default=10, help="optimizer steps per timed run")
    t.add_argument("--output", metavar="FILE", help="also write the timings as JSON")
    f = sub.add_parser("fit", help="fit N_opt = k C^a per step, both conventions")
    f.add_argument("stores", nargs="+", metavar="NAME=DIR",
                   help="step name and its run store (or export)")
    f.add_argument("--bootstrap", type=int, default=200, metavar="B",
                   help="bootstrap resamples for the interval on a")
    f.add_argument("--method", nargs="+", choices=METHODS, default=list(METHODS),
                   help="how the optimum is found: parabola vertex on every budget, the "
                   "vertex only where the minimum is bracketed, or Approach 3 on all runs "
                   "(default: all three)")
    f.add_argument("--output", metavar="FILE",
                   help="also write the table and a per-step summary as JSON")
    f.add_argument("--max-budget", action="append", default=[], metavar="NAME=C",
                   help="fit step NAME on its runs planned at C FLOP or less (its own "
                   "count), e.g. leaving out a budget whose optimum needs more than one "
                   "pass over the corpus; repeatable")
    f.add_argument("--min-budget", action="append", default=[], metavar="NAME=C",
                   help="likewise, the runs planned at C FLOP or more (e.g. leaving out a "
                   "budget whose optimum lies below the smallest shape); repeatable")
    f.add_argument("--noise-sd", type=float, metavar="S",
                   help="run-to-run noise floor (nats/token): widens the summary's interval "
                   "by a parametric noise bootstrap")


def _add_step_arguments(p: argparse.ArgumentParser) -> None:
    """STEP and the options that choose its ladder, budgets and lr rule."""
    from scalingkit.studies.porian2024 import LADDERS

    p.add_argument("step", help="the step (rung) name, e.g. kaplan or corrected")
    p.add_argument("--ladder", choices=LADDERS, default="old",
                   help="laptop: BPE 4096 on gutenberg_en with the lr rule; old (default): "
                   "the committed Shakespeare ladder")
    p.add_argument("--budgets", type=float, nargs="+", metavar="C",
                   help="compute budgets (FLOP, the step's own count); default the ladder's")
    p.add_argument("--lr-rule", metavar="FILE",
                   help="laptop ladder: the lr rule file ('hparams fit-lr --output'), "
                   "e.g. book/data/hparams/lr_rule.json")
    p.add_argument("--corpus-tokens", type=int, metavar="T",
                   help="tokens in one pass over the training split (default: measured by "
                   "loading the corpus, minutes the first time for BPE)")


def step_spec(args: argparse.Namespace) -> tuple:
    """``(rung, spec)`` of the step the arguments name.

    Raises
    ------
    ValueError
        For an unknown step, a non-positive budget, a missing ``--lr-rule`` on the
        laptop ladder or one given to the old ladder.
    """
    from scalingkit.studies import porian2024 as porian

    rung = porian.get_rung(args.step, args.ladder)
    budgets = args.budgets
    if budgets is not None and not all(b > 0 and b < float("inf") for b in budgets):
        raise ValueError(f"--budgets must be positive FLOP counts, got {budgets}")
    if args.corpus_tokens is not None and args.corpus_tokens < 1:
        raise ValueError(f"--corpus-tokens must be a positive integer, got {args.corpus_tokens}")
    fields = {k: v for k, v in (("budgets", tuple(budgets) if budgets else None),
                                 ("corpus_tokens", args.corpus_tokens)) if v is not None}
    if args.ladder == "old":
        if args.lr_rule:
            raise ValueError("--lr-rule applies to the laptop ladder only (the old ladder "
                             "uses its own per-size rule)")
        return rung, porian.rung_spec(**fields)
    if not args.lr_rule:
        raise ValueError("the laptop ladder needs --lr-rule FILE (the measured lr rule, "
                         "e.g. book/data/hparams/lr_rule.json)")
    from scalingkit.studies.hparams.lr_rule import read_lr_rule

    return rung, porian.laptop_spec(read_lr_rule(args.lr_rule), **fields)


def run(args: argparse.Namespace) -> int:
    """Dispatch on the action."""
    from scalingkit.studies import porian2024 as porian

    if args.action == "fit":
        return _fit(args)
    rung, spec = step_spec(args)
    if args.action == "plan":
        plan = porian.plan_rung(rung, spec)
        if rung.ladder == "laptop":
            print(f"{args.step} (laptop ladder): the starting plan; 'porian run' re-centres it "
                  "on a pilot and adds edge rungs until every budget is bracketed")
        print(f"{args.step}: {len(plan.runs)} runs, {plan.total_flops:.3g} FLOP, about "
              f"{plan.estimate_seconds(args.flop_per_s) / 60:.0f} min at "
              f"{args.flop_per_s:.3g} FLOP/s")
        for d in plan.dropped:
            print(f"  dropped: C={d.budget:.3g} size {d.size_index}: {d.reason}")
        print(plan.to_frame().to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        return 0
    if args.action == "throughput":
        if args.output:  # before the timing, not after it
            _check_output(args.output, make_parents=True)
        plan = porian.plan_rung(rung, spec)
        table = porian.measure_throughput(plan, n_steps=args.steps)
        estimate = porian.estimate_seconds(plan, table)
        print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        print(f"{args.step}: {plan.total_flops:.3g} FLOP, about {estimate / 3600:.2g} h of "
              "training at these rates (interpolated in model size)")
        if args.output:
            _write_json(args.output, {"step": args.step, "n_steps": args.steps,
                                      "timings": table.to_dict(orient="records"),
                                      "plan_flops": plan.total_flops,
                                      "estimated_seconds": estimate})
        return 0
    from scalingkit.runs.store import RunStore

    RunStore(args.out).ensure_writable()
    if args.export:  # refuse a bad destination before any training
        RunStore(args.out).check_export(args.export)
    options = {"executor": args.executor, "workers": args.workers,
               "progress": not args.no_progress, "command": command_line()}
    if rung.ladder == "laptop":
        porian.run_rung(rung, spec, args.out, pilot=not args.no_pilot, **options)
        store = RunStore(args.out)
    else:
        from scalingkit.runs.sweep import run_sweep

        plan = porian.plan_rung(rung, spec)
        store = RunStore(args.out)
        for r in plan.runs:  # plan metadata names the step and its FLOP count
            store.add(r.config, plan=porian.plan_metadata(r, rung))
        store = run_sweep(plan, args.out, **options)
    return finish_training(store, args.out, args.export)


def _fit(args: argparse.Namespace) -> int:
    """``porian fit``: the exponent table and, with ``--output``, the summary."""
    from scalingkit.studies import porian2024 as porian

    stores = _named_stores(args.stores)
    if args.output:
        _check_output(args.output, reads=stores.values(), make_parents=True)
    highs = _budget_limits("--max-budget", args.max_budget, stores)
    lows = _budget_limits("--min-budget", args.min_budget, stores)
    frames = {name: _within(porian.rung_frame(path), lows.get(name), highs.get(name), path)
              for name, path in stores.items()}
    table = porian.exponent_table(frames, methods=args.method, n_bootstrap=args.bootstrap)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    if args.output:
        head = porian.summary(frames, n_bootstrap=args.bootstrap, noise_sd=args.noise_sd)
        _write_json(args.output, {"table": table.to_dict(orient="records"),
                                  "min_budget": lows, "max_budget": highs, **head})
    return 0


def _budget_limits(flag: str, items: list[str], stores: dict[str, str]) -> dict[str, float]:
    """Parse ``--min-budget``/``--max-budget NAME=C`` items; NAME must be a fitted step."""
    limits: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in stores:
            raise ValueError(f"{flag} {item!r}: expected NAME=C with NAME one of the "
                             f"fitted steps ({', '.join(stores)})")
        try:
            limits[name] = float(value)
        except ValueError:
            raise ValueError(f"{flag} {item!r}: {value!r} is not a number of FLOP") from None
    return limits


def _within(frame: pd.DataFrame, low: float | None, high: float | None,
            source: str) -> pd.DataFrame:
    """``frame``'s runs planned between ``low`` and ``high`` (FLOP; None: no bound)."""
    from scalingkit.runs.frames import runs_from_budget

    return runs_from_budget(frame, low, source, max_budget=high)


def _named_stores(items: list[str]) -> dict[str, str]:
    """Parse ``NAME=DIR`` arguments; each DIR must hold the runs of step NAME.

    Raises
    ------
    ValueError
        For a malformed item, an unknown or repeated step name, or a store
        whose runs were planned for another step (or for no step at all).
    """
    from scalingkit.studies.porian2024 import LAPTOP_RUNGS, RUNGS

    names = list(dict.fromkeys(s.name for s in (*RUNGS, *LAPTOP_RUNGS)))
    stores: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"expected NAME=DIR, got {item!r}")
        if name not in names:
            raise ValueError(f"{item!r}: unknown step {name!r}; the steps are {', '.join(names)}")
        if name in stores:
            raise ValueError(f"step {name!r} is given twice ({stores[name]} and {path})")
        found = _store_steps(path)
        if found != {name}:
            held = ", ".join(sorted(str(f or "(none)") for f in found)) if found else "(no runs)"
            raise ValueError(f"{path} holds runs of step(s) {held}, not {name!r}; give "
                             f"each step the store that `porian run {name}` wrote")
        stores[name] = path
    return stores


def _store_steps(path: str) -> set:
    """The ``step`` recorded in the plan of each run in the store at ``path``
    (``None`` for a run planned outside ``porian run``)."""
    from pathlib import Path

    from scalingkit.runs.store import RunStore

    if not (Path(path) / "store.json").exists():
        raise ValueError(f"{path} is not a run store (no store.json)")
    return {(r.plan or {}).get("step") for r in RunStore(path).records()}


def _write_json(path: str, data: dict) -> None:
    """Write ``data`` plus its provenance (command, version, commit, machine)."""
    from pathlib import Path

    from scalingkit.runs.files import atomic_write_json, json_safe
    from scalingkit.runs.sweep import provenance

    command = command_line()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(path), json_safe({**data, "provenance": provenance(command)}))
