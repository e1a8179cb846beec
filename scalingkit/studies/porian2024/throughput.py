"""How long a rung of the Porian et al. (2024) ladder takes: time a few steps of each
planned run, then estimate the whole rung (seconds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scalingkit.core import flops
from scalingkit.runs.sweep import SweepPlan


def measure_throughput(plan: SweepPlan, *, n_steps: int = 10,
                       which: Sequence[int] | None = None) -> pd.DataFrame:
    """Train the first ``n_steps`` optimizer steps of some of a plan's runs; time them.

    Parameters
    ----------
    plan : SweepPlan
        A rung's plan (:func:`plan_rung`).
    n_steps : int, default=10
        Optimizer steps per timed run (>= 1).
    which : sequence of int, optional
        Indices into ``plan.runs``; default the smallest, the median and the
        largest model.

    Returns
    -------
    pandas.DataFrame
        One row per timed run: ``params``, ``tokens_per_s`` (optimizer steps
        only, tokens/s), ``flop_per_s`` (exact training FLOP/s) and ``device``.
    """
    from scalingkit.core.train import TrainConfig, train

    if not (isinstance(n_steps, int) and n_steps >= 1):
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    if not plan.runs:
        raise ValueError("the plan has no runs to time")
    order = sorted(range(len(plan.runs)), key=lambda i: plan.runs[i].params)
    which = list(which) if which is not None else sorted(
        {order[0], order[len(order) // 2], order[-1]})
    rows = []
    for i in which:
        if not 0 <= i < len(plan.runs):
            raise ValueError(f"run index {i} outside the plan's {len(plan.runs)} runs")
        run = plan.runs[i]
        config = TrainConfig.from_dict({**run.config, "eval_every": 0, "checkpoint_every": 0,
                                        "eval_tokens": run.config["model"]["n_ctx"]})
        config.tokens = n_steps * config.tokens_per_step
        result = train(config, progress=False)
        per_token = flops.training_flops_per_token(config.model.shape)
        rows.append({"params": run.params, "tokens_per_s": result.tokens_per_s,
                     "flop_per_s": result.tokens_per_s * per_token, "device": result.device})
    return pd.DataFrame(rows)


def estimate_seconds(plan: SweepPlan, timings: pd.DataFrame) -> float:
    """Training time of a plan from measured throughputs (seconds).

    Each run's rate (FLOP/s) is interpolated linearly in ``(log N, log rate)``
    between the timed sizes (held constant beyond them): small models run far
    below the rate of large ones, since per-step overheads dominate them.
    Evaluation is not counted.

    Parameters
    ----------
    plan : SweepPlan
    timings : DataFrame
        ``params`` and ``flop_per_s`` (:func:`measure_throughput`).
    """
    t = timings.sort_values("params")
    if t.empty or not np.all(t["flop_per_s"] > 0):
        raise ValueError("timings need at least one positive flop_per_s")
    log_n, log_r = np.log(t["params"].astype(float)), np.log(t["flop_per_s"].astype(float))
    return float(sum(r.flops_exact / np.exp(np.interp(np.log(r.params), log_n, log_r))
                     for r in plan.runs))
