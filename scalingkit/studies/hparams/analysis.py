"""Reading the recipe experiments: which knob each run turned, and the seed noise floor.

A recipe run differs from the sweep's run of the same size and budget in one setting:
its seed, its batch size, its warmup share or its cosine horizon
(:func:`scalingkit.studies.hparams.plan.recipe_plan`, :func:`~.plan.seed_plan`).
:func:`recipe_frame` labels each run with that setting, so the sweep's own run (seed 0,
the recipe's batch, warmup and a horizon-matched cosine) is the shared baseline of
every comparison.

Units: losses in nats/token, tokens in tokens, sizes in parameters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scalingkit.runs.frames import run_frame
from scalingkit.runs.store import RunStore


def _settings(record) -> dict:
    c = record.config
    tokens = c["tokens"]
    horizon = c.get("horizon_tokens") if c.get("schedule") == "cosine_fixed" else None
    return {"seed": c["seed"], "batch_size": c["batch_size"],
            "init_std": c["model"].get("init_std"),
            "warmup_fraction": round(c["warmup_tokens"] / tokens, 4),
            "horizon_factor": round(horizon / tokens, 3) if horizon else 1.0}


def recipe_frame(*stores: str | Path, budget: float) -> pd.DataFrame:
    """Done runs of one budget from several stores, with the setting each one varies.

    Parameters
    ----------
    *stores : str or Path
        Run stores (the sweep's and the recipe experiments'); a config present in
        several is kept once.
    budget : float
        The budget to read (FLOP).

    Returns
    -------
    DataFrame
        :func:`~scalingkit.runs.frames.run_frame` columns plus ``seed``,
        ``batch_size``, ``init_std``, ``warmup_fraction``, ``horizon_factor``.
    """
    frames = []
    for source in stores:
        records = [r for r in RunStore(source).records()
                   if r.status == "done" and r.plan.get("budget") == budget]
        if not records:
            continue
        frame = run_frame(records)
        settings = pd.DataFrame([_settings(r) for r in records], index=frame.index)
        frames.append(pd.concat([frame.drop(columns=["seed"]), settings], axis=1))
    if not frames:
        raise ValueError(f"no done runs at budget {budget:.3g} FLOP in {list(map(str, stores))}")
    out = pd.concat(frames, ignore_index=True).drop_duplicates("id")
    return out.sort_values(["params", "seed"], ignore_index=True)


def baseline_mask(frame: pd.DataFrame, batch_size: int, warmup_fraction: float) -> pd.Series:
    """Runs with the recipe's batch, warmup and a matched cosine (any seed)."""
    return ((frame["batch_size"] == batch_size)
            & np.isclose(frame["warmup_fraction"], warmup_fraction, atol=1e-3)
            & (frame["horizon_factor"] == 1.0))


def seed_noise(frame: pd.DataFrame) -> dict:
    """The run-to-run noise floor from repeats of the same config under different seeds.

    Parameters
    ----------
    frame : DataFrame
        Runs with ``params``, ``seed`` and ``loss`` (nats/token), all else equal.

    Returns
    -------
    dict
        ``per_size``: one ``{"params", "seeds", "mean", "sd", "range"}`` per size with
        at least 2 seeds; ``pooled_sd``: the pooled standard deviation (nats/token,
        degrees of freedom summed over sizes); ``median_sd``: the median of the
        per-size standard deviations, which one noisy size cannot move;
        ``max_range``: the largest spread between seeds of one size (nats/token).
    """
    rows = []
    dof, ss = 0, 0.0
    for n, cell in frame.groupby("params"):
        loss = cell["loss"].to_numpy(float)
        if loss.size < 2:
            continue
        rows.append({"params": float(n), "seeds": int(loss.size), "mean": float(loss.mean()),
                     "sd": float(loss.std(ddof=1)), "range": float(np.ptp(loss))})
        dof += loss.size - 1
        ss += float(((loss - loss.mean()) ** 2).sum())
    if not rows:
        raise ValueError("no size has runs under two or more seeds")
    return {"per_size": rows, "pooled_sd": float(np.sqrt(ss / dof)),
            "median_sd": float(np.median([r["sd"] for r in rows])),
            "max_range": max(r["range"] for r in rows)}
