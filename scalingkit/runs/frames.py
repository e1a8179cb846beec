"""The one reader from a run store to a :class:`pandas.DataFrame`.

:func:`run_frame` reads every record of a store into one row with every column
the package uses; everything else here, and the studies' own frames
(:func:`scalingkit.studies.entropy.sweep_points`,
:func:`scalingkit.studies.porian2024.rung_frame`,
:func:`scalingkit.studies.kaplan2020.kaplan_frame`), selects and renames columns
of it.

Units: N in parameters, D in tokens, C in FLOP, losses in nats/token.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalingkit.core import flops
from scalingkit.core.models import GPTConfig
from scalingkit.fit.points import REQUIRED, check_points, read_points_csv
from scalingkit.runs.record import RunRecord
from scalingkit.runs.store import RunStore

__all__ = ["RESULT_COLUMNS", "RUN_COLUMNS", "load_curves", "load_points", "open_store",
           "results_frame", "run_frame", "runs_from_budget"]

#: Columns of :func:`results_frame`, the sweep's summary.
RESULT_COLUMNS = ["id", "status", "budget", "params", "tokens", "tokens_per_param",
                  "flops_exact", "flops_6nd", "epochs", "loss", "bits_per_byte", "wall_time_s"]
#: Every column of :func:`run_frame` (the model's only where a run's config has one).
RUN_COLUMNS = RESULT_COLUMNS + ["final_loss", "best_loss", "best_tokens", "tokens_trained",
                                "train_tokens_limit", "lr", "seed", "steps", "params_total",
                                "params_non_embedding", "params_with_head", "d_model",
                                "n_layer", "flops_per_token"]


def open_store(source: str | Path) -> RunStore:
    """The run store in folder ``source``; ``ValueError`` if it is not one."""
    path = Path(source)
    if not (path / "store.json").exists():
        raise ValueError(f"{path} is not a run store (no store.json)")
    return RunStore(path)


def _model_columns(config: dict) -> dict[str, Any]:
    """Parameter counts and exact training FLOP per token of a run's model, if it has one."""
    if "model" not in config:
        return {}
    model = GPTConfig.from_dict(dict(config["model"]))
    return {"params_total": model.n_params(),
            "params_non_embedding": model.n_params_non_embedding(),
            "params_with_head": model.n_params_with_head(),
            "d_model": model.d_model, "n_layer": model.n_layer,
            "flops_per_token": flops.training_flops_per_token(model.shape)}


def _row(record: RunRecord) -> dict[str, Any]:
    result, plan, config = record.result or {}, record.plan, record.config
    done = record.status == "done"
    loss = result.get("final_loss") if done else None
    return {
        "id": record.id, "status": record.status, "budget": plan.get("budget"),
        "params": plan.get("params"), "tokens": plan.get("tokens"),
        "tokens_per_param": plan.get("tokens_per_param"),
        "flops_exact": plan.get("flops_exact"), "flops_6nd": plan.get("flops_6nd"),
        "epochs": result.get("epochs", plan.get("epochs")),
        "loss": np.nan if loss is None else float(loss),
        "bits_per_byte": result.get("final_bits_per_byte") if done else None,
        "wall_time_s": result.get("wall_time_s"),
        "final_loss": result.get("final_loss"), "best_loss": result.get("best_loss"),
        "best_tokens": result.get("best_tokens"),
        "tokens_trained": result.get("tokens", config.get("tokens")),
        "train_tokens_limit": config.get("train_tokens_limit"),
        "lr": config.get("lr"), "seed": config.get("seed"), "steps": plan.get("steps"),
        **_model_columns(config),
    }


def run_frame(records: Iterable[RunRecord] | RunStore | str | Path) -> pd.DataFrame:
    """One row per stored run with every column the package reads, in store order.

    Parameters
    ----------
    records : iterable of RunRecord, RunStore, or a run-store folder

    Returns
    -------
    pandas.DataFrame
        The plan's ``budget``, ``params`` (N), ``tokens`` (D), ``tokens_per_param``,
        ``flops_exact`` and ``flops_6nd`` (FLOP); ``id``, ``status``, ``epochs``,
        ``loss`` (final validation loss, nats/token, NaN unless done),
        ``bits_per_byte``, ``wall_time_s``; the result's raw ``final_loss``,
        ``best_loss``, ``best_tokens`` and ``tokens_trained`` (tokens seen); the
        config's ``train_tokens_limit``, peak ``lr`` and ``seed``; the plan's ``steps``;
        and from the model, where the config has
        one: ``params_total``, ``params_non_embedding``, ``params_with_head``,
        ``d_model``, ``n_layer`` and ``flops_per_token`` (exact training FLOP per
        token). Missing values are ``None`` or NaN.
    """
    if isinstance(records, str | Path):
        records = open_store(records)
    if isinstance(records, RunStore):
        records = records.records()
    rows = [_row(r) for r in records]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=RUN_COLUMNS)


