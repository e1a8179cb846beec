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

Each rung of the ladder here is a :class:`PorianRung`: a named IsoFLOP sweep
that corrects one more factor than the previous rung. :func:`plan_rung` turns a
rung into a :class:`~scalingkit.runs.sweep.SweepPlan` that the ordinary sweep
machinery (:func:`scalingkit.runs.sweep.run_sweep`) trains into its own run store,
and :func:`exponent_table` fits ``N_opt = k C^a`` with bootstrap intervals for
every rung under both ways of counting (:data:`CONVENTIONS`).

Two ladders are defined:

:data:`RUNGS` (``"old"``)
    The first ladder, on Shakespeare bytes with the nearest-shape model ladder and a
    made-up per-size rule (:func:`tuned_hyperparameters`); the committed stores under
    ``book/data/porian_shakespeare/`` were trained on it and stay readable.
:data:`LAPTOP_RUNGS` (``"laptop"``)
    The rebuilt ladder on :func:`laptop_spec`: the ``laptop`` preset with a BPE
    vocabulary of 4096 (``gutenberg_en``, monotone ladder, width-scaled init, no
    repeated data), where the output head is a real share of the compute of the
    smallest models (:func:`~scalingkit.studies.porian2024.analysis.head_flop_share`).
    Its ends are ``kaplan`` (``6 N D`` budget with the non-embedding ``N``, a fixed
    warmup of :data:`LAPTOP_WARMUP_TOKENS`, one long cosine shared by every run,
    one untuned learning rate) and ``corrected`` (exact FLOP with the head, the
    preset's 5 % warmup, horizon-matched cosine, the measured rule ``lr*(N, C)``).
    The fixed values of the Kaplan-like recipe are set once per rung by
    :func:`fixed_recipe`; :func:`run_rung` trains a rung until every budget is
    bracketed.

Units: N in parameters, D in tokens, C in FLOP, loss in nats/token.

References
----------
Porian, Wortsman, Jitsev, Schmidt, Carmon (2024), "Resolving Discrepancies in
Compute-Optimal Scaling of Language Models".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from scalingkit.core import flops
from scalingkit.core.models import GPTConfig
from scalingkit.runs.sweep import PlannedRun, SweepPlan, SweepSpec, plan_sweep

if TYPE_CHECKING:
    from scalingkit.studies.porian2024.laptop import RungRecipe

#: Ways of counting (N, C) for the exponent fit.
#: ``"kaplan"``: N = non-embedding parameters, C = 6 N D.
#: ``"with_head"``: N = non-embedding parameters plus the output head, C = the
#: exact FLOP of every matmul, the head's included.
CONVENTIONS = ("kaplan", "with_head")
#: The ladder's compute budgets (FLOP): 4 budgets, a factor 3 apart, 1.43 decades.
#: Sized so that the five rungs train in about 1.5 h on 2 CPU cores (see the
#: chapter "Why Kaplan and Chinchilla disagreed").
BUDGETS = (1.6e11, 4.8e11, 1.4e12, 4.3e12)
#: Model sizes per budget.
SIZES_PER_BUDGET = 6
#: The Kaplan-like warmup, the same for every run (tokens): 96 steps of 32 x 128 tokens.
KAPLAN_WARMUP_TOKENS = 96 * 32 * 128


@dataclass(frozen=True)
class PorianRung:
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
        Old ladder: per-size learning rate, batch size and AdamW ``beta2``
        (:func:`tuned_hyperparameters`) instead of one setting for all sizes.
        Laptop ladder: the measured rule ``lr*(N, C)`` instead of the one rate of
        :func:`fixed_recipe`.
    ladder : {"old", "laptop"}, default="old"
        Which ladder the rung belongs to. On the laptop ladder ``warmup="fixed"``
        is :data:`LAPTOP_WARMUP_TOKENS` and ``"fraction"`` the spec's
        ``warmup_fraction`` of each run's tokens.
    """

    name: str
    title: str
    budget_count: Literal["kaplan", "exact"]
    warmup: Literal["fixed", "size", "fraction"]
    schedule: Literal["cosine_fixed", "cosine"]
    tuned: bool
    ladder: Literal["old", "laptop"] = "old"


#: The ladder, in order: each rung corrects one more factor than the one before.
RUNGS = (
    PorianRung("kaplan", "Kaplan-like baseline", "kaplan", "fixed", "cosine_fixed", False),
    PorianRung("head", "(a) count the head's FLOP in the budget", "exact", "fixed",
               "cosine_fixed", False),
    PorianRung("warmup", "(b) warmup scaled to the model", "exact", "size", "cosine_fixed",
               False),
    PorianRung("decay", "Chinchilla hypothesis: decay to each run's horizon", "exact", "size",
               "cosine", False),
    PorianRung("tuned", "(c) learning rate, batch size, beta2 per size", "exact", "size",
               "cosine", True),
)


#: The laptop ladder's tokenizer: a BPE vocabulary of 4096, whose head is a real share
#: of the compute of the smallest models.
LAPTOP_TOKENIZER = "bpe:4096"
#: The laptop ladder's Kaplan-like warmup, the same for every run (tokens): 100 steps
#: of the preset's 16 x 128 tokens, half of the shortest run the preset allows.
LAPTOP_WARMUP_TOKENS = 100 * 16 * 128

#: The laptop ladder, most informative first: the two ends (their gap is the headline),
#: then the intermediate rungs by the size of the factor Porian et al. measured
#: (head, warmup, then the decay hypothesis). Ordered by the factors they correct
#: (:func:`ladder_order`), each rung corrects one more than the one before.
LAPTOP_RUNGS = (
    PorianRung("kaplan", "Kaplan-like: 6ND without the head, fixed warmup and cosine, one lr",
               "kaplan", "fixed", "cosine_fixed", False, "laptop"),
    PorianRung("corrected", "all corrected: exact FLOP, 5% warmup, matched cosine, lr*(N, C)",
               "exact", "fraction", "cosine", True, "laptop"),
    PorianRung("head", "(a) count the head's FLOP in the budget", "exact", "fixed",
               "cosine_fixed", False, "laptop"),
    PorianRung("warmup", "(b) warmup scaled to the run (5% of its tokens)", "exact",
               "fraction", "cosine_fixed", False, "laptop"),
    PorianRung("decay", "Chinchilla hypothesis: decay to each run's horizon", "exact",
               "fraction", "cosine", False, "laptop"),
)
#: Names accepted for ``ladder``.
LADDERS = ("laptop", "old")


def ladder_rungs(ladder: str = "old") -> tuple[PorianRung, ...]:
    """The rungs of ``ladder`` (``"old"``: :data:`RUNGS`, ``"laptop"``: :data:`LAPTOP_RUNGS`)."""
    if ladder not in LADDERS:
        raise ValueError(f"unknown ladder {ladder!r}; choose one of {', '.join(LADDERS)}")
    return RUNGS if ladder == "old" else LAPTOP_RUNGS


def ladder_order(rungs: tuple[PorianRung, ...]) -> list[PorianRung]:
    """Rungs sorted by how many factors they correct (Kaplan-like first)."""
    def corrected(r: PorianRung) -> int:
        return ((r.budget_count == "exact") + (r.warmup != "fixed")
                + (r.schedule == "cosine") + r.tuned)
    return sorted(rungs, key=corrected)


def get_rung(name: str, ladder: str = "old") -> PorianRung:
    """The rung called ``name`` of ``ladder``; ``ValueError`` listing the names otherwise."""
    rungs = ladder_rungs(ladder)
    for rung in rungs:
        if rung.name == name:
            return rung
    raise ValueError(f"unknown Porian rung {name!r} of the {ladder} ladder; choose one of "
                     f"{', '.join(s.name for s in rungs)}")


def rung_spec(**overrides: Any) -> SweepSpec:
    """The sweep shape shared by every rung: :data:`BUDGETS` x :data:`SIZES_PER_BUDGET`.

    Sizes span a factor 16 around the Chinchilla centre guess; the recipe
    fields (learning rate, batch size, warmup, schedule) are set per step by
    :func:`plan_rung`. ``overrides`` replace :class:`~scalingkit.runs.sweep.SweepSpec`
    fields (e.g. smaller ``budgets`` for a test).
    """
    spec = SweepSpec(budgets=BUDGETS, sizes_per_budget=SIZES_PER_BUDGET, span=16.0,
                     evals_per_run=10, eval_tokens=16384, min_steps=40, min_params=5e3)
    return replace(spec, **overrides) if overrides else spec


def tuned_hyperparameters(n_params: float) -> dict[str, float | int]:
    """Per-size optimiser settings for the ``tuned`` rung (a rule, not a search).

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
    from scalingkit.core.train import TrainConfig

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
                   flops_exact=fpt * tokens, flops_6nd=flops.flops_6nd(run.params, tokens))


