"""The laptop Porian ladder: the rungs planned on the ``laptop`` recipe with BPE 4096.

Every rung shares the reference sweep's foundations (:func:`laptop_spec`: the
English book corpus read once, the monotone ladder, the measured learning-rate rule,
the bracketing planner) and a BPE vocabulary of 4096, whose output head is a real
share of the compute of the smallest models. :func:`plan_laptop_rung` sets each
run's recipe by the rung (FLOP count, warmup, schedule, learning rate);
:func:`run_rung` trains a rung until every budget is bracketed.

Units: N in parameters, D in tokens, C in FLOP, loss in nats/token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scalingkit.core import flops
from scalingkit.runs.sweep import PlannedRun, SweepPlan, SweepSpec, preset
from scalingkit.studies.porian2024.plan import (
    LAPTOP_RUNGS,
    LAPTOP_TOKENIZER,
    LAPTOP_WARMUP_TOKENS,
    PorianRung,
    get_rung,
)


def laptop_spec(lr_rule: Mapping[str, float], **overrides: Any) -> SweepSpec:
    """The sweep shape of every laptop rung: the ``laptop`` preset with BPE 4096.

    (:func:`scalingkit.runs.sweep.preset`: ``gutenberg_en``, monotone ladder,
    width-scaled init, disjoint windows seen once, batch 16 x 128 tokens, at least
    200 optimizer steps, at most one pass; its budgets, 1e12 to 3.2e13 FLOP.) The
    tokenizer is :data:`LAPTOP_TOKENIZER`; the corpus length in BPE tokens is
    measured by loading the corpus (minutes, once) unless ``corpus_tokens`` is given.

    Parameters
    ----------
    lr_rule : mapping
        The measured rule ``lr*(N, C)`` (``SweepSpec.lr_rule``; e.g.
        :func:`scalingkit.studies.hparams.lr_rule.read_lr_rule`), measured on byte-level
        shapes.
    **overrides
        :class:`~scalingkit.runs.sweep.SweepSpec` fields to replace (``budgets``,
        ``corpus_tokens``, ``sizes_per_budget``...).
    """
    fields: dict[str, Any] = {"tokenizer": LAPTOP_TOKENIZER, "corpus_tokens": None,
                              "lr_rule": dict(lr_rule), **overrides}
    return preset("laptop", **fields)


@dataclass(frozen=True)
class RungRecipe:
    """The fixed values of a laptop rung's recipe, set once for the whole rung.

    Attributes
    ----------
    horizon_tokens : int
        Horizon of the shared cosine of ``cosine_fixed`` rungs (tokens).
    lr : float
        The one peak learning rate of untuned rungs (per step).
    """

    horizon_tokens: int
    lr: float


def byte_twin_params(spec: SweepSpec, k: int) -> int:
    """Parameters of rung ``k``'s byte-level shape (parameters), where the lr rule was measured.

    A BPE run takes the rule's rate at the byte-level shape of the same width and
    depth (:meth:`~scalingkit.runs.spec.SweepSpec.byte_rung_params`), as
    :func:`scalingkit.studies.hparams.plan.tokenizer_plan` does.
    """
    return spec.byte_rung_params(k)


def fixed_recipe(spec: SweepSpec, rung: PorianRung | None = None) -> RungRecipe:
    """The untuned learning rate and the shared cosine horizon of a laptop sweep.

    Both are set once from the spec as given, before any pilot or edge rung, so
    that re-centring and bracketing do not change them (every run of a rung shares
    them, and the pilot's runs are reused by the sweep).

    * ``lr``: the rule ``lr*(N, C)`` at the geometric-mean size of the sweep's
      planned rungs (their byte-level shapes) and the geometric-mean budget. It is
      right in the middle of the sweep and wrong at its ends: too low for the
      smallest models, too high for the largest (the rule falls with ``N``), as one
      setting for every size was in Kaplan et al.
    * ``horizon_tokens``: the longest run of the rung's plan with that ``lr``
      (``rung`` default the Kaplan-like one). A run that re-centring or an edge rung
      makes longer still is held at the schedule's final rate after the horizon
      (:func:`scalingkit.core.train.config.learning_rate` for ``cosine_fixed``).

    Parameters
    ----------
    spec : SweepSpec
        From :func:`laptop_spec` (needs ``lr_rule``).
    rung : PorianRung, optional
        The rung whose FLOP count sets the runs' tokens; default ``LAPTOP_RUNGS[0]``.
    """
    from scalingkit.runs.spec import rule_lr

    if spec.lr_rule is None:
        raise ValueError("the laptop ladder needs a spec with an lr rule (lr_rule)")
    rung = rung or LAPTOP_RUNGS[0]
    ks = sorted({k for b in spec.budgets for k in spec.rungs(b)})
    n_mid = float(np.exp(np.mean(np.log([byte_twin_params(spec, k) for k in ks]))))
    c_mid = float(np.exp(np.mean(np.log(spec.budgets))))
    lr = float(rule_lr(spec.lr_rule, n_mid, c_mid))
    probe = plan_laptop_rung(replace(rung, schedule="cosine"), spec,
                             recipe=RungRecipe(horizon_tokens=1, lr=lr))
    horizon = max((r.tokens for r in probe.runs), default=1)
    return RungRecipe(horizon_tokens=int(horizon), lr=lr)


def stored_recipe(out: str, rung: PorianRung) -> RungRecipe | None:
    """The fixed recipe a rung's store already trained with, or None for a new store.

    A rung's untuned learning rate and shared cosine horizon are set once, by the
    first invocation on its store (:func:`fixed_recipe`), and kept when a later
    invocation adds budgets: the one setting of the rung does not move with the
    budgets asked for, and the runs already trained are reused.

    Parameters
    ----------
    out : str
        The rung's run store folder.
    rung : PorianRung

    Raises
    ------
    ValueError
        If the store's runs of ``rung`` disagree on the learning rate (untuned rung)
        or the horizon (``cosine_fixed`` rung).
    """
    from pathlib import Path

    from scalingkit.runs.store import RunStore

    if not Path(out).is_dir():
        return None
    configs = [r.config for r in RunStore(out).records()
               if (r.plan or {}).get("step") == rung.name]
    if not configs:
        return None
    lrs = {float(c["lr"]) for c in configs} if not rung.tuned else {0.0}
    horizons = ({int(c["horizon_tokens"]) for c in configs}
                if rung.schedule == "cosine_fixed" else {1})
    if len(lrs) > 1 or len(horizons) > 1:
        raise ValueError(f"{out}: the runs of step {rung.name!r} disagree on their fixed "
                         f"recipe (learning rates {sorted(lrs)}, horizons {sorted(horizons)})")
    return RungRecipe(horizon_tokens=horizons.pop(), lr=lrs.pop())


def _laptop_run(rung: PorianRung, spec: SweepSpec, budget: float, k: int,
                recipe: RungRecipe, corpus_tokens: int) -> PlannedRun | str:
    """Rung ``k`` of the monotone ladder at one budget, under a laptop rung's recipe."""
    from scalingkit.core.ladder import ladder_rung
    from scalingkit.runs.sweep import planned_run

    model = ladder_rung(k, **spec.rung_kwargs())
    n_byte = byte_twin_params(spec, k)
    rule_rate = spec.lr_for(n_byte, budget)  # None: outside the sizes the rule was measured on
    if rule_rate is None:
        return f"rung {k} ({n_byte:,} params in bytes) lies outside the lr rule's sizes"
    # the Kaplan count's budget C = 6 N_ne D is the exact-count budget C * exact / (6 N_ne)
    fpt = flops.training_flops_per_token(model.shape)
    per_token = (flops.flops_6nd(model.n_params_non_embedding(), 1)
                 if rung.budget_count == "kaplan" else fpt)
    exact_budget = budget * fpt / per_token
    overrides: dict[str, Any] = {}
    if rung.schedule == "cosine_fixed":
        overrides.update(schedule="cosine_fixed", horizon_tokens=recipe.horizon_tokens)
    args = {"size_index": k, "n_target": float(model.n_params()),
            "corpus_tokens": corpus_tokens, "lr": rule_rate if rung.tuned else recipe.lr}
    run = planned_run(spec, exact_budget, model, **args, **overrides)
    if rung.warmup == "fixed" and not isinstance(run, str):  # capped at half the run
        overrides["warmup_tokens"] = int(min(LAPTOP_WARMUP_TOKENS, run.tokens / 2))
        run = planned_run(spec, exact_budget, model, **args, **overrides)
    return run if isinstance(run, str) else replace(run, budget=budget)


def plan_laptop_rung(rung: PorianRung | str, spec: SweepSpec, *,
                     recipe: RungRecipe | None = None) -> SweepPlan:
    """The IsoFLOP sweep of one laptop rung: the spec's ladder rungs, the rung's recipe.

    Each budget takes the monotone-ladder rungs of ``spec.rungs(budget)`` (its
    centre and extra rungs, as :mod:`scalingkit.runs.bracket` sets them). Each run
    gets, by the rung:

    * tokens: ``C / (6 N_ne)`` (Kaplan: non-embedding ``N``, head and embeddings
      uncounted) or ``C / exact FLOP per token`` (head included), in whole steps;
    * warmup: :data:`LAPTOP_WARMUP_TOKENS` capped at half the run (``"fixed"``) or
      ``spec.warmup_fraction`` of its tokens (``"fraction"``);
    * schedule: cosine to the shared ``recipe.horizon_tokens`` or to its own end;
    * learning rate: ``recipe.lr`` for every size, or the rule ``lr*(N, C)`` at the
      byte-level shape of the same rung (:func:`byte_twin_params`).

    Every rung drops the shapes whose byte-level twin lies outside the rule's sizes,
    so all rungs choose among the same shapes.

    Parameters
    ----------
    rung : PorianRung or str
        A rung of :data:`LAPTOP_RUNGS` or its name.
    spec : SweepSpec
        From :func:`laptop_spec`.
    recipe : RungRecipe, optional
        Default :func:`fixed_recipe` of ``spec``.
    """
    from scalingkit.core.ladder import ladder_rung
    from scalingkit.runs.sweep import DroppedRun, train_tokens

    rung = get_rung(rung, "laptop") if isinstance(rung, str) else rung
    if spec.ladder != "monotone" or spec.lr_rule is None:
        raise ValueError("a laptop rung needs a monotone-ladder spec with an lr rule "
                         "(laptop_spec)")
    recipe = recipe or fixed_recipe(spec)
    corpus_tokens = spec.corpus_tokens or train_tokens(spec.corpus, spec.tokenizer)
    spec = replace(spec, corpus_tokens=corpus_tokens)
    runs, dropped = [], []
    for budget in spec.budgets:
        for k in spec.rungs(budget):
            out = _laptop_run(rung, spec, budget, k, recipe, corpus_tokens)
            if isinstance(out, str):
                n = ladder_rung(k, **spec.rung_kwargs()).n_params()
                dropped.append(DroppedRun(budget, k, float(n), out))
            else:
                runs.append(out)
    return SweepPlan(spec=spec, runs=tuple(runs), dropped=tuple(dropped))


def plan_metadata(run: PlannedRun, rung: PorianRung) -> dict:
    """What the run store keeps beside a rung's run: the plan, the step and its ladder."""
    return {**run.plan_dict(rung.budget_count), "step": rung.name, "ladder": rung.ladder}


def pilot_tokens_per_param(rung: PorianRung, spec: SweepSpec, table: Any) -> float:
    """The pilot's optima as the ``centre_tokens_per_param`` of ``spec`` (tokens per parameter).

    ``SweepSpec.centre`` places a budget's middle rung with the exact FLOP count. For
    an exact-count rung that is :func:`scalingkit.runs.bracket.measured_tokens_per_param`.
    A Kaplan-count run gets ``C / (6 N_ne)`` tokens, more than the exact count gives
    the same size, so its measured ratio is converted: each optimum's ratio is
    multiplied by ``6 N_ne / exact FLOP per token`` of its shape, which puts the
    centre on the measured optimum sizes.
    """
    from scalingkit.runs.bracket import measured_tokens_per_param

    ratio = measured_tokens_per_param(table)
    if rung.budget_count != "kaplan":
        return ratio
    factors = []
    for n_opt in table.loc[table["bracketed"].astype(bool), "n_opt"]:
        model = spec.model_for(float(n_opt))
        factors.append(flops.flops_6nd(model.n_params_non_embedding(), 1)
                       / flops.training_flops_per_token(model.shape))
    return ratio * float(np.exp(np.mean(np.log(factors))))


def run_rung(
    rung: PorianRung | str, spec: SweepSpec, out: str, *, pilot: bool = True,
    max_rounds: int = 6, max_extra: int | None = None,
    log: Callable[[str], None] = print, **run_options: Any,
) -> tuple[SweepSpec, Any]:
    """Train a laptop rung until every budget is bracketed: pilot, re-centre, extend.

    :func:`scalingkit.runs.bracket.run_bracketed` with the rung's planner
    (:func:`plan_laptop_rung`), its plan metadata and its pilot ratio
    (:func:`pilot_tokens_per_param`). Bracketing is judged per planned budget, in the
    rung's own FLOP count: the Kaplan-like rung's budgets are ``6 N_ne D``, so its
    profiles (and their minima) are those of the count Kaplan et al. used. The fixed
    recipe (:func:`fixed_recipe`) is set once from ``spec`` before the pilot, by the
    first invocation on ``out``; a later one (more budgets) keeps the store's
    (:func:`stored_recipe`).

    Parameters
    ----------
    rung : PorianRung or str
        A rung of :data:`LAPTOP_RUNGS` or its name.
    spec : SweepSpec
        From :func:`laptop_spec`.
    out : str
        The rung's run store folder (resumable).
    pilot : bool, default=True
    max_rounds : int, default=6
        Extension rounds per stage.
    max_extra : int, optional
        Cap on rungs added at one edge of one budget (default
        :data:`scalingkit.runs.bracket.MAX_EXTRA`).
    log : callable, default=print
    **run_options
        Passed to :func:`scalingkit.runs.sweep.run_sweep` (``trainer``, ``executor``,
        ``workers``, ``progress``, ``command``).

    Returns
    -------
    (SweepSpec, DataFrame)
        The final spec and its :func:`scalingkit.runs.bracket.budget_table`.
    """
    from scalingkit.runs.bracket import MAX_EXTRA, run_bracketed

    rung = get_rung(rung, "laptop") if isinstance(rung, str) else rung
    if rung.ladder != "laptop":
        raise ValueError(f"run_rung trains laptop rungs; {rung.name!r} is of the old ladder "
                         "(use plan_rung and run_sweep)")
    recipe = stored_recipe(out, rung) or fixed_recipe(spec, rung)
    log(f"{rung.name}: lr {recipe.lr:.4g} for untuned sizes, cosine horizon "
        f"{recipe.horizon_tokens:,} tokens")
    return run_bracketed(
        spec, out, pilot=pilot, max_rounds=max_rounds,
        max_extra=MAX_EXTRA if max_extra is None else max_extra,
        log=lambda line: log(f"{rung.name}: {line}"),
        planner=lambda s: plan_laptop_rung(rung, s, recipe=recipe),
        plan_metadata=lambda r: plan_metadata(r, rung),
        pilot_ratio=lambda s, table: pilot_tokens_per_param(rung, s, table),
        **run_options)
