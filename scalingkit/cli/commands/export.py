"""``python -m scalingkit export DIR DEST``: copy a run store without its checkpoints.

What gets committed: every run's record (config, plan, status, result with its
curves) and the store's sweep log with the provenance of each invocation, but no
weights. Works on a store that is still being trained: runs not yet done are copied
as they stand, and exporting again with ``--merge`` adds the ones finished since.
"""

from __future__ import annotations

import argparse

HELP = "copy a run store's records and sweep log (no checkpoints) to a new folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``export``."""
    parser.add_argument("source", metavar="DIR", help="run store folder")
    parser.add_argument("dest", metavar="DEST", help="a new or empty folder")
    parser.add_argument("--merge", action="store_true",
                        help="add the records to the run store already at DEST instead")


def run(args: argparse.Namespace) -> int:
    """Export and say how many records were copied."""
    from scalingkit.runs.frames import open_store

    store = open_store(args.source)
    store.check_export(args.dest, merge=args.merge)
    n = store.export(args.dest, merge=args.merge)
    counts = store.counts()
    print(f"exported {n} run records to {args.dest} ("
          + ", ".join(f"{k}: {v}" for k, v in counts.items() if v) + ")")
    return 0