def plan_rung(rung: PorianRung | str, spec: SweepSpec | None = None, *,
              recipe: RungRecipe | None = None) -> SweepPlan:
    """The IsoFLOP sweep of one ladder rung.

    Old ladder: the sizes come from :func:`scalingkit.runs.sweep.plan_sweep` on
    ``spec``; each run's tokens and recipe are then set by the rung: tokens from
    the rung's FLOP count, warmup, schedule and (when ``tuned``) per-size optimiser
    settings. Laptop ladder: see :func:`plan_laptop_rung`. Runs that fall out of
    the spec's bounds are dropped with a reason.

    Parameters
    ----------
    rung : PorianRung or str
        The rung or its name (looked up in the laptop ladder when ``spec`` uses the
        monotone model ladder, else in the old one).
    spec : SweepSpec, optional
        Budgets, sizes and bounds; default :func:`rung_spec` (old ladder; the
        laptop ladder needs one, from :func:`laptop_spec`).
    recipe : RungRecipe, optional
        Laptop ladder only: the fixed horizon and learning rate (default
        :func:`fixed_recipe` of ``spec``).

    Returns
    -------
    SweepPlan
        Its runs carry the full training config; ``plan.runs[i].budget`` is the
        budget in the rung's own FLOP count.
    """
    from scalingkit.runs.sweep import DroppedRun, train_tokens

    if isinstance(rung, str):  # a monotone-ladder spec is the laptop ladder's
        rung = get_rung(rung, "laptop" if spec is not None and spec.ladder == "monotone"
                        else "old")
    if rung.ladder == "laptop":
        if spec is None:
            raise ValueError(f"laptop rung {rung.name!r} needs a spec with an lr rule "
                             "(laptop_spec)")
        from scalingkit.studies.porian2024.laptop import plan_laptop_rung

        return plan_laptop_rung(rung, spec, recipe=recipe)
    spec = spec or rung_spec()
    spec = replace(spec, corpus_tokens=spec.corpus_tokens
                   or train_tokens(spec.corpus, spec.tokenizer))
    # sizes only: the rung sets the tokens, so bounds are checked after that
    base = plan_sweep(replace(spec, max_epochs=1e9, min_steps=1))
    staged = []
    for run in base.runs:
        model = GPTConfig.from_dict(run.config["model"])
        per_token = (flops.flops_6nd(model.n_params_non_embedding(), 1)  # 6N per token
                     if rung.budget_count == "kaplan"
                     else flops.training_flops_per_token(model.shape))
        updates: dict[str, Any] = {"schedule": rung.schedule}
        if rung.tuned:
            updates.update(tuned_hyperparameters(run.params))
        staged.append((run, run.budget / per_token, updates))
    horizon = max(int(t) for _, t, _ in staged) if staged else 1
    runs, dropped = [], list(base.dropped)
    for run, tokens, updates in staged:
        warm = KAPLAN_WARMUP_TOKENS if rung.warmup == "fixed" else run.params
        updates["warmup_tokens"] = int(warm)  # capped at half the run in _reshape_run
        updates["horizon_tokens"] = horizon if rung.schedule == "cosine_fixed" else None
        out = _reshape_run(run, spec, tokens, updates, spec.corpus_tokens)
        if isinstance(out, str):
            dropped.append(DroppedRun(run.budget, run.size_index, run.n_target, out))
        else:
            runs.append(out)
    return SweepPlan(spec=spec, runs=tuple(runs), dropped=tuple(dropped))


def rung_command(rung: PorianRung | str, out: str | None = None) -> str:
    """The one command that trains a rung into its run store (a name: the old ladder).

    A laptop rung's command names its ladder and needs ``--lr-rule FILE`` (and the
    budgets, if not the preset's) added.
    """
    rung = get_rung(rung) if isinstance(rung, str) else rung
    folder = out or (f"runs/porian/{rung.name}" if rung.ladder == "old"
                     else f"runs/porian_laptop/{rung.name}")
    extra = "" if rung.ladder == "old" else " --ladder laptop"
    return f"python -m scalingkit porian run {rung.name} --out {folder}{extra}"
