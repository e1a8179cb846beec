"""Fit inputs as a table: read a points CSV, check its columns, drop outliers.

A points table is a :class:`pandas.DataFrame` with one row per run and columns
``params`` (N), ``tokens`` (D), ``loss`` (nats/token) and, when known,
``flops`` (FLOP) and ``budget`` (the planned compute budget, FLOP). Reading a
run store into one is :func:`scalingkit.runs.frames.load_points`'s job.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Columns every points table has.
REQUIRED = ("params", "tokens", "loss")


def check_points(frame: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """``frame`` with a fresh index; ``ValueError`` naming ``source`` if it lacks a column
    of :data:`REQUIRED` or holds no row."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{source} lacks column(s) {', '.join(missing)} (need {REQUIRED})")
    if frame.empty:
        raise ValueError(f"{source} holds no runs")
    return frame.reset_index(drop=True)


def read_points_csv(source: str | Path) -> pd.DataFrame:
    """Read a points CSV (columns ``params``, ``tokens``, ``loss``; ``flops``, ``budget``
    optional).

    Raises
    ------
    ValueError
        If the file does not exist or cannot be read, a column is missing, or it
        holds no row.
    """
    path = Path(source)
    if not path.is_file():
        raise ValueError(f"no such file or folder: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read {path} as CSV: {exc}") from None
    return check_points(frame, path)


def drop_highest_loss(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """Drop the ``n`` runs with the highest loss (as Besiroglu et al. 2024 did with 5)."""
    if n < 0:
        raise ValueError(f"the number of runs to drop must be >= 0, got {n}")
    if n >= len(frame):
        raise ValueError(f"cannot drop {n} of {len(frame)} runs")
    return frame.sort_values("loss", kind="stable").iloc[: len(frame) - n].sort_index()
