"""Command-line entry point: ``python -m scalingkit COMMAND ...``.

Each subcommand lives in its own module under :mod:`scalingkit.commands` and
exposes ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Adding a command means adding its module name to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from scalingkit import __version__

#: Subcommand name -> module under ``scalingkit.commands``.
COMMANDS: dict[str, str] = {
    "flops": "flops",
    "notebooks": "notebooks",
    "sweep": "sweep",
    "status": "status",
    "fit": "fit",
    "known-entropy": "entropy",
    "kaplan": "kaplan",
    "train": "train",
    "porian": "porian",
    "predict": "predict",
}


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m scalingkit",
        description="Tools for neural scaling laws: FLOPs, training, sweeps, fits.",
    )
    parser.add_argument("--version", action="version", version=f"scalingkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"scalingkit.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; return its exit status.

    A ``ValueError`` raised by a command (bad user input) is printed as one
    line on stderr with exit status 2 instead of a traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
