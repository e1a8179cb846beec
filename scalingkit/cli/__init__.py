"""Command-line entry point: ``python -m scalingkit COMMAND ...``.

Each subcommand lives in its own module under :mod:`scalingkit.cli.commands` and
exposes ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Adding a command means adding its module name to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from scalingkit import __version__

#: Subcommand name -> module under ``scalingkit.cli.commands``.
COMMANDS: dict[str, str] = {
    "flops": "flops",
    "notebooks": "notebooks",
    "sweep": "sweep",
    "status": "status",
    "fit": "fit",
    "fit-sweep": "fit_sweep",
    "known-entropy": "known_entropy",
    "kaplan": "kaplan",
    "train": "train",
    "porian": "porian",
    "predict": "predict",
    "hparams": "hparams",
    "export": "export",
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
        module = importlib.import_module(f"scalingkit.cli.commands.{module_name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


#: Exit status of a command that stopped on bad input (argparse uses 2 too).
EXIT_BAD_INPUT = 2
#: Exit status of a command whose work failed (a fit, a run, a file write).
EXIT_FAILED = 1


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; return its exit status.

    Errors are printed as one line on stderr, never as a traceback:

    * ``ValueError`` (bad user input, found before any work where possible):
      ``error: ...``, exit status 2 (:data:`EXIT_BAD_INPUT`), as argparse's own
      usage errors;
    * ``RuntimeError`` (a fit that did not converge, a run that failed) and
      ``OSError`` (a file that could not be read or written): ``error: ...``,
      exit status 1 (:data:`EXIT_FAILED`).

    Warnings (such as :class:`~scalingkit.fit.ScalingFitWarning`) are printed
    as one line each, ``warning: ...``.
    """
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return int(args._run(args) or 0)
        except ValueError as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except (RuntimeError, OSError) as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (an ``OSError`` names its file)."""
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as ``warning: <message>`` on one line of stderr."""
    from scalingkit.fit import ScalingFitWarning

    prefix = "" if issubclass(category, ScalingFitWarning) else f"{category.__name__}: "
    print(f"warning: {prefix}{' '.join(str(message).split())}", file=file or sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
