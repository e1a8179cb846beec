"""``python -m scalingkit status DIR``: the runs of a sweep's run store and their status."""

from __future__ import annotations

import argparse
import json
import math
import sys

HELP = "show the runs of a sweep's run store (a table, or --json for scripts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``status``."""
    parser.add_argument("dir", metavar="DIR", help="run store folder")
    parser.add_argument("--json", action="store_true",
                        help='print {"runs": [{"id", "status", "budget", "params", '
                             '"tokens", "loss"}, ...], "unreadable": [message, ...]}')


def scan_rows(root: str) -> tuple[list[dict], list[str]]:
    """Rows of the readable runs, and one message per unreadable record (naming its file).

    Each row: id, status, budget (FLOP), params, tokens, loss (nats/token);
    ``loss`` is the final validation loss of a done run and ``None`` otherwise.

    Raises
    ------
    ValueError
        If ``root`` is not a run store or its ``store.json`` is corrupt.
    """
    from scalingkit.runs.frames import results_frame
    from scalingkit.runs.store import RunStore

    records, problems = RunStore(root).scan()
    frame = results_frame(records)
    rows = []
    for rec in frame.to_dict("records"):
        loss = rec["loss"]
        rows.append({
            "id": rec["id"], "status": rec["status"], "budget": rec["budget"],
            "params": rec["params"], "tokens": rec["tokens"],
            "loss": None if loss is None or math.isnan(loss) else loss,
        })
    return rows, problems


def status_rows(root: str) -> list[dict]:
    """One dict per run (see :func:`scan_rows`); a corrupt record raises ``ValueError``."""
    rows, problems = scan_rows(root)
    if problems:
        raise ValueError(problems[0])
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None or value != value else format(value, spec)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON); exit 1 if a record could not be read."""
    rows, problems = scan_rows(args.dir)
    for problem in problems:  # the readable runs are still listed
        print(f"error: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps({"runs": rows, "unreadable": problems}))
        return 1 if problems else 0
    header = f"{'id':16}  {'status':8}  {'budget/FLOP':>11}  {'params':>10}  " \
             f"{'tokens':>11}  {'loss/nats':>9}"
    print(header)
    for r in rows:
        print(f"{r['id']:16}  {r['status']:8}  {_fmt(r['budget'], '.3g'):>11}  "
              f"{_fmt(r['params'], ',.0f'):>10}  {_fmt(r['tokens'], ',.0f'):>11}  "
              f"{_fmt(r['loss'], '.4f'):>9}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"{len(rows)} runs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
          + (f"; {len(problems)} unreadable record(s), see above" if problems else ""))
    return 1 if problems else 0
