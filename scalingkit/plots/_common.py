"""Helpers shared by the figure modules: new axes, log colour scales, budget labels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def _axes(ax=None, figsize=(6.0, 4.0)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def matplotlib_lognorm(values):
    """A log colour scale spanning ``values`` (for hue by model width)."""
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=float(np.min(values)), vmax=float(np.max(values)))


def _budget_labels(budgets) -> list[str]:
    return [f"{b:.2g}" for b in budgets]


def _plain_log_y(ax) -> None:
    """Label a log loss axis with plain numbers (2.2 rather than 2.2 x 10^0)."""
    fmt = plt.FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_formatter(fmt)

