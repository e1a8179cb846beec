"""Analysis of the Porian et al. (2024) ladder: read each rung's store, find each budget's
optimum, fit ``N_opt = k C^a`` under both ways of counting, and the counting experiment.

Units: N in parameters, D in tokens, C in FLOP, loss in nats/token.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalingkit.core import flops
from scalingkit.core.models import shape_for_params
from scalingkit.fit import ScalingFitWarning, compute_optimal_allocation, percentile_ci
from scalingkit.studies.porian2024.plan import CONVENTIONS

#: The headline of ``porian fit --output``'s ``summary``: how the optimum is found and
#: which way of counting N and C (:func:`rung_summary`). ``"own"``: each rung in the
#: count its budgets were planned in, as Porian et al. measured each step: a rung whose
#: budgets are ``6 N D`` with the non-embedding N (Kaplan-like) in ``"kaplan"``, every
#: other rung in ``"with_head"`` (exact FLOP, N with the output head). Only in its own
#: count is a budget an IsoFLOP profile: its runs share that count's FLOP.
SUMMARY_METHOD = "parabola on bracketed budgets"
SUMMARY_CONVENTION = "own"


def rung_frame(source: str | Path) -> pd.DataFrame:
    """Finished runs of one rung's run store, with both parameter counts.

    Parameters
    ----------
    source : str or Path
        A run store (or its export without checkpoints).

    Returns
    -------
    pandas.DataFrame
        ``budget`` (FLOP, the rung's own count), ``params_non_embedding``,
        ``params_with_head``, ``tokens``, ``flops_exact`` (FLOP),
        ``flops_kaplan`` (``6 N D`` with the non-embedding N, FLOP),
        ``loss`` (validation, nats/token) and ``budget_flops`` (the count the
        budgets were planned in: ``"kaplan"`` or ``"exact"``).

    Raises
    ------
    ValueError
        If ``source`` is not a run store or holds no finished run.
    """
    from scalingkit.runs.frames import open_store, run_frame

    store = open_store(source)
    frame = run_frame(store)
    counts = {r.id: r.plan.get("budget_flops") or "exact" for r in store.records()}
    frame["budget_flops"] = frame["id"].map(counts)
    loss = pd.to_numeric(frame.get("final_loss"), errors="coerce")
    frame = frame[(frame["status"] == "done") & np.isfinite(loss)]
    if frame.empty:
        raise ValueError(f"run store {source} has no finished runs with a loss")
    tokens = frame["tokens_trained"].astype(int)
    out = pd.DataFrame({
        "budget": frame["budget"].astype(float),
        "params_non_embedding": frame["params_non_embedding"].astype(int),
        "params_with_head": frame["params_with_head"].astype(int), "tokens": tokens,
        "flops_exact": frame["flops_per_token"].astype(float) * tokens,
        "flops_kaplan": flops.flops_6nd(frame["params_non_embedding"].astype(float), tokens),
        "loss": frame["final_loss"].astype(float),
        "budget_flops": frame["budget_flops"],
    })
    return out.sort_values(["budget", "params_with_head"], ignore_index=True)


#: How :func:`fit_exponent` finds each budget's optimum.
#: ``"parabola"``: the vertex of a parabola in ``ln N`` through every run of every
#: budget (Approach 2 in its textbook form, :class:`scalingkit.fit.IsoFLOPFit` with
#: ``rule="all"``), extrapolated or not; NaN, with a note, if a budget has no vertex.
#: ``"optimum"``: :func:`scalingkit.runs.optimum.compute_optimal`'s rule, the vertex of a
#: local parabola (the sizes nearest the lowest loss) where a budget brackets its
#: minimum, else the best sampled size (a censored value: the true optimum lies
#: beyond the sampled edge).
#: ``"parametric"``: Approach 3, ``L(N, D) = E + A/N^alpha + B/D^beta`` fitted to all
#: runs (:class:`scalingkit.fit.ParametricFit`), ``a = beta / (alpha + beta)``; it
#: needs no bracketed minimum, but extrapolates when the optimum lies outside the runs.
METHODS = ("parabola", "optimum", "parametric")


def _columns(frame: pd.DataFrame, convention: str) -> pd.DataFrame:
    """``frame`` with ``params`` and ``flops`` taken from ``convention``'s counts."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose one of {CONVENTIONS}")
    n_col, c_col = (("params_non_embedding", "flops_kaplan") if convention == "kaplan"
                    else ("params_with_head", "flops_exact"))
    return pd.DataFrame({"budget": frame["budget"].to_numpy(),
                         "params": frame[n_col].to_numpy(dtype=float),
                         "tokens": frame["tokens"].to_numpy(dtype=float),
                         "loss": frame["loss"].to_numpy(dtype=float),
                         "flops_exact": frame[c_col].to_numpy(dtype=float)})


def _optima(data: pd.DataFrame) -> pd.DataFrame:
    """:func:`~scalingkit.runs.optimum.compute_optimal` on :func:`_columns`, with ``compute``."""
    from scalingkit.runs.optimum import compute_optimal

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingFitWarning)  # extrapolated vertices are handled
        table, _ = compute_optimal(data)
    compute = data.groupby("budget")["flops_exact"].apply(
        lambda c: float(np.exp(np.log(c).mean())))
    return table.assign(compute=compute.loc[table["budget"]].to_numpy())


