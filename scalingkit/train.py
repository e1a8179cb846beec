"""Train a GPT on a token budget (or a FLOP budget) and return an honest result record.

One function, :func:`train`, does a whole run: it tokenises the corpus (cached), builds
the model, runs AdamW with warmup and a cosine or constant schedule, evaluates on
held-out documents, checkpoints and resumes exactly, and stops cleanly with status
``"diverged"`` when the loss goes NaN, infinite or far above its starting value.

Units: tokens are training tokens (inputs predicted), losses are nats/token, bits/byte
is the loss divided by ``ln 2`` and by the validation bytes per token, FLOP are the
exact forward plus backward count of :func:`scalingkit.flops.training_flops_per_token`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.std import tqdm  # text bar; tqdm.auto warns in kernels without ipywidgets

from scalingkit import flops
from scalingkit.data import BatchSampler, eval_windows, load_corpus
from scalingkit.device import peak_flop_per_s, resolve_device, resolve_dtype
from scalingkit.models import GPT, GPTConfig
from scalingkit.provenance import cpu_identity

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "learning_rate",
    "tokens_for_flop_budget",
    "load_model",
]

SCHEDULES = ("cosine", "cosine_fixed", "constant")
_CKPT_FORMAT = 1


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
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
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
        ``"exact"`` divides by :func:`scalingkit.flops.training_flops_per_token`;
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
        per_token = 6.0 * model.n_params_non_embedding()
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


@dataclass
class TrainResult:
    """What a run produced.

    Attributes
    ----------
    status : {"done", "diverged"}
    message : str
        Empty when done; the reason when diverged.
    params_total, params_non_embedding, params_with_head : int
        ``N`` under the three conventions of :class:`scalingkit.models.GPTConfig`.
    tokens : int
        Training tokens actually seen, ``D`` (tokens).
    steps : int
        Optimiser steps taken.
    flops_exact : float
        ``D * training_flops_per_token(shape)`` (FLOP).
    flops_6nd : float
        ``6 N D`` with Kaplan's non-embedding ``N`` (FLOP).
    final_loss : float or None
        Validation loss at the end (nats/token); ``None`` if diverged.
    final_bits_per_byte : float or None
        The same in bits/byte.
    best_loss : float or None
        Lowest validation loss on ``curve`` (nats/token): the early-stopping loss.
    best_tokens : int or None
        Training tokens seen at that point (tokens).
    curve : list of dict
        Validation points: ``step``, ``tokens``, ``flops`` (exact), ``loss`` (nats/token).
    train_curve : list of dict
        Training-loss points (mean over the last ``log_every`` steps): ``step``,
        ``tokens``, ``flops``, ``loss``, ``lr``.
    wall_time_s : float
        Total wall time, evaluation and checkpoints included (seconds).
    tokens_per_s : float
        Training throughput, timing only the optimiser steps (tokens/s).
    mfu : float
        ``tokens_per_s * flops per token / peak_flop_per_s``.
    peak_flop_per_s : float
        The peak used for MFU (FLOP/s) and ``peak_source`` where it came from.
    epochs : float
        Passes over the training tokens used (the split, or its first
        ``train_tokens_limit`` tokens).
    device, dtype : str
    torch_threads : int
        Intra-op threads torch used. On CPU a run is bitwise reproducible only
        with the same count (reductions are split differently).
    cpu, cpu_flags, torch_cpu_capability
        The CPU model, its SIMD flags and torch's kernel set
        (:func:`scalingkit.provenance.cpu_identity`): bitwise reproduction needs
        the same ones too.
    val_bytes_per_token : float
        Bytes per token on the validation split (1 for the byte tokenizer).
    config : dict
        The :class:`TrainConfig` as a dict.
    """

    status: str
    message: str
    params_total: int
    params_non_embedding: int
    params_with_head: int
    tokens: int
    steps: int
    flops_exact: float
    flops_6nd: float
    final_loss: float | None
    final_bits_per_byte: float | None
    best_loss: float | None = None
    best_tokens: int | None = None
    curve: list[dict] = field(default_factory=list)
    train_curve: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    tokens_per_s: float = 0.0
    mfu: float = 0.0
    peak_flop_per_s: float = 0.0
    peak_source: str = ""
    epochs: float = 0.0
    device: str = ""
    dtype: str = ""
    torch_threads: int = 0
    cpu: str = ""
    cpu_flags: list[str] = field(default_factory=list)
    torch_cpu_capability: str = ""
    val_bytes_per_token: float = 1.0
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# ----------------------------------------------------------------------------- helpers


def _optimizer(model: GPT, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel is the fastest AdamW on CUDA and on CPU (one pass per tensor).
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=device.type != "mps"
    )


@torch.no_grad()
def _evaluate(model, tokens, starts, n_ctx, batch_size, device, autocast) -> float:
    """Mean validation loss over the fixed windows (nats/token)."""
    was_training = model.training
    model.eval()
    offsets = np.arange(n_ctx + 1)
    total = torch.zeros((), device=device, dtype=torch.float64)
    for i in range(0, len(starts), batch_size):
        idx = starts[i : i + batch_size, None] + offsets  # (b, T + 1)
        window = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64)).to(device)
        with autocast():
            loss = model.loss(window[:, :-1], window[:, 1:])
        total += loss.double() * len(idx)
    model.train(was_training)
    return float(total.item() / len(starts))


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------- train


@dataclass
class _Run:
    """What one training run holds while it trains: built by :func:`_set_up`."""

    config: TrainConfig
    device: torch.device
    dtype: torch.dtype
    corpus: Any  # TokenCorpus
    train_tokens: np.ndarray
    model: GPT
    step_model: Any  # the model, or its torch.compile wrapper
    optimizer: torch.optim.AdamW
    sampler: BatchSampler
    eval_starts: np.ndarray
    flop_per_token: float
    divergence_limit: float  # nats/token
    cfg_dict: dict
    state: dict = field(default_factory=lambda: {
        "step": 0, "curve": [], "train_curve": [], "elapsed": 0.0, "train_time": 0.0})
    checkpoint_path: Path | None = None

    def autocast(self):
        """bf16/fp16 autocast when the run's dtype asks for it, else nothing."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def _set_up(config: TrainConfig) -> _Run:
    """Device, corpus, model, optimiser and sampler of a fresh run (seeded)."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    corpus = load_corpus(config.corpus, config.tokenizer, val_fraction=config.val_fraction)
    mcfg = config.model
    if mcfg.vocab_size != corpus.vocab_size:
        raise ValueError(
            f"model vocab_size={mcfg.vocab_size} but tokenizer {config.tokenizer!r} has "
            f"{corpus.vocab_size} tokens"
        )
    n_ctx = mcfg.n_ctx
    if len(corpus.train) <= n_ctx or len(corpus.val) <= n_ctx:
        raise ValueError(f"corpus {config.corpus!r} is too small for n_ctx={n_ctx}")
    train_tokens = corpus.train
    if config.train_tokens_limit is not None:
        if config.train_tokens_limit > len(corpus.train):
            raise ValueError(
                f"train_tokens_limit={config.train_tokens_limit} exceeds the "
                f"{len(corpus.train)} training tokens of corpus {config.corpus!r}"
            )
        train_tokens = corpus.train[: config.train_tokens_limit]
    torch.manual_seed(config.seed)
    model = GPT(mcfg, generator=torch.Generator().manual_seed(config.seed)).to(device)
    return _Run(
        config=config, device=device, dtype=dtype, corpus=corpus, train_tokens=train_tokens,
        model=model, step_model=torch.compile(model) if config.compile else model,
        optimizer=_optimizer(model, config, device),
        sampler=BatchSampler(train_tokens, config.batch_size, n_ctx, seed=config.seed + 1),
        eval_starts=eval_windows(corpus.val, n_ctx, max(1, config.eval_tokens // n_ctx)),
        flop_per_token=flops.training_flops_per_token(mcfg.shape),
        divergence_limit=config.divergence_factor * math.log(mcfg.vocab_size),
        cfg_dict=config.to_dict(),
    )


def _resume(run: _Run, run_dir: Path) -> None:
    """Write ``config.json``; restore everything from ``checkpoint.pt`` if one exists."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(run.cfg_dict, indent=1))
    run.checkpoint_path = path = run_dir / "checkpoint.pt"
    if not path.exists():
        return
    ckpt = torch.load(path, map_location=run.device, weights_only=True)
    if ckpt.get("format") != _CKPT_FORMAT or json.loads(ckpt["config"]) != run.cfg_dict:
        raise ValueError(
            f"{path} was written for a different config; use another run_dir "
            "or delete the checkpoint"
        )
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.sampler.set_state(ckpt["sampler"])
    _set_rng_state(ckpt["rng"], run.device)
    run.state = json.loads(ckpt["state"])


