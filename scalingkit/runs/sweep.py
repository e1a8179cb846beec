"""Plan and run IsoFLOP sweeps: several model sizes trained at each compute budget.

For every budget ``C`` (FLOP) the planner picks ``k`` target sizes log-spaced
around a centre guess ``N_c = g * C**a`` (by default ``a = 0.5`` and ``g`` such
that ``D / N = 20`` under ``C = 6 N D``, the Chinchilla optimum), turns each
target into a concrete shape from the model ladder
(:func:`scalingkit.core.models.shape_for_params`), and gives it the token budget
``D = C / (FLOP per token)``, rounded to whole optimizer steps. Configs
outside the stated bounds (too few optimizer steps, too many passes over the
corpus, a ladder shape already taken) are dropped, each with its reason.

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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from scalingkit.core import flops
from scalingkit.core.ladder import ladder_rung, nearest_rung
from scalingkit.core.models import GPTConfig, shape_for_params
from scalingkit.runs.provenance import provenance

#: Names accepted by :func:`preset`.
PRESETS = ("quick", "reference")
#: SweepSpec fields that only place runs on the grid (which budgets, which sizes, which
#: bounds); a run store may be extended along them, while a change in any other field
#: (the training recipe) makes a different sweep (see :func:`run_sweep`).
GRID_FIELDS = ("budgets", "sizes_per_budget", "span", "centre_coef", "centre_exponent",
               "min_steps", "max_epochs", "min_params", "max_params",
               "centre_tokens_per_param", "extra_rungs")
#: Fields added after the first stores were written: left out of :func:`spec_dict` at
#: their defaults, so those stores still match the specs that made them.
LATER_FIELDS = {"ladder": "nearest", "min_layers": 2, "sampler": "random", "lr_rule": None,
                "centre_tokens_per_param": None, "extra_rungs": {}}
#: Default centre coefficient: ``N_c = sqrt(C / 120)`` gives ``D = 20 N`` under ``C = 6ND``.
CHINCHILLA_CENTRE = 120.0**-0.5


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: budgets, sizes per budget, the training recipe and the bounds.

    Parameters
    ----------
    budgets : sequence of float
        Compute budgets ``C`` (FLOP), each > 0.
    sizes_per_budget : int, default=7
        Target sizes ``k`` per budget (>= 1).
    span : float, default=8.0
        Ratio of the largest to the smallest target size at one budget (> 1
        when ``k > 1``); targets are log-spaced and centred on ``N_c``.
    centre_coef, centre_exponent : float, default=120**-0.5, 0.5
        The centre guess ``N_c = centre_coef * C**centre_exponent`` (parameters).
    budget_flops : {"exact", "6nd"}, default="exact"
        Which FLOP count defines the budget (see the module docstring).
    n_ctx : int, default=128
        Context length (tokens).
    head_dim, aspect_ratio : int, float, default=16, 32.0
        Model ladder settings (:func:`scalingkit.core.models.shape_for_params`):
        ``d_model`` is a multiple of ``head_dim`` and ``d_model / n_layer``
        stays near ``aspect_ratio``. Heads of 16 features give a ladder about
        twice as fine as 32 at these small sizes.
    corpus, tokenizer : str, default="shakespeare", "byte"
        Training data (see :func:`scalingkit.core.data.load_corpus`).
    corpus_tokens : int, default=None
        Training tokens in one pass over the corpus, for the epoch count;
        ``None`` measures it by loading the corpus.
    batch_size : int, default=32
        Sequences per optimizer step.
    lr : float, default=3e-3
        Peak learning rate of the horizon-matched cosine schedule.
    warmup_fraction : float, default=0.05
        Share of each run's tokens used for linear warmup.
    evals_per_run : int, default=20
        Validation points on each run's curve (Approach 1 reads these curves).
    eval_tokens : int, default=32768
        Validation tokens per evaluation.
    seed : int, default=0
        Seed of every run.
    min_steps : int, default=50
        Drop a config with fewer optimizer steps.
    max_epochs : float, default=16.0
        Drop a config that would pass over the corpus more often.
    min_params, max_params : float, default=1e4, 1e9
        Drop a ladder shape outside these sizes (parameters).
    train : mapping, default={}
        Further ``TrainConfig`` fields shared by every run (``weight_decay``,
        ``device``, ``dtype``, ...).
    ladder : {"nearest", "monotone"}, default="nearest"
        ``"nearest"``: each log-spaced target becomes the
        :func:`~scalingkit.core.models.shape_for_params` shape nearest to it.
        ``"monotone"``: the budget takes ``sizes_per_budget`` consecutive rungs of
        :func:`scalingkit.core.ladder.ladder_rung` centred on the rung nearest to the
        centre (``span`` is then unused), widths and depths never decreasing.
    min_layers : int, default=2
        Fewest layers of a monotone-ladder rung.
    sampler : {"random", "epoch"}, default="random"
        Training windows with replacement, or disjoint windows seen once per pass
        (:mod:`scalingkit.core.data.samplers`).
    lr_rule : mapping, optional
        A learning-rate rule ``lr = coef * (N / n_ref) ** (-exponent)`` with ``N`` the
        total parameter count, measured on sizes ``[n_min, n_max]``: keys ``coef``,
        ``exponent``, ``n_ref``, ``n_min``, ``n_max``. It replaces ``lr``; a size
        outside its range is dropped (the rule is not extrapolated).
    centre_tokens_per_param : float, optional
        Re-centre each budget on the size whose run gets this many tokens per
        parameter under the budget's FLOP count (a pilot's measurement); replaces
        ``centre_coef`` and ``centre_exponent``.
    extra_rungs : mapping, default={}
        Monotone ladder only: ``{budget: [below, above]}`` rungs added at the small
        and large edge of a budget (what :mod:`scalingkit.runs.bracket` adds until
        the budget's minimum is bracketed). Keys are budgets as written by
        :func:`budget_key`.
    """

    budgets: tuple[float, ...]
    sizes_per_budget: int = 7
    span: float = 8.0
    centre_coef: float = CHINCHILLA_CENTRE
    centre_exponent: float = 0.5
    budget_flops: Literal["exact", "6nd"] = "exact"
    n_ctx: int = 128
    head_dim: int = 16
    aspect_ratio: float = 32.0
    corpus: str = "shakespeare"
    tokenizer: str = "byte"
    corpus_tokens: int | None = None
    batch_size: int = 32
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    evals_per_run: int = 20
    eval_tokens: int = 32768
    seed: int = 0
    min_steps: int = 50
    max_epochs: float = 16.0
    min_params: float = 1e4
    max_params: float = 1e9
    train: Mapping[str, Any] = field(default_factory=dict)
    ladder: Literal["nearest", "monotone"] = "nearest"
    min_layers: int = 2
    sampler: str = "random"
    lr_rule: Mapping[str, float] | None = None
    centre_tokens_per_param: float | None = None
    extra_rungs: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        budgets = tuple(float(b) for b in np.atleast_1d(np.asarray(self.budgets, dtype=float)))
        if not budgets or not all(math.isfinite(b) and b > 0 for b in budgets):
            raise ValueError(f"budgets must be positive finite FLOP counts, got {self.budgets!r}")
        object.__setattr__(self, "budgets", tuple(sorted(set(budgets))))
        if not (isinstance(self.sizes_per_budget, int) and self.sizes_per_budget >= 1):
            raise ValueError(f"sizes_per_budget must be an integer >= 1, "
                             f"got {self.sizes_per_budget!r}")
        if self.sizes_per_budget > 1 and not self.span > 1:
            raise ValueError(f"span must be > 1 with several sizes per budget, got {self.span!r}")
        if self.budget_flops not in ("exact", "6nd"):
            raise ValueError(f"budget_flops must be 'exact' or '6nd', got {self.budget_flops!r}")
        for name in ("centre_coef", "centre_exponent", "aspect_ratio", "lr", "max_epochs",
                     "min_params", "max_params"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("n_ctx", "head_dim", "batch_size", "evals_per_run", "eval_tokens",
                     "min_steps"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}")
        if self.ladder not in ("nearest", "monotone"):
            raise ValueError(f"ladder must be 'nearest' or 'monotone', got {self.ladder!r}")
        if self.sampler not in ("random", "epoch"):
            raise ValueError(f"sampler must be 'random' or 'epoch', got {self.sampler!r}")
        if self.lr_rule is not None:
            object.__setattr__(self, "lr_rule", _check_lr_rule(self.lr_rule))
        r = self.centre_tokens_per_param
        if r is not None and not (isinstance(r, int | float) and math.isfinite(r) and r > 0):
            raise ValueError(f"centre_tokens_per_param must be a positive number, got {r!r}")
        extra = {budget_key(float(k)): (int(v[0]), int(v[1]))
                 for k, v in dict(self.extra_rungs).items()}
        if any(b < 0 or a < 0 for b, a in extra.values()):
            raise ValueError(f"extra_rungs must be non-negative counts, got {self.extra_rungs!r}")
        object.__setattr__(self, "extra_rungs", extra)

    def centre(self, budget: float) -> float:
        """The centre guess ``N_c(C)`` (parameters) for a budget ``C`` (FLOP).

        With ``centre_tokens_per_param = r`` it is the size whose run at ``C`` gets
        ``r`` tokens per parameter under the budget's FLOP count (bisection in log N).
        """
        r = self.centre_tokens_per_param
        if r is None:
            return self.centre_coef * budget**self.centre_exponent
        lo, hi = math.log(1e2), math.log(1e13)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            n = math.exp(mid)
            if budget / self.flops_per_token(n) / n > r:
                lo = mid
            else:
                hi = mid
        return math.exp(0.5 * (lo + hi))

    def flops_per_token(self, n_params: float) -> float:
        """Training FLOP per token of the ladder shape nearest to ``n_params`` (FLOP)."""
        model = self.model_for(n_params)
        if self.budget_flops == "6nd":
            return flops.flops_6nd(model.n_params(), 1)
        return flops.training_flops_per_token(model.shape)

    def rung_kwargs(self) -> dict:
        """Keyword arguments of :func:`scalingkit.core.ladder.ladder_rung` for this spec."""
        return {"n_ctx": self.n_ctx, "vocab_size": vocab_size(self.tokenizer),
                "head_dim": self.head_dim, "aspect_ratio": self.aspect_ratio,
                "min_layers": self.min_layers}

    def model_for(self, n_target: float) -> GPTConfig:
        """The ladder shape for a target size (parameters, total count)."""
        if self.ladder == "monotone":
            kw = self.rung_kwargs()
            return ladder_rung(nearest_rung(float(n_target), **kw), **kw)
        return shape_for_params(float(n_target), n_ctx=self.n_ctx,
                                vocab_size=vocab_size(self.tokenizer), count="total",
                                head_dim=self.head_dim, aspect_ratio=self.aspect_ratio)

    def lr_for(self, n_params: float) -> float | None:
        """The peak learning rate for a model of ``n_params`` parameters, or None.

        None means the lr rule would be extrapolated (``n_params`` outside
        ``[n_min, n_max]``); without a rule it is ``lr``.
        """
        rule = self.lr_rule
        if rule is None:
            return self.lr
        if not rule["n_min"] <= n_params <= rule["n_max"]:
            return None
        return rule["coef"] * (n_params / rule["n_ref"]) ** (-rule["exponent"])

    def rungs(self, budget: float) -> list[int]:
        """Monotone ladder: the rung indices of one budget, smallest first."""
        kw = self.rung_kwargs()
        k_c = nearest_rung(self.centre(budget), **kw)
        k = self.sizes_per_budget
        below, above = self.extra_rungs.get(budget_key(budget), (0, 0))
        first = k_c - (k - 1) // 2 - below
        last = k_c + k // 2 + above
        shift = max(0, 1 - first)  # rungs start at 1: slide the window up
        return list(range(first + shift, last + shift + 1))

    def targets(self, budget: float) -> np.ndarray:
        """The ``k`` target sizes (parameters) at one budget, log-spaced around ``N_c``."""
        k = self.sizes_per_budget
        offsets = np.linspace(-0.5, 0.5, k) if k > 1 else np.zeros(1)
        return self.centre(budget) * self.span**offsets


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


def budget_key(budget: float) -> str:
    """A budget as a stable text key (``"1e+12"``, ``"2.37e+12"``)."""
    return f"{float(budget):.6g}"


def _check_lr_rule(rule: Mapping[str, Any]) -> dict[str, float]:
    keys = ("coef", "exponent", "n_ref", "n_min", "n_max")
    missing = [k for k in keys if k not in rule]
    if missing:
        raise ValueError(f"lr_rule lacks {missing}; it needs {list(keys)}")
    out = {k: float(rule[k]) for k in keys}
    if not all(math.isfinite(v) for v in out.values()) or min(
            out["coef"], out["n_ref"], out["n_min"]) <= 0 or out["n_max"] < out["n_min"]:
        raise ValueError(f"lr_rule must have positive coef, n_ref, n_min <= n_max, got {rule!r}")
    return out


def vocab_size(tokenizer: str) -> int:
    """Vocabulary size of a tokenizer spec (``"byte"``: 256, ``"bpe:<V>"``: V)."""
    if tokenizer == "byte":
        return 256
    kind, _, size = tokenizer.partition(":")
    if kind == "bpe" and size.isdigit():
        return int(size)
    raise ValueError(f"unknown tokenizer {tokenizer!r}; expected 'byte' or 'bpe:<size>'")


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
        lr = spec.lr_for(n)
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


def spec_dict(spec: SweepSpec) -> dict:
    """A spec as plain JSON data (what ``sweeps.json`` and ``store.json`` record).

    Fields of :data:`LATER_FIELDS` at their defaults are left out.
    """
    data = {f: getattr(spec, f) for f in spec.__dataclass_fields__}
    data["budgets"] = list(spec.budgets)
    data["train"] = dict(spec.train)
    data["extra_rungs"] = {k: list(v) for k, v in spec.extra_rungs.items()}
    if spec.lr_rule is not None:
        data["lr_rule"] = dict(spec.lr_rule)
    for name, default in LATER_FIELDS.items():
        if data[name] == default:
            del data[name]
    return data
