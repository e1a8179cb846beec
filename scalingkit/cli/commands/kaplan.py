"""``python -m scalingkit kaplan``: run Kaplan's experiments into a store, fit, export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scalingkit.cli._output import finish_training
from scalingkit.fit._base import plain_json
from scalingkit.runs.provenance import provenance

HELP = "Kaplan et al. (2020) experiments: run L(N), L(D), grid and shape runs; fit the laws"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``kaplan run``, ``kaplan fit``, ``kaplan plan`` and ``kaplan export``."""
    from scalingkit.studies.kaplan2020 import EXPERIMENTS, PRESETS

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("plan", help="print the planned runs, train nothing")
    p.add_argument("--preset", choices=PRESETS, default="reference")
    p = sub.add_parser("run", help="train the experiments, resumably, into a run store")
    p.add_argument("--out", required=True, metavar="DIR", help="run store folder")
    p.add_argument("--preset", choices=PRESETS, default="reference")
    p.add_argument("--only", choices=EXPERIMENTS, nargs="+", metavar="EXPERIMENT",
                   help=f"run only these of {', '.join(EXPERIMENTS)}")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--no-progress", action="store_true", help="no per-run lines")
    p = sub.add_parser("fit", help="fit L(N), L(D) and L(N, D) to a Kaplan run store")
    p.add_argument("source", type=Path, metavar="DIR", help="run store folder")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap resamples of the L(N) and L(D) fits")
    p.add_argument("--joint-bootstrap", type=int, default=0,
                   help="bootstrap resamples of the L(N, D) fit (slow: seconds each)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p = sub.add_parser("export", help="copy the records of the planned runs (no checkpoints, "
                       "no runs of earlier plans) for committing")
    p.add_argument("source", type=Path, metavar="DIR")
    p.add_argument("dest", type=Path, metavar="DEST")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action."""
    from scalingkit.studies import kaplan2020 as kaplan

    if args.action == "plan":
        for r in kaplan.plan_kaplan(kaplan.preset(args.preset)):
            print(f"{r.experiment:6s} N={r.plan['params']:>9,} total={r.plan['params_total']:>9,}"
                  f" aspect={r.plan['aspect']:6.1f} subset={r.plan['subset']} "
                  f"tokens={r.config['tokens']:,}")
        return 0
    if args.action == "run":
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        store = kaplan.run_kaplan(kaplan.preset(args.preset), args.out, threads=args.threads,
                                  progress=not args.no_progress, experiments=args.only,
                                  provenance=provenance())
        return finish_training(store, args.out)
    if args.action == "export":
        n = kaplan.export_store(args.source, args.dest)
        print(f"exported {n} runs to {args.dest}")
        return 0
    if args.bootstrap < 0 or args.joint_bootstrap < 0:
        raise ValueError("--bootstrap and --joint-bootstrap must be >= 0")
    frame = kaplan.kaplan_frame(args.source)
    out = kaplan.fit_kaplan_laws(frame, n_bootstrap=args.bootstrap,
                                 joint_bootstrap=args.joint_bootstrap, random_state=args.seed)
    manifest = json.loads((args.source / "kaplan.json").read_text())
    out["provenance"] = {"runs": manifest.get("invocations", []), "fit": provenance(),
                         "source": str(args.source)}
    if args.json:
        print(json.dumps(plain_json(out), indent=1, allow_nan=False))
    else:
        for key in ("alpha_N", "N_c", "alpha_D", "D_c", "overfit_exponent"):
            entry = out[key]
            ci = entry["interval"]
            shown = "" if ci is None else f"  [{ci[0]:.4g}, {ci[1]:.4g}]"
            print(f"{key:>17} {entry['value']:.4g}{shown}")
    return 0
