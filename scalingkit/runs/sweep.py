"""Plan and run IsoFLOP sweeps: several model sizes trained at each compute budget.

For every budget ``C`` (FLOP) the planner picks the sizes around a centre guess
and gives each the token budget ``D = C / (FLOP per token)``, rounded to whole
optimizer steps. The sizes come from one of two ladders
(:class:`~scalingkit.runs.spec.SweepSpec`, ``ladder``):

``"nearest"``
    ``k`` target sizes log-spaced around ``N_c = g * C**a`` (by default ``a = 0.5``
    and ``g`` such that ``D / N = 20`` under ``C = 6 N D``, the Chinchilla optimum),
    each rounded to the nearest shape of
    :func:`scalingkit.core.models.shape_for_params`;
``"monotone"``
    ``k`` consecutive rungs of :mod:`scalingkit.core.ladder` centred on the rung
    nearest ``N_c``, or on the rung whose run gets a measured number of tokens per
    parameter (``centre_tokens_per_param``), plus the rungs that
    :mod:`scalingkit.runs.bracket` adds at an edge.

Each run takes the spec's learning rate, or its measured rule ``lr*(N, C)``.
Configs outside the stated bounds (too few optimizer steps, too many passes over
the corpus, a size outside the lr rule's, a ladder shape already taken) are
dropped, each with its reason.

Which FLOP count defines the budget is a choice, ``budget_flops``:

``"exact"`` (default)
    ``D = C / training_flops_per_token(shape)``: every matmul including
    attention over the context and the output head
    (:func:`scalingkit.core.flops.training_flops_per_token`). This is the compute
    the run really spends, which matters for small models, where attention
    and the head are a large share.
``"6nd"``
    ``D = C / (6 N)`` with ``N`` every parameter, the approximation of
    Hoffmann et al. (2022).

Both counts are recorded for every run (``flops_exact`` and ``flops_6nd``), so
an analysis can use either. ``N`` is the total parameter count (a tied
embedding matrix counted once); the non-embedding count is recorded too.

References
----------
Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models"
(Approach 2: IsoFLOP profiles).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scalingkit.core import flops
from scalingkit.core.ladder import ladder_rung
from scalingkit.core.models import GPTConfig
from scalingkit.runs.provenance import provenance
from scalingkit.runs.spec import (  # noqa: F401  (re-exported: the sweep's public names)
    CHINCHILLA_CENTRE,
    GRID_FIELDS,
    LATER_FIELDS,
    SweepSpec,
    budget_key,
    rule_lr,
    spec_dict,
    spec_from_dict,
    vocab_size,
)

#: Names accepted by :func:`preset`.
PRESETS = ("quick", "reference", "laptop")
#: Training tokens of ``gutenberg_en`` in bytes (the split of its manifest), so that
#: planning a ``laptop`` sweep need not load the corpus (a test checks the number).
GUTENBERG_BYTES = 91_677_960
#: The fewest optimizer steps of a ``laptop`` run.
LAPTOP_MIN_STEPS = 200
@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its training config and what the planner expects of it.

    Attributes
    ----------
    budget : float
        The compute budget ``C`` this run belongs to (FLOP).
    size_index : int
        Position of its target size among the budget's ``k`` targets.
    n_target : float
        The target size before the ladder rounded it (parameters).
    params, params_non_embedding : int
        Total and non-embedding parameter counts of the ladder shape.
    tokens : int
        Training tokens ``D``.
    flops_exact, flops_6nd : float
        Training compute by the exact count and by ``6 N D`` with ``N`` the
        total parameter count (FLOP). (The trainer's own result reports
        ``6 N D`` with Kaplan's non-embedding ``N``.)
    steps : int
        Optimizer steps.
    epochs : float
        Passes over the training corpus (``tokens / corpus_tokens``).
    config : dict
        The full ``TrainConfig.to_dict()`` of the run.
    """

    budget: float
    size_index: int
    n_target: float
    params: int
    params_non_embedding: int
    tokens: int
    flops_exact: float
    flops_6nd: float
    steps: int
    epochs: float
    config: dict

    @property
    def tokens_per_param(self) -> float:
        """``D / N`` (tokens per parameter)."""
        return self.tokens / self.params

    def plan_dict(self, budget_flops: str) -> dict:
        """The metadata stored beside the config in the run store."""
        return {
            "budget": self.budget, "budget_flops": budget_flops,
            "size_index": self.size_index, "n_target": self.n_target,
            "params": self.params, "params_non_embedding": self.params_non_embedding,
            "tokens": self.tokens, "flops_exact": self.flops_exact,
            "flops_6nd": self.flops_6nd, "steps": self.steps, "epochs": self.epochs,
            "tokens_per_param": self.tokens_per_param,
        }


