"""``python -m scalingkit status DIR``: the runs of a sweep's run store and their status."""

from __future__ import annotations

import argparse
import json
import math

HELP = "show the runs of a sweep's run store (a table, or --json for scripts)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``status``."""
    parser.add_argument("dir", metavar="DIR", help="run store folder")
    parser.add_argument("--json", action="store_true",
                        help='print {"runs": [{"id", "status", "budget", "params", '
                             '"tokens", "loss"}, ...]}')


def status_rows(root: str) -> list[dict]:
    """One dict per run: id, status, budget (FLOP), params, tokens, loss (nats/token).

    ``loss`` is the final validation loss of a done run and ``None`` otherwise.
    """
    from pathlib import Path

    from scalingkit.store import RunStore
    from scalingkit.sweep import results_frame

    store = RunStore(root)
    if not (Path(root) / "store.json").exists():
        raise ValueError(f"{root!r} is not a run store (no store.json)")
    frame = results_frame(list(store.records()))
    rows = []
    for rec in frame.to_dict("records"):
        loss = rec["loss"]
        rows.append({
            "id": rec["id"], "status": rec["status"], "budget": rec["budget"],
            "params": rec["params"], "tokens": rec["tokens"],
            "loss": None if loss is None or math.isnan(loss) else loss,
        })
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None or value != value else format(value, spec)


def run(args: argparse.Namespace) -> int:
    """Print the table (or JSON)."""
    rows = status_rows(args.dir)
    if args.json:
        print(json.dumps({"runs": rows}))
        return 0
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
    print(f"{len(rows)} runs: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0
