"""``python -m scalingkit status DIR``: the runs of a sweep's run store and their status."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import pandas as pd

HELP = "show the runs of a sweep's run store (a table, or --json for scripts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``status``."""
    parser.add_argument("dir", metavar="DIR", help="run store folder")
    parser.add_argument("--json", action="store_true",
                        help='print {"runs": [{"id", "status", "budget", "params", '
                             '"tokens", "loss", "epochs", "steps", "lr"}, ...], '
                             '"budgets": [{"budget", "runs", "done", "n_opt", '
                             '"bracketed", "reason"}, ...], "unreadable": [message, ...]}')


def _number(value: Any) -> float | None:
    """``value`` as a float, or None where it is missing or NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _steps(plan: dict, config: dict) -> int | None:
    """Optimizer steps of a run: the plan's, else the trainer's count from its config."""
    if plan.get("steps") is not None:
        return int(plan["steps"])
    from scalingkit.core.train import TrainConfig

    try:
        return TrainConfig.from_dict(dict(config)).steps
    except (ValueError, TypeError, KeyError):  # not a trainer config (e.g. a fake run)
        return None


def scan_rows(root: str) -> tuple[list[dict], list[str], pd.DataFrame]:
    """Rows of the readable runs, one message per unreadable record, and their frame.

    Each row: id, status, budget (FLOP), params, tokens, loss (nats/token),
    epochs (passes over the training corpus: the result's when done, else the
    plan's), steps (optimizer steps) and lr (the config's peak learning rate);
    ``loss`` is the final validation loss of a done run and ``None`` otherwise.
    The frame is :func:`scalingkit.runs.frames.results_frame` of the readable runs.

    Raises
    ------
    ValueError
        If ``root`` is not a run store or its ``store.json`` is corrupt.
    """
    from scalingkit.runs.frames import results_frame
    from scalingkit.runs.store import RunStore

    records, problems = RunStore(root).scan()
    by_id = {r.id: r for r in records}
    frame = results_frame(records)
    rows = []
    for rec in frame.to_dict("records"):
        run = by_id[rec["id"]]
        rows.append({
            "id": rec["id"], "status": rec["status"], "budget": rec["budget"],
            "params": rec["params"], "tokens": rec["tokens"], "loss": _number(rec["loss"]),
            "epochs": _number(rec["epochs"]), "steps": _steps(run.plan, run.config),
            "lr": _number(run.config.get("lr")),
        })
    return rows, problems, frame


def status_rows(root: str) -> list[dict]:
    """One dict per run (see :func:`scan_rows`); a corrupt record raises ``ValueError``."""
    rows, problems, _ = scan_rows(root)
    if problems:
        raise ValueError(problems[0])
    return rows


def budget_rows(frame: pd.DataFrame) -> list[dict]:
    """Per budget: runs, done runs, and whether the done runs bracket the optimum.

    Parameters
    ----------
    frame : DataFrame
        :func:`scalingkit.runs.frames.results_frame` of a store; runs whose plan
        has no budget are left out.

    Returns
    -------
    list of dict
        One per budget with a done run (finite loss), by increasing budget:
        ``budget`` (FLOP), ``runs``, ``done``, ``n_opt`` (parameters, the
        parabola vertex of :func:`scalingkit.runs.optimum.compute_optimal`;
        None unless bracketed), ``bracketed`` and ``reason`` ("" when bracketed).
        Empty when no run is done.
    """
    from scalingkit.runs.bracket import budget_table

    planned = frame[frame["budget"].notna()]
    loss = pd.to_numeric(planned["loss"], errors="coerce")
    done = planned[(planned["status"] == "done") & loss.notna()].copy()
    if done.empty:
        return []
    done = done.astype({c: float for c in ("budget", "params", "tokens", "loss")})
    table = budget_table(done)  # the planner's own test of bracketing
    counts = planned.groupby(planned["budget"].astype(float))["status"]
    return [{"budget": float(t["budget"]), "runs": int(counts.get_group(t["budget"]).size),
             "done": int((counts.get_group(t["budget"]) == "done").sum()),
             "n_opt": float(t["n_opt"]) if t["bracketed"] else None,
             "bracketed": bool(t["bracketed"]), "reason": str(t["reason"])}
            for t in table.to_dict("records")]


def budget_line(row: dict) -> str:
    """One budget as ``C=1e+12: 7/7 done, bracketed, N_opt=74,000`` (or why not bracketed)."""
    from scalingkit.runs.sweep import budget_key

    head = f"C={budget_key(row['budget'])}: {row['done']}/{row['runs']} done, "
    if row["bracketed"]:
        return head + f"bracketed, N_opt={row['n_opt']:,.0f}"
    return head + f"not bracketed ({row['reason']})"


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None or value != value else format(value, spec)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON); exit 1 if a record could not be read."""
    rows, problems, frame = scan_rows(args.dir)
    for problem in problems:  # the readable runs are still listed
        print(f"error: {problem}", file=sys.stderr)
    budgets = budget_rows(frame)
    if args.json:
        print(json.dumps({"runs": rows, "budgets": budgets, "unreadable": problems}))
        return 1 if problems else 0
    print(f"{'id':16}  {'status':8}  {'budget/FLOP':>11}  {'params':>10}  "
          f"{'tokens':>11}  {'loss/nats':>9}  {'epochs':>6}  {'steps':>7}  {'lr':>8}")
    for r in rows:
        print(f"{r['id']:16}  {r['status']:8}  {_fmt(r['budget'], '.3g'):>11}  "
              f"{_fmt(r['params'], ',.0f'):>10}  {_fmt(r['tokens'], ',.0f'):>11}  "
              f"{_fmt(r['loss'], '.4f'):>9}  {_fmt(r['epochs'], '.3g'):>6}  "
              f"{_fmt(r['steps'], ',d'):>7}  {_fmt(r['lr'], '.3g'):>8}")
    for b in budgets:
        print(budget_line(b))
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"{len(rows)} runs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + (f"; {len(problems)} unreadable record(s), see above" if problems else ""))
    return 1 if problems else 0
