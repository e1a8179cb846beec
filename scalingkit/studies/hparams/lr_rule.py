"""The learning-rate rule ``lr*(N)`` fitted to a grid of rates x sizes x budgets.

For each (budget, size) cell of the grid the best rate is located by a parabola in
``ln lr`` through the lowest final loss and its two neighbours (:func:`lr_optima`);
a cell whose lowest loss sits at the smallest or largest rate tried has no interior
optimum and is reported, not used. The rule

    ln lr*(N) = ln coef - exponent * ln(N / n_ref)

is then fitted by least squares to the interior optima (:func:`fit_lr_rule`), with a
pairs bootstrap over cells for the intervals. A second fit adds ``+ g ln(C / C_ref)``
to ask whether the run's length (its budget ``C``) moves the best rate at fixed size.

Units: ``N`` parameters (total count), ``C`` FLOP (exact), learning rates per step,
losses nats/token.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scalingkit.fit.optimum_rule import parabola_minimum
from scalingkit.fit.stats import percentile_ci
from scalingkit.runs.spec import rule_lr  # noqa: F401  (the rule's one home)

#: Columns of :func:`lr_optima`.
OPTIMA_COLUMNS = ("budget", "params", "n_rates", "best_lr_sampled", "lr_opt", "loss_opt",
                  "interior", "reason")


def _cell_optimum(lr: np.ndarray, loss: np.ndarray) -> tuple[float, float, str]:
    """``(lr_opt, loss_opt, reason)`` of one cell; NaNs and a reason when not interior."""
    order = np.argsort(lr)
    lr, loss = lr[order], loss[order]
    best = int(np.argmin(loss))
    if lr.size < 3:
        return float("nan"), float("nan"), f"{lr.size} rates; at least 3 are needed"
    if best in (0, lr.size - 1):
        edge = "smallest" if best == 0 else "largest"
        return float("nan"), float("nan"), f"lowest loss at the {edge} rate tried"
    window = slice(best - 1, best + 2)
    x_opt, l_opt, _ = parabola_minimum(np.log(lr[window]), loss[window])
    return float(np.exp(x_opt)), float(l_opt), ""


def lr_optima(frame: pd.DataFrame) -> pd.DataFrame:
    """The best learning rate of every (budget, size) cell of a grid.

    Parameters
    ----------
    frame : DataFrame
        Runs with ``budget`` (FLOP), ``params`` (parameters), ``lr`` and ``loss``
        (final validation loss, nats/token); runs without a finite loss (diverged,
        unfinished) count as missing.

    Returns
    -------
    DataFrame
        One row per cell (:data:`OPTIMA_COLUMNS`): ``lr_opt`` and ``loss_opt`` are the
        parabola's vertex (NaN unless ``interior``), ``best_lr_sampled`` the best rate
        tried, and ``reason`` why a cell has no interior optimum.
    """
    missing = {"budget", "params", "lr", "loss"} - set(frame.columns)
    if missing:
        raise ValueError(f"runs lack columns {sorted(missing)}")
    data = frame[np.isfinite(frame["loss"].astype(float))]
    if data.empty:
        raise ValueError("no finished runs with a loss")
    rows = []
    for (budget, params), cell in data.groupby(["budget", "params"]):
        lr = cell["lr"].to_numpy(float)
        loss = cell["loss"].to_numpy(float)
        lr_opt, loss_opt, reason = _cell_optimum(lr, loss)
        rows.append({"budget": float(budget), "params": float(params), "n_rates": int(lr.size),
                     "best_lr_sampled": float(lr[np.argmin(loss)]), "lr_opt": lr_opt,
                     "loss_opt": loss_opt, "interior": not reason, "reason": reason})
    return pd.DataFrame(rows, columns=list(OPTIMA_COLUMNS))


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(x, y, rcond=None)[0]


def _bootstrap(x: np.ndarray, y: np.ndarray, ln_n: np.ndarray, ln_c: np.ndarray,
               n_boot: int, seed: int) -> np.ndarray:
    """Pairs-bootstrap coefficients; resamples that cannot identify every term are skipped."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        idx = rng.integers(0, y.size, y.size)
        if np.unique(ln_n[idx]).size < 2 or (x.shape[1] > 2 and np.unique(ln_c[idx]).size < 2):
            continue
        if np.linalg.matrix_rank(x[idx]) < x.shape[1]:
            continue
        out.append(_lstsq(x[idx], y[idx]))
    return np.array(out)


