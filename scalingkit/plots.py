"""Figures for the book. Each function takes data, draws on ``ax`` (a new one
if omitted) and returns the Axes; captions and titles belong to the chapter.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from scalingkit import flops


def _axes(ax=None, figsize=(6.0, 4.0)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def flop_ratio_grid(
    d_models=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 12288),
    n_ctxs=(128, 256, 512, 1024, 2048, 4096, 8192, 32768),
    n_layer: int = 24,
    vocab_size: int = 50257,
    convention: flops.FlopConvention | None = None,
) -> pd.DataFrame:
    """Exact training FLOP over ``6ND`` on a grid of widths and context lengths.

    N is the non-embedding parameter count plus the output head
    (:attr:`scalingkit.flops.ParamCounts.total_with_head`). Returns one row per
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


def matplotlib_lognorm(values):
    """A log colour scale spanning ``values`` (for hue by model width)."""
    from matplotlib.colors import LogNorm

    return LogNorm(vmin=float(np.min(values)), vmax=float(np.max(values)))


def _budget_labels(budgets) -> list[str]:
    return [f"{b:.2g}" for b in budgets]


def plot_isoflop_profiles(frame: pd.DataFrame, curves=None, ax=None):
    """Final loss against model size at each compute budget (IsoFLOP profiles).

    Parameters
    ----------
    frame : DataFrame
        One row per run with ``budget`` (FLOP), ``params`` and ``loss``
        (nats/token); rows with a NaN loss are skipped.
    curves : mapping, optional
        Budget (FLOP) -> ``(params_grid, loss_grid)``, e.g. a fitted parabola
        in log N, drawn as a line in that budget's colour.
    ax : Axes, optional
    """
    ax = _axes(ax)
    data = frame.dropna(subset=["loss"]).sort_values("budget")
    budgets = sorted(data["budget"].unique())
    labels = _budget_labels(budgets)
    palette = dict(zip(labels, sns.color_palette("viridis", len(budgets)), strict=True))
    data = data.assign(C=data["budget"].map(dict(zip(budgets, labels, strict=True))))
    sns.scatterplot(data=data, x="params", y="loss", hue="C", hue_order=labels,
                    palette=palette, ax=ax, s=40, zorder=3)
    for budget, (n_grid, loss_grid) in (curves or {}).items():
        label = _budget_labels([budget])[0]
        ax.plot(n_grid, loss_grid, color=palette.get(label, "grey"), lw=1.5)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("final validation loss (nats/token)")
    ax.legend(title="C (FLOP)", fontsize=8)
    return ax


def plot_compute_optimal(budgets, values, coef=None, exponent=None, label="N_opt",
                         color=None, ax=None):
    """Compute-optimal size or tokens against budget, with a power law ``coef * C**exponent``.

    Parameters
    ----------
    budgets, values : array-like
        Budgets C (FLOP) and the optimum found at each (parameters or tokens).
    coef, exponent : float, optional
        A fitted power law to draw over the budgets' range.
    label : str
        Legend label of the points (e.g. ``"N_opt"``).
    """
    ax = _axes(ax)
    budgets = np.asarray(budgets, dtype=float)
    values = np.asarray(values, dtype=float)
    (points,) = ax.plot(budgets, values, "o", color=color, label=label)
    if coef is not None and exponent is not None:
        c = np.geomspace(budgets.min() / 1.5, budgets.max() * 1.5, 100)
        ax.plot(c, coef * c**exponent, "--", color=points.get_color(), lw=1,
                label=f"{label} ∝ C^{exponent:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C (FLOP)")
    ax.legend(fontsize=8)
    return ax
