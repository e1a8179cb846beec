"""``python -m scalingkit fit-sweep``: Chinchilla's three approaches on one run store.

All three estimates of ``a`` in ``N_opt = k C^a`` count compute the same way,
as each run's exact training FLOP (:mod:`scalingkit.runs.approaches`), so they
can be compared with each other.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from scalingkit.cli._output import command_line
from scalingkit.cli.commands.fit import _outputs
from scalingkit.fit import ScalingFitWarning
from scalingkit.fit._base import plain_json
from scalingkit.runs.approaches import fit_sweep
from scalingkit.runs.provenance import provenance

HELP = ("Fit Chinchilla's Approaches 1, 2 and 3 to a sweep's run store, all with each run's "
        "exact training FLOP as its compute.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="DIR", help="run-store folder written by `sweep`")
    p.add_argument("--bootstrap", type=int, default=100, metavar="B",
                   help="bootstrap resamples of the runs for 95%% intervals (default 100; "
                        "0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--grid", choices=["full", "small"], default="full",
                   help="initial-value grid of the L(N, D) fit, approach 3 (default full)")
    p.add_argument("--noise-sd", type=float, default=None, metavar="NATS",
                   help="run-to-run noise floor from a seed study (nats/token): adds Approach "
                        "2's noise-bootstrap interval and each budget's valley depth test")
    p.add_argument("--min-budget", type=float, default=None, metavar="FLOP",
                   help="fit only the budgets at or above this one (FLOP)")
    p.add_argument("--max-budget", type=float, default=None, metavar="FLOP",
                   help="fit only the budgets at or below this one (FLOP)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--output", type=Path, default=None,
                   help="also write the JSON to this file, with provenance in <name>.meta.json")


def _cell(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None else format(value, fmt)


def render(result: dict) -> str:
    """A readable table of :func:`~scalingkit.runs.approaches.fit_sweep`'s result."""
    lines = [f"N_opt = k C^a, C = {result['convention']} training FLOP of each run",
             f"{'approach':>8}  {'a':>7}  {'95% interval':>17}  note"]
    for name, res in result["approaches"].items():
        ci = res["ci"]
        shown = "-" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]"
        note = res["reason"] or ""
        if res.get("ci_noise"):
            lo, hi = res["ci_noise"]
            note = (note + f" from the noise floor: [{lo:.4f}, {hi:.4f}]").strip()
        lines.append(f"{name:>8}  {_cell(res['a']):>7}  {shown:>17}  {note}")
    noise = result.get("noise_sd")
    lines.append(f"\n{'budget (FLOP)':>13}  {'N_opt (approach 2)':>18}  bracketed  "
                 f"{'depth':>7}" + ("  resolved" if noise else ""))
    for row in result["budgets"]:
        line = (f"{row['budget']:>13.4g}  {_cell(row['n_opt'], '.4g'):>18}  "
                f"{'yes' if row['bracketed'] else 'no':>9}  {row['depth']:>7.4f}")
        if noise:
            line += f"  {'yes' if row['resolved'] else 'no':>8}"
        lines.append(line)
    if noise:
        lines.append(f"(depth: nats/token from the lowest loss to the lower edge; resolved: "
                     f"deeper than twice the noise floor {noise:g})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    outputs = _outputs(args)
    with warnings.catch_warnings():  # a degenerate law is reported as approach 3's reason
        warnings.filterwarnings("ignore", "the fitted law is degenerate", ScalingFitWarning)
        result = plain_json(fit_sweep(args.source, n_bootstrap=args.bootstrap,
                                      seed=args.seed, grid=args.grid, noise_sd=args.noise_sd,
                                      min_budget=args.min_budget,
                                      max_budget=args.max_budget))
    text = json.dumps(result, allow_nan=False)
    if outputs is not None:
        outputs[0].write_text(text + "\n")
        command = command_line()
        meta = {**provenance(command), "source": str(args.source)}
        outputs[1].write_text(json.dumps(meta, indent=2) + "\n")
    print(text if args.json else render(result))
    return 0
