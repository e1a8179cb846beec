"""What defines a training run: :class:`TrainConfig`, the schedules and the token budget.

Units: tokens are training tokens, FLOP as in :mod:`scalingkit.core.flops`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from scalingkit.core import flops
from scalingkit.core.data.samplers import SAMPLERS
from scalingkit.core.models import GPTConfig, check_fields

SCHEDULES = ("cosine", "cosine_fixed", "constant")


@dataclass
class TrainConfig:
    """Everything that defines a training run (plain, JSON-serialisable types).

    Parameters
    ----------
    model : GPTConfig
        Model shape; ``model.vocab_size`` must match the tokenizer.
    corpus : str, default="shakespeare"
        ``"shakespeare"``, ``"stdlib"``, ``"markov:<k>[:<source>]"`` or a path.
    tokenizer : str, default="byte"
        ``"byte"`` or ``"bpe:<vocab size>"``.
    tokens : int, default=1_000_000
        Token budget ``D`` (tokens). The run takes ``round(tokens / (batch_size *
        n_ctx))`` steps (at least one); the result reports the tokens actually seen.
        Use :func:`tokens_for_flop_budget` to set it from a FLOP budget.
    batch_size : int, default=32
        Sequences per step.
    lr : float, default=3e-3
        Peak learning rate.
    min_lr_ratio : float, default=0.1
        Cosine schedules decay to ``lr * min_lr_ratio``.
    warmup_tokens : int, default=0
        Linear warmup length (tokens).
    schedule : {"cosine", "cosine_fixed", "constant"}, default="cosine"
        ``"cosine"`` decays to the run's own horizon (Chinchilla); ``"cosine_fixed"``
        decays over ``horizon_tokens`` whatever the run length (a Kaplan-like fixed
        schedule); ``"constant"`` stays at ``lr`` after warmup.
    horizon_tokens : int or None, default=None
        Horizon of ``"cosine_fixed"`` (tokens).
    weight_decay : float, default=0.1
        AdamW decoupled weight decay, applied to matrices only (not to biases and
        LayerNorm parameters).
    beta1, beta2 : float, default=0.9, 0.95
        AdamW moment coefficients.
    grad_clip : float, default=1.0
        Clip the global gradient norm to this value; 0 disables clipping.
    eval_every : int, default=100
        Evaluate every this many steps (and always at the end); 0 means only at the end.
    eval_tokens : int, default=65536
        Validation tokens per evaluation: ``eval_tokens // n_ctx`` fixed windows.
    log_every : int, default=10
        Record the training loss (and check it for divergence) every this many steps.
    seed : int, default=0
        Seeds the initialisation and the batch sampler.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda[:i]"`` or ``"mps"``.
    dtype : str, default="auto"
        ``"auto"`` (bfloat16 autocast on CUDA, float32 elsewhere), ``"float32"``,
        ``"bfloat16"`` or ``"float16"`` (autocast precision; weights stay float32).
    compile : bool, default=False
        Wrap the model in :func:`torch.compile`.
    checkpoint_every : int, default=0
        With a ``run_dir``, write a checkpoint every this many steps; 0 disables it.
    val_fraction : float, default=0.1
        Share of documents held out for validation.
    divergence_factor : float, default=3.0
        The run is declared diverged when the training loss exceeds
        ``divergence_factor * ln(vocab_size)`` (three times a uniform guess).
    train_tokens_limit : int or None, default=None
        Train on the first this many tokens of the training split only, cycling over
        them (nested subsets of the data, as for Kaplan's ``L(D)``); ``None`` uses the
        whole split. Left out of :meth:`to_dict` when ``None``, so the run ids of
        configs that do not use it are unchanged.
    sampler : {"random", "epoch"}, default="random"
        How training windows are drawn (:mod:`scalingkit.core.data.samplers`):
        ``"random"`` starts uniformly with replacement; ``"epoch"`` visits disjoint
        windows in a seeded order, so a run of less than one pass never sees a token
        twice. Left out of :meth:`to_dict` when ``"random"`` (run ids unchanged).
    """

    model: GPTConfig
    corpus: str = "shakespeare"
    tokenizer: str = "byte"
    tokens: int = 1_000_000
    batch_size: int = 32
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_tokens: int = 0
    schedule: str = "cosine"
    horizon_tokens: int | None = None
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_tokens: int = 65536
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False
    checkpoint_every: int = 0
    val_fraction: float = 0.1
    divergence_factor: float = 3.0
    train_tokens_limit: int | None = None
    sampler: str = "random"

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = GPTConfig.from_dict(self.model)
        if not isinstance(self.model, GPTConfig):
            raise ValueError(f"model must be a GPTConfig, got {type(self.model).__name__}")
        for name in ("tokens", "batch_size", "eval_tokens", "log_every"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("warmup_tokens", "eval_every", "checkpoint_every", "seed"):
            _check_int(name, getattr(self, name), minimum=0)
        for name in ("lr", "divergence_factor"):
            _check_float(name, getattr(self, name), positive=True)
        for name in ("weight_decay", "grad_clip", "min_lr_ratio"):
            _check_float(name, getattr(self, name), positive=False)
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if self.min_lr_ratio > 1:
            raise ValueError(f"min_lr_ratio must be at most 1, got {self.min_lr_ratio!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; use one of {SAMPLERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; use one of {SCHEDULES}")
        if self.schedule == "cosine_fixed":
            if self.horizon_tokens is None:
                raise ValueError("schedule 'cosine_fixed' needs horizon_tokens")
            _check_int("horizon_tokens", self.horizon_tokens, minimum=1)
        if self.train_tokens_limit is not None:
            _check_int("train_tokens_limit", self.train_tokens_limit,
                       minimum=self.model.n_ctx + 1)
        if self.eval_tokens < self.model.n_ctx:
            raise ValueError(
                f"eval_tokens={self.eval_tokens} is less than one window of "
                f"n_ctx={self.model.n_ctx} tokens"
            )

    @property
    def tokens_per_step(self) -> int:
        """Tokens consumed per optimiser step: ``batch_size * n_ctx``."""
        return self.batch_size * self.model.n_ctx

    @property
    def steps(self) -> int:
        """Number of optimiser steps: ``max(1, round(tokens / tokens_per_step))``."""
        return max(1, round(self.tokens / self.tokens_per_step))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict, with ``model`` as a nested dict."""
        out = asdict(self)
        out["model"] = self.model.to_dict()
        if out["train_tokens_limit"] is None:
            del out["train_tokens_limit"]
        if out["sampler"] == "random":
            del out["sampler"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        check_fields(cls, data)
        if "model" not in data:
            raise ValueError("TrainConfig needs a 'model'")
        return cls(**{**data, "model": GPTConfig.from_dict(dict(data["model"]))})


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name: str, value: Any, *, positive: bool) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a {kind} finite number, got {value!r}")


def tokens_for_flop_budget(
    model: GPTConfig, flop_budget: float, *, convention: str = "exact"
) -> int:
    """Token budget ``D`` that spends ``flop_budget`` FLOP training ``model``.

    Parameters
    ----------
    model : GPTConfig
    flop_budget : float
        Training compute ``C`` (FLOP).
    convention : {"exact", "6nd"}, default="exact"
        ``"exact"`` divides by :func:`scalingkit.core.flops.training_flops_per_token`;
        ``"6nd"`` divides by ``6 N`` with Kaplan's non-embedding ``N``.

    Returns
    -------
    int
        Tokens (rounded to the nearest integer, at least 1).
    """
    if not (isinstance(flop_budget, int | float) and math.isfinite(flop_budget)
            and flop_budget > 0):
        raise ValueError(f"flop_budget must be a positive finite number, got {flop_budget!r}")
    if convention == "exact":
        per_token = flops.training_flops_per_token(model.shape)
    elif convention == "6nd":
        per_token = flops.flops_6nd(model.n_params_non_embedding(), 1)  # 6N per token
    else:
        raise ValueError(f"convention must be 'exact' or '6nd', got {convention!r}")
    return max(1, round(flop_budget / per_token))


def learning_rate(config: TrainConfig, tokens_seen: float) -> float:
    """The learning rate after ``tokens_seen`` training tokens.

    Linear warmup from ``lr / warmup_steps`` to ``lr`` over ``warmup_tokens``; then
    constant, or a half cosine from ``lr`` to ``min_lr_ratio * lr`` reached at the
    horizon (the run's own ``tokens`` for ``"cosine"``, ``horizon_tokens`` for
    ``"cosine_fixed"``) and held there after it.
    """
    lr, warm = config.lr, config.warmup_tokens
    if tokens_seen < warm:
        return lr * min(1.0, (tokens_seen + config.tokens_per_step) / warm)
    if config.schedule == "constant":
        return lr
    horizon = config.steps * config.tokens_per_step if config.schedule == "cosine" else (
        config.horizon_tokens
    )
    span = max(horizon - warm, 1)
    progress = min(max((tokens_seen - warm) / span, 0.0), 1.0)
    low = lr * config.min_lr_ratio
    return low + (lr - low) * 0.5 * (1.0 + math.cos(math.pi * progress))
