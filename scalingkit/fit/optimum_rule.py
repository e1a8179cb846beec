"""The per-budget optimum of an IsoFLOP profile (Approach 2's first stage).

The per-budget rule (:func:`budget_optimum`) is the one home of "where is this
budget's optimum": the IsoFLOP fitter and :func:`scalingkit.runs.optimum.compute_optimal`
both call it.

``rule="local"`` (default)
    The parabola goes through the runs at the ``n_local`` distinct sizes
    (default 5) centred on the size with the lowest loss, fewer where that size
    is near an edge of the sampled sizes (as many on each side, at least one).
    The budget is *bracketed* when its lowest loss is at an interior size and
    the vertex lies inside the sizes the parabola was fitted to. An IsoFLOP
    profile is asymmetric in ``ln N`` (too small a model costs more than too
    large a one), so a parabola through a wide window puts its vertex on the
    flat side, by an amount that depends on how wide and how lopsided the
    window is; the local parabola sees only the valley floor, and its vertex
    does not depend on the window's width.
``rule="all"``
    The parabola goes through every run of the budget, and its vertex is used
    even when it lies outside the sampled sizes (an extrapolation). This is
    the textbook form of Approach 2, kept for comparison.

Budgets whose optimum cannot be used (fewer than 3 runs or 3 distinct sizes,
no minimum, or, under ``"local"``, a minimum that is not bracketed) are left out
of the exponent fit and reported with their reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

from scalingkit.fit._validation import (
    as_positive_1d,
)

#: Per-budget rules of :func:`budget_optimum` (see the module docstring).
RULES = ("local", "all")


def group_budgets(flops: np.ndarray, tol: float = 0.05) -> np.ndarray:
    """Label runs by compute budget, merging budgets within ``tol`` decades.

    Read-off or rounded budgets are rarely exactly equal, so runs are sorted by
    ``log10(flops)`` and a new budget starts wherever the gap to the previous
    run exceeds ``tol``.

    Returns
    -------
    numpy.ndarray of int
        Budget label (0, 1, ...) of each run, increasing with FLOP.
    """
    logc = np.log10(flops)
    order = np.argsort(logc)
    labels = np.empty(flops.size, dtype=int)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(logc[order]) > tol)])
    return labels


def parabola_minimum(log_n: np.ndarray, loss: np.ndarray) -> tuple[float, float, float]:
    """Fit ``loss = c0 + c1 x + c2 x^2`` with ``x = ln N``; return (x_min, loss_min, c2).

    Raises
    ------
    ValueError
        If the parabola opens downwards (no minimum).
    """
    centre = log_n.mean()
    c2, c1, c0 = np.polyfit(log_n - centre, loss, 2)
    if not c2 > 0:
        raise ValueError("loss is not convex in ln N for this budget (no minimum)")
    x = -c1 / (2 * c2)
    return x + centre, c0 - c1 * c1 / (4 * c2), c2


class BudgetOptimum(NamedTuple):
    """One budget's optimum under a rule of :func:`budget_optimum`.

    Attributes
    ----------
    n_runs, n_sizes : int
        Runs and distinct model sizes of the budget.
    n_fit : int
        Runs the parabola went through (0 when none was fitted).
    log_n_opt, loss_opt, curvature : float
        Vertex ``ln N_opt``, loss at the vertex (nats/token) and second-order
        coefficient (nats/token per (ln N)^2); NaN when there is no vertex.
    log_n_lo, log_n_hi : float
        Smallest and largest ``ln N`` the parabola was fitted to (NaN if none).
    bracketed : bool
        Lowest loss at an interior size and the vertex inside the fitted sizes.
    used : bool
        Whether the vertex enters the exponent fit under the rule.
    reason : str
        Why the budget is not bracketed ("" when it is).
    """

    n_runs: int
    n_sizes: int
    n_fit: int
    log_n_opt: float
    loss_opt: float
    curvature: float
    log_n_lo: float
    log_n_hi: float
    bracketed: bool
    used: bool
    reason: str


def _unusable(n_runs: int, sizes: np.ndarray) -> str:
    """Why a budget cannot give a parabola at all ("" if it can)."""
    if n_runs < 3:
        return f"{n_runs} run(s); at least 3 are needed"
    if sizes.size == 1:
        return "all runs at one size"
    if sizes.size < 3:
        return f"{sizes.size} distinct model sizes; at least 3 are needed"
    return ""


def budget_optimum(
    log_n: np.ndarray, loss: np.ndarray, *, rule: str = "local", n_local: int = 5
) -> BudgetOptimum:
    """The compute-optimal size of one IsoFLOP budget, or why it has none.

    Parameters
    ----------
    log_n : numpy.ndarray
        ``ln N`` of each run of the budget (N in parameters).
    loss : numpy.ndarray
        Final loss of each run (nats/token).
    rule : {"local", "all"}, default="local"
        ``"local"``: parabola through the runs at the ``n_local`` distinct sizes
        centred on the size with the lowest (mean) loss, fewer near an edge;
        used only when bracketed. ``"all"``: parabola through every run, its
        vertex used wherever it lies.
    n_local : int, default=5
        Distinct sizes in the local window (odd, at least 3).

    Returns
    -------
    BudgetOptimum
    """
    _check_rule(rule, n_local)
    sizes, inverse = np.unique(log_n, return_inverse=True)
    nan = float("nan")
    bad = _unusable(log_n.size, sizes)
    if bad:
        return BudgetOptimum(log_n.size, sizes.size, 0, nan, nan, nan, nan, nan,
                             False, False, bad)
    mean_loss = np.bincount(inverse, weights=loss) / np.bincount(inverse)
    best = int(np.argmin(mean_loss))
    edge = {0: "the smallest", sizes.size - 1: "the largest"}.get(best)
    if rule == "local":
        if edge:
            return BudgetOptimum(log_n.size, sizes.size, 0, nan, nan, nan, nan, nan,
                                 False, False, f"lowest loss at {edge} size")
        half = min(n_local // 2, best, sizes.size - 1 - best)
        keep = np.abs(inverse - best) <= half
    else:
        keep = np.ones(log_n.size, dtype=bool)
    x, y = log_n[keep], loss[keep]
    lo, hi = float(x.min()), float(x.max())
    try:
        x_opt, l_opt, c2 = parabola_minimum(x, y)
    except ValueError:
        where = "around its lowest loss" if rule == "local" else "across its sizes"
        return BudgetOptimum(log_n.size, sizes.size, int(keep.sum()), nan, nan, nan, lo, hi,
                             False, False, f"loss is not convex in ln N {where} (no minimum)")
    if edge:  # rule "all" only: the vertex is an extrapolation beyond that edge
        reason = f"lowest loss at {edge} size"
    elif not lo <= x_opt <= hi:
        reason = "parabola vertex outside the sizes it was fitted to"
    else:
        reason = ""
    return BudgetOptimum(log_n.size, sizes.size, int(keep.sum()), float(x_opt), float(l_opt),
                         float(c2), lo, hi, not reason, rule == "all" or not reason, reason)


def _check_rule(rule: str, n_local: int) -> None:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    if isinstance(n_local, bool) or int(n_local) != n_local or n_local < 3 or n_local % 2 == 0:
        raise ValueError(f"n_local must be an odd integer >= 3, got {n_local!r}")


def _each_budget(
    labels: np.ndarray, log_n: np.ndarray, loss: np.ndarray, flops: np.ndarray | None,
    rule: str, n_local: int,
) -> Iterator[tuple[object, float | None, BudgetOptimum]]:
    """Yield ``(label, budget FLOP or None, BudgetOptimum)`` for each budget label."""
    for lab in np.unique(labels):
        sel = labels == lab
        c = None if flops is None else float(np.exp(np.log(flops[sel]).mean()))
        yield lab, c, budget_optimum(log_n[sel], loss[sel], rule=rule, n_local=n_local)


#: Columns of :func:`isoflop_optima` and ``IsoFLOPFit.budget_table_``.
TABLE_COLUMNS = ("budget", "n_runs", "n_sizes", "n_fit", "n_opt", "loss_opt", "curvature",
                 "log_n_lo", "log_n_hi", "bracketed", "used", "reason")


def _table(rows: Iterable[tuple[object, float | None, BudgetOptimum]]) -> pd.DataFrame:
    """The rows of :func:`_each_budget` as :func:`isoflop_optima`'s table."""
    records, index = [], []
    for lab, c, opt in rows:
        row = opt._asdict()
        x = row.pop("log_n_opt")
        row["n_opt"] = float(np.exp(x)) if opt.used else float("nan")
        if not opt.used:
            row["loss_opt"] = float("nan")
        row["budget"] = c if c is not None else float(lab)
        records.append(row)
        index.append(lab)
    return pd.DataFrame(records, index=index, columns=list(TABLE_COLUMNS))


