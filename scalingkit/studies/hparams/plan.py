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
from scalingkit.runs.sweep import PlannedRun, SweepPlan, SweepSpec, planned_run

#: Training tokens of ``gutenberg_en`` in bytes (its manifest's split); stated so that
#: planning does not need to load the corpus.
GUTENBERG_BYTES = 91_677_960

#: The fewest optimizer steps of any run in the study and the sweeps built on it.
MIN_STEPS = 150


def base_spec(**overrides: Any) -> SweepSpec:
    """The recipe shared by the study and the laptop-scale sweeps.

    ``gutenberg_en`` bytes, context 128, batch 16 sequences (2,048 tokens per step),
    monotone ladder with 16-feature heads, aspect ratio 64 and at least 2 layers,
    disjoint windows, 5% linear warmup then cosine to the run's own horizon, AdamW
    (weight decay 0.1), at least :data:`MIN_STEPS` steps and at most one pass.
    """
    spec = SweepSpec(
        budgets=(1e12,), sizes_per_budget=7, corpus="gutenberg_en", tokenizer="byte",
        corpus_tokens=GUTENBERG_BYTES, n_ctx=128, batch_size=16, head_dim=16,
        aspect_ratio=64.0, ladder="monotone", min_layers=2, sampler="epoch",
        warmup_fraction=0.05, evals_per_run=10, eval_tokens=65536, min_steps=MIN_STEPS,
        max_epochs=1.0, min_params=1e3,
    )
    return replace(spec, **overrides) if overrides else spec


#: The learning-rate grid: budgets (FLOP) -> ladder rungs, and the rates tried at each.
LR_GRID_RUNGS: dict[float, tuple[int, ...]] = {5e11: (1, 2, 3, 4, 5), 5e12: (3, 5, 7, 9, 11)}
LR_GRID_RATES: tuple[float, ...] = tuple(float(x) for x in 1.25e-3 * 2.0 ** np.arange(6))


def _runs(spec: SweepSpec, cells: Sequence[tuple[float, int, dict]]) -> SweepPlan:
    """A plan of explicit ``(budget, rung, TrainConfig overrides)`` cells."""
    kw = spec.rung_kwargs()
    runs: list[PlannedRun] = []
    dropped = []
    from scalingkit.runs.sweep import DroppedRun

    for budget, k, overrides in cells:
        model = ladder_rung(k, **kw)
        run = planned_run(spec, budget, model, size_index=k, n_target=float(model.n_params()),
                          corpus_tokens=spec.corpus_tokens or 0, **overrides)
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