def results_frame(records: Iterable[RunRecord]) -> pd.DataFrame:
    """One row per stored run: id, status, budget, N, D, FLOP counts, epochs, loss.

    Parameters
    ----------
    records : sequence of RunRecord
        From :meth:`scalingkit.runs.store.RunStore.records`.

    Returns
    -------
    pandas.DataFrame
        The :data:`RESULT_COLUMNS` of :func:`run_frame`, sorted by budget and N;
        ``loss`` is the final validation loss (nats/token), NaN unless done.
    """
    frame = run_frame(records)
    frame = frame.reindex(columns=RESULT_COLUMNS)
    return frame.sort_values(["budget", "params"], ignore_index=True)


def load_points(source: str | Path) -> pd.DataFrame:
    """Fit inputs from ``source``: a points CSV, or a run-store folder.

    Parameters
    ----------
    source : str or Path
        A CSV with columns ``params``, ``tokens``, ``loss`` (``flops`` and ``budget``
        optional; :func:`scalingkit.fit.points.read_points_csv`), or a folder written
        by ``python -m scalingkit sweep`` (a :class:`~scalingkit.runs.store.RunStore`),
        from which only runs with status ``done`` and a finite loss are kept, with
        ``flops`` the plan's ``6 N D`` (FLOP).

    Returns
    -------
    pandas.DataFrame
        One row per run: ``params`` (N), ``tokens`` (D), ``loss`` (nats/token) and,
        when known, ``flops`` (FLOP) and ``budget`` (FLOP).

    Raises
    ------
    ValueError
        If the path does not exist, a column is missing, or no usable run is found.
    """
    path = Path(source)
    if not path.is_dir():
        return read_points_csv(path)
    if not (path / "store.json").exists():
        raise ValueError(f"{path} is a folder but not a run store (no store.json)")
    frame = results_frame(RunStore(path).records())
    frame = frame[(frame["status"] == "done") & np.isfinite(frame["loss"].astype(float))]
    if frame.empty:
        raise ValueError(f"run store {path} has no finished runs with a loss")
    out = frame[list(REQUIRED) + ["budget"]].astype(float)
    out["flops"] = frame["flops_6nd"].astype(float)
    return check_points(out, path)


def load_curves(source: str | Path) -> pd.DataFrame:
    """Validation-loss curves of every finished run in a run store (for Approach 1).

    Parameters
    ----------
    source : str or Path
        A run-store folder.

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
    path = Path(source)
    rows = []
    for record in open_store(path).records():
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


def runs_from_budget(frame: pd.DataFrame, min_budget: float | None,
                     source: object = "the sweep", *,
                     max_budget: float | None = None) -> pd.DataFrame:
    """The runs of ``frame`` planned at ``min_budget`` (FLOP) or above; all of them for None.

    ``max_budget`` likewise keeps the runs planned at that budget or below.
    ``ValueError`` for a bound that is not a positive number, or bounds that leave
    fewer than two budgets of ``source`` (named in the message).
    """
    if min_budget is None and max_budget is None:
        return frame
    keep = np.ones(len(frame), dtype=bool)
    for name, bound in (("min_budget", min_budget), ("max_budget", max_budget)):
        if bound is None:
            continue
        if not (isinstance(bound, int | float) and np.isfinite(bound) and bound > 0):
            raise ValueError(f"{name} must be a positive number of FLOP, got {bound!r}")
        budgets = frame["budget"].to_numpy(dtype=float)
        keep &= (budgets >= bound * (1 - 1e-9) if name == "min_budget"
                 else budgets <= bound * (1 + 1e-9))
    kept = frame[keep].reset_index(drop=True)
    if kept["budget"].nunique() < 2:
        shown = ", ".join(f"{n} {b:g} FLOP" for n, b in (("min_budget", min_budget),
                                                          ("max_budget", max_budget))
                          if b is not None)
        raise ValueError(f"{shown} leaves fewer than 2 budgets of {source}")
    return kept