def _optimum_exponent(data: pd.DataFrame) -> tuple[float, float]:
    """``(a, k)``: ``N_opt = k C^a`` through the per-budget optima of ``data``."""
    table = _optima(data)
    a, log_k = np.polyfit(np.log(table["compute"]), np.log(table["n_opt"]), 1)
    return float(a), float(np.exp(log_k))


def optimum_table(frame: pd.DataFrame, convention: str = "with_head") -> pd.DataFrame:
    """Each budget's compute-optimal run under ``convention`` (method ``"optimum"``).

    Parameters
    ----------
    frame : DataFrame
        As from :func:`rung_frame`.
    convention : {"kaplan", "with_head"}, default="with_head"

    Returns
    -------
    DataFrame
        :func:`scalingkit.runs.optimum.compute_optimal`'s table (``budget``, ``n_opt``
        (parameters), ``d_opt`` (tokens), ``loss_opt`` (nats/token),
        ``tokens_per_param``, ``bracketed``, ``method``) plus ``compute`` (FLOP,
        the geometric mean of the budget's runs in ``convention``'s count).
    """
    return _optima(_columns(frame, convention))


def fit_exponent(frame: pd.DataFrame, convention: str = "with_head", *, n_bootstrap: int = 200,
                 random_state: int | None = 0, method: str = "parabola") -> dict[str, Any]:
    """Fit ``N_opt = k C^a`` under one counting convention.

    Runs are grouped by their planned ``budget``; each group's compute is the
    geometric mean of its runs' compute in ``convention``, and its optimum is
    found over that convention's ``N``.

    Parameters
    ----------
    frame : DataFrame
        As from :func:`rung_frame` (or :func:`counting_experiment`).
    convention : {"kaplan", "with_head"}, default="with_head"
    n_bootstrap : int, default=200
        Bootstrap resamples (runs resampled within each budget) for the interval
        on ``a`` (0: none).
    random_state : int or None, default=0
    method : {"parabola", "optimum", "parametric"}, default="parabola"
        How the optimum is found (:data:`METHODS`).

    Returns
    -------
    dict
        ``convention``, ``method``, ``a``, ``a_low``, ``a_high`` (95 % bootstrap
        interval, NaN without bootstrap), ``k`` (NaN for ``"parametric"``),
        ``n_runs``, ``n_budgets``, ``n_edge`` (budgets whose lowest loss is at
        the smallest or largest size: their optimum was not bracketed) and
        ``note`` (why ``a`` is NaN, if it is: e.g. a budget without a parabola
        minimum).
    """
    from scalingkit.fit import IsoFLOPFit

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    data = _columns(frame, convention)
    edges = sum(int(g["loss"].to_numpy()[np.argsort(g["params"].to_numpy())].argmin()
                    in (0, len(g) - 1)) for _, g in data.groupby("budget"))
    note = ""
    if method == "parametric":
        from scalingkit.fit import ParametricFit

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScalingFitWarning)
            fit = ParametricFit(n_bootstrap=n_bootstrap, random_state=random_state).fit(
                data["params"], data["tokens"], data["loss"])
        a, k = fit.a_, math.nan
        ci = fit.ci_["a"] if fit.ci_ else [math.nan, math.nan]
    elif method == "optimum":
        a, k = _optimum_exponent(data)
        ci = [math.nan, math.nan]
        if n_bootstrap > 0:
            rng = np.random.default_rng(random_state)
            groups = [np.flatnonzero(data["budget"].to_numpy() == b)
                      for b in np.unique(data["budget"])]
            samples = []
            for _ in range(n_bootstrap):
                idx = np.concatenate([rng.choice(g, size=g.size) for g in groups])
                try:
                    samples.append(_optimum_exponent(data.iloc[idx])[0])
                except ValueError:  # a resample with too few distinct sizes
                    continue
            if samples:
                ci = percentile_ci(np.asarray(samples), 0.95)
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ScalingFitWarning)  # extrapolated: n_edge
                fit = IsoFLOPFit(rule="all", n_bootstrap=n_bootstrap,
                                 random_state=random_state).fit(
                    data["params"], data["tokens"], data["loss"], flops=data["flops_exact"],
                    budget=data["budget"])
        except ValueError as err:  # fewer than 2 budgets with a vertex
            a, k, ci, note = math.nan, math.nan, [math.nan, math.nan], str(err)
        else:
            a, k = fit.a_, fit.k_
            ci = fit.ci_["a"] if fit.ci_ else [math.nan, math.nan]
            if fit.budgets_dropped_:  # "every budget" fails if one budget has no vertex
                a, k, ci = math.nan, math.nan, [math.nan, math.nan]
                note = "; ".join(f"budget {c:.3g} FLOP: {why}"
                                 for c, why in fit.budgets_dropped_.items())
    return {"convention": convention, "method": method, "a": a, "a_low": ci[0],
            "a_high": ci[1], "k": k, "n_runs": len(frame),
            "n_budgets": int(frame["budget"].nunique()), "n_edge": edges, "note": note}


