"""Chinchilla's three approaches on one sweep, all in one FLOP convention.

Each approach estimates the exponent ``a`` of ``N_opt = k C^a``. Their estimates
are comparable only when they count compute ``C`` the same way; here every
approach uses the *exact* training FLOP of each run, ``C = f(N) D`` with
``f(N)`` the run's exact training FLOP per token
(:func:`scalingkit.core.flops.training_flops_per_token`, recorded by the
planner) and ``D`` the tokens:

* Approach 1 (:class:`~scalingkit.fit.EnvelopeFit`, ``rule="local"``): the lower
  envelope of the validation curves, each curve point at ``C = f(N) * tokens seen
  so far``, its optimum at each compute the vertex of a parabola through the
  winning size and its neighbours (a ladder of a few sizes per decade makes the
  winners alone a staircase);
* Approach 2 (:class:`~scalingkit.fit.IsoFLOPFit`, ``rule="local"``): each
  budget's parabola vertex, ``ln N_opt = ln k + a ln C`` over the bracketed
  budgets, ``C`` the geometric mean of the budget's runs' exact FLOP;
* Approach 3 (:class:`~scalingkit.fit.ParametricFit`): ``L(N, D)`` fitted to
  the final losses, then ``N_opt(C) = argmin_N L(N, C / f(N))`` at each budget
  with ``f`` a smooth fit to the runs' FLOP per token (:func:`flops_per_token_curve`),
  and ``a`` the least-squares slope of ``ln N_opt`` on ``ln C``. (Not
  ``beta / (alpha + beta)``, which holds only for ``C = 6 N D``.)

Units: N in parameters, D in tokens, C in FLOP, losses in nats/token.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scalingkit.fit import EnvelopeFit, IsoFLOPFit, ParametricFit, isoflop_optima
from scalingkit.fit._validation import check_bootstrap
from scalingkit.fit.stats import percentile_ci
from scalingkit.runs.frames import load_curves, run_frame, runs_from_budget

__all__ = ["approach_1", "approach_2", "approach_3", "budget_table", "done_runs",
           "exact_flops_per_token",
           "fit_sweep", "flops_per_token_curve", "parametric_optima"]

#: Half-width (in ln N) added beyond the sizes run when Approach 3 searches for N_opt.
SEARCH_MARGIN = 2.0
#: Level of the bootstrap percentile intervals.
CONFIDENCE = 0.95


def exact_flops_per_token(frame: pd.DataFrame) -> np.ndarray:
    """Exact training FLOP per token (FLOP/token) of each run in a :func:`run_frame`.

    The model's ``flops_per_token`` where the run's config has a model, else
    the plan's ``flops_exact / tokens``; NaN where neither is recorded.
    """
    fpt = pd.to_numeric(frame.get("flops_per_token", pd.Series(np.nan, frame.index)),
                        errors="coerce").to_numpy(float)
    planned = (pd.to_numeric(frame["flops_exact"], errors="coerce")
               / pd.to_numeric(frame["tokens"], errors="coerce")).to_numpy(float)
    return np.where(np.isfinite(fpt), fpt, planned)


def done_runs(source: str | Path) -> pd.DataFrame:
    """The finished runs of a run store, with their exact compute.

    Parameters
    ----------
    source : str or Path
        A run-store folder.

    Returns
    -------
    pandas.DataFrame
        :func:`run_frame`'s rows with status ``done`` and a finite loss, plus
        ``fpt`` (exact training FLOP per token) and ``flops`` (``fpt * tokens``,
        FLOP).

    Raises
    ------
    ValueError
        If ``source`` is not a run store, has no finished run with a loss, or a
        finished run lacks its budget, size, tokens or exact FLOP count.
    """
    frame = run_frame(source)
    loss = pd.to_numeric(frame["loss"], errors="coerce")
    frame = frame[(frame["status"] == "done") & np.isfinite(loss)].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"run store {source} has no finished runs with a loss")
    frame["fpt"] = exact_flops_per_token(frame)
    for col in ("budget", "params", "tokens", "fpt"):
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            what = "exact FLOP count" if col == "fpt" else f"plan's {col}"
            raise ValueError(f"run store {source}: run {frame['id'][bad].iloc[0]} lacks its "
                             f"{what}")
        frame[col] = values
    frame["loss"] = frame["loss"].astype(float)
    frame["flops"] = frame["fpt"] * frame["tokens"]
    return frame


def flops_per_token_curve(params: object, fpt: object) -> Callable[[np.ndarray], np.ndarray]:
    """``f(N)``: exact training FLOP per token as a smooth function of size, from the runs.

    A least-squares quadratic in ``(ln N, ln f)`` through the distinct sizes run
    (runs of one size averaged in ``ln f``; a straight line with 2 sizes),
    extended beyond the sizes run by straight lines with the curve's end slopes.

    Why a fit rather than interpolation through the runs: ladder shapes of
    nearly the same ``N`` can differ in depth and width, so their ``f`` scatters
    by about 1% around a smooth trend. Interpolating through that scatter makes
    ``L(N, C / f(N))`` kinked near its flat minimum, and the argmin of Approach 3
    then jumps between kinks (by ~10% in ``N_opt`` on a sweep of 0.15-decade
    steps) instead of following the trend.

    Parameters
    ----------
    params : array_like
        Size N of each run (parameters).
    fpt : array_like
        Its exact training FLOP per token (FLOP/token).

    Returns
    -------
    callable
        ``f(n)`` for an array of sizes ``n`` (parameters), in FLOP/token.

    Raises
    ------
    ValueError
        If fewer than 2 distinct sizes are given.
    """
    log_n, log_f = np.log(np.asarray(params, float)), np.log(np.asarray(fpt, float))
    sizes, inverse = np.unique(log_n, return_inverse=True)
    if sizes.size < 2:
        raise ValueError(f"need runs of at least 2 sizes to model FLOP per token, "
                         f"got {sizes.size}")
    mean_f = np.bincount(inverse, weights=log_f) / np.bincount(inverse)
    curve = np.polynomial.Polynomial.fit(sizes, mean_f, min(2, sizes.size - 1))
    slope = curve.deriv()
    lo, hi = sizes[0], sizes[-1]

    def f(n: np.ndarray) -> np.ndarray:
        x = np.log(np.asarray(n, float))
        inside = curve(np.clip(x, lo, hi))
        edge = np.where(x < lo, slope(lo) * (x - lo), np.where(x > hi, slope(hi) * (x - hi), 0))
        return np.exp(inside + edge)

    return f


def parametric_optima(coef: dict[str, float], budgets: np.ndarray,
                      fpt: Callable[[np.ndarray], np.ndarray],
                      log_n_bounds: tuple[float, float]) -> np.ndarray:
    """``N_opt(C) = argmin_N L(N, C / f(N))`` of a fitted ``L(N, D)`` at each budget.

    Parameters
    ----------
    coef : dict
        ``E, A, B, alpha, beta`` of ``L(N, D) = E + A/N^alpha + B/D^beta`` (nats/token).
    budgets : numpy.ndarray
        Budgets C (exact FLOP).
    fpt : callable
        Exact training FLOP per token as a function of N (:func:`flops_per_token_curve`).
    log_n_bounds : (float, float)
        Search range of ``ln N``.

    Returns
    -------
    numpy.ndarray
        ``N_opt`` per budget (parameters); NaN where the minimum lies on the edge
        of the search range (no interior optimum there).
    """
    lo, hi = log_n_bounds
    tol = 1e-3 * (hi - lo)

    def loss(log_n: float, c: float) -> float:
        n = np.exp(log_n)
        d = c / fpt(np.array([n]))[0]
        return coef["A"] / n ** coef["alpha"] + coef["B"] / d ** coef["beta"]

    out = []
    for c in budgets:
        res = minimize_scalar(loss, bounds=(lo, hi), args=(float(c),), method="bounded",
                              options={"xatol": 1e-8})
        inside = res.success and lo + tol < res.x < hi - tol
        out.append(float(np.exp(res.x)) if inside else np.nan)
    return np.array(out)


def _slope(log_c: np.ndarray, n_opt: np.ndarray) -> float:
    """Least-squares slope of ``ln N_opt`` on ``ln C`` (NaN if any N_opt is missing)."""
    if not np.all(np.isfinite(n_opt)):
        return float("nan")
    return float(np.polyfit(log_c, np.log(n_opt), 1)[0])


def _result(a: float | None = None, ci: list[float] | None = None,
            reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"a": a, "ci": ci, "reason": reason, **extra}


def _ci_of(est: Any) -> list[float] | None:
    """The estimator's bootstrap interval of ``a``, if it has one."""
    return None if not getattr(est, "ci_", None) else est.ci_.get("a")


