"""Load fit inputs from a CSV file or a run-store folder.

Both give a :class:`pandas.DataFrame` with one row per run and columns
``params`` (N), ``tokens`` (D), ``loss`` (nats/token) and, when known,
``flops`` (FLOP) and ``budget`` (the planned compute budget, FLOP).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ("params", "tokens", "loss")


def load_points(source: str | Path) -> pd.DataFrame:
    """Read runs from ``source``: a CSV file or a run-store folder.

    Parameters
    ----------
    source : str or Path
        A CSV with columns ``params``, ``tokens``, ``loss`` (``flops`` and
        ``budget`` optional), or a folder written by ``python -m scalingkit
        sweep`` (a :class:`~scalingkit.store.RunStore`); from a store only runs
        with status ``done`` and a finite loss are kept.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        If the path does not exist, a column is missing, or no usable run is found.
    """
    path = Path(source)
    if path.is_dir():
        frame = _from_store(path)
    elif path.is_file():
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise ValueError(f"cannot read {path} as CSV: {exc}") from None
    else:
        raise ValueError(f"no such file or folder: {path}")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {', '.join(missing)} (need {REQUIRED})")
    if frame.empty:
        raise ValueError(f"{path} holds no runs")
    return frame.reset_index(drop=True)


def _from_store(path: Path) -> pd.DataFrame:
    from scalingkit.store import RunStore
    from scalingkit.sweep import results_frame

    if not (path / "store.json").exists():
        raise ValueError(f"{path} is a folder but not a run store (no store.json)")
    frame = results_frame(list(RunStore(path).records()))
    frame = frame[(frame["status"] == "done") & np.isfinite(frame["loss"].astype(float))]
    if frame.empty:
        raise ValueError(f"run store {path} has no finished runs with a loss")
    out = frame[["params", "tokens", "loss", "budget"]].astype(float)
    out["flops"] = frame["flops_6nd"].astype(float)
    return out


def drop_highest_loss(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    """Drop the ``n`` runs with the highest loss (as Besiroglu et al. 2024 did with 5)."""
    if n < 0:
        raise ValueError(f"the number of runs to drop must be >= 0, got {n}")
    if n >= len(frame):
        raise ValueError(f"cannot drop {n} of {len(frame)} runs")
    return frame.sort_values("loss", kind="stable").iloc[: len(frame) - n].sort_index()


def load_curves(source: str | Path) -> pd.DataFrame:
    """Validation-loss curves of every finished run in a run store (for Approach 1).

    Parameters
    ----------
    source : str or Path
        A run-store folder (see :func:`load_points`).

    Returns
    -------
    pandas.DataFrame
        One row per evaluation: ``run`` (run id), ``params`` (N of the run),
        ``tokens`` (seen so far), ``flops`` (FLOP so far) and ``loss``
        (validation, nats/token).

    Raises
    ------
    ValueError
        If ``source`` is not a run store or no finished run has a curve.
    """
    from scalingkit.store import RunStore

    path = Path(source)
    if not (path / "store.json").exists():
        raise ValueError(f"{path} is not a run store (no store.json)")
    rows = []
    for record in RunStore(path).records():
        curve = (record.result or {}).get("curve") or []
        if record.status != "done":
            continue
        n = float(record.plan.get("params") or (record.result or {}).get("params_total"))
        rows.extend({"run": record.id, "params": n, "tokens": float(p["tokens"]),
                     "flops": float(p["flops"]), "loss": float(p["loss"])}
                    for p in curve if p.get("tokens", 0) > 0)
    if not rows:
        raise ValueError(f"run store {path} has no finished runs with a loss curve")
    return pd.DataFrame(rows)