def exponent_table(frames: Mapping[str, pd.DataFrame],
                   conventions: Sequence[str] = CONVENTIONS,
                   methods: Sequence[str] = ("parabola",), **kwargs: Any) -> pd.DataFrame:
    """``a`` with its interval for every rung, convention and method: one row each.

    Parameters
    ----------
    frames : mapping
        Rung name -> its runs (:func:`rung_frame`).
    conventions : sequence of str, default=CONVENTIONS
    methods : sequence of str, default=("parabola",)
        Of :data:`METHODS`.
    **kwargs
        Passed to :func:`fit_exponent`.
    """
    rows = [{"step": name, **fit_exponent(frame, conv, method=method, **kwargs)}
            for name, frame in frames.items() for method in methods for conv in conventions]
    return pd.DataFrame(rows)


def counting_experiment(
    law: Mapping[str, float], budgets: Sequence[float], *, sizes_per_budget: int = 9,
    span: float = 16.0, vocab_size: int = 256, n_ctx: int = 128,
    rng: np.random.Generator | None = None, noise: float = 0.0,
) -> pd.DataFrame:
    """Synthetic IsoFLOP sweep whose truth is known, to isolate factor (a).

    On the model ladder, each budget (exact FLOP, head included) gets
    ``sizes_per_budget`` shapes log-spaced over ``span`` around the law's own
    optimum; every run's loss is ``E + A / N^alpha + B / D^beta`` with ``N``
    the parameters with the head and ``D = C / (exact FLOP per token)``.
    Fitting it with :func:`fit_exponent` under ``"with_head"`` recovers the
    law's exponent; under ``"kaplan"`` it shows the bias of leaving the head
    out.

    Parameters
    ----------
    law : mapping
        ``E``, ``A``, ``B`` (nats/token), ``alpha``, ``beta``.
    budgets : sequence of float
        Compute budgets (FLOP).
    sizes_per_budget : int, default=9
    span : float, default=16.0
        Largest over smallest target size per budget.
    vocab_size, n_ctx : int, default=256, 128
    rng : numpy.random.Generator, optional
        Needed when ``noise > 0``.
    noise : float, default=0.0
        Standard deviation of multiplicative log-normal noise on the loss.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`rung_frame` plus ``d_model`` and ``n_layer``.
    """
    missing = [k for k in ("E", "A", "B", "alpha", "beta") if k not in law]
    if missing:
        raise ValueError(f"law lacks coefficient(s) {', '.join(missing)}")
    if sizes_per_budget < 3:
        raise ValueError(f"sizes_per_budget must be at least 3, got {sizes_per_budget}")
    if noise < 0 or (noise > 0 and rng is None):
        raise ValueError("noise must be >= 0, and needs an rng when > 0")
    e, a_, b_, al, be = (float(law[k]) for k in ("E", "A", "B", "alpha", "beta"))
    rows = []
    for c in budgets:
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"budgets must be positive FLOP counts, got {c!r}")
        centre = compute_optimal_allocation(c, alpha=al, beta=be, A=a_, B=b_)[0]
        seen = set()
        for target in centre * span ** np.linspace(-0.5, 0.5, sizes_per_budget):
            model = shape_for_params(float(target), n_ctx=n_ctx, vocab_size=vocab_size,
                                     count="total", head_dim=16)
            if model in seen:
                continue
            seen.add(model)
            n_head = model.n_params_with_head()
            tokens = c / flops.training_flops_per_token(model.shape)
            loss = e + a_ / n_head**al + b_ / tokens**be
            if noise:
                loss *= float(np.exp(rng.normal(0.0, noise)))
            rows.append({
                "budget": float(c), "params_non_embedding": model.n_params_non_embedding(),
                "params_with_head": n_head, "tokens": tokens, "flops_exact": float(c),
                "flops_kaplan": flops.flops_6nd(model.n_params_non_embedding(), tokens),
                "loss": loss,
                "d_model": model.d_model, "n_layer": model.n_layer,
            })
    return pd.DataFrame(rows)


