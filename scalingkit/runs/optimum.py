"""Compute-optimal allocation from finished IsoFLOP runs: ``N_opt`` and ``D_opt`` per budget.

The per-budget rule is the IsoFLOP fitter's (:func:`scalingkit.fit.isoflop_optima`);
this module adds what a sweep knows and a fitter does not: which size was
sampled best where a budget does not bracket its minimum, and the tokens a size
gets on each budget's IsoFLOP line.

Units: N in parameters, D in tokens, C in FLOP, losses in nats/token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from scalingkit.fit import IsoFLOPFit, isoflop_optima

__all__ = ["Allocation", "allocation_fit", "compute_optimal", "tokens_at_size"]


def tokens_at_size(frame: pd.DataFrame, budgets: Sequence[float],
                   params: Sequence[float]) -> np.ndarray:
    """Tokens ``D`` (tokens) a run of size ``N`` would get on each budget's IsoFLOP line.

    Within one budget ``D = C / (FLOP per token)`` is a smooth, nearly
    straight line in log-log space (FLOP per token grows almost like ``N``), so
    a quadratic in ``log N`` through that budget's runs (a line with 2 sizes)
    gives ``D`` at any size between them, e.g. at a fitted optimum ``N_opt``.
    Unlike ``C / (6 N)``, this respects whichever FLOP count defined the budget.

    Parameters
    ----------
    frame : DataFrame
        Runs with ``budget`` (FLOP), ``params`` and ``tokens``.
    budgets, params : sequence of float
        Budgets (FLOP; each must appear in ``frame``, to 1 part in 1e6) and
        the sizes (parameters) at which to read ``D``.

    Returns
    -------
    numpy.ndarray
        ``D`` for each ``(budget, params)`` pair (tokens).
    """
    out = []
    for budget, n in zip(budgets, params, strict=True):
        runs = frame[np.isclose(frame["budget"], budget, rtol=1e-6)]
        if runs["params"].nunique() < 2:
            raise ValueError(f"budget {budget:.3g} FLOP needs runs of at least 2 sizes")
        deg = min(2, runs["params"].nunique() - 1)
        coef = np.polyfit(np.log(runs["params"].astype(float)),
                          np.log(runs["tokens"].astype(float)), deg)
        out.append(float(np.exp(np.polyval(coef, np.log(n)))))
    return np.array(out)


def compute_optimal(frame: pd.DataFrame, *, rule: str = "local",
                    n_local: int = 5) -> tuple[pd.DataFrame, Any]:
    """Compute-optimal size and tokens per budget from finished IsoFLOP runs.

    Each budget's optimum comes from the per-budget rule of the IsoFLOP fitter
    (:func:`scalingkit.fit.optimum_rule.isoflop_optima`, one home for both). With
    the default ``rule="local"``, a budget *brackets* its minimum when its
    lowest loss is at an interior size and a parabola in ``ln N`` through the
    runs at the ``n_local`` sizes centred on it puts its vertex inside those
    sizes; ``N_opt`` is then that vertex (``method`` ``"parabola"``). Elsewhere
    (lowest loss at the smallest or the largest size, a vertex outside the
    sizes, fewer than 3 sizes) ``N_opt`` falls back to the best *sampled*
    size (``method`` ``"best sampled"``, a bound rather than an estimate), and
    ``reason`` says why. ``rule="all"`` fits the parabola through every run of
    a budget instead (the textbook rule, for comparison), still trusting it
    only where it brackets the minimum. ``D_opt`` is read on each budget's
    IsoFLOP line (:func:`tokens_at_size`).

    Parameters
    ----------
    frame : DataFrame
        Done runs with ``budget`` (FLOP), ``params``, ``tokens``, ``loss``
        (nats/token) and ``flops_exact`` (FLOP), as from
        :func:`scalingkit.runs.frames.results_frame`.
    rule : {"local", "all"}, default="local"
        The per-budget rule (:class:`scalingkit.fit.IsoFLOPFit`).
    n_local : int, default=5
        Sizes in the local parabola (odd, at least 3).

    Returns
    -------
    (DataFrame, IsoFLOPFit or None)
        One row per budget: ``budget``, ``n_opt``, ``d_opt``, ``loss_opt``,
        ``tokens_per_param``, ``bracketed``, ``method`` (``"parabola"`` or
        ``"best sampled"``) and ``reason`` (empty where bracketed); and the
        IsoFLOP fit (same rule, each budget's exact FLOP) over the bracketed
        budgets when there are at least 2 of them (else None).
    """
    data = frame.dropna(subset=["loss"]).sort_values(["budget", "params"])
    if data.empty:
        raise ValueError("no finished runs with a loss")
    optima = isoflop_optima(data["params"], data["loss"], data["budget"], rule=rule,
                            n_local=n_local)
    rows = []
    for budget, runs in data.groupby("budget"):
        opt = optima.loc[budget]
        best = int(np.argmin(runs["loss"].to_numpy()))
        vertex = bool(opt["bracketed"])
        rows.append({"budget": float(budget),
                     "n_opt": float(opt["n_opt"]) if vertex
                     else float(runs["params"].iloc[best]),
                     "loss_opt": float(opt["loss_opt"]) if vertex
                     else float(runs["loss"].iloc[best]),
                     "bracketed": vertex, "method": "parabola" if vertex else "best sampled",
                     "reason": opt["reason"]})
    table = pd.DataFrame(rows)
    fit = None
    if table["bracketed"].sum() >= 2:
        kept = data[data["budget"].isin(table.loc[table["bracketed"], "budget"])]
        fit = IsoFLOPFit(rule=rule, n_local=n_local).fit(
            kept["params"], kept["tokens"], kept["loss"], flops=kept["flops_exact"],
            budget=kept["budget"])
    table["d_opt"] = tokens_at_size(data, table["budget"], table["n_opt"])
    table["tokens_per_param"] = table["d_opt"] / table["n_opt"]
    columns = ["budget", "n_opt", "d_opt", "loss_opt", "tokens_per_param", "bracketed",
               "method", "reason"]
    return table[columns], fit


class Allocation(NamedTuple):
    """Power laws ``N_opt = k C^a`` and ``D_opt = kd C^b`` through per-budget optima."""

    a: float  #: exponent of N_opt (parameters) in C (FLOP)
    k: float  #: N_opt at C = 1 FLOP (parameters)
    b: float  #: exponent of D_opt (tokens) in C (FLOP)
    kd: float  #: D_opt at C = 1 FLOP (tokens)
    budgets: int  #: number of budgets fitted


def allocation_fit(table: pd.DataFrame, *, flops: str = "budget") -> Allocation:
    """Fit ``N_opt = k C^a`` and ``D_opt = kd C^b`` by least squares in log-log space.

    The straight lines of Approach 2 through a table of per-budget optima, e.g.
    the one :func:`compute_optimal` returns (all rows, or only the parabola
    vertices). With ``C = 6ND`` one expects ``a + b`` near 1.

    Parameters
    ----------
    table : DataFrame
        One row per budget with ``n_opt`` (parameters), ``d_opt`` (tokens) and
        the compute column named by ``flops`` (FLOP).
    flops : str, default="budget"
        The column holding each budget's compute C (FLOP).

    Returns
    -------
    Allocation
        ``(a, k, b, kd, budgets)``.

    Raises
    ------
    ValueError
        If fewer than 2 distinct budgets, or a non-positive or missing value.
    """
    missing = {flops, "n_opt", "d_opt"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks column(s) {sorted(missing)}")
    cols = table[[flops, "n_opt", "d_opt"]].to_numpy(dtype=float)
    if not (np.isfinite(cols).all() and (cols > 0).all()):
        raise ValueError(f"table columns {flops}, n_opt and d_opt must be finite and > 0")
    log_c, log_n, log_d = np.log(cols).T
    if np.unique(log_c).size < 2:
        raise ValueError(f"table needs at least 2 distinct budgets, got {np.unique(log_c).size}")
    a, log_k = np.polyfit(log_c, log_n, 1)
    b, log_kd = np.polyfit(log_c, log_d, 1)
    return Allocation(float(a), float(np.exp(log_k)), float(b), float(np.exp(log_kd)), len(cols))
