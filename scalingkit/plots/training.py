"""Figures of training runs: loss curves, schedules, Kaplan's laws, noise scale."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from scalingkit.plots._common import _axes, _plain_log_y, matplotlib_lognorm


def plot_loss_curves(results, ax=None, show_train=True, floor=None, floor_label="floor"):
    """Validation (and optionally training) loss against training tokens, one run each.

    Parameters
    ----------
    results : mapping of str to TrainResult or dict
        Label -> a :class:`scalingkit.core.train.TrainResult` or its ``to_dict()``.
    show_train : bool, default=True
        Also draw the training-loss curve (thin, same colour).
    floor : float, optional
        A horizontal reference loss (nats/token), e.g. an entropy rate.
    """
    ax = _axes(ax)
    for i, (label, res) in enumerate(results.items()):
        rec = res if isinstance(res, dict) else res.to_dict()
        colour = f"C{i}"
        if show_train and rec["train_curve"]:
            ax.plot([p["tokens"] for p in rec["train_curve"]],
                    [p["loss"] for p in rec["train_curve"]], color=colour, lw=0.8, alpha=0.45)
        ax.plot([p["tokens"] for p in rec["curve"]], [p["loss"] for p in rec["curve"]],
                color=colour, lw=2, marker="o", ms=3, label=f"{label} (validation)")
    if floor is not None:
        ax.axhline(floor, color="0.3", ls="--", lw=1, label=floor_label)
    ax.set_xlabel("training tokens D")
    ax.set_ylabel("loss (nats/token)")
    ax.legend(fontsize=8)
    return ax


def plot_lr_schedules(configs, ax=None, n_points=400):
    """Learning rate against training tokens for each :class:`~scalingkit.core.train.TrainConfig`.

    Each curve runs from 0 to that config's own token budget.
    """
    from scalingkit.core.train import learning_rate

    ax = _axes(ax)
    for i, (label, cfg) in enumerate(configs.items()):
        end = cfg.steps * cfg.tokens_per_step
        tokens = np.linspace(0, end, n_points)
        ax.plot(tokens, [learning_rate(cfg, t) for t in tokens], color=f"C{i}", lw=2,
                label=label)
    ax.set_xlabel("training tokens D")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=8)
    return ax


def plot_power_law(x, loss, predict=None, ax=None, label=None, xlabel="non-embedding parameters N",
                   color="C0", marker="o"):
    """Loss against one variable on log-log axes, with a fitted power law as a line.

    Parameters
    ----------
    x, loss : array-like
        The variable (parameters or tokens) and the loss (nats/token).
    predict : callable, optional
        ``predict(x) -> loss`` of a fit (e.g. ``KaplanNFit.predict``), drawn over the
        range of ``x``.
    label : str, optional
        Legend label of the fitted line.
    """
    ax = _axes(ax)
    x, loss = np.asarray(x, dtype=float), np.asarray(loss, dtype=float)
    ax.scatter(x, loss, color=color, marker=marker, zorder=3)
    if predict is not None:
        grid = np.geomspace(x.min() / 1.3, x.max() * 1.3, 100)
        ax.plot(grid, predict(grid), color=color, lw=1.5, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_y(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss (nats/token)")
    if label is not None:
        ax.legend(fontsize=8)
    return ax


def plot_validation_curves(curves, ax=None, colorbar_label="non-embedding parameters N",
                           mark_best=False):
    """Validation loss against training tokens, one line per run, coloured by its key.

    Parameters
    ----------
    curves : mapping of number to DataFrame
        Key (a size N or a subset D) -> columns ``tokens`` and ``loss`` (nats/token).
    mark_best : bool, default=False
        Mark each curve's lowest point (the early-stopping loss).
    """
    ax = _axes(ax)
    norm = matplotlib_lognorm(list(curves))
    cmap = plt.get_cmap("viridis")
    for key, frame in sorted(curves.items()):
        colour = cmap(norm(key))
        ax.plot(frame["tokens"], frame["loss"], color=colour, lw=1.5)
        if mark_best:
            best = frame.loc[frame["loss"].idxmin()]
            ax.plot(best["tokens"], best["loss"], "o", color=colour, mec="k", ms=6)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    ax.figure.colorbar(sm, ax=ax, label=colorbar_label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_y(ax)
    ax.set_xlabel("training tokens seen")
    ax.set_ylabel("validation loss (nats/token)")
    return ax


def plot_overfit_map(params, tokens, penalty, thresholds=None, ax=None):
    """Runs on the (N, D) plane coloured by their overfitting penalty, with threshold lines.

    Parameters
    ----------
    params, tokens : array-like
        Non-embedding parameters N and distinct training tokens D of each run.
    penalty : array-like
        Relative loss excess over the same size on ample data, in percent.
    thresholds : mapping of str to (float, float), optional
        Label -> ``(k, r)`` of a rule ``D = k N^r`` (tokens), drawn as lines.
    """
    ax = _axes(ax)
    params, tokens = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
    points = ax.scatter(params, tokens, c=np.asarray(penalty, dtype=float), cmap="magma_r",
                        s=60, edgecolors="k", zorder=3)
    ax.figure.colorbar(points, ax=ax, label="loss excess over ample data (%)")
    grid = np.geomspace(params.min() / 1.5, params.max() * 1.5, 50)
    top = tokens.max() * 3
    for i, (label, (k, r)) in enumerate((thresholds or {}).items()):
        ax.plot(grid, k * grid**r, color=f"C{i}", ls="--" if i else "-", label=label)
        top = max(top, 1.5 * k * grid[-1] ** r)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xticks(sorted(set(params)))  # label the sizes that were run
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylim(tokens.min() / 3, top)
    ax.set_xlabel("non-embedding parameters N")
    ax.set_ylabel("distinct training tokens D")
    if thresholds:
        ax.legend(fontsize=8)
    return ax


def plot_shape(aspect, loss, labels=None, ax=None):
    """Loss excess over the best shape (percent) against the aspect ratio d_model / n_layer.

    Parameters
    ----------
    aspect, loss : array-like
        Aspect ratios and losses (nats/token) of models of about the same size.
    labels : sequence of str, optional
        Text placed beside each point (e.g. ``"4 x 48"``).
    """
    ax = _axes(ax)
    aspect, loss = np.asarray(aspect, dtype=float), np.asarray(loss, dtype=float)
    excess = 100 * (loss / loss.min() - 1)
    order = np.argsort(aspect)
    ax.plot(aspect[order], excess[order], "o-", color="C0")
    for i, text in enumerate(labels or []):
        ax.annotate(text, (aspect[i], excess[i]), textcoords="offset points", xytext=(5, 5),
                    fontsize=8)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("aspect ratio d_model / n_layer")
    ax.set_ylabel("loss above the best shape (%)")
    return ax


def plot_noise_scale(frame, ax=None):
    """The gradient noise scale B_simple (tokens) against the loss, one line per size.

    Parameters
    ----------
    frame : DataFrame
        Columns ``params``, ``loss`` (nats/token) and ``b_simple_tokens`` (tokens), as
        from :func:`scalingkit.studies.kaplan2020.noise_frame`. The loss axis is reversed, so
        training proceeds from left to right.
    """
    ax = _axes(ax)
    norm = matplotlib_lognorm(frame["params"])
    cmap = plt.get_cmap("viridis")
    for n, run in frame.groupby("params"):
        run = run[run["b_simple_tokens"] > 0].sort_values("step")
        ax.plot(run["loss"], run["b_simple_tokens"], "o-", color=cmap(norm(n)), ms=4, lw=0.8)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    ax.figure.colorbar(sm, ax=ax, label="non-embedding parameters N")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xticks([1.5, 2, 3, 4, 5])
    ax.invert_xaxis()
    ax.set_xlabel("training loss at the measurement (nats/token)")
    ax.set_ylabel("noise scale B_simple (tokens)")
    return ax

