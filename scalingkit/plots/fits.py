"""Figures of scaling-law fits: residuals, intervals, allocations, objectives."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from scalingkit.core.flops import flops_6nd
from scalingkit.plots._common import _axes, matplotlib_lognorm


def plot_log_residuals(laws, params, tokens, loss, flops=None, ax=None):
    """Residuals ``log L_pred - log L_obs`` of several laws against compute.

    Parameters
    ----------
    laws : mapping
        Label -> fitted estimator with ``predict(params, tokens)`` (nats/token).
    params, tokens, loss : array-like
        Runs: N (parameters), D (tokens), observed loss (nats/token).
    flops : array-like, optional
        x axis (FLOP); default ``6 N D``.
    """
    ax = _axes(ax)
    params, tokens, loss = (np.asarray(v, dtype=float) for v in (params, tokens, loss))
    x = flops_6nd(params, tokens) if flops is None else np.asarray(flops, dtype=float)
    for label, law in laws.items():
        resid = np.log(law.predict(params, tokens)) - np.log(loss)
        ax.plot(x, resid, "o", ms=3.5, alpha=0.6, label=label)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("compute C (FLOP)")
    ax.set_ylabel("log L predicted − log L observed")
    ax.legend(fontsize=8)
    return ax


def plot_interval_panels(table: pd.DataFrame, names=None, axes=None):
    """Point estimates with intervals, one panel per parameter (a forest plot).

    Parameters
    ----------
    table : DataFrame
        Columns ``source``, ``name``, ``estimate``, ``low``, ``high`` (low/high
        may be NaN for sources without an interval).
    names : sequence of str, optional
        Parameters to show, in order; default every ``name`` in the table.
    axes : sequence of Axes, optional
        One per parameter; created in a row if omitted.

    Returns
    -------
    numpy.ndarray of Axes
    """
    names = list(dict.fromkeys(table["name"])) if names is None else list(names)
    if axes is None:
        _, axes = plt.subplots(1, len(names), figsize=(2.3 * len(names), 2.8), sharey=True)
    axes = np.atleast_1d(axes)
    sources = list(dict.fromkeys(table["source"]))
    colours = dict(zip(sources, sns.color_palette("deep", len(sources)), strict=True))
    for ax, name in zip(axes, names, strict=True):
        rows = table[table["name"] == name]
        for _, row in rows.iterrows():
            y = sources.index(row["source"])
            if np.isfinite(row["low"]) and np.isfinite(row["high"]):
                ax.plot([row["low"], row["high"]], [y, y], color=colours[row["source"]], lw=2)
            ax.plot(row["estimate"], y, "o", color=colours[row["source"]])
        ax.set_xlabel(name)
        ax.set_yticks(range(len(sources)), sources)
        ax.set_ylim(len(sources) - 0.5, -0.5)
    return axes


def plot_bootstrap_pair(samples_x, samples_y, estimate=None, xlabel="", ylabel="", ax=None):
    """Scatter of two parameters across bootstrap refits (shows flat directions)."""
    ax = _axes(ax, figsize=(4.5, 4.0))
    ax.plot(samples_x, samples_y, ".", ms=2.5, alpha=0.35, color="C0", label="bootstrap refits")
    if estimate is not None:
        ax.plot(*estimate, "*", ms=13, color="C3", label="estimate")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_allocations(laws, flops, ax=None, markers=None):
    """Compute-optimal N against compute for several fits (each a line).

    Parameters
    ----------
    laws : mapping
        Label -> object with ``optimal_allocation(flops) -> (N_opt, D_opt)``.
    flops : array-like
        Budgets (FLOP) at which to draw the lines.
    markers : mapping, optional
        Label -> ``(flops, N)`` points to overlay (e.g. per-budget optima).
    """
    ax = _axes(ax)
    flops = np.asarray(flops, dtype=float)
    for label, law in laws.items():
        n_opt, _ = law.optimal_allocation(flops)
        ax.plot(flops, n_opt, lw=1.8, label=label)
    for label, (c, n) in (markers or {}).items():
        ax.plot(c, n, "o", ms=5, mfc="none", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C (FLOP)")
    ax.set_ylabel("compute-optimal parameters N_opt")
    ax.legend(fontsize=8)
    return ax


def plot_start_objectives(objectives, best, ax=None):
    """Where each start of a multi-start fit ended: objective relative to the best."""
    ax = _axes(ax)
    obj = np.asarray(objectives, dtype=float)
    excess = np.sort(obj[np.isfinite(obj)] - best)
    frac = np.arange(1, excess.size + 1) / excess.size
    ax.plot(np.maximum(excess, 1e-16), frac, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_xlabel("final objective − best objective")
    ax.set_ylabel("fraction of starts")
    return ax


def plot_sensitivity(x, estimates, truth=None, xlabel="", ylabel="", logx=False, ax=None):
    """One or more estimates against an experiment setting, with the true value.

    Parameters
    ----------
    x : array-like
        The setting (e.g. Huber delta, half-width of a sweep).
    estimates : mapping
        Label -> array of estimates, one per ``x``.
    truth : float, optional
        Drawn as a horizontal dashed line.
    """
    ax = _axes(ax)
    for label, y in estimates.items():
        ax.plot(x, y, "o-", ms=4, label=label)
    if truth is not None:
        ax.axhline(truth, color="black", ls="--", lw=1, label="true value")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return ax


def plot_training_envelope(curves, envelope=None, ax=None):
    """Loss-vs-FLOP training curves coloured by size, with the lower envelope.

    Parameters
    ----------
    curves : DataFrame or mapping
        Columns ``params``, ``flops`` (FLOP), ``loss`` (nats/token), ``run``.
    envelope : tuple, optional
        ``(flops, loss)`` of the envelope (e.g. ``EnvelopeFit.flops_grid_``
        and ``.loss_env_``).
    """
    ax = _axes(ax)
    frame = pd.DataFrame({k: np.asarray(curves[k]) for k in ("params", "flops", "loss", "run")})
    norm = matplotlib_lognorm(frame["params"])
    cmap = plt.get_cmap("viridis")
    for _, run in frame.groupby("run"):
        run = run.sort_values("flops")
        ax.plot(run["flops"], run["loss"], color=cmap(norm(run["params"].iloc[0])), lw=1)
    if envelope is not None:
        ax.plot(*envelope, color="C3", lw=2.5, alpha=0.7, label="lower envelope")
        ax.legend(fontsize=8)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    ax.figure.colorbar(sm, ax=ax, label="parameters N")
    ax.set_xscale("log")
    ax.set_xlabel("compute C (FLOP)")
    ax.set_ylabel("loss (nats/token)")
    return ax


def plot_envelope_optima(envelopes, budgets=None, n_opt=None, ax=None):
    """Approach 1's ``N_opt`` along the compute axis, one line per envelope rule.

    Parameters
    ----------
    envelopes : mapping
        Label -> fitted :class:`~scalingkit.fit.EnvelopeFit` (its ``flops_grid_``, FLOP,
        and ``n_env_``, parameters).
    budgets, n_opt : array-like, optional
        IsoFLOP budgets (FLOP) and their parabola vertices (parameters), drawn as
        points for comparison (Approach 2).
    """
    ax = _axes(ax)
    for i, (label, env) in enumerate(envelopes.items()):
        ax.plot(env.flops_grid_, env.n_env_, ".", ms=2, color=f"C{i}",
                label=f"{label}: a = {env.a_:.3f}")
    if budgets is not None and n_opt is not None:
        ax.plot(budgets, n_opt, "ks", ms=6, mfc="none", label="IsoFLOP vertices")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute C (FLOP)")
    ax.set_ylabel("compute-optimal size N_opt (parameters)")
    ax.legend(fontsize=8, markerscale=4)
    return ax


def plot_profile_E(e_values, objective, true_E=None, fitted_E=None, ax=None):
    """The Approach 3 objective profiled over E, with the true and fitted E marked.

    Parameters
    ----------
    e_values : array_like
        Fixed values of E (nats/token).
    objective : array_like
        Best sum of Huber losses at each E (from
        :func:`scalingkit.studies.known_entropy.profile_E`).
    true_E, fitted_E : float, optional
        Vertical reference lines (nats/token).
    """
    ax = _axes(ax)
    ax.plot(e_values, objective, marker="o", ms=4, lw=1.5, color="C0")
    if true_E is not None:
        ax.axvline(true_E, color="k", lw=1.5, label=f"true H = {true_E:.4f}")
    if fitted_E is not None:
        ax.axvline(fitted_E, color="C3", ls="--", lw=1.5, label=f"fitted E = {fitted_E:.4f}")
    ax.set_xlabel("fixed E (nats/token)")
    ax.set_ylabel("best objective (sum of Huber losses)")
    ax.legend(fontsize=8)
    return ax