def _step(run: _Run, step: int) -> tuple[torch.Tensor, float]:
    """One optimiser step at the schedule's learning rate; ``(loss tensor, lr)``."""
    config = run.config
    lr = learning_rate(config, step * config.tokens_per_step)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    x, y = run.sampler.sample()  # (B, T) each
    x, y = x.to(run.device, non_blocking=True), y.to(run.device, non_blocking=True)
    with run.autocast():
        loss = _loss(run.step_model, x, y)
    loss.backward()
    if config.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss.detach(), lr


def _divergence(run: _Run, train_loss: float, done: int, lr: float) -> str | None:
    """Why a training loss means the run diverged, or None."""
    if math.isfinite(train_loss) and train_loss <= run.divergence_limit:
        return None
    why = ("is not finite" if not math.isfinite(train_loss)
           else f"exceeds the divergence limit {run.divergence_limit:.3g}")
    return (f"training loss {train_loss:.4g} nats/token at step {done} "
            f"({done * run.config.tokens_per_step} tokens, lr={lr:.3g}) {why}")


def _validation_loss(run: _Run) -> float:
    return _evaluate(run.model, run.corpus.val, run.eval_starts, run.config.model.n_ctx,
                     run.config.batch_size, run.device, run.autocast)


def _save(run: _Run) -> None:
    """Checkpoint everything :func:`_resume` restores."""
    _save_checkpoint(run.checkpoint_path, {
        "format": _CKPT_FORMAT, "config": json.dumps(run.cfg_dict),
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "sampler": run.sampler.state(), "rng": _rng_state(run.device),
        "state": json.dumps(run.state),
    })


