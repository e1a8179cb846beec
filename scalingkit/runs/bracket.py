"""A sweep that brackets itself: pilot, re-centring, and rungs added at the edges.

An IsoFLOP budget measures its optimum only if the optimum lies inside the sizes it
trained. :func:`run_bracketed` makes sure it does:

1. **Pilot.** The two smallest budgets are trained first, centred on the
   Chinchilla guess (20 tokens per parameter), and every rung the bracketing step
   below adds to them is trained too. The tokens per parameter at their optima
   (:func:`measured_tokens_per_param`) re-centre the whole sweep
   (``SweepSpec.centre_tokens_per_param``): each budget's middle rung becomes the
   one whose run gets that many tokens per parameter.
2. **Sweep.** Every budget is trained.
3. **Bracketing.** A budget is bracketed when its lowest loss is at an interior
   size and the local parabola's vertex lies inside the sizes it went through
   (:func:`scalingkit.runs.optimum.compute_optimal`). Otherwise
   :func:`edge_rungs` adds one ladder rung at the side the optimum lies on, and the
   new runs are trained; this repeats until every budget is bracketed, a budget has
   had ``max_extra`` rungs added on one side, or the next rung would break a bound
   (too few optimizer steps, more than the allowed passes, outside the lr rule).

Because a run is identified by its full config, a rung shared by the pilot and the
sweep trains once, and running the same command again resumes where it stopped.

Units: budgets in FLOP, sizes in parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from scalingkit.runs.sweep import SweepSpec, budget_key, plan_sweep

#: Default cap on rungs added at one edge of one budget.
MAX_EXTRA = 3


def budget_table(frame: pd.DataFrame, *, min_depth: float = 0.0) -> pd.DataFrame:
    """Per-budget optimum and bracketing of the done runs in ``frame``.

    Budgets with fewer than 3 done runs are listed as not bracketed. With
    ``min_depth`` (nats/token, e.g. twice a seed study's noise floor), a budget also
    needs both walls of its valley to rise at least that far above its lowest loss:
    a wall shallower than the noise cannot tell where the valley ends.

    Returns
    -------
    DataFrame
        ``budget``, ``n_opt``, ``d_opt``, ``tokens_per_param``, ``bracketed``,
        ``reason``, ``side`` (``"below"``, ``"above"`` or ``""``: where an unbracketed
        budget should grow) and ``depth`` (how far the lower of its two edge losses
        lies above its lowest loss, nats/token), one row per budget.
    """
    from scalingkit.runs.optimum import compute_optimal

    done = frame[np.isfinite(frame["loss"].astype(float))]
    rows = []
    for budget, runs in done.groupby("budget"):
        depth, shallow = wall_depth(runs)
        if runs["params"].nunique() < 3:
            rows.append({"budget": float(budget), "n_opt": math.nan, "d_opt": math.nan,
                         "tokens_per_param": math.nan, "bracketed": False,
                         "reason": f"{runs['params'].nunique()} size(s) done; at least 3 "
                                   "are needed", "side": _side(runs), "depth": depth})
            continue
        table, _ = compute_optimal(runs)
        row = table.iloc[0].to_dict()
        row["side"] = "" if row["bracketed"] else _side(runs)
        row["depth"] = depth
        if row["bracketed"] and depth < min_depth:
            row.update(bracketed=False, side=shallow,
                       reason=f"the {'small' if shallow == 'below' else 'large'}-model wall "
                              f"rises only {depth:.3g} nats above the minimum "
                              f"(< {min_depth:.3g})")
        rows.append({k: row[k] for k in TABLE_COLUMNS})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


#: Columns of :func:`budget_table`.
TABLE_COLUMNS = ("budget", "n_opt", "d_opt", "tokens_per_param", "bracketed", "reason",
                 "side", "depth")


def wall_depth(runs: pd.DataFrame) -> tuple[float, str]:
    """One budget's lower wall: its height above the lowest loss (nats/token), and its side.

    ``runs`` holds one budget's runs (``params``, ``loss``); losses of repeated sizes
    are averaged. The height is the smaller of the two edge losses minus the lowest
    loss; the side is ``"below"`` (smallest size) or ``"above"``. A valley whose
    lower wall does not clear the noise floor is not resolved.
    """
    mean = runs.groupby("params")["loss"].mean().sort_index().to_numpy()
    if mean.size == 0:
        return math.nan, ""
    low, high = mean[0] - mean.min(), mean[-1] - mean.min()
    return (float(low), "below") if low <= high else (float(high), "above")


def _side(runs: pd.DataFrame) -> str:
    """Which edge an unbracketed budget should grow at: towards its lowest loss."""
    mean = runs.groupby("params")["loss"].mean().sort_index()
    if mean.size == 0:
        return ""
    best = int(np.argmin(mean.to_numpy()))
    if best == 0:
        return "below"
    if best == mean.size - 1:
        return "above"
    # interior minimum whose vertex fell outside: the side of the lower neighbour
    return "below" if mean.iloc[best - 1] < mean.iloc[best + 1] else "above"


def measured_tokens_per_param(table: pd.DataFrame) -> float:
    """Geometric mean of ``D/N`` at the bracketed optima (tokens per parameter).

    Raises
    ------
    ValueError
        If no budget is bracketed.
    """
    ok = table[table["bracketed"].astype(bool)]
    if ok.empty:
        raise ValueError("no budget of the pilot is bracketed: " +
                         "; ".join(f"{b:.3g} FLOP: {r}" for b, r in
                                   zip(table["budget"], table["reason"], strict=True)))
    return float(np.exp(np.log(ok["tokens_per_param"].astype(float)).mean()))


def edge_rungs(spec: SweepSpec, table: pd.DataFrame, *,
               max_extra: int = MAX_EXTRA) -> tuple[SweepSpec, list[str]]:
    """Add one rung at the optimum's side of every unbracketed budget.

    Parameters
    ----------
    spec : SweepSpec
        A monotone-ladder spec.
    table : DataFrame
        From :func:`budget_table`.
    max_extra : int, default=3
        Cap on rungs added at one edge of one budget.

    Returns
    -------
    (SweepSpec, list of str)
        The spec with its ``extra_rungs`` grown, and one note per unbracketed budget
        saying what was added or why nothing could be.
    """
    if spec.ladder != "monotone":
        raise ValueError("edge_rungs needs a monotone-ladder spec (ladder='monotone')")
    extra = dict(spec.extra_rungs)
    notes = []
    for row in table.itertuples():
        if row.bracketed or row.budget not in spec.budgets:
            continue
        key = budget_key(row.budget)
        below, above = extra.get(key, (0, 0))
        if row.side == "below" and below < max_extra and spec.rungs(row.budget)[0] > 1:
            extra[key] = (below + 1, above)
        elif row.side == "above" and above < max_extra:
            extra[key] = (below, above + 1)
        else:
            notes.append(f"{row.budget:.3g} FLOP: not bracketed ({row.reason}) and no rung "
                         f"can be added {row.side or 'at either edge'}")
            continue
        notes.append(f"{row.budget:.3g} FLOP: {row.reason}; adding a rung {row.side}")
    return replace(spec, extra_rungs=extra), notes


def run_bracketed(
    spec: SweepSpec, out: str, *, pilot: bool = True, max_rounds: int = 6,
    max_extra: int = MAX_EXTRA, log: Callable[[str], None] = print,
    planner: Callable[[SweepSpec], Any] = plan_sweep,
    plan_metadata: Callable[[Any], dict] | None = None,
    pilot_ratio: Callable[[SweepSpec, pd.DataFrame], float] | None = None,
    min_depth: float = 0.0, **run_options: Any,
) -> tuple[SweepSpec, pd.DataFrame]:
    """Pilot, re-centre, sweep and extend until every budget is bracketed.

    Parameters
    ----------
    spec : SweepSpec
        A monotone-ladder spec; with ``pilot``, its centre is replaced by the pilot's.
    out : str
        Run store folder (resumable).
    pilot : bool, default=True
        Run the pilot on the two smallest budgets first and re-centre on it.
    max_rounds : int, default=6
        Extension rounds per stage.
    max_extra : int, default=3
        Cap on rungs added at one edge of one budget.
    log : callable, default=print
        Receives one line per decision.
    planner : callable, default=plan_sweep
        Turns a spec into a :class:`~scalingkit.runs.sweep.SweepPlan`; a study with
        its own recipe per run (the Porian ladder) passes its planner.
    plan_metadata : callable, optional
        ``PlannedRun -> dict``: the plan metadata each run is stored with (default
        the run's own ``plan_dict``).
    pilot_ratio : callable, optional
        ``(pilot spec, budget table) -> tokens per parameter`` to re-centre on
        (default :func:`measured_tokens_per_param` of the table).
    min_depth : float, default=0
        Each wall of a budget's valley must rise at least this far above its lowest
        loss (nats/token; :func:`budget_table`), or a rung is added on the shallow side.
    **run_options
        Passed to :func:`scalingkit.runs.sweep.run_sweep` (``executor``, ``workers``,
        ``progress``, ``command``, ``trainer``).

    Returns
    -------
    (SweepSpec, DataFrame)
        The final spec (centre and extra rungs as trained) and its :func:`budget_table`.
    """
    stage_args = (out, max_rounds, max_extra, log, planner, plan_metadata, min_depth,
                  run_options)
    if pilot:
        stage = replace(spec, budgets=spec.budgets[:2], centre_tokens_per_param=None)
        stage, table = _extend_until_bracketed(stage, *stage_args)
        ratio = (pilot_ratio(stage, table) if pilot_ratio is not None
                 else measured_tokens_per_param(table))
        log(f"pilot: {ratio:.3g} tokens per parameter at the optima of "
            f"{int(table['bracketed'].sum())} bracketed budget(s); re-centring the sweep")
        spec = replace(spec, centre_tokens_per_param=float(f"{ratio:.3g}"))
    return _extend_until_bracketed(spec, *stage_args)


def _extend_until_bracketed(spec: SweepSpec, out: str, max_rounds: int, max_extra: int,
                            log: Callable[[str], None], planner: Callable[[SweepSpec], Any],
                            plan_metadata: Callable[[Any], dict] | None, min_depth: float,
                            run_options: dict) -> tuple[SweepSpec, pd.DataFrame]:
    from scalingkit.runs.frames import results_frame
    from scalingkit.runs.record import config_hash
    from scalingkit.runs.store import RunStore
    from scalingkit.runs.sweep import run_sweep

    for _ in range(max_rounds + 1):
        plan = planner(spec)
        if plan_metadata is not None:  # the store keeps the first metadata a run is added with
            store = RunStore(out)
            for r in plan.runs:
                store.add(r.config, plan=plan_metadata(r))
        store = run_sweep(plan, out, **run_options)
        ids = {config_hash(r.config) for r in plan.runs}
        frame = results_frame(store.records())
        table = budget_table(frame[frame["id"].isin(ids)], min_depth=min_depth)
        if table["bracketed"].all() and len(table) == len(spec.budgets):
            log("every budget is bracketed: " + ", ".join(
                f"{b:.3g} FLOP" for b in table["budget"]))
            return spec, table
        new_spec, notes = edge_rungs(spec, table, max_extra=max_extra)
        for note in notes:
            log(note)
        if new_spec == spec:
            break
        spec = new_spec
    return spec, table
