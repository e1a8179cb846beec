"""Figures of IsoFLOP sweeps: profiles, compute-optimal sizes, fitted exponents, and a
prediction made from a sweep against its outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from scalingkit.plots._common import _axes, _budget_labels


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


def plot_head_share(share: pd.DataFrame, ax=None, label: str = ""):
    """Counting the output head: parameter and FLOP ratios against model size.

    ``share`` is :func:`scalingkit.studies.porian2024.head_share`: ``params_non_embedding``,
    ``param_ratio`` (N with head over N without) and ``flop_ratio`` (exact
    training FLOP per token over ``6 N`` with N non-embedding).
    """
    ax = _axes(ax)
    suffix = f" ({label})" if label else ""
    ax.plot(share["params_non_embedding"], share["param_ratio"], "o-",
            label=f"N with head / N non-embedding{suffix}")
    ax.plot(share["params_non_embedding"], share["flop_ratio"], "s--",
            label=f"exact FLOP / 6 N D{suffix}")
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="non-embedding parameters N",
           ylabel="ratio")
    ax.legend(fontsize=8)
    return ax


def plot_exponents(table: pd.DataFrame, ax=None, reference=None):
    """Fitted ``a`` in ``N_opt ~ C^a`` with intervals, one group per step.

    ``table`` has ``step``, ``convention``, ``a``, ``a_low``, ``a_high`` (as
    :func:`scalingkit.studies.porian2024.exponent_table`); ``reference`` maps a label to a
    horizontal line (e.g. published exponents).
    """
    if table.duplicated(["step", "convention"]).any():
        raise ValueError("plot_exponents needs one row per step and convention; "
                         "select one method of the table first")
    ax = _axes(ax)
    steps = list(dict.fromkeys(table["step"]))
    conventions = list(dict.fromkeys(table["convention"]))
    width = 0.8 / max(len(conventions), 1)
    for j, conv in enumerate(conventions):
        sub = table[table["convention"] == conv].set_index("step").reindex(steps)
        x = np.arange(len(steps)) + (j - (len(conventions) - 1) / 2) * width
        err = np.vstack([sub["a"] - sub["a_low"], sub["a_high"] - sub["a"]])
        ax.errorbar(x, sub["a"], yerr=np.where(np.isfinite(err), err, 0), fmt="o",
                    capsize=3, label=conv)
    for label, value in (reference or {}).items():
        ax.axhline(value, ls=":", color="0.5")
        ax.annotate(label, (len(steps) - 0.5, value), fontsize=8, va="bottom", ha="right")
    ax.set_xticks(range(len(steps)), steps)
    ax.set(ylabel="exponent a in N_opt ~ C^a")
    ax.legend(title="counting", fontsize=8)
    return ax



def plot_prediction_outcome(runs: pd.DataFrame, best: pd.DataFrame, grid, frontier,
                            envelope_curve, outcome, ax=None):
    """A predicted run against the sweep it was predicted from: loss against compute.

    Parameters
    ----------
    runs, best : DataFrame
        ``budget`` (FLOP) and ``loss`` (nats/token): every run of the sweep, and
        the lowest loss per budget.
    grid : array-like
        Compute values (FLOP) at which the two extrapolations are drawn.
    frontier, envelope_curve : array-like
        At each ``grid`` value: the compute-optimal loss of the fitted ``L(N, D)``
        (Approach 3) and the fitted ``L(C) = E_C + (C_c / C)^alpha_C`` (nats/token).
    outcome : mapping
        The prediction record: ``budget`` and ``max_fitted_budget`` (FLOP),
        ``predicted_loss``, ``predicted_loss_envelope`` and ``actual_loss``
        (nats/token).
    ax : Axes, optional
    """
    ax = _axes(ax)
    ax.scatter(runs["budget"], runs["loss"], s=14, color="0.65", label="sweep runs")
    ax.plot(best["budget"], best["loss"], "ko", ms=5, label="lowest loss per budget")
    ax.plot(grid, frontier, color="C0", label="Approach 3 frontier")
    ax.plot(grid, envelope_curve, color="C1", ls="--", label=r"$L(C) = E_C + (C_c/C)^{\alpha_C}$")
    c = outcome["budget"]
    ax.plot(c, outcome["predicted_loss"], "s", color="C0", mfc="none", ms=9,
            label="predicted (Approach 3)")
    ax.plot(c, outcome["predicted_loss_envelope"], "D", color="C1", mfc="none", ms=8,
            label="predicted (L(C))")
    ax.plot(c, outcome["actual_loss"], "*", color="C3", ms=14, label="trained")
    ax.axvline(outcome["max_fitted_budget"], color="0.8", lw=1, ls=":")
    ax.set(xscale="log", xlabel="compute C (FLOP, exact count)",
           ylabel="validation loss (nats/token)")
    ax.legend(fontsize=8)
    return ax