def _result(run: _Run, status: str, message: str, wall: float,
            train_time: float) -> TrainResult:
    """The run's record from its curves and timings (seconds)."""
    state, mcfg = run.state, run.config.model
    steps_done = state["train_curve"][-1]["step"] if state["train_curve"] else state["step"]
    tokens = steps_done * run.config.tokens_per_step
    tok_per_s = tokens / train_time if train_time > 0 else 0.0
    peak, peak_source = peak_flop_per_s(run.device, run.dtype)
    final = state["curve"][-1]["loss"] if status == "done" and state["curve"] else None
    best = min(state["curve"], key=lambda p: p["loss"]) if final is not None else None
    return TrainResult(
        status=status,
        message=message,
        params_total=mcfg.n_params(),
        params_non_embedding=mcfg.n_params_non_embedding(),
        params_with_head=mcfg.n_params_with_head(),
        tokens=tokens,
        steps=steps_done,
        flops_exact=run.flop_per_token * tokens,
        flops_6nd=flops.flops_6nd(mcfg.n_params_non_embedding(), tokens) if tokens else 0.0,
        final_loss=final,
        final_bits_per_byte=None if final is None else run.corpus.bits_per_byte(final),
        best_loss=None if best is None else best["loss"],
        best_tokens=None if best is None else best["tokens"],
        curve=state["curve"],
        train_curve=state["train_curve"],
        wall_time_s=wall,
        tokens_per_s=tok_per_s,
        mfu=tok_per_s * run.flop_per_token / peak,
        peak_flop_per_s=peak,
        peak_source=peak_source,
        epochs=tokens / len(run.train_tokens),
        device=str(run.device),
        dtype=str(run.dtype).removeprefix("torch."),
        torch_threads=torch.get_num_threads(),
        **cpu_identity(),
        val_bytes_per_token=run.corpus.val_bytes_per_token,
        config=run.cfg_dict,
    )


