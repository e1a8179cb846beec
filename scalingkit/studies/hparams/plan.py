"""Plans of the hyperparameter study: the base recipe, the learning-rate grid, seeds.

Every experiment of the study (and the reference sweep that uses its results) trains
on the English book corpus ``gutenberg_en`` in bytes, with the monotone ladder
(:mod:`scalingkit.core.ladder`), disjoint training windows (no token seen twice in a
run of less than one pass) and a horizon-matched cosine schedule.

Units: budgets in FLOP (exact count, :func:`scalingkit.core.flops.training_flops_per_token`),
sizes in parameters (total count), learning rates per optimizer step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from scalingkit.core.ladder import ladder_rung
from scalingkit.runs.sweep import (
    PlannedRun,
    SweepPlan,
    SweepSpec,
    planned_run,
    preset,
    train_tokens,
)


def base_spec(**overrides: Any) -> SweepSpec:
    """The recipe shared by the study and the laptop-scale sweeps: the ``laptop`` preset.

    (:func:`scalingkit.runs.sweep.preset`: ``gutenberg_en`` bytes, the monotone ladder,
    disjoint windows, batch 16 x 128 tokens, horizon-matched cosine.)
    """
    return preset("laptop", **overrides)


#: The learning-rate grid: budgets (FLOP) -> ladder rungs, and the rates tried at each.
LR_GRID_RUNGS: dict[float, tuple[int, ...]] = {1e12: (1, 2, 3, 4, 5), 5e12: (3, 5, 7, 9, 11)}
LR_GRID_RATES: tuple[float, ...] = tuple(float(x) for x in 1.25e-3 * 2.0 ** np.arange(7))


def _runs(spec: SweepSpec, cells: Sequence[tuple[float, int, dict]]) -> SweepPlan:
    """A plan of explicit ``(budget, rung, changes)`` cells.

    ``changes`` holds ``TrainConfig`` fields of the cell, plus four keys of its own:
    ``warmup_fraction`` (replaces the spec's), ``horizon_factor`` (a fixed cosine
    whose horizon is this many times the run's own tokens), ``lr_factor`` (this many
    times the rate the spec's rule gives the run) and ``init_std`` (the model's
    initial weight scale).
    """
    from scalingkit.runs.sweep import DroppedRun

    kw = spec.rung_kwargs()
    corpus_tokens = spec.corpus_tokens or train_tokens(spec.corpus, spec.tokenizer)
    runs: list[PlannedRun] = []
    dropped = []
    for budget, k, changes in cells:
        changes = dict(changes)
        factor = changes.pop("horizon_factor", None)
        lr_factor = changes.pop("lr_factor", None)
        cell_spec = replace(spec, warmup_fraction=changes.pop("warmup_fraction",
                                                             spec.warmup_fraction))
        model = ladder_rung(k, **kw)
        if "init_std" in changes:
            model = replace(model, init_std=float(changes.pop("init_std")))
        args = {"size_index": k, "n_target": float(model.n_params()),
                "corpus_tokens": corpus_tokens}
        run = planned_run(cell_spec, budget, model, **args, **changes)
        if lr_factor is not None and not isinstance(run, str):
            changes["lr"] = float(lr_factor) * run.config["lr"]
            run = planned_run(cell_spec, budget, model, **args, **changes)
        if factor is not None and not isinstance(run, str):
            changes.update(schedule="cosine_fixed", horizon_tokens=int(factor * run.tokens))
            run = planned_run(cell_spec, budget, model, **args, **changes)
        if isinstance(run, str):
            dropped.append(DroppedRun(budget, k, float(model.n_params()), run))
        else:
            runs.append(run)
    return SweepPlan(spec=spec, runs=tuple(runs), dropped=tuple(dropped))


def lr_grid_plan(
    spec: SweepSpec | None = None,
    rungs: dict[float, Sequence[int]] | None = None,
    rates: Sequence[float] = LR_GRID_RATES,
) -> SweepPlan:
    """Every (budget, rung, learning rate) of the grid.

    Parameters
    ----------
    spec : SweepSpec, optional
        The recipe (default :func:`base_spec`); its ``budgets`` are replaced.
    rungs : dict, optional
        Budget (FLOP) -> ladder rungs (default :data:`LR_GRID_RUNGS`).
    rates : sequence of float
        Peak learning rates (default :data:`LR_GRID_RATES`).
    """
    rungs = dict(rungs or LR_GRID_RUNGS)
    spec = replace(spec or base_spec(), budgets=tuple(rungs), lr_rule=None)
    cells = [(b, k, {"lr": float(lr)}) for b, ks in rungs.items() for k in ks for lr in rates]
    return _runs(spec, cells)


def seed_plan(spec: SweepSpec, budget: float, rungs: Sequence[int],
              seeds: Sequence[int] = (1, 2)) -> SweepPlan:
    """Repeats of ``rungs`` at one budget under other seeds, with the spec's lr rule.

    Seed 0 is the sweep's own run; with ``seeds=(1, 2)`` each size has three.
    """
    spec = replace(spec, budgets=(budget,))
    return _runs(spec, [(budget, k, {"seed": int(s)}) for k in rungs for s in seeds])


#: Values tried by :func:`recipe_plan` for each recipe part.
RECIPE_VALUES: dict[str, tuple[float, ...]] = {
    "batch": (8, 16, 32, 64),
    "warmup": (0.0, 0.01, 0.05, 0.2),
    "horizon": (1.0, 1.5, 2.0, 4.0),
    "init": (0.02,),
    "lr": (0.5, 2.0),
}


def recipe_plan(part: str, spec: SweepSpec, budget: float, rungs: Sequence[int],
                values: Sequence[float] | None = None) -> SweepPlan:
    """One recipe setting varied at one budget, everything else the sweep's.

    Parameters
    ----------
    part : {"batch", "warmup", "horizon", "init", "lr"}
        ``batch``: sequences per step (the token budget is unchanged, so fewer,
        larger steps); ``warmup``: the share of tokens in linear warmup;
        ``horizon``: a cosine decaying over this many times the run's tokens (1 is
        the horizon-matched schedule, longer ones stop before the end of the decay,
        as a fixed schedule does for a run shorter than planned); ``init``: the initial
        weights' standard deviation (GPT-2's 0.02 against the ladder's width-scaled
        ``1 / sqrt(d_model)``, which is the sweep's own run); ``lr``: this many times
        the rule's rate (a check of the rule at a budget it was not measured at; 1 is
        the sweep's own run).
    spec : SweepSpec
        The sweep's recipe, with its learning-rate rule.
    budget : float
        Compute budget (FLOP).
    rungs : sequence of int
        Ladder rungs.
    values : sequence of float, optional
        Default :data:`RECIPE_VALUES`. A value equal to the sweep's own setting is
        skipped: that run is the sweep's, and comparisons read it from the sweep's store.
    """
    if part not in RECIPE_VALUES:
        raise ValueError(f"unknown recipe part {part!r}; choose one of {sorted(RECIPE_VALUES)}")
    key = {"batch": "batch_size", "warmup": "warmup_fraction", "horizon": "horizon_factor",
           "init": "init_std", "lr": "lr_factor"}[part]
    values = RECIPE_VALUES[part] if values is None else tuple(values)
    cast = int if part == "batch" else float
    spec = replace(spec, budgets=(budget,))
    own = {"batch": spec.batch_size, "warmup": spec.warmup_fraction, "horizon": 1.0,
           "lr": 1.0, "init": None}[part]  # the sweep's own setting: its runs exist
    return _runs(spec, [(budget, k, {key: cast(v)}) for k in rungs for v in values
                        if own is None or not np.isclose(v, own)])


def tokenizer_plan(spec: SweepSpec, budget: float, rungs: Sequence[int],
                   tokenizers: Sequence[str] = ("byte", "bpe:4096"),
                   seeds: Sequence[int] = (0,)) -> SweepPlan:
    """The same ladder shapes at one budget under several tokenizers.

    Each shape keeps its width and depth; only the vocabulary (and so the embedding,
    the head and their FLOP) changes with the tokenizer. Every run takes the learning
    rate the spec's rule gives the byte-level shape of the same rung, since the rule
    was measured on those. Compare the results in bits per byte.

    Parameters
    ----------
    spec : SweepSpec
        The recipe with its learning-rate rule.
    budget : float
        Compute budget (FLOP, exact count: the head's FLOP included).
    rungs : sequence of int
        Ladder rungs.
    tokenizers : sequence of str, default=("byte", "bpe:4096")
    seeds : sequence of int, default=(0,)
        Seeds of each run (several: a seed study under that tokenizer, for the
        run-to-run noise floor in its own units).
    """
    from scalingkit.runs.sweep import DroppedRun, train_tokens

    runs: list[PlannedRun] = []
    dropped = []
    for tok in tokenizers:
        tspec = replace(spec, tokenizer=tok, budgets=(budget,),
                        corpus_tokens=spec.corpus_tokens if tok == spec.tokenizer else None)
        corpus_tokens = tspec.corpus_tokens or train_tokens(spec.corpus, tok)
        for k in rungs:
            lr = spec.lr_for(spec.byte_rung_params(k), budget)
            model = ladder_rung(k, **tspec.rung_kwargs())
            for seed in seeds:
                extra = {} if seed == spec.seed else {"seed": int(seed)}
                run = (f"rung {k} lies outside the lr rule's sizes" if lr is None else
                       planned_run(tspec, budget, model, size_index=k,
                                   n_target=float(model.n_params()),
                                   corpus_tokens=corpus_tokens, lr=lr, **extra))
                if isinstance(run, str):
                    dropped.append(DroppedRun(budget, k, float(model.n_params()), run))
                else:
                    runs.append(run)
    return SweepPlan(spec=replace(spec, budgets=(budget,)), runs=tuple(runs),
                     dropped=tuple(dropped))