def budget_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each budget's IsoFLOP optimum under the local-parabola rule, C in exact FLOP.

    :func:`scalingkit.fit.isoflop_optima` with ``rule="local"``, budgets labelled
    by the plan and ``budget`` the geometric mean of their runs' exact FLOP.
    """
    table = isoflop_optima(runs["params"], runs["loss"], runs["budget"],
                           flops=runs["flops"], rule="local")
    return table.rename_axis("planned").reset_index()


def approach_2(runs: pd.DataFrame, table: pd.DataFrame, *, n_bootstrap: int,
               seed: int | None) -> dict[str, Any]:
    """Approach 2 over the bracketed budgets of ``table`` (:func:`budget_table`).

    Bootstrap: runs resampled within each budget and every optimum found again
    (:class:`~scalingkit.fit.IsoFLOPFit`'s own interval).
    """
    kept = table.loc[table["bracketed"], "planned"]
    if len(kept) < 2:
        return _result(reason=f"only {len(kept)} of {len(table)} budgets bracket their "
                              "minimum; need 2 to fit N_opt = k C^a", budgets_used=len(kept))
    sel = runs[runs["budget"].isin(kept)]
    try:
        fit = IsoFLOPFit(rule="local", n_bootstrap=n_bootstrap, random_state=seed).fit(
            sel["params"], sel["tokens"], sel["loss"], flops=sel["flops"], budget=sel["budget"])
    except ValueError as exc:
        return _result(reason=f"IsoFLOP fit: {exc}", budgets_used=len(kept))
    return _result(fit.a_, _ci_of(fit), budgets_used=len(fit.budgets_used_))


def approach_2_noise(runs: pd.DataFrame, noise_sd: float, *, n_bootstrap: int,
                     seed: int | None) -> list[float] | None:
    """Approach 2's interval from the run-to-run noise floor (a parametric bootstrap).

    Each resample adds independent normal noise of standard deviation ``noise_sd``
    (nats/token, from a seed study) to every final loss, finds each budget's optimum
    again by the local rule, and refits the slope of ``ln N_opt`` on ``ln C`` over the
    budgets bracketed in that resample (at least 2). Returns the 95% percentile
    interval of ``a``, or None when fewer than 2 resamples give one.
    """
    rng = np.random.default_rng(seed)
    loss = runs["loss"].to_numpy(float)
    slopes = np.array([optimum_slope(runs, loss + rng.normal(0.0, noise_sd, loss.size))
                       for _ in range(n_bootstrap)])
    slopes = slopes[np.isfinite(slopes)]
    return percentile_ci(slopes, CONFIDENCE) if len(slopes) >= 2 else None


def optimum_slope(runs: pd.DataFrame, loss: np.ndarray) -> float:
    """Approach 2's ``a`` with ``loss`` (nats/token) in place of the runs' own losses.

    Each budget's optimum by the local rule, then the least-squares slope of
    ``ln N_opt`` on ``ln C`` over the budgets that bracket theirs; ``nan`` when fewer
    than 2 do. ``runs`` has the columns ``params``, ``budget`` and ``flops`` (FLOP).
    """
    table = isoflop_optima(runs["params"], loss, runs["budget"], flops=runs["flops"],
                           rule="local")
    ok = table[table["bracketed"]]
    if len(ok) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ok["budget"].to_numpy(float)),
                            np.log(ok["n_opt"].to_numpy(float)), 1)[0])


def valley_depths(runs: pd.DataFrame) -> dict[float, float]:
    """Per planned budget: how far its lower wall rises above its lowest loss
    (nats/token, :func:`scalingkit.runs.bracket.wall_depth`, the planner's measure)."""
    from scalingkit.runs.bracket import wall_depth

    return {float(budget): wall_depth(group)[0] for budget, group in runs.groupby("budget")}


def approach_1(source: str | Path, runs: pd.DataFrame, *, n_bootstrap: int,
               seed: int | None) -> dict[str, Any]:
    """Approach 1 on the store's validation curves, each point at its exact FLOP so far.

    The envelope's optimum at each compute is the local parabola's vertex
    (``EnvelopeFit(rule="local")``), not the winning run's size: on the reference
    sweep's ladder the winners alone form a staircase of a few steps, and their
    slope (0.503, 95% interval 0.28-0.65) moves with where the steps fall; the
    vertices give 0.547 (0.43-0.68).
    """
    try:
        curves = load_curves(source)
    except ValueError as exc:
        return _result(reason=str(exc))
    fpt = runs.set_index("id")["fpt"]
    curves = curves[curves["run"].isin(fpt.index)]
    flops = curves["tokens"].to_numpy(float) * fpt.loc[curves["run"]].to_numpy(float)
    try:
        fit = EnvelopeFit(rule="local", n_bootstrap=n_bootstrap, random_state=seed).fit(
            curves["params"].to_numpy(float), curves["tokens"].to_numpy(float),
            curves["loss"].to_numpy(float), flops=flops, run=curves["run"].to_numpy())
    except ValueError as exc:
        return _result(reason=f"envelope: {exc}")
    return _result(fit.a_, _ci_of(fit), n_curves=int(curves["run"].nunique()))


def approach_3(runs: pd.DataFrame, budgets: np.ndarray, *, n_bootstrap: int,
               seed: int | None, grid: str = "full") -> dict[str, Any]:
    """Approach 3: ``L(N, D)`` on the final losses, then the slope of its optima.

    The bootstrap refits ``L(N, D)`` on runs resampled with replacement
    (:class:`~scalingkit.fit.ParametricFit`'s resamples) and repeats the
    optimisation and the slope for each; resamples without an interior optimum
    at every budget are dropped.
    """
    if budgets.size < 2:
        return _result(reason=f"{budgets.size} budget; need 2 to fit N_opt = k C^a")
    try:
        fpt = flops_per_token_curve(runs["params"], runs["fpt"])
        fit = ParametricFit(grid=grid, n_bootstrap=n_bootstrap, random_state=seed).fit(
            runs["params"], runs["tokens"], runs["loss"])
    except (ValueError, RuntimeError) as exc:
        return _result(reason=f"L(N, D) fit: {exc}")
    if not fit.success_:
        return _result(reason=f"L(N, D) fit did not succeed: {fit.message_}")
    log_n = np.log(runs["params"].to_numpy(float))
    bounds = (log_n.min() - SEARCH_MARGIN, log_n.max() + SEARCH_MARGIN)
    log_c = np.log(budgets)
    a = _slope(log_c, parametric_optima(fit.coef_, budgets, fpt, bounds))
    if not np.isfinite(a):
        return _result(reason="N_opt(C) of the fitted L(N, D) lies outside "
                              f"[{np.exp(bounds[0]):.3g}, {np.exp(bounds[1]):.3g}] parameters "
                              "at some budget")
    ci = None
    if fit.bootstrap_ is not None:
        samples = [dict(zip(fit.bootstrap_, values, strict=True))
                   for values in zip(*fit.bootstrap_.values(), strict=True)]
        slopes = np.array([_slope(log_c, parametric_optima(s, budgets, fpt, bounds))
                           for s in samples])
        slopes = slopes[np.isfinite(slopes)]
        ci = percentile_ci(slopes, CONFIDENCE) if slopes.size >= 2 else None
    return _result(a, ci, alpha=fit.alpha_, beta=fit.beta_)


def fit_sweep(source: str | Path, *, n_bootstrap: int = 100, seed: int | None = 0,
              grid: str = "full", noise_sd: float | None = None,
              min_budget: float | None = None,
              max_budget: float | None = None) -> dict[str, Any]:
    """All three approaches on a sweep's run store, in the exact-FLOP convention.

    Parameters
    ----------
    source : str or Path
        A run-store folder written by ``python -m scalingkit sweep``.
    n_bootstrap : int, default=100
        Bootstrap resamples of the runs for each interval (0: no intervals).
    seed : int or None, default=0
        Seed of the bootstraps.
    grid : {"full", "small"}, default="full"
        Initial-value grid of the ``L(N, D)`` fit (Approach 3).
    noise_sd : float, optional
        The run-to-run noise floor (nats/token, from a seed study). When given,
        Approach 2's interval comes from :func:`approach_2_noise` (``ci_noise``), and
        each budget reports its valley depth and whether the depth exceeds twice
        the noise floor (``resolved``).
    min_budget : float, optional
        Fit only the runs planned at this budget (FLOP) or above; the others are
        left out of all three approaches (for a check of how much the smallest
        budgets move the estimates).
    max_budget : float, optional
        Likewise, fit only the runs planned at this budget (FLOP) or below (the sweep
        as it stood before larger budgets were added).

    Returns
    -------
    dict
        ``convention`` (``"exact"``); ``noise_sd``, ``min_budget`` and ``max_budget``
        as given;
        ``approaches``: ``"1"``, ``"2"``, ``"3"``,
        each with ``a`` (exponent of ``N_opt = k C^a``, None where it cannot be
        estimated), ``ci`` (95% bootstrap interval or None) and ``reason`` (why
        ``a`` is None, else None); ``budgets``: per budget ``budget`` (exact
        FLOP), ``planned`` (the plan's label), ``n_opt`` (Approach 2 vertex,
        parameters, None unless bracketed) and ``bracketed``.

    Raises
    ------
    ValueError
        If ``source`` is not a run store or holds no usable finished run, or
        ``min_budget`` leaves fewer than two budgets.
    """
    check_bootstrap(n_bootstrap, CONFIDENCE)
    if grid not in ("full", "small"):
        raise ValueError(f"grid must be 'full' or 'small', got {grid!r}")
    runs = done_runs(source)
    runs = runs_from_budget(runs, min_budget, source, max_budget=max_budget)
    table = budget_table(runs)
    budgets = table["budget"].to_numpy(float)
    kwargs = {"n_bootstrap": n_bootstrap, "seed": seed}
    two = approach_2(runs, table, **kwargs)
    depths = valley_depths(runs)
    rows = [{"budget": float(row.budget), "planned": float(row.planned),
             "n_opt": float(row.n_opt) if row.bracketed else None,
             "bracketed": bool(row.bracketed), "depth": depths[float(row.planned)]}
            for row in table.itertuples()]
    if noise_sd is not None:
        if not (np.isfinite(noise_sd) and noise_sd > 0):
            raise ValueError(f"noise_sd must be a positive number of nats/token, got {noise_sd!r}")
        two["ci_noise"] = (approach_2_noise(runs, noise_sd, n_bootstrap=n_bootstrap, seed=seed)
                           if n_bootstrap >= 2 else None)
        for row in rows:
            row["resolved"] = bool(row["depth"] > 2 * noise_sd)
    return {
        "convention": "exact",
        "noise_sd": noise_sd,
        "min_budget": min_budget,
        "max_budget": max_budget,
        "approaches": {"1": approach_1(source, runs, **kwargs), "2": two,
                       "3": approach_3(runs, budgets, grid=grid, **kwargs)},
        "budgets": rows,
    }
