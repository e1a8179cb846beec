"""Train a GPT on a token budget (or a FLOP budget) and return an honest result record.

One function, :func:`train`, does a whole run: it tokenises the corpus (cached), builds
the model, runs AdamW with warmup and a cosine or constant schedule, evaluates on
held-out documents, checkpoints and resumes exactly, and stops cleanly with status
``"diverged"`` when the loss goes NaN, infinite or far above its starting value.

Units: tokens are training tokens (inputs predicted), losses are nats/token, bits/byte
is the loss divided by ``ln 2`` and by the validation bytes per token, FLOP are the
exact forward plus backward count of :func:`scalingkit.core.flops.training_flops_per_token`.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.std import tqdm  # text bar; tqdm.auto warns in kernels without ipywidgets

from scalingkit.core import flops
from scalingkit.core.data import BatchSampler, EpochSampler, eval_windows, load_corpus, make_sampler
from scalingkit.core.hardware import cpu_identity, peak_flop_per_s, resolve_device, resolve_dtype
from scalingkit.core.models import GPT
from scalingkit.core.train.checkpoint import CKPT_FORMAT, rng_state, save_checkpoint, set_rng_state
from scalingkit.core.train.config import TrainConfig, learning_rate
from scalingkit.core.train.result import TrainResult

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
    sampler: BatchSampler | EpochSampler
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
        sampler=make_sampler(config.sampler, train_tokens, config.batch_size, n_ctx,
                             seed=config.seed + 1),
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
    if ckpt.get("format") != CKPT_FORMAT or json.loads(ckpt["config"]) != run.cfg_dict:
        raise ValueError(
            f"{path} was written for a different config; use another run_dir "
            "or delete the checkpoint"
        )
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.sampler.set_state(ckpt["sampler"])
    set_rng_state(ckpt["rng"], run.device)
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
    save_checkpoint(run.checkpoint_path, {
        "format": CKPT_FORMAT, "config": json.dumps(run.cfg_dict),
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "sampler": run.sampler.state(), "rng": rng_state(run.device),
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
        ``model`` (the :class:`~scalingkit.core.models.GPT`, in training mode: a
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
            save_checkpoint(run_dir / "model.pt", {
                "model_config": json.dumps(run.config.model.to_dict()),
                "model": run.model.state_dict()})
        (run_dir / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


def _loss(module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats/token) through ``module.forward`` (compiled or not)."""
    logits = module(x)  # (B, T, V)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