def head_share(targets: Sequence[float], *, vocab_size: int = 256,
               n_ctx: int = 128) -> pd.DataFrame:
    """How much counting the head changes N and C along the model ladder.

    Parameters
    ----------
    targets : sequence of float
        Target sizes (parameters with the head) for the ladder.
    vocab_size, n_ctx : int, default=256, 128

    Returns
    -------
    pandas.DataFrame
        One row per distinct shape: ``params_non_embedding``,
        ``params_with_head``, ``param_ratio`` (with head / without) and
        ``flop_ratio`` (exact training FLOP per token over ``6 N`` with the
        non-embedding ``N``).
    """
    rows, seen = [], set()
    for target in targets:
        model = shape_for_params(float(target), n_ctx=n_ctx, vocab_size=vocab_size,
                                 count="total", head_dim=16)
        if model in seen:
            continue
        seen.add(model)
        n_ne = model.n_params_non_embedding()
        rows.append({
            "d_model": model.d_model, "n_layer": model.n_layer, "params_non_embedding": n_ne,
            "params_with_head": model.n_params_with_head(),
            "param_ratio": model.n_params_with_head() / n_ne,
            "flop_ratio": flops.training_flops_per_token(model.shape) / flops.flops_6nd(n_ne, 1),
        })
    return pd.DataFrame(rows)


def head_flop_share(plan: Any) -> pd.DataFrame:
    """The output head's share of the exact training FLOP of each planned or trained shape.

    Parameters
    ----------
    plan : SweepPlan or iterable of runs
        A rung's plan (:func:`~scalingkit.studies.porian2024.plan.plan_rung`), or runs
        with a ``config`` (planned runs, or the records of a run store); only their
        shapes are read, no run is trained.

    Returns
    -------
    pandas.DataFrame
        One row per distinct shape, smallest first: ``d_model``, ``n_layer``,
        ``vocab_size``, ``params`` (total), ``params_non_embedding``,
        ``head_flop_per_token`` and ``flop_per_token`` (exact training FLOP per token,
        forward and backward) and ``head_share`` (their ratio).
    """
    from scalingkit.core.models import GPTConfig

    rows, seen = [], set()
    for run in getattr(plan, "runs", plan):
        model = GPTConfig.from_dict(run.config["model"])
        if model in seen:
            continue
        seen.add(model)
        total = flops.training_flops_per_token(model.shape)
        fwd = flops.forward_flops_breakdown(model.shape)
        head = total * fwd["head"] / fwd["total"]  # backward in proportion to forward
        rows.append({"d_model": model.d_model, "n_layer": model.n_layer,
                     "vocab_size": model.vocab_size, "params": model.n_params(),
                     "params_non_embedding": model.n_params_non_embedding(),
                     "head_flop_per_token": head, "flop_per_token": total,
                     "head_share": head / total})
    return pd.DataFrame(rows).sort_values("params", ignore_index=True)