def isoflop_optima(
    params: object,
    loss: object,
    budget: object,
    *,
    flops: object = None,
    rule: str = "local",
    n_local: int = 5,
) -> pd.DataFrame:
    """Each budget's optimum under ``rule`` (:func:`budget_optimum`), as a table.

    Parameters
    ----------
    params : array_like
        Model size N of each run (parameters).
    loss : array_like
        Final loss of each run (nats/token).
    budget : array_like
        Budget label of each run (e.g. the planned FLOP; numbers unless
        ``flops`` is given).
    flops : array_like, optional
        Training compute of each run (FLOP); the ``budget`` column is then the
        geometric mean of a budget's runs, else the label itself.
    rule : {"local", "all"}, default="local"
    n_local : int, default=5

    Returns
    -------
    pandas.DataFrame
        Indexed by budget label, one row per budget: ``budget`` (FLOP),
        ``n_runs``, ``n_sizes``, ``n_fit``, ``n_opt`` (parameters), ``loss_opt``
        (nats/token), ``curvature``, ``log_n_lo``, ``log_n_hi``, ``bracketed``,
        ``used`` and ``reason`` (see :class:`BudgetOptimum`); ``n_opt`` and
        ``loss_opt`` are NaN where the budget is not used.
    """
    _check_rule(rule, n_local)
    n, y = as_positive_1d("params", params), as_positive_1d("loss", loss)
    labels = np.asarray(budget)
    c = None if flops is None else as_positive_1d("flops", flops)
    sizes = {"params": n.size, "loss": y.size, "budget": labels.size,
             **({} if c is None else {"flops": c.size})}
    if labels.ndim != 1 or len(set(sizes.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ValueError(f"mismatched lengths: {detail}")
    return _table(_each_budget(labels, np.log(n), y, c, rule, n_local))


def _dropped_text(dropped: dict[float, str]) -> str:
    return "; ".join(f"{c:.3g} FLOP: {why}" for c, why in dropped.items())