def train(
    config: TrainConfig,
    *,
    run_dir: str | Path | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    save_model: bool = True,
) -> TrainResult:
    """Train ``config.model`` on ``config.corpus`` for ``config.tokens`` tokens.

    Parameters
    ----------
    config : TrainConfig
    run_dir : path, default=None
        Folder for ``config.json``, ``checkpoint.pt`` (every ``checkpoint_every``
        steps) and ``result.json``. When a checkpoint for the same config is present,
        training resumes exactly from it: model, optimiser moments, step, the
        sampler's and torch's RNG states, curves and elapsed time are restored.
    progress : bool, default=True
        Show a tqdm progress bar.
    callback : callable, default=None
        Called with a dict every ``log_every`` steps and at every evaluation:
        ``step``, ``tokens``, ``train_loss``, ``val_loss`` (or ``None``), ``lr``,
        ``checkpoint`` (whether a checkpoint follows this call), and the live
        ``model`` (the :class:`~scalingkit.models.GPT`, in training mode: a
        callback that evaluates it must not change its weights or torch's global
        RNG). Exceptions it raises propagate (useful to interrupt a run).
    save_model : bool, default=True
        With a ``run_dir``, save the final weights to ``run_dir/model.pt`` (read them
        back with :func:`load_model`).

    Returns
    -------
    TrainResult
        With ``status="diverged"`` and a message, rather than an exception, if the
        loss becomes NaN, infinite or exceeds ``divergence_factor * ln(vocab_size)``.

    Raises
    ------
    ValueError
        For an inconsistent config (vocabulary mismatch, unavailable device, a
        checkpoint written for another config).
    """
    t_start = time.perf_counter()
    run = _set_up(config)
    if run_dir is not None:
        run_dir = Path(run_dir)
        _resume(run, run_dir)
    status, message = "done", ""
    steps, tps = config.steps, config.tokens_per_step
    running = torch.zeros((), device=run.device)
    n_running = 0
    run.model.train()
    bar = tqdm(total=steps, initial=run.state["step"], disable=not progress, unit="step",
               leave=False, dynamic_ncols=True)
    t_session = time.perf_counter()
    train_time = 0.0
    for step in range(run.state["step"], steps):
        t0 = time.perf_counter()
        loss, lr = _step(run, step)
        running += loss
        n_running += 1
        done = step + 1
        last = done == steps
        if run.device.type == "cuda" and (done % config.log_every == 0 or last):
            torch.cuda.synchronize(run.device)
        train_time += time.perf_counter() - t0
        bar.update(1)

        ckpt_now = (run.checkpoint_path is not None and config.checkpoint_every > 0
                    and not last and done % config.checkpoint_every == 0)
        log_now = done % config.log_every == 0 or last or ckpt_now
        eval_now = last or (config.eval_every > 0 and done % config.eval_every == 0)
        if not (log_now or eval_now):
            continue
        train_loss = float(running.item()) / n_running
        running.zero_()
        n_running = 0
        point = {"step": done, "tokens": done * tps, "flops": done * tps * run.flop_per_token}
        run.state["train_curve"].append({**point, "loss": train_loss, "lr": lr})
        message = _divergence(run, train_loss, done, lr) or ""
        if message:
            status = "diverged"
            break
        val_loss = None
        if eval_now:
            val_loss = _validation_loss(run)
            if not math.isfinite(val_loss):
                status, message = "diverged", f"validation loss is {val_loss} at step {done}"
                break
            run.state["curve"].append({**point, "loss": val_loss})
            bar.set_postfix(train=f"{train_loss:.3f}", val=f"{val_loss:.3f}")
        if callback is not None:
            callback({"step": done, "tokens": done * tps, "train_loss": train_loss,
                      "val_loss": val_loss, "lr": lr, "checkpoint": ckpt_now,
                      "model": run.model})
        if ckpt_now:
            now = time.perf_counter()
            run.state.update(step=done, elapsed=run.state["elapsed"] + now - t_session,
                             train_time=run.state["train_time"] + train_time)
            t_session, train_time = now, 0.0
            _save(run)
    bar.close()

    wall = run.state["elapsed"] + time.perf_counter() - t_session
    if run.state["step"] == 0:
        wall += t_session - t_start  # count setup time once, in the first session
    result = _result(run, status, message, wall, run.state["train_time"] + train_time)
    if run_dir is not None:
        if save_model and status == "done":
            _save_checkpoint(run_dir / "model.pt", {
                "model_config": json.dumps(run.config.model.to_dict()),
                "model": run.model.state_dict()})
        (run_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


def load_model(run_dir: str | Path, device: str = "cpu") -> GPT:
    """The trained model that :func:`train` saved in ``run_dir/model.pt``, in eval mode."""
    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise ValueError(f"{path} does not exist; train with run_dir and save_model=True")
    payload = torch.load(path, map_location=resolve_device(device), weights_only=True)
    model = GPT(GPTConfig.from_dict(json.loads(payload["model_config"])))
    model.load_state_dict(payload["model"])
    return model.to(resolve_device(device)).eval()


def _loss(module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats/token) through ``module.forward`` (compiled or not)."""
    logits = module(x)  # (B, T, V)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