@dataclass(frozen=True)
class DroppedRun:
    """A candidate the planner left out, and why."""

    budget: float
    size_index: int
    n_target: float
    reason: str


@dataclass(frozen=True)
class SweepPlan:
    """The outcome of :func:`plan_sweep`: runs to train and candidates dropped."""

    spec: SweepSpec
    runs: tuple[PlannedRun, ...]
    dropped: tuple[DroppedRun, ...]

    def to_frame(self) -> pd.DataFrame:
        """One row per planned run: budget, N, D, D/N, FLOP counts, steps, epochs."""
        rows = [{**r.plan_dict(self.spec.budget_flops),
                 "d_model": r.config["model"]["d_model"],
                 "n_layer": r.config["model"]["n_layer"]} for r in self.runs]
        columns = ["budget", "size_index", "params", "params_non_embedding", "d_model",
                   "n_layer", "tokens", "tokens_per_param", "flops_exact", "flops_6nd",
                   "steps", "epochs"]
        return pd.DataFrame(rows, columns=columns)

    @property
    def total_flops(self) -> float:
        """Training compute of the whole sweep by the exact count (FLOP)."""
        return float(sum(r.flops_exact for r in self.runs))

    def estimate_seconds(self, flop_per_s: float) -> float:
        """Wall time of the sweep's training at a sustained ``flop_per_s`` (seconds).

        Evaluation adds ``evals_per_run * eval_tokens`` forward passes per run,
        counted at a third of the training FLOP per token.
        """
        if not (math.isfinite(flop_per_s) and flop_per_s > 0):
            raise ValueError(f"flop_per_s must be positive, got {flop_per_s!r}")
        s = self.spec
        eval_flops = sum(s.evals_per_run * s.eval_tokens * r.flops_exact / r.tokens / 3.0
                         for r in self.runs)
        return (self.total_flops + eval_flops) / flop_per_s


def train_tokens(corpus: str, tokenizer: str = "byte") -> int:
    """Tokens in one pass over a corpus's training split (tokens)."""
    from scalingkit.core.data import load_corpus

    return int(len(load_corpus(corpus, tokenizer).train))


