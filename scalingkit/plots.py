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


# --------------------------------------------------------------------------
# Scaling-law fits (chapters "Fitting scaling laws" and "Replicating Chinchilla")


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
    x = 6 * params * tokens if flops is None else np.asarray(flops, dtype=float)
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


def plot_loss_curves(results, ax=None, show_train=True, floor=None, floor_label="floor"):
    """Validation (and optionally training) loss against training tokens, one run each.

    Parameters
    ----------
    results : mapping of str to TrainResult or dict
        Label -> a :class:`scalingkit.train.TrainResult` or its ``to_dict()``.
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
    """Learning rate against training tokens for each :class:`~scalingkit.train.TrainConfig`.

    Each curve runs from 0 to that config's own token budget.
    """
    from scalingkit.train import learning_rate

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


# ------------------------------------------------------------------ Kaplan's laws


def _plain_log_y(ax) -> None:
    """Label a log loss axis with plain numbers (2.2 rather than 2.2 x 10^0)."""
    fmt = plt.FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_formatter(fmt)


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
        from :func:`scalingkit.kaplan.noise_frame`. The loss axis is reversed, so
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


def plot_profile_E(e_values, objective, true_E=None, fitted_E=None, ax=None):
    """The Approach 3 objective profiled over E, with the true and fitted E marked.

    Parameters
    ----------
    e_values : array_like
        Fixed values of E (nats/token).
    objective : array_like
        Best sum of Huber losses at each E (from
        :func:`scalingkit.known_entropy.profile_E`).
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


def plot_head_share(share: pd.DataFrame, ax=None, label: str = ""):
    """Counting the output head: parameter and FLOP ratios against model size.

    ``share`` is :func:`scalingkit.porian.head_share`: ``params_non_embedding``,
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
    :func:`scalingkit.porian.exponent_table`); ``reference`` maps a label to a
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


def plot_inference_allocation(table: pd.DataFrame, ax=None, chinchilla_ratio: float = 20.0):
    """Tokens per parameter of the inference-aware model against inference demand.

    ``table`` is :func:`scalingkit.inference.allocation_table`; the x axis is
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
