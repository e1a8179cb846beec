"""Figures of the hyperparameter study: the learning-rate grid, the rule, a recipe knob."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scalingkit.plots._common import _axes, matplotlib_lognorm


def plot_lr_grid(frame: pd.DataFrame, optima: pd.DataFrame | None = None, axes=None):
    """Final loss against learning rate, one line per size, one panel per budget.

    Parameters
    ----------
    frame : DataFrame
        Grid runs with ``budget`` (FLOP), ``params``, ``lr`` and ``loss`` (nats/token).
    optima : DataFrame, optional
        From :func:`scalingkit.studies.hparams.lr_rule.lr_optima`; interior vertices are
        marked.
    axes : sequence of Axes, optional
        One per budget.

    Returns
    -------
    numpy.ndarray of Axes
    """
    budgets = sorted(frame["budget"].unique())
    if axes is None:
        _, axes = plt.subplots(1, len(budgets), figsize=(5.0 * len(budgets), 4.0),
                               squeeze=False, sharey=True)
        axes = axes[0]
    norm = matplotlib_lognorm(frame["params"])
    cmap = plt.get_cmap("viridis")
    for ax, budget in zip(axes, budgets, strict=True):
        runs = frame[frame["budget"] == budget]
        for n, cell in runs.groupby("params"):
            cell = cell.sort_values("lr")
            ax.plot(cell["lr"], cell["loss"], "o-", color=cmap(norm(n)), ms=4,
                    label=f"{n / 1e3:,.0f}k")
            if optima is not None:
                hit = optima[(optima["budget"] == budget) & (optima["params"] == n)
                             & optima["interior"]]
                ax.plot(hit["lr_opt"], hit["loss_opt"], "*", color=cmap(norm(n)), ms=11,
                        mec="k", mew=0.5)
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate")
        ax.set_title(f"C = {budget:.2g} FLOP")
    axes[0].set_ylabel("final validation loss (nats/token)")
    axes[-1].legend(title="parameters", fontsize=8)
    return np.asarray(axes)


def plot_lr_rule(optima: pd.DataFrame, result: dict, ax=None):
    """Best learning rate against model size, with the fitted rule at each budget.

    Parameters
    ----------
    optima : DataFrame
        From :func:`~scalingkit.studies.hparams.lr_rule.lr_optima`.
    result : dict
        From :func:`~scalingkit.studies.hparams.lr_rule.fit_lr_rule`.
    ax : Axes, optional
    """
    from scalingkit.runs.spec import rule_lr

    ax = _axes(ax)
    rule = result["rule"]
    used = optima[optima["interior"]]
    for i, (budget, cells) in enumerate(used.groupby("budget")):
        color = f"C{i}"
        ax.plot(cells["params"], cells["lr_opt"], "os^D"[i % 4], color=color, ls="none",
                label=f"best rate, C = {budget:.2g} FLOP")
        n = np.geomspace(cells["params"].min(), cells["params"].max(), 30)
        ax.plot(n, rule_lr(rule, n, budget), "-", color=color, lw=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("best peak learning rate")
    ax.legend(fontsize=8, title="lines: the fitted rule")
    return ax


def plot_recipe_knob(frame: pd.DataFrame, column: str, ax=None, xlabel: str | None = None,
                     logx: bool = True):
    """Final loss against one recipe setting, one line per model size.

    Parameters
    ----------
    frame : DataFrame
        Runs with ``params``, ``loss`` (nats/token) and the setting ``column``.
    column : str
    ax : Axes, optional
    xlabel : str, optional
    logx : bool, default=True
    """
    ax = _axes(ax)
    norm = matplotlib_lognorm(frame["params"])
    cmap = plt.get_cmap("viridis")
    for n, cell in frame.groupby("params"):
        cell = cell.sort_values(column)
        ax.plot(cell[column], cell["loss"], "o-", color=cmap(norm(n)), label=f"{n / 1e3:,.0f}k")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or column)
    ax.set_ylabel("final validation loss (nats/token)")
    ax.legend(title="parameters", fontsize=8)
    return ax