def _train_config(spec: SweepSpec, model: GPTConfig, tokens: int, steps: int,
                  lr: float, **overrides: Any) -> dict:
    """The full, validated ``TrainConfig`` dict of one run."""
    from scalingkit.core.train import TrainConfig

    eval_every = max(1, steps // spec.evals_per_run)
    data = {
        **dict(spec.train),
        "model": model.to_dict(), "corpus": spec.corpus, "tokenizer": spec.tokenizer,
        "tokens": tokens, "batch_size": spec.batch_size, "lr": lr,
        "warmup_tokens": int(round(spec.warmup_fraction * tokens)), "schedule": "cosine",
        "eval_every": eval_every, "eval_tokens": spec.eval_tokens, "seed": spec.seed,
        "sampler": spec.sampler, **overrides,
    }
    data.setdefault("checkpoint_every", max(1, steps // 10))
    return TrainConfig.from_dict(data).to_dict()


def planned_run(
    spec: SweepSpec, budget: float, model: GPTConfig, *, size_index: int, n_target: float,
    corpus_tokens: int, lr: float | None = None, **overrides: Any,
) -> PlannedRun | str:
    """The planned run of one shape at one budget, or the reason it is out of bounds.

    Parameters
    ----------
    spec : SweepSpec
    budget : float
        Compute budget (FLOP), counted as ``spec.budget_flops`` says.
    model : GPTConfig
    size_index : int
        Position of the shape in its budget (recorded with the run).
    n_target : float
        The size the planner aimed at (parameters).
    corpus_tokens : int
        Tokens in one pass over the training split (tokens).
    lr : float, optional
        Peak learning rate; default the spec's (its rule, if it has one).
    **overrides
        Further ``TrainConfig`` fields of this run only (``seed``, ``batch_size``...).
    """
    n = model.n_params()
    if not spec.min_params <= n <= spec.max_params:
        return f"{n:,} params outside [{spec.min_params:.3g}, {spec.max_params:.3g}]"
    if lr is None:
        lr = spec.lr_for(n, budget)
        if lr is None:
            rule = spec.lr_rule or {}
            return (f"{n:,} params outside the lr rule's sizes "
                    f"[{rule.get('n_min', 0):.3g}, {rule.get('n_max', 0):.3g}]")
    fpt_exact = flops.training_flops_per_token(model.shape)
    fpt = fpt_exact if spec.budget_flops == "exact" else flops.flops_6nd(n, 1)  # 6N per token
    tokens_per_step = overrides.get("batch_size", spec.batch_size) * spec.n_ctx
    steps = int(round(budget / fpt / tokens_per_step))  # whole steps: the run sees all D
    tokens = steps * tokens_per_step
    if steps < spec.min_steps:
        return f"only {steps} optimizer steps (< min_steps={spec.min_steps})"
    epochs = tokens / corpus_tokens
    if epochs > spec.max_epochs:
        return f"{epochs:.3g} epochs over the corpus (> max_epochs={spec.max_epochs:g})"
    return PlannedRun(
        budget=budget, size_index=size_index, n_target=n_target, params=n,
        params_non_embedding=model.n_params_non_embedding(), tokens=tokens,
        flops_exact=fpt_exact * tokens, flops_6nd=flops.flops_6nd(n, tokens), steps=steps,
        epochs=epochs, config=_train_config(spec, model, tokens, steps, lr, **overrides),
    )


def _budget_shapes(spec: SweepSpec, budget: float) -> list[tuple[int, float, GPTConfig]]:
    """``(size_index, n_target, shape)`` of one budget's candidates."""
    if spec.ladder == "monotone":
        kw = spec.rung_kwargs()
        shapes = [ladder_rung(k, **kw) for k in spec.rungs(budget)]
        return [(i, float(m.n_params()), m) for i, m in enumerate(shapes)]
    return [(i, float(t), spec.model_for(float(t))) for i, t in enumerate(spec.targets(budget))]


def plan_sweep(spec: SweepSpec) -> SweepPlan:
    """Choose the runs of an IsoFLOP sweep.

    Parameters
    ----------
    spec : SweepSpec
        Budgets, sizes per budget, recipe and bounds.

    Returns
    -------
    SweepPlan
        ``runs`` sorted by budget then size, and ``dropped`` with a reason for
        every candidate left out.
    """
    corpus_tokens = spec.corpus_tokens or train_tokens(spec.corpus, spec.tokenizer)
    runs: list[PlannedRun] = []
    dropped: list[DroppedRun] = []
    for budget in spec.budgets:
        seen: dict[GPTConfig, int] = {}
        for i, target, model in _budget_shapes(spec, budget):
            if model in seen:
                reason = (f"ladder gives the same shape as size {seen[model]} "
                          f"({model.n_params():,} params)")
                dropped.append(DroppedRun(budget, i, target, reason))
                continue
            seen[model] = i
            run = planned_run(spec, budget, model, size_index=i, n_target=target,
                              corpus_tokens=corpus_tokens)
            if isinstance(run, str):
                dropped.append(DroppedRun(budget, i, target, run))
            else:
                runs.append(run)
    return SweepPlan(spec=spec, runs=tuple(runs), dropped=tuple(dropped))


def preset(name: str, **overrides: Any) -> SweepSpec:
    """A named sweep, optionally with some fields replaced.

    ``quick``
        3 budgets (3e10 to 3e11 FLOP) x 3 sizes (9 runs, 1.3e12 FLOP): a
        smoke test of the whole pipeline with just enough sizes per budget
        for a parabola; a few minutes on 2 idle CPU cores.
    ``reference``
        The sweep the book's IsoFLOP chapter reads: 5 budgets from 1e12 to
        3.2e13 FLOP (1.5 decades) x 7 sizes spanning a factor 16, horizon-matched
        cosine schedule, Shakespeare bytes. About 3.8e14 training FLOP, sized
        for about 2 hours at 50 GFLOP/s (a plain fp32 training step of these
        shapes reached 60 to 100 GFLOP/s on 2 lightly loaded cores). On a
        shared machine it takes far longer: use
        :meth:`SweepPlan.estimate_seconds` with a rate you measured.

    Parameters
    ----------
    name : {"quick", "reference"}
    **overrides
        :class:`SweepSpec` fields to replace (``budgets``, ``sizes_per_budget``...).
    """
    if name == "quick":
        spec = SweepSpec(budgets=(3e10, 1e11, 3e11), sizes_per_budget=3, span=8.0,
                         evals_per_run=10, eval_tokens=8192, min_steps=20, min_params=5e3)
    elif name == "reference":
        spec = SweepSpec(budgets=tuple(float(f"{c:.3g}") for c in np.geomspace(1e12, 3.2e13, 5)),
                         sizes_per_budget=7, span=16.0)
    elif name == "laptop":
        spec = SweepSpec(
            budgets=tuple(float(f"{c:.3g}") for c in np.geomspace(1e12, 3.2e13, 5)),
            sizes_per_budget=7, corpus="gutenberg_en", tokenizer="byte",
            corpus_tokens=GUTENBERG_BYTES, n_ctx=128, batch_size=16, head_dim=16,
            aspect_ratio=64.0, ladder="monotone", min_layers=2, init_std=None, sampler="epoch",
            warmup_fraction=0.05, evals_per_run=10, eval_tokens=65536,
            min_steps=LAPTOP_MIN_STEPS, max_epochs=1.0, min_params=1e3)
    else:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(spec, **overrides) if overrides else spec


def add_to_store(plan: SweepPlan, store: Any) -> list[str]:
    """Add every planned run to a :class:`~scalingkit.runs.store.RunStore`; return their ids.

    Runs already in the store (same full config) are left as they are, so
    planning again and re-running resumes a sweep.
    """
    return [store.add(r.config, plan=r.plan_dict(plan.spec.budget_flops)) for r in plan.runs]


def run_sweep(
    plan: SweepPlan, out: str | Any, *, executor: str = "sequential", workers: int | None = None,
    progress: bool = True, trainer: Any = None, command: str | None = None,
    allow_other_spec: bool = False, **executor_options: Any,
) -> Any:
    """Store a plan's runs under ``out`` and train the ones not yet finished.

    The store folder is created and checked for writing before any training.
    Runs already done or diverged are skipped; partial ones resume from their
    checkpoints. The largest runs start first, which balances a process pool.

    Parameters
    ----------
    plan : SweepPlan
    out : str or PathLike
        The run store folder.
    executor : {"sequential", "pool", "slurm"}, default="sequential"
    workers : int, optional
        Pool size (``pool`` only); default one per core.
    progress : bool, default=True
        Progress bars.
    trainer : str or callable, optional
        Override the trainer (``"module:function"``); default
        :func:`scalingkit.runs.executors.train_from_dict`.
    command : str, optional
        The command line that started the sweep, kept in its provenance.
    allow_other_spec : bool, default=False
        Add the runs even if ``out`` was made for a sweep with another recipe
        (fields outside :data:`GRID_FIELDS` differ); by default that is refused.
    **executor_options
        Passed to the executor (for Slurm: ``resources=SlurmResources(...)``,
        ``pending_limit_s``, ``wait_limit_s``; see
        :class:`~scalingkit.runs.submitit_executor.SubmititExecutor`).

    Returns
    -------
    RunStore
    """
    from scalingkit.runs.executors import DEFAULT_TRAINER, make_executor
    from scalingkit.runs.store import RunStore

    store = RunStore(out)
    store.ensure_writable()
    runner = make_executor(executor, trainer=trainer or DEFAULT_TRAINER, workers=workers,
                           folder=store.root / "submitit", progress=progress,
                           **executor_options)
    store.bind_spec(spec_dict(plan.spec), extensible=GRID_FIELDS,
                    allow_other=allow_other_spec)
    ids = add_to_store(plan, store)
    order = sorted(range(len(ids)), key=lambda j: -plan.runs[j].flops_exact)
    free = set(store.pending())  # not final, not held by another live sweep
    pending = [ids[j] for j in order if ids[j] in free]
    entry = {"spec": spec_dict(plan.spec), "runs": ids, "pending_at_start": len(pending),
             "dropped": [vars(d) for d in plan.dropped], "executor": executor,
             "provenance": provenance(command), "started": time.time()}
    store.append_log(entry)  # one entry per invocation
    runner.run(store, pending)
    return store


