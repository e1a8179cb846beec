"""The Porian et al. (2024) ladder: from a Kaplan-like setup to Chinchilla's, one factor at a time.

Porian et al. traced the gap between Kaplan et al.'s compute-optimal exponent
(``N_opt ~ C^0.73``) and Hoffmann et al.'s (``~ C^0.5``) to three factors:

(a) the output head: Kaplan counted only non-embedding parameters and left the
    head's FLOP out of the compute, which undercounts small models most;
(b) a warmup too long for small models;
(c) optimiser settings not adapted to scale (learning rate and batch size per
    size, and AdamW ``beta2`` at small batch sizes).

They also tested Hoffmann et al.'s hypothesis that the cosine schedule must end
at the run's own horizon, and found it not essential once the rest is fixed.

Each rung of the ladder here is a :class:`PorianStep`: a named IsoFLOP sweep
that corrects one more factor than the previous rung. :func:`plan_step` turns a
step into a :class:`~scalingkit.sweep.SweepPlan` that the ordinary sweep
machinery (:func:`scalingkit.sweep.run_sweep`) trains into its own run store,
and :func:`exponent_table` fits ``N_opt = k C^a`` with bootstrap intervals for
every step under both ways of counting (:data:`CONVENTIONS`).

Units: N in parameters, D in tokens, C in FLOP, loss in nats/token.

References
----------
Porian, Wortsman, Jitsev, Schmidt, Carmon (2024), "Resolving Discrepancies in
Compute-Optimal Scaling of Language Models".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from scalingkit import flops
from scalingkit.fit import ScalingFitWarning
from scalingkit.models import GPTConfig, shape_for_params
from scalingkit.sweep import PlannedRun, SweepPlan, SweepSpec, plan_sweep

#: Ways of counting (N, C) for the exponent fit.
#: ``"kaplan"``: N = non-embedding parameters, C = 6 N D.
#: ``"with_head"``: N = non-embedding parameters plus the output head, C = the
#: exact FLOP of every matmul, the head's included.
CONVENTIONS = ("kaplan", "with_head")
#: The step ladder's compute budgets (FLOP): 4 budgets, a factor 3 apart, 1.43 decades.
#: Sized so that the five rungs train in about 1.5 h on 2 CPU cores (see the
#: chapter "Why Kaplan and Chinchilla disagreed").
BUDGETS = (1.6e11, 4.8e11, 1.4e12, 4.3e12)
#: Model sizes per budget.
SIZES_PER_BUDGET = 6
#: The Kaplan-like warmup, the same for every run (tokens): 96 steps of 32 x 128 tokens.
KAPLAN_WARMUP_TOKENS = 96 * 32 * 128


@dataclass(frozen=True)
class PorianStep:
    """One rung of the ladder: which factors are corrected.

    Parameters
    ----------
    name : str
        Short name, also the run-store folder name.
    title : str
        One line for tables.
    budget_count : {"kaplan", "exact"}
        Which FLOP count sets each run's tokens: ``6 N D`` with the
        non-embedding ``N`` (head left out) or the exact count.
    warmup : {"fixed", "size"}
        A fixed warmup of :data:`KAPLAN_WARMUP_TOKENS` for every run (capped at
        half the run), or a warmup of ``N`` tokens (also capped at half the run).
    schedule : {"cosine_fixed", "cosine"}
        Cosine decay over one horizon shared by all runs (the longest run's
        tokens, so shorter runs stop before their decay ends), or decay matched
        to each run's own length.
    tuned : bool
        Per-size learning rate, batch size and AdamW ``beta2``
        (:func:`tuned_hyperparameters`) instead of one setting for all sizes.
    """

    name: str
    title: str
    budget_count: Literal["kaplan", "exact"]
    warmup: Literal["fixed", "size"]
    schedule: Literal["cosine_fixed", "cosine"]
    tuned: bool


#: The ladder, in order: each step corrects one more factor than the one before.
STEPS = (
    PorianStep("kaplan", "Kaplan-like baseline", "kaplan", "fixed", "cosine_fixed", False),
    PorianStep("head", "(a) count the head's FLOP in the budget", "exact", "fixed",
               "cosine_fixed", False),
    PorianStep("warmup", "(b) warmup scaled to the model", "exact", "size", "cosine_fixed",
               False),
    PorianStep("decay", "Chinchilla hypothesis: decay to each run's horizon", "exact", "size",
               "cosine", False),
    PorianStep("tuned", "(c) learning rate, batch size, beta2 per size", "exact", "size",
               "cosine", True),
)


def get_step(name: str) -> PorianStep:
    """The step called ``name``; ``ValueError`` listing the names otherwise."""
    for step in STEPS:
        if step.name == name:
            return step
    raise ValueError(f"unknown Porian step {name!r}; choose one of "
                     f"{', '.join(s.name for s in STEPS)}")


def step_spec(**overrides: Any) -> SweepSpec:
    """The sweep shape shared by every step: :data:`BUDGETS` x :data:`SIZES_PER_BUDGET`.

    Sizes span a factor 16 around the Chinchilla centre guess; the recipe
    fields (learning rate, batch size, warmup, schedule) are set per step by
    :func:`plan_step`. ``overrides`` replace :class:`~scalingkit.sweep.SweepSpec`
    fields (e.g. smaller ``budgets`` for a test).
    """
    spec = SweepSpec(budgets=BUDGETS, sizes_per_budget=SIZES_PER_BUDGET, span=16.0,
                     evals_per_run=10, eval_tokens=16384, min_steps=40, min_params=5e3)
    return replace(spec, **overrides) if overrides else spec


def tuned_hyperparameters(n_params: float) -> dict[str, float | int]:
    """Per-size optimiser settings for the ``tuned`` step (a rule, not a search).

    Smaller models take larger learning rates and smaller batches; batches
    under 32 sequences use ``beta2 = 0.99`` (a longer second-moment memory),
    which Porian et al. found essential at small batch sizes. The rule:
    ``lr = 3e-3 (N / 1e5)^(-1/3)`` clipped to [1e-3, 1e-2]; ``batch_size`` the
    power of two nearest ``32 (N / 1e5)^(1/2)``, clipped to [8, 64].

    Parameters
    ----------
    n_params : float
        Model size N (parameters, > 0).

    Returns
    -------
    dict
        ``lr``, ``batch_size`` (sequences per step) and ``beta2``.
    """
    if not (math.isfinite(n_params) and n_params > 0):
        raise ValueError(f"n_params must be a positive number, got {n_params!r}")
    lr = float(np.clip(3e-3 * (n_params / 1e5) ** (-1 / 3), 1e-3, 1e-2))
    batch = int(np.clip(2 ** round(math.log2(32 * (n_params / 1e5) ** 0.5)), 8, 64))
    return {"lr": lr, "batch_size": batch, "beta2": 0.99 if batch < 32 else 0.95}


def _reshape_run(run: PlannedRun, spec: SweepSpec, tokens_target: float,
                 updates: Mapping[str, Any], corpus_tokens: int) -> PlannedRun | str:
    """``run`` with a new token target and config fields, or why it is out of bounds."""
    from scalingkit.train import TrainConfig

    config = {**run.config, **updates}
    model = GPTConfig.from_dict(config["model"])
    per_step = int(config["batch_size"]) * model.n_ctx
    steps = int(round(tokens_target / per_step))
    if steps < spec.min_steps:
        return f"only {steps} optimizer steps (< min_steps={spec.min_steps})"
    tokens = steps * per_step
    epochs = tokens / corpus_tokens
    if epochs > spec.max_epochs:
        return f"{epochs:.1f} epochs over the corpus (> max_epochs={spec.max_epochs:g})"
    config.update(tokens=tokens, warmup_tokens=int(min(config["warmup_tokens"], tokens / 2)),
                  eval_every=max(1, steps // spec.evals_per_run),
                  checkpoint_every=max(1, steps // 10))
    config = TrainConfig.from_dict(config).to_dict()  # validates every field
    fpt = flops.training_flops_per_token(model.shape)
    return replace(run, tokens=tokens, steps=steps, epochs=epochs, config=config,
                   flops_exact=fpt * tokens, flops_6nd=6.0 * run.params * tokens)


def plan_step(step: PorianStep | str, spec: SweepSpec | None = None) -> SweepPlan:
    """The IsoFLOP sweep of one ladder step.

    The sizes come from :func:`scalingkit.sweep.plan_sweep` on ``spec``; each
    run's tokens and recipe are then set by the step: tokens from the step's
    FLOP count, warmup, schedule and (when ``tuned``) per-size optimiser
    settings. Runs that fall out of the spec's bounds are dropped with a reason.

    Parameters
    ----------
    step : PorianStep or str
        The step or its name.
    spec : SweepSpec, optional
        Budgets, sizes and bounds; default :func:`step_spec`.

    Returns
    -------
    SweepPlan
        Its runs carry the full training config; ``plan.runs[i].budget`` is the
        budget in the step's own FLOP count.
    """
    from scalingkit.sweep import DroppedRun, train_tokens

    step = get_step(step) if isinstance(step, str) else step
    spec = spec or step_spec()
    spec = replace(spec, corpus_tokens=spec.corpus_tokens
                   or train_tokens(spec.corpus, spec.tokenizer))
    # sizes only: the step sets the tokens, so bounds are checked after that
    base = plan_sweep(replace(spec, max_epochs=1e9, min_steps=1))
    staged = []
    for run in base.runs:
        model = GPTConfig.from_dict(run.config["model"])
        per_token = (6.0 * model.n_params_non_embedding() if step.budget_count == "kaplan"
                     else flops.training_flops_per_token(model.shape))
        updates: dict[str, Any] = {"schedule": step.schedule}
        if step.tuned:
            updates.update(tuned_hyperparameters(run.params))
        staged.append((run, run.budget / per_token, updates))
    horizon = max(int(t) for _, t, _ in staged) if staged else 1
    runs, dropped = [], list(base.dropped)
    for run, tokens, updates in staged:
        warm = KAPLAN_WARMUP_TOKENS if step.warmup == "fixed" else run.params
        updates["warmup_tokens"] = int(warm)  # capped at half the run in _reshape_run
        updates["horizon_tokens"] = horizon if step.schedule == "cosine_fixed" else None
        out = _reshape_run(run, spec, tokens, updates, spec.corpus_tokens)
        if isinstance(out, str):
            dropped.append(DroppedRun(run.budget, run.size_index, run.n_target, out))
        else:
            runs.append(out)
    return SweepPlan(spec=spec, runs=tuple(runs), dropped=tuple(dropped))


def step_command(step: PorianStep | str, out: str | None = None) -> str:
    """The one command that trains a step into its run store."""
    name = step if isinstance(step, str) else step.name
    get_step(name)
    return f"python -m scalingkit porian run {name} --out {out or f'runs/porian/{name}'}"


def step_frame(source: str | Path) -> pd.DataFrame:
    """Finished runs of one step's run store, with both parameter counts.

    Parameters
    ----------
    source : str or Path
        A run store (or its export without checkpoints).

    Returns
    -------
    pandas.DataFrame
        ``budget`` (FLOP, the step's own count), ``params_non_embedding``,
        ``params_with_head``, ``tokens``, ``flops_exact`` (FLOP),
        ``flops_kaplan`` (``6 N D`` with the non-embedding N, FLOP) and
        ``loss`` (validation, nats/token).

    Raises
    ------
    ValueError
        If ``source`` is not a run store or holds no finished run.
    """
    from scalingkit.store import RunStore

    path = Path(source)
    if not (path / "store.json").exists():
        raise ValueError(f"{path} is not a run store (no store.json)")
    rows = []
    for record in RunStore(path).records():
        loss = (record.result or {}).get("final_loss")
        if record.status != "done" or loss is None or not math.isfinite(loss):
            continue
        model = GPTConfig.from_dict(record.config["model"])
        tokens = int((record.result or {}).get("tokens", record.config["tokens"]))
        rows.append({
            "budget": float(record.plan["budget"]),
            "params_non_embedding": model.n_params_non_embedding(),
            "params_with_head": model.n_params_with_head(), "tokens": tokens,
            "flops_exact": flops.training_flops_per_token(model.shape) * tokens,
            "flops_kaplan": 6.0 * model.n_params_non_embedding() * tokens,
            "loss": float(loss),
        })
    if not rows:
        raise ValueError(f"run store {path} has no finished runs with a loss")
    return pd.DataFrame(rows).sort_values(["budget", "params_with_head"], ignore_index=True)


#: How :func:`fit_exponent` finds each budget's optimum.
#: ``"parabola"``: the vertex of a parabola in ``ln N`` through every run of every
#: budget (Approach 2 in its textbook form, :class:`scalingkit.fit.IsoFLOPFit` with
#: ``rule="all"``), extrapolated or not; NaN, with a note, if a budget has no vertex.
#: ``"optimum"``: :func:`scalingkit.sweep.compute_optimal`'s rule, the vertex of a
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
    """:func:`scalingkit.sweep.compute_optimal` on :func:`_columns` output, plus ``compute``."""
    from scalingkit.sweep import compute_optimal

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
        As from :func:`step_frame`.
    convention : {"kaplan", "with_head"}, default="with_head"

    Returns
    -------
    DataFrame
        :func:`scalingkit.sweep.compute_optimal`'s table (``budget``, ``n_opt``
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
        As from :func:`step_frame` (or :func:`counting_experiment`).
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
                ci = list(np.percentile(samples, [2.5, 97.5]))
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
    """``a`` with its interval for every step, convention and method: one row each.

    Parameters
    ----------
    frames : mapping
        Step name -> its runs (:func:`step_frame`).
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
        The columns of :func:`step_frame` plus ``d_model`` and ``n_layer``.
    """
    missing = [k for k in ("E", "A", "B", "alpha", "beta") if k not in law]
    if missing:
        raise ValueError(f"law lacks coefficient(s) {', '.join(missing)}")
    if sizes_per_budget < 3:
        raise ValueError(f"sizes_per_budget must be at least 3, got {sizes_per_budget}")
    if noise < 0 or (noise > 0 and rng is None):
        raise ValueError("noise must be >= 0, and needs an rng when > 0")
    e, a_, b_, al, be = (float(law[k]) for k in ("E", "A", "B", "alpha", "beta"))
    g = (al * a_ / (be * b_)) ** (1 / (al + be))  # optimum of the law under C = 6ND
    rows = []
    for c in budgets:
        if not (math.isfinite(c) and c > 0):
            raise ValueError(f"budgets must be positive FLOP counts, got {c!r}")
        centre = g * (c / 6) ** (be / (al + be))
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
                "flops_kaplan": 6.0 * model.n_params_non_embedding() * tokens, "loss": loss,
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
            "flop_ratio": flops.training_flops_per_token(model.shape) / (6.0 * n_ne),
        })
    return pd.DataFrame(rows)


def measure_throughput(plan: SweepPlan, *, n_steps: int = 10,
                       which: Sequence[int] | None = None) -> pd.DataFrame:
    """Train the first ``n_steps`` optimizer steps of some of a plan's runs; time them.

    Parameters
    ----------
    plan : SweepPlan
        A step's plan (:func:`plan_step`).
    n_steps : int, default=10
        Optimizer steps per timed run (>= 1).
    which : sequence of int, optional
        Indices into ``plan.runs``; default the smallest, the median and the
        largest model.

    Returns
    -------
    pandas.DataFrame
        One row per timed run: ``params``, ``tokens_per_s`` (optimizer steps
        only, tokens/s), ``flop_per_s`` (exact training FLOP/s) and ``device``.
    """
    from scalingkit.train import TrainConfig, train

    if not (isinstance(n_steps, int) and n_steps >= 1):
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    if not plan.runs:
        raise ValueError("the plan has no runs to time")
    order = sorted(range(len(plan.runs)), key=lambda i: plan.runs[i].params)
    which = list(which) if which is not None else sorted(
        {order[0], order[len(order) // 2], order[-1]})
    rows = []
    for i in which:
        if not 0 <= i < len(plan.runs):
            raise ValueError(f"run index {i} outside the plan's {len(plan.runs)} runs")
        run = plan.runs[i]
        config = TrainConfig.from_dict({**run.config, "eval_every": 0, "checkpoint_every": 0,
                                        "eval_tokens": run.config["model"]["n_ctx"]})
        config.tokens = n_steps * config.tokens_per_step
        result = train(config, progress=False)
        per_token = flops.training_flops_per_token(config.model.shape)
        rows.append({"params": run.params, "tokens_per_s": result.tokens_per_s,
                     "flop_per_s": result.tokens_per_s * per_token, "device": result.device})
    return pd.DataFrame(rows)


def estimate_seconds(plan: SweepPlan, timings: pd.DataFrame) -> float:
    """Training time of a plan from measured throughputs (seconds).

    Each run's rate (FLOP/s) is interpolated linearly in ``(log N, log rate)``
    between the timed sizes (held constant beyond them): small models run far
    below the rate of large ones, since per-step overheads dominate them.
    Evaluation is not counted.

    Parameters
    ----------
    plan : SweepPlan
    timings : DataFrame
        ``params`` and ``flop_per_s`` (:func:`measure_throughput`).
    """
    t = timings.sort_values("params")
    if t.empty or not np.all(t["flop_per_s"] > 0):
        raise ValueError("timings need at least one positive flop_per_s")
    log_n, log_r = np.log(t["params"].astype(float)), np.log(t["flop_per_s"].astype(float))
    return float(sum(r.flops_exact / np.exp(np.interp(np.log(r.params), log_n, log_r))
                     for r in plan.runs))
