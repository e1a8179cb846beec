"""What an IsoFLOP sweep is: :class:`SweepSpec`, its JSON form, and the lr rule.

A spec names the budgets, how sizes are chosen at each (the model ladder and its
centre), the training recipe shared by every run, and the bounds that drop a run.
:mod:`scalingkit.runs.sweep` turns a spec into runs and trains them.

Units: budgets in FLOP, sizes in parameters (total count), tokens in tokens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from scalingkit.core import flops
from scalingkit.core.ladder import ladder_rung, nearest_rung
from scalingkit.core.models import GPTConfig, check_fields, shape_for_params

#: SweepSpec fields that only place runs on the grid (which budgets, which sizes, which
#: bounds); a run store may be extended along them, while a change in any other field
#: (the training recipe) makes a different sweep (see :func:`run_sweep`).
GRID_FIELDS = ("budgets", "sizes_per_budget", "span", "centre_coef", "centre_exponent",
               "min_steps", "max_epochs", "min_params", "max_params",
               "centre_tokens_per_param", "extra_rungs")
#: Fields added after the first stores were written: left out of :func:`spec_dict` at
#: their defaults, so those stores still match the specs that made them.
LATER_FIELDS = {"ladder": "nearest", "min_layers": 2, "init_std": 0.02, "sampler": "random",
                "lr_rule": None,
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
    init_std : float or None, default=0.02
        Monotone ladder only: standard deviation of the initial weights; None scales
        it with the width, ``1 / sqrt(d_model)`` (:func:`scalingkit.core.ladder.ladder_rung`).
    sampler : {"random", "epoch"}, default="random"
        Training windows with replacement, or disjoint windows seen once per pass
        (:mod:`scalingkit.core.data.samplers`).
    lr_rule : mapping, optional
        A learning-rate rule ``lr = coef * (N / n_ref)^(-exponent) * (C / c_ref)^(-g)``
        with ``N`` the total parameter count and ``C`` the run's budget (FLOP),
        measured on sizes ``[n_min, n_max]`` and budgets ``[c_min, c_max]``: keys
        ``coef``, ``exponent``, ``n_ref``, ``n_min``, ``n_max`` and, for the budget
        term, ``budget_exponent`` (``g``), ``c_ref``, ``c_min``, ``c_max`` (without
        them ``g = 0``). It replaces ``lr``; a size outside its range is dropped (the
        rule is not extrapolated in size). The budget term follows its power
        law beyond ``[c_min, c_max]``.
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
    init_std: float | None = 0.02
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
        if not (isinstance(self.min_layers, int) and self.min_layers >= 1):
            raise ValueError(f"min_layers must be a positive integer, got {self.min_layers!r}")
        std = self.init_std
        if std is not None and not (isinstance(std, int | float) and math.isfinite(std)
                                    and std > 0):
            raise ValueError(f"init_std must be a positive number or None, got {std!r}")
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
                "min_layers": self.min_layers, "init_std": self.init_std}

    def byte_rung_params(self, k: int) -> int:
        """Parameters of ladder rung ``k``'s shape with a byte vocabulary (256 symbols).

        The learning-rate rule was measured on byte-level models, so a run with another
        tokenizer takes the rule's rate at this size: same width and depth, byte-sized
        embedding and head.
        """
        return ladder_rung(k, **{**self.rung_kwargs(), "vocab_size": 256}).n_params()

    def model_for(self, n_target: float) -> GPTConfig:
        """The ladder shape for a target size (parameters, total count)."""
        if self.ladder == "monotone":
            kw = self.rung_kwargs()
            return ladder_rung(nearest_rung(float(n_target), **kw), **kw)
        return shape_for_params(float(n_target), n_ctx=self.n_ctx,
                                vocab_size=vocab_size(self.tokenizer), count="total",
                                head_dim=self.head_dim, aspect_ratio=self.aspect_ratio)

    def lr_for(self, n_params: float, budget: float | None = None) -> float | None:
        """The peak learning rate for a model of ``n_params`` parameters, or None.

        None means the lr rule would be extrapolated (``n_params`` outside
        ``[n_min, n_max]``); without a rule it is ``lr``.
        """
        rule = self.lr_rule
        if rule is None:
            return self.lr
        if not rule["n_min"] <= n_params <= rule["n_max"]:
            return None
        return float(rule_lr(rule, n_params, budget))

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


def budget_key(budget: float) -> str:
    """A budget as a stable text key (``"1e+12"``, ``"2.37e+12"``)."""
    return f"{float(budget):.6g}"


#: Keys of a budget term in an lr rule (all or none).
BUDGET_TERM = ("budget_exponent", "c_ref", "c_min", "c_max")


def _check_lr_rule(rule: Mapping[str, Any]) -> dict[str, float]:
    keys = ("coef", "exponent", "n_ref", "n_min", "n_max")
    missing = [k for k in keys if k not in rule]
    if missing:
        raise ValueError(f"lr_rule lacks {missing}; it needs {list(keys)}")
    term = [k for k in BUDGET_TERM if k in rule]
    if term and len(term) < len(BUDGET_TERM):
        raise ValueError(f"lr_rule has {term} but not all of {list(BUDGET_TERM)}")
    out = {k: float(rule[k]) for k in (*keys, *term)}
    if term and not (out["c_ref"] > 0 and 0 < out["c_min"] <= out["c_max"]):
        raise ValueError(f"lr_rule's budget term needs c_ref > 0 and 0 < c_min <= c_max, "
                         f"got {rule!r}")
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


def spec_from_dict(data: Mapping[str, Any]) -> SweepSpec:
    """Inverse of :func:`spec_dict` (``ValueError`` on unknown fields)."""
    check_fields(SweepSpec, dict(data))
    fields = dict(data)
    fields["budgets"] = tuple(fields["budgets"])
    if "extra_rungs" in fields:
        fields["extra_rungs"] = {k: tuple(v) for k, v in fields["extra_rungs"].items()}
    return SweepSpec(**fields)


def rule_lr(rule: Mapping[str, float], n_params: float | np.ndarray,
            budget: float | np.ndarray | None = None) -> float | np.ndarray:
    """A learning-rate rule's rate (no range check).

    ``coef * (N / n_ref)^(-exponent) * (C / c_ref)^(-budget_exponent)``, the last
    factor only when the rule has a budget term. ``n_params`` is the total parameter
    count (parameters), ``budget`` the run's compute budget (FLOP); the rule's keys
    are those of ``SweepSpec.lr_rule``.

    Raises
    ------
    ValueError
        If the rule has a budget term and no ``budget`` is given.
    """
    lr = rule["coef"] * (np.asarray(n_params, dtype=float) / rule["n_ref"]) ** (
        -rule["exponent"])
    if "budget_exponent" in rule:
        if budget is None:
            raise ValueError("this lr rule depends on the budget; give the run's budget (FLOP)")
        lr = lr * (np.asarray(budget, dtype=float) / rule["c_ref"]) ** (-rule["budget_exponent"])
    return lr
