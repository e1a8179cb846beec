"""Predict a bigger run before training it, then record what happened.

The protocol has two steps, each a file write that cannot be undone by the
package:

1. :func:`make_prediction` fits a sweep (Approach 3, and ``L(C) = a C^b + c``
   on the envelope of the sweep's best loss per budget), picks the
   compute-optimal model on the ladder at a budget at least 4x the largest
   fitted one, and :func:`write_prediction` stores it with a UTC timestamp.
   It refuses to overwrite an existing prediction.
2. :func:`train_prediction` trains that exact config, and :func:`record_outcome`
   adds ``actual_loss``, ``trained_at`` and ``relative_error``. It refuses when
   no prediction exists, when one already has an outcome, and when the
   training finished before the prediction was made.

``relative_error = |predicted_loss - actual_loss| / actual_loss``.

Units: N in parameters, D in tokens, C in FLOP (exact count, head and
attention included, as the sweep's budgets), loss in nats/token.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scalingkit.core import flops
from scalingkit.core.models import GPTConfig, shape_for_params
from scalingkit.fit.stats import percentile_ci, relative_error
from scalingkit.runs.frames import runs_from_budget

if TYPE_CHECKING:
    from scalingkit.runs.sweep import SweepSpec

#: The smallest ratio of the predicted budget to the largest fitted budget.
MIN_EXTRAPOLATION = 4.0
#: Passes over the corpus a predicted run may make, relative to the sweep's most.
EPOCHS_TOLERANCE = 1.05
#: Relative slack on the sweep's range of tokens per parameter (ladder and step rounding).
TOKENS_PER_PARAM_RTOL = 0.02
#: What every regime refusal adds to its message.
_EXTRAPOLATION = ("a prediction outside the fitted regime is an extrapolation "
                  "the fit cannot vouch for")


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string (microseconds)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def envelope(frame: pd.DataFrame) -> pd.DataFrame:
    """The lowest final loss at each planned budget: columns ``budget``, ``loss``."""
    return frame.groupby("budget", as_index=False)["loss"].min()


def ladder_optimum(law: Any, budget: float, *, n_ctx: int, vocab_size: int,
                   head_dim: int = 16, aspect_ratio: float = 32.0,
                   n_candidates: int = 121,
                   model_for: Callable[[float], GPTConfig] | None = None,
                   ) -> tuple[GPTConfig, float, float]:
    """The ladder shape with the lowest predicted loss at ``budget`` exact FLOP.

    Each candidate gets ``D = budget / training_flops_per_token`` tokens and the
    loss ``law.predict(N, D)`` (``N`` every parameter, as the sweep's fit).
    ``model_for`` maps a target size (parameters) to a shape, e.g. a sweep's
    :meth:`~scalingkit.runs.sweep.SweepSpec.model_for`; by default
    :func:`~scalingkit.core.models.shape_for_params` with ``n_ctx``,
    ``vocab_size``, ``head_dim`` and ``aspect_ratio``.

    Returns
    -------
    (GPTConfig, float, float)
        The shape, its tokens ``D`` and its predicted loss (nats/token).
    """
    coef_n, _ = law.optimal_allocation([budget])
    best = None
    if model_for is None:
        def model_for(target: float) -> GPTConfig:
            return shape_for_params(target, n_ctx=n_ctx, vocab_size=vocab_size, count="total",
                                    head_dim=head_dim, aspect_ratio=aspect_ratio)
    for target in float(coef_n[0]) * np.geomspace(1 / 8, 8, n_candidates):
        model = model_for(float(target))
        tokens = budget / flops.training_flops_per_token(model.shape)
        loss = float(law.predict([model.n_params()], [tokens])[0])
        if best is None or loss < best[2]:
            best = (model, tokens, loss)
    return best


def make_prediction(frame: pd.DataFrame, recipe: Mapping[str, Any], *, budget: float | None = None,
                    factor: float = MIN_EXTRAPOLATION, n_bootstrap: int = 0,
                    random_state: int | None = 0,
                    spec: SweepSpec | None = None,
                    min_budget: float | None = None) -> dict[str, Any]:
    """Fit a sweep and predict the loss of the compute-optimal model at a bigger budget.

    Parameters
    ----------
    frame : DataFrame
        Finished runs with ``params`` (N, every parameter), ``tokens``,
        ``loss`` (nats/token) and ``budget`` (planned exact FLOP), as from
        :func:`scalingkit.runs.frames.load_points` on a run store.
    recipe : mapping
        A ``TrainConfig`` dict from the sweep (its largest budget's run); the
        predicted run reuses every field but the model, tokens, warmup and
        evaluation spacing.
    budget : float, optional
        Target budget (FLOP); default ``factor`` x the largest fitted budget.
    factor : float, default=4.0
        Used when ``budget`` is None; must be at least 4.
    n_bootstrap : int, default=0
        Bootstrap resamples of the Approach 3 fit (interval on the prediction).
    random_state : int or None, default=0
    spec : SweepSpec, optional
        The sweep's :class:`~scalingkit.runs.sweep.SweepSpec`. When given, the
        candidate shapes come from its ladder (``spec.model_for``), and the
        predicted run takes its ``sampler`` and the peak learning rate of its
        lr rule at the predicted ``N`` (``spec.lr_for``); without it the shapes
        come from :func:`~scalingkit.core.models.shape_for_params` and the
        recipe's sampler and lr are kept.
    min_budget : float, optional
        Fit only the runs planned at this budget (FLOP) or above (as ``fit-sweep
        --min-budget``); recorded as ``min_budget``.

    Returns
    -------
    dict
        ``budget``, ``max_fitted_budget``, ``predicted_loss`` (Approach 3),
        ``predicted_loss_envelope`` (``L(C)`` fit), ``params``, ``tokens``,
        ``config`` (the full training config), ``fit`` and ``envelope_fit``
        (coefficients), ``n_fitted_runs`` and ``min_budget``.

    Raises
    ------
    ValueError
        A missing column, a budget under 4x the largest fitted one, or (with a
        ``spec`` that has an lr rule) a predicted ``N`` outside the rule's sizes.
    """
    from scalingkit.core.train import TrainConfig
    from scalingkit.fit import ComputeFit, ParametricFit

    for col in ("params", "tokens", "loss", "budget"):
        if col not in frame.columns:
            raise ValueError(f"the sweep's runs lack column {col!r}")
    frame = runs_from_budget(frame, min_budget)
    max_budget = float(frame["budget"].max())
    if budget is None:
        if not (math.isfinite(factor) and factor >= MIN_EXTRAPOLATION):
            raise ValueError(f"factor must be at least {MIN_EXTRAPOLATION}, got {factor!r}")
        budget = factor * max_budget
    if not (math.isfinite(budget) and budget >= MIN_EXTRAPOLATION * max_budget * (1 - 1e-9)):
        raise ValueError(f"budget {budget!r} FLOP is not at least {MIN_EXTRAPOLATION:g}x the "
                         f"largest fitted budget {max_budget:.4g} FLOP")
    law = ParametricFit(n_bootstrap=n_bootstrap, random_state=random_state).fit(
        frame["params"], frame["tokens"], frame["loss"])
    env = envelope(frame)
    env_fit = ComputeFit().fit(env["budget"], env["loss"])
    base = TrainConfig.from_dict(dict(recipe))
    model, tokens, predicted = ladder_optimum(
        law, budget, n_ctx=base.model.n_ctx, vocab_size=base.model.vocab_size,
        model_for=None if spec is None else spec.model_for)
    config = base.to_dict()
    if spec is not None:
        check_lr_rule(model.n_params(), spec.lr_rule, budget=budget)
        config.update(sampler=spec.sampler, lr=spec.lr_for(model.n_params(), budget))
    per_step = base.batch_size * model.n_ctx
    steps = max(1, round(tokens / per_step))
    warm_share = base.warmup_tokens / base.tokens
    config.update(model=model.to_dict(), tokens=steps * per_step,
                  warmup_tokens=int(round(warm_share * steps * per_step)),
                  eval_every=max(1, steps // 20), checkpoint_every=max(1, steps // 20))
    config = TrainConfig.from_dict(config).to_dict()
    out = {
        "budget": float(budget), "max_fitted_budget": max_budget,
        "predicted_loss": predicted,
        "predicted_loss_envelope": float(env_fit.predict([budget])[0]),
        "params": model.n_params(), "tokens": config["tokens"], "config": config,
        "fit": law.to_dict(), "envelope_fit": env_fit.to_dict(),
        "n_fitted_runs": int(len(frame)), "min_budget": min_budget,
    }
    if law.bootstrap_ is not None:
        n_arr = np.full(1, float(model.n_params()))
        d_arr = np.full(1, float(config["tokens"]))
        samples = [s["E"] + s["A"] / n_arr[0] ** s["alpha"] + s["B"] / d_arr[0] ** s["beta"]
                   for s in _rows(law.bootstrap_)]
        out["predicted_loss_ci"] = percentile_ci(np.asarray(samples), 0.95)
    return out


def check_in_regime(points: pd.DataFrame, n: float, d: float, *, corpus_tokens: float,
                    lr_rule: Mapping[str, float] | None = None,
                    lr: float | None = None, budget: float | None = None) -> None:
    """Refuse a predicted run that leaves the regime the sweep's runs were in.

    Three checks, each a ``ValueError`` naming the quantity, the predicted
    value and the sweep's range:

    1. passes over the corpus: the predicted run's ``d / corpus_tokens`` may
       exceed the sweep's most by :data:`EPOCHS_TOLERANCE` (5 %), and may not
       exceed 1 when no sweep run passed over the corpus more than once
       (fresh data versus repeated data);
    2. tokens per parameter ``d / n`` must lie in the sweep's ``[min, max]``,
       widened by :data:`TOKENS_PER_PARAM_RTOL` (2 %) on either side for the
       rounding to ladder shapes and whole optimizer steps;
    3. with an ``lr_rule`` (a :class:`~scalingkit.runs.sweep.SweepSpec`'s), ``n``
       must lie in the rule's ``[n_min, n_max]`` (no tolerance, as
       :meth:`~scalingkit.runs.sweep.SweepSpec.lr_for`), and ``lr``, when given,
       must be the rule's lr at ``n`` (to 1e-6 relative).

    Parameters
    ----------
    points : DataFrame
        The fitted runs: ``params`` (N, every parameter) and ``tokens`` (D).
    n : float
        The predicted run's parameters (total count).
    d : float
        The predicted run's training tokens.
    corpus_tokens : float
        Tokens in one pass over the training split (tokens); the epochs of
        every run are ``tokens / corpus_tokens``.
    lr_rule : mapping, optional
        ``coef``, ``exponent``, ``n_ref``, ``n_min``, ``n_max``.
    lr : float, optional
        The predicted run's peak learning rate.

    Raises
    ------
    ValueError
        The first check the predicted run fails.
    """
    for col in ("params", "tokens"):
        if col not in points.columns:
            raise ValueError(f"the sweep's runs lack column {col!r}")
    if not (math.isfinite(corpus_tokens) and corpus_tokens > 0):
        raise ValueError(f"corpus_tokens must be a positive token count, got {corpus_tokens!r}")
    params = points["params"].to_numpy(float)
    tokens = points["tokens"].to_numpy(float)
    _check_epochs(d / corpus_tokens, tokens / corpus_tokens)
    _check_tokens_per_param(d / n, tokens / params)
    check_lr_rule(n, lr_rule, lr, budget=budget)


def _check_epochs(epochs: float, sweep: np.ndarray) -> None:
    """Refuse more passes over the corpus than the sweep made (see :func:`check_in_regime`)."""
    lo, hi = float(np.min(sweep)), float(np.max(sweep))
    limit = EPOCHS_TOLERANCE * hi
    if hi <= 1:
        limit = min(limit, 1.0)
    if epochs > limit:
        fresh = " (every run of the sweep saw each token at most once)" if hi <= 1 else ""
        raise ValueError(f"predicted run: {epochs:.3g} passes over the training corpus lie "
                         f"outside the sweep's range [{lo:.3g}, {hi:.3g}]{fresh}; "
                         f"{_EXTRAPOLATION}")


def _check_tokens_per_param(ratio: float, sweep: np.ndarray) -> None:
    """Refuse a ``D/N`` outside the sweep's range (see :func:`check_in_regime`)."""
    lo, hi = float(np.min(sweep)), float(np.max(sweep))
    if not (1 - TOKENS_PER_PARAM_RTOL) * lo <= ratio <= (1 + TOKENS_PER_PARAM_RTOL) * hi:
        raise ValueError(f"predicted run: D/N = {ratio:.3g} tokens per parameter lies outside "
                         f"the sweep's range [{lo:.3g}, {hi:.3g}]; {_EXTRAPOLATION}")


def check_lr_rule(n: float, lr_rule: Mapping[str, float] | None,
                  lr: float | None = None, *, budget: float | None = None) -> None:
    """Refuse an lr rule used outside the sizes it was measured on, or a different lr.

    Parameters
    ----------
    n : float
        The run's parameters (total count).
    lr_rule : mapping or None
        A :class:`~scalingkit.runs.sweep.SweepSpec` lr rule; None checks nothing.
    lr : float, optional
        The run's peak learning rate, checked against the rule's at ``n``.
    budget : float, optional
        The run's budget (FLOP); needed by a rule with a budget term.
    """
    from scalingkit.runs.sweep import SweepSpec

    if lr_rule is None:
        return
    rule_spec = SweepSpec(budgets=(1.0,), lr_rule=lr_rule)  # the rule's one home: lr_for
    expected = rule_spec.lr_for(n, budget)
    if expected is None:
        rule = rule_spec.lr_rule
        raise ValueError(f"predicted run: N = {n:,.0f} parameters lies outside the lr rule's "
                         f"sizes [{rule['n_min']:,.0f}, {rule['n_max']:,.0f}]; "
                         f"{_EXTRAPOLATION}")
    if lr is not None and not math.isclose(lr, expected, rel_tol=1e-6):
        raise ValueError(f"predicted run: lr = {lr:.4g} is not the lr rule's {expected:.4g} "
                         f"at N = {n:,.0f} parameters; the sweep's runs all followed the rule")


def _rows(columns: Mapping[str, np.ndarray]) -> list[dict[str, float]]:
    n = len(next(iter(columns.values())))
    return [{k: float(v[i]) for k, v in columns.items()} for i in range(n)]


def write_prediction(path: str | Path, prediction: Mapping[str, Any], *,
                     command: str | None = None, source: str | None = None) -> dict:
    """Store a prediction with its timestamp; refuse to overwrite an existing file.

    Returns
    -------
    dict
        What was written: the prediction plus ``predicted_at`` (UTC),
        ``source``, ``commands`` and ``provenance``; the outcome keys are None.
    """
    from scalingkit.runs.files import atomic_write_json, json_safe
    from scalingkit.runs.provenance import provenance

    path = Path(path)
    if path.exists():
        raise ValueError(f"{path} already holds a prediction; a prediction is made once "
                         "(move it away to start a new protocol)")
    record = {**dict(prediction), "predicted_at": now_utc(), "source": source,
              "actual_loss": None, "trained_at": None, "relative_error": None,
              "relative_error_envelope": None,
              "commands": {"predict": command, "outcome": None},
              "provenance": {"predict": provenance(command)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    record = json_safe(record)
    atomic_write_json(path, record)
    return record


def load_prediction(path: str | Path) -> dict:
    """Read a prediction file; ``ValueError`` when there is none."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no prediction at {path}: run 'python -m scalingkit predict make' first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None


def train_prediction(prediction: Mapping[str, Any], run_dir: str | Path | None = None,
                     **overrides: Any) -> dict:
    """Train the predicted config (resumable through ``run_dir``); return the result dict.

    ``overrides`` replace config fields that do not change the experiment
    (``device``, ``dtype``, ``compile``).
    """
    from scalingkit.core.train import TrainConfig, train

    allowed = {"device", "dtype", "compile"}
    if set(overrides) - allowed:
        raise ValueError(f"only {sorted(allowed)} may be overridden, got {sorted(overrides)}")
    config = TrainConfig.from_dict({**prediction["config"], **overrides})
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    return train(config, run_dir=run_dir).to_dict()


def record_outcome(path: str | Path, result: Mapping[str, Any], *, command: str | None = None,
                   trained_at: str | None = None) -> dict:
    """Add a finished run's loss to its prediction file.

    Parameters
    ----------
    path : str or Path
        The prediction file (:func:`write_prediction`).
    result : mapping
        The trainer's result dict (``status``, ``final_loss``, ...).
    command : str, optional
        The command that trained it.
    trained_at : str, optional
        ISO UTC time the training finished; default now.

    Raises
    ------
    ValueError
        No prediction; an outcome already recorded; the run did not finish;
        ``trained_at`` not later than ``predicted_at``.
    """
    from scalingkit.runs.files import atomic_write_json
    from scalingkit.runs.provenance import provenance

    record = load_prediction(path)
    if record.get("actual_loss") is not None:
        raise ValueError(f"{path} already records an outcome (trained at {record['trained_at']})")
    if result.get("status") != "done":
        raise ValueError(f"the run did not finish: status {result.get('status')!r} "
                         f"({result.get('message', '')})")
    trained_at = trained_at or now_utc()
    if not dt.datetime.fromisoformat(trained_at) > dt.datetime.fromisoformat(
            record["predicted_at"]):
        raise ValueError(f"trained_at {trained_at} is not after predicted_at "
                         f"{record['predicted_at']}")
    actual = float(result["final_loss"])
    record.update(
        actual_loss=actual, trained_at=trained_at,
        relative_error=relative_error(record["predicted_loss"], actual),
        relative_error_envelope=relative_error(record["predicted_loss_envelope"], actual),
        result={k: result.get(k) for k in ("status", "params_total", "tokens", "flops_exact",
                                           "final_bits_per_byte", "wall_time_s",
                                           "tokens_per_s", "mfu", "epochs", "device",
                                           "curve")},
    )
    record["commands"] = {**record.get("commands", {}), "outcome": command}
    record["provenance"] = {**record.get("provenance", {}), "outcome": provenance(command)}
    atomic_write_json(Path(path), record)
    return record


def backtest(frame: pd.DataFrame, cutoff: float, *, factor: float = MIN_EXTRAPOLATION,
             bin_decades: float = 0.25, **fit_settings: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the runs at or below ``cutoff`` FLOP; predict those ``factor`` x beyond them.

    A retrospective version of the protocol on runs that already exist (for
    example published ones): Approach 3 predicts every held-out run's loss from
    its ``N`` and ``D``, and ``L(C) = a C^b + c`` fitted to the envelope (the
    lowest loss in each bin of ``bin_decades`` decades of compute) predicts the
    held-out envelope.

    Parameters
    ----------
    frame : DataFrame
        ``params``, ``tokens``, ``loss`` (nats/token) and ``flops`` (FLOP).
    cutoff : float
        Largest compute used for fitting (FLOP).
    factor : float, default=4.0
        Held-out runs have at least ``factor`` x the largest fitted compute.
    bin_decades : float, default=0.25
        Width of the envelope's compute bins (decades).
    **fit_settings
        Passed to :class:`~scalingkit.fit.ParametricFit` (e.g. ``grid="small"``).

    Returns
    -------
    (DataFrame, DataFrame)
        Held-out runs with ``predicted`` and ``relative_error``; held-out
        envelope bins (``flops`` = the bin's median compute, ``loss`` = its
        lowest loss) with the same two columns.
    """
    from scalingkit.fit import ComputeFit, ParametricFit

    for col in ("params", "tokens", "loss", "flops"):
        if col not in frame.columns:
            raise ValueError(f"the runs lack column {col!r}")
    if not (math.isfinite(bin_decades) and bin_decades > 0):
        raise ValueError(f"bin_decades must be positive, got {bin_decades!r}")
    train = frame[frame["flops"] <= cutoff]
    if len(train) < 5:
        raise ValueError(f"only {len(train)} runs at or below cutoff {cutoff:.3g} FLOP; need 5")
    limit = factor * float(train["flops"].max())
    test = frame[frame["flops"] >= limit]
    if test.empty:
        raise ValueError(f"no run has at least {factor:g}x the largest fitted compute "
                         f"({limit:.3g} FLOP)")
    law = ParametricFit(**fit_settings).fit(train["params"], train["tokens"], train["loss"])
    runs = test.assign(predicted=law.predict(test["params"], test["tokens"]))
    runs["relative_error"] = (runs["predicted"] - runs["loss"]).abs() / runs["loss"]
    bins = np.floor(np.log10(frame["flops"].astype(float)) / bin_decades)
    env = (frame.assign(bin=bins).groupby("bin")
           .agg(flops=("flops", "median"), loss=("loss", "min")).reset_index(drop=True))
    env_train, env_test = env[env["flops"] <= cutoff], env[env["flops"] >= limit].copy()
    if len(env_train) < 3:
        raise ValueError("fewer than 3 envelope bins at or below the cutoff")
    env_test["predicted"] = ComputeFit().fit(env_train["flops"], env_train["loss"]).predict(
        env_test["flops"])
    env_test["relative_error"] = (env_test["predicted"] - env_test["loss"]).abs() / env_test["loss"]
    return runs.reset_index(drop=True), env_test.reset_index(drop=True)
