"""Figures of FLOP accounting: the exact count against ``6 N D``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from scalingkit.core import flops
from scalingkit.plots._common import _axes, matplotlib_lognorm


def flop_ratio_grid(
    d_models=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 12288),
    n_ctxs=(128, 256, 512, 1024, 2048, 4096, 8192, 32768),
    n_layer: int = 24,
    vocab_size: int = 50257,
    convention: flops.FlopConvention | None = None,
) -> pd.DataFrame:
    """Exact training FLOP over ``6ND`` on a grid of widths and context lengths.

    N is the non-embedding parameter count plus the output head
    (:attr:`scalingkit.core.flops.ParamCounts.total_with_head`). Returns one row per
    shape with ``d_model``, ``n_ctx``, ``ctx_over_width`` and ``ratio``.
    """
    rows = []
    for d in d_models:
        for t in n_ctxs:
            shape = flops.TransformerShape(d_model=d, n_layer=n_layer, n_ctx=t,
                                           vocab_size=vocab_size)
            rows.append({"d_model": d, "n_ctx": t, "ctx_over_width": t / d,
                         "ratio": flops.ratio_exact_to_6nd(shape, convention=convention)})
    return pd.DataFrame(rows)


def plot_flop_ratio(grid: pd.DataFrame, ax=None):
    """Exact/6ND against n_ctx/d_model, one colour per width, with 1 + x/6."""
    ax = _axes(ax)
    sns.scatterplot(data=grid, x="ctx_over_width", y="ratio", hue="d_model",
                    palette="viridis", hue_norm=matplotlib_lognorm(grid["d_model"]),
                    ax=ax, s=36, legend="full")
    x = np.geomspace(grid["ctx_over_width"].min(), grid["ctx_over_width"].max(), 200)
    ax.plot(x, 1 + x / 6, color="black", lw=1, ls="--", label=r"$1 + n_{ctx} / (6 d_{model})$")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$n_{ctx} / d_{model}$")
    ax.set_ylabel("exact training FLOP / 6ND")
    ax.legend(title=r"$d_{model}$", fontsize=8, ncols=2)
    return ax