def _approach_runs(frame: pd.DataFrame, convention: str) -> pd.DataFrame:
    """A rung's runs in the columns of :mod:`scalingkit.runs.approaches` (``flops``)."""
    return _columns(frame, convention).rename(columns={"flops_exact": "flops"})


def own_convention(frame: pd.DataFrame) -> str:
    """The convention a rung's budgets were planned in (:data:`SUMMARY_CONVENTION`).

    ``"kaplan"`` when every run's budget is a ``6 N D`` count (non-embedding N), else
    ``"with_head"``; a frame without the ``budget_flops`` column counts as exact.
    """
    counts = set(frame.get("budget_flops", pd.Series(["exact"])).astype(str))
    if len(counts) > 1:
        raise ValueError(f"a rung's runs mix budget counts {sorted(counts)}")
    return "kaplan" if counts == {"kaplan"} else "with_head"


def rung_summary(frame: pd.DataFrame, *, n_bootstrap: int = 200, random_state: int | None = 0,
                 noise_sd: float | None = None) -> dict[str, Any]:
    """One rung's headline exponent: :data:`SUMMARY_METHOD` under :data:`SUMMARY_CONVENTION`.

    Each budget's optimum is the vertex of a local parabola where the budget brackets
    its minimum; ``N_opt = k C^a`` is fitted through the bracketed budgets only
    (:func:`scalingkit.runs.approaches.approach_2`), N and C in the rung's own count
    (:func:`own_convention`).

    Parameters
    ----------
    frame : DataFrame
        As from :func:`rung_frame`.
    n_bootstrap : int, default=200
        Resamples of the runs within each budget for the 95 % interval (0: none).
    random_state : int or None, default=0
    noise_sd : float, optional
        The run-to-run noise floor (nats/token). When given, the interval is widened
        to cover the parametric noise bootstrap's
        (:func:`scalingkit.runs.approaches.approach_2_noise`) as well.

    Returns
    -------
    dict
        ``a`` (None where it cannot be fitted), ``ci`` (``[lo, hi]`` or None),
        ``budgets`` (budgets with runs), ``bracketed`` (of those, how many bracket
        their minimum), ``convention`` (the count used) and ``reason`` (why ``a``
        is None, else None).
    """
    from scalingkit.runs import approaches

    if noise_sd is not None and not (math.isfinite(noise_sd) and noise_sd > 0):
        raise ValueError(f"noise_sd must be a positive number of nats/token, got {noise_sd!r}")
    convention = own_convention(frame)
    runs = _approach_runs(frame, convention)
    table = approaches.budget_table(runs)
    fit = approaches.approach_2(runs, table, n_bootstrap=n_bootstrap, seed=random_state)
    ci = fit["ci"]
    if noise_sd is not None and fit["a"] is not None and n_bootstrap >= 2:
        noisy = approaches.approach_2_noise(runs, noise_sd, n_bootstrap=n_bootstrap,
                                            seed=random_state)
        if noisy is not None:
            ci = noisy if ci is None else [min(ci[0], noisy[0]), max(ci[1], noisy[1])]
    return {"a": fit["a"], "ci": None if ci is None else [float(c) for c in ci],
            "budgets": int(len(table)), "bracketed": int(table["bracketed"].sum()),
            "convention": convention, "reason": fit["reason"]}


def summary(frames: Mapping[str, pd.DataFrame], **kwargs: Any) -> dict[str, Any]:
    """The ``summary`` block of ``porian fit --output``: :func:`rung_summary` per rung.

    Returns
    -------
    dict
        ``summary_method`` (:data:`SUMMARY_METHOD`), ``summary_convention``
        (:data:`SUMMARY_CONVENTION`), ``noise_sd`` and ``summary``: rung name ->
        ``{"a", "ci", "budgets", "bracketed", "reason"}``.
    """
    return {"summary_method": SUMMARY_METHOD, "summary_convention": SUMMARY_CONVENTION,
            "noise_sd": kwargs.get("noise_sd"),
            "summary": {name: rung_summary(frame, **kwargs) for name, frame in frames.items()}}
