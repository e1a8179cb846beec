"""Checks on the files a command will write, made before it does any work.

A command that fits for a minute and then fails to write its result, or that
writes over the data it read, loses the user's time or data. Commands call
:func:`check_output` on every path they will write, with the paths they read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def check_output(
    path: str | Path,
    *,
    reads: Iterable[str | Path] = (),
    option: str = "--output",
    make_parents: bool = False,
) -> Path:
    """Validate a file the command will write; return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path : str or Path
        The file to be written (it may exist: it is replaced).
    reads : iterable of str or Path, default=()
        Files and folders (run stores) the command reads. ``path`` may be none
        of them and may not lie inside a folder among them.
    option : str, default="--output"
        The option's name, for the error message.
    make_parents : bool, default=False
        Whether the command creates missing parent folders itself; if not, the
        parent folder must exist.

    Raises
    ------
    ValueError
        If ``path`` is a folder, its parent folder is missing (and not to be
        made) or is a file, or ``path`` is, or lies inside, something it reads.
    """
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{option} {out} is a folder; give a file name")
    target = out.resolve()
    for source in reads:
        src = Path(source)
        resolved = src.resolve()
        if target == resolved:
            raise ValueError(f"{option} {out} is the input {src}; a command never writes "
                             "over a file it reads")
        if src.is_dir() and resolved in target.parents:
            raise ValueError(f"{option} {out} lies inside the input folder {src}; write it "
                             "elsewhere")
    parent = out.parent
    for folder in (parent, *parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"{option} {out}: {folder} is a file, not a folder")
            break
    if not make_parents and not parent.is_dir():
        raise ValueError(f"{option} {out}: folder {parent} does not exist")
    return out


def command_line() -> str:
    """This process's command as the user would type it (kept in provenance)."""
    import shlex
    import sys

    return "python -m scalingkit " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def report_counts(store, out: str) -> dict[str, int]:
    """Print one line of run counts by status (``done: 7, failed: 1  (DIR)``); return them."""
    counts = store.counts()
    print(", ".join(f"{k}: {v}" for k, v in counts.items() if v) + f"  ({out})")
    return counts


def finish_training(store, out: str, export: str | None = None, *, merge: bool = False) -> int:
    """What every training command prints when its runs are over; its exit status.

    The counts by status, why each failed run failed, how to retry, runs another
    process still holds, and (with ``export``) the copy of the records to that folder.
    Returns 0 when no run failed, else 1.
    """
    counts = report_counts(store, out)
    for record in store.records():  # say why, so a failed run needs no digging
        if record.status == "failed":
            print(f"  failed {record.id}: {record.error}")
    if counts["failed"]:
        print("rerun the same command to retry the failed runs (each resumes from its "
              "last checkpoint)")
    if counts["running"]:
        print(f"{counts['running']} run(s) held by another process; rerun later to pick up "
              "any whose owner died")
    if export:
        n = store.export(export, merge=merge)
        print(f"exported {n} run records to {export}")
    return 0 if counts["failed"] == 0 else 1
