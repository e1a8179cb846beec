"""Figures of inference-aware allocation."""

from __future__ import annotations

import pandas as pd

from scalingkit.plots._common import _axes


def plot_inference_allocation(table: pd.DataFrame, ax=None, chinchilla_ratio: float = 20.0):
    """Tokens per parameter of the inference-aware model against inference demand.

    ``table`` is :func:`scalingkit.studies.inference.allocation_table`; the x axis is
    inference tokens over the Chinchilla-optimal training tokens, and the right
    axis shows the FLOP saved against serving the Chinchilla-optimal model.
    """
    ax = _axes(ax)
    base_tokens = float(table["tokens"].iloc[0] / table["tokens_ratio"].iloc[0])
    x = table["inference_tokens"] / base_tokens
    keep = x > 0
    ax.plot(x[keep], table["tokens_per_param"][keep], "o-", label="inference-aware D / N")
    ax.axhline(chinchilla_ratio, ls=":", color="0.5", label=f"D / N = {chinchilla_ratio:g}")
    ax.set(xscale="log", yscale="log", xlabel="inference tokens / Chinchilla training tokens",
           ylabel="training tokens per parameter D / N")
    right = ax.twinx()
    right.plot(x[keep], 100 * table["saving"][keep], "s--", color="C2", label="FLOP saved")
    right.set(ylabel="total FLOP saved (%)")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    return ax

