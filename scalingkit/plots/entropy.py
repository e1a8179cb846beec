"""Figures of the entropy limit: bits/byte against compute, the known-entropy fit."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from scalingkit.plots._common import _axes, matplotlib_lognorm


def plot_bits_per_byte_vs_compute(points, baselines=None, band=None, ax=None):
    """Our models' validation bits/byte against training compute, with reference lines.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per run, columns ``flops`` (FLOP) and ``bits_per_byte``; a ``params``
        column colours the points by model size.
    baselines : mapping of str to float, optional
        Label -> bits/byte, drawn as horizontal lines (compressors, n-grams, ...).
    band : tuple (low, high, label), optional
        A shaded horizontal range in bits/byte (e.g. Shannon's estimate).
    """
    ax = _axes(ax, figsize=(7.0, 4.5))
    if len(points) == 0:
        pass  # no runs yet: reference lines only
    elif "params" in points:
        sc = ax.scatter(points["flops"], points["bits_per_byte"], c=points["params"],
                        norm=matplotlib_lognorm(points["params"]), cmap="viridis", s=28,
                        zorder=3)
        plt.colorbar(sc, ax=ax, label="parameters N")
    else:
        ax.scatter(points["flops"], points["bits_per_byte"], s=28, zorder=3)
    for i, (label, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, color=f"C{i % 10}", ls=("--", ":", "-.")[i % 3], lw=1.2)
        ax.annotate(f"{label} {value:.2f}", (1.0, value), xycoords=("axes fraction", "data"),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=7,
                    color=f"C{i % 10}", annotation_clip=False)
    if band is not None:
        lo, hi, label = band
        ax.axhspan(lo, hi, color="0.85", zorder=0, label=label)
        ax.legend(fontsize=8, loc="lower left")
    ax.set_xscale("log")
    ax.set_xlabel("training compute C (FLOP)")
    ax.set_ylabel("validation cross-entropy (bits/byte)")
    return ax


def plot_known_entropy(runs, true_entropy, fitted_E, E_ci=None, law=None, ax=None):
    """Final losses of a known-entropy sweep against tokens, with the true and fitted floor.

    Parameters
    ----------
    runs : pandas.DataFrame
        Columns ``params`` (N), ``tokens`` (D) and ``loss`` (nats/token).
    true_entropy : float
        The source's entropy rate H (nats/token), a solid line.
    fitted_E : float
        The fitted irreducible loss (nats/token), a dashed line.
    E_ci : (float, float), optional
        Interval on E, shaded.
    law : callable (params, tokens) -> loss, optional
        The fitted law, drawn for each model size over the tokens of the sweep.
    """
    ax = _axes(ax)
    sizes = np.sort(runs["params"].unique())
    norm = matplotlib_lognorm(sizes)
    cmap = plt.get_cmap("viridis")
    d_grid = np.geomspace(runs["tokens"].min() / 1.5, runs["tokens"].max() * 1.5, 100)
    for n in sizes:
        sub = runs[runs["params"] == n].sort_values("tokens")
        colour = cmap(norm(n))
        ax.scatter(sub["tokens"], sub["loss"], color=colour, s=24, zorder=3,
                   label=f"N = {n:,.0f}")
        if law is not None:
            ax.plot(d_grid, law(np.full_like(d_grid, n), d_grid), color=colour, lw=1,
                    alpha=0.7)
    ax.axhline(true_entropy, color="k", lw=1.5, label=f"true H = {true_entropy:.4f}")
    ax.axhline(fitted_E, color="C3", ls="--", lw=1.5, label=f"fitted E = {fitted_E:.4f}")
    if E_ci is not None:
        ax.axhspan(E_ci[0], E_ci[1], color="C3", alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("training tokens D")
    ax.set_ylabel("validation loss (nats/token)")
    ax.legend(fontsize=7, ncol=2)
    return ax