def fit_lr_rule(optima: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0,
                confidence: float = 0.95) -> dict[str, Any]:
    """Fit the learning-rate rule to the interior cells of a grid.

    With cells at one budget the rule is ``lr*(N) = coef (N / n_ref)^(-exponent)``.
    With several budgets it gains a budget term, ``(C / c_ref)^(-budget_exponent)``:
    a longer run (more tokens at the same size) may want a lower peak rate, and a
    size-only fit to cells whose sizes grow with the budget would read that as a
    steeper fall with size.

    Parameters
    ----------
    optima : DataFrame
        From :func:`lr_optima`.
    n_boot : int, default=2000
        Bootstrap resamples of the cells (pairs bootstrap).
    seed : int, default=0
        Seed of the bootstrap.
    confidence : float, default=0.95

    Returns
    -------
    dict
        ``rule``: what :class:`scalingkit.runs.sweep.SweepSpec` takes as ``lr_rule``
        (``coef``, ``exponent``, ``n_ref`` (geometric mean of the fitted sizes),
        ``n_min``/``n_max`` (their range) and, with several budgets,
        ``budget_exponent``, ``c_ref``, ``c_min``, ``c_max``); ``exponent_ci``,
        ``budget_exponent_ci``; ``residual_sd`` (of ``ln lr*``); ``size_only``: the
        fit without a budget term, for comparison; ``cells`` and ``cells_used``.

    Raises
    ------
    ValueError
        With fewer than 3 interior cells or fewer than 2 distinct sizes among them.
    """
    used = optima[optima["interior"]]
    if len(used) < 3 or used["params"].nunique() < 2:
        raise ValueError(f"{len(used)} cells with an interior optimum over "
                         f"{used['params'].nunique()} sizes; the rule needs at least 3 cells "
                         "and 2 sizes (widen the grid of rates)")
    ln_n = np.log(used["params"].to_numpy(float))
    ln_c = np.log(used["budget"].to_numpy(float))
    y = np.log(used["lr_opt"].to_numpy(float))
    n_ref, c_ref = float(np.exp(ln_n.mean())), float(np.exp(ln_c.mean()))
    params = used["params"].to_numpy(float)
    budgets = used["budget"].to_numpy(float)
    sizes = {"n_ref": n_ref, "n_min": float(params.min()), "n_max": float(params.max())}
    x1 = np.column_stack([np.ones_like(y), -(ln_n - np.log(n_ref))])
    b1 = _lstsq(x1, y)
    joint = np.ptp(ln_c) > 0 and len(used) > 3
    x = np.column_stack([x1, -(ln_c - np.log(c_ref))]) if joint else x1
    b = _lstsq(x, y)
    boot = _bootstrap(x, y, ln_n, ln_c, n_boot, seed)
    rule = {"coef": float(np.exp(b[0])), "exponent": float(b[1]), **sizes}
    out: dict[str, Any] = {"rule": rule, "exponent_ci": percentile_ci(boot[:, 1], confidence)}
    if joint:
        rule.update(budget_exponent=float(b[2]), c_ref=c_ref,
                    c_min=float(budgets.min()), c_max=float(budgets.max()))
        out["budget_exponent_ci"] = percentile_ci(boot[:, 2], confidence)
    dof = y.size - x.shape[1]
    out.update({
        "coef_ci": [float(np.exp(v)) for v in percentile_ci(boot[:, 0], confidence)],
        "residual_sd": float(np.sqrt(((y - x @ b) ** 2).sum() / dof)) if dof > 0 else None,
        "size_only": {"coef": float(np.exp(b1[0])), "exponent": float(b1[1]), **sizes,
                      "residual_sd": float(np.std(y - x1 @ b1, ddof=2)) if y.size > 2
                      else None},
        "confidence": confidence, "n_boot": int(n_boot), "n_boot_used": int(len(boot)),
        "seed": int(seed), "cells": int(len(optima)), "cells_used": int(len(used)),
    })
    return out


def read_lr_rule(path: str) -> dict[str, float]:
    """The ``rule`` of a file written by ``python -m scalingkit hparams fit-lr --output``.

    Raises
    ------
    ValueError
        Naming the file, if it is missing, not JSON, or has no valid ``rule``.
    """
    import json
    from pathlib import Path

    from scalingkit.runs.sweep import SweepSpec

    try:
        data = json.loads(Path(path).read_text())
        rule = data["rule"]
    except FileNotFoundError:
        raise ValueError(f"lr rule file {path} does not exist") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ValueError(f"{path} is not an lr rule file (JSON with a 'rule' object, as "
                         "written by 'hparams fit-lr --output')") from None
    try:
        return dict(SweepSpec(budgets=(1.0,), lr_rule=rule).lr_rule or {})
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
