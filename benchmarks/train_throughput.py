"""Training throughput and MFU of scalingkit's trainer on CPU (fp32), against a plain loop.

For each shape (d_model, n_layer) in (64, 4), (128, 4), (192, 6) with batch 32 x 128
tokens and vocabulary 256, this runs

* ``scalingkit.core.train.train`` itself (the real trainer: sampler, schedule, clipping,
  AdamW, divergence checks), timed step to step through its callback, and
* a minimal nanoGPT-style loop on the same model class: numpy batch sampling, gradient
  clipping and a ``loss.item()`` every step, with the very optimizer the trainer builds
  (``scalingkit.core.train._optimizer``: fused AdamW, weight decay on matrices only), so
  that the two differ only in what the trainer adds around the step,

each for ``--steps`` optimizer steps (the rate is taken from the second step to the
last, so one-off allocation costs are left out), ``--repeats`` times, interleaved
(trainer then loop, then loop then trainer, ...) so that load from other processes
hits both alike. It prints the best and the median tokens/s of each and MFU =
achieved FLOP/s (exact count, :func:`scalingkit.core.flops.training_flops_per_token`) /
the fp32 GEMM peak measured in this run (best of 10 products of two 1024 x 1024
matrices, re-measured beside each shape; the best seen is used). The last line is
``mfu_d192=<median> mfu_d192_best=<best> trainer_over_plain_d192=<median ratio>``.

Run: ``python benchmarks/train_throughput.py`` (a few minutes on 2 cores);
``--steps 5 --repeats 1`` is a smoke run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from scalingkit.core import flops, hardware
from scalingkit.core.data import load_corpus
from scalingkit.core.models import GPT, GPTConfig
from scalingkit.core.train import TrainConfig, train
from scalingkit.core.train.loop import _optimizer

SHAPES = [(64, 4), (128, 4), (192, 6)]
BATCH, N_CTX, VOCAB = 32, 128, 256


def config_for(cfg: GPTConfig, steps: int) -> TrainConfig:
    """The training config both loops use (fp32 on CPU, no evaluation)."""
    return TrainConfig(model=cfg, tokens=steps * BATCH * N_CTX, batch_size=BATCH, lr=1e-3,
                       eval_every=0, eval_tokens=N_CTX, log_every=1, device="cpu",
                       dtype="float32")


def plain_loop_tokens_per_s(cfg: GPTConfig, tokens: np.ndarray, steps: int) -> float:
    """Tokens/s of a minimal training loop (the reference the trainer must match)."""
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = _optimizer(model, config_for(cfg, steps), torch.device("cpu"))  # the trainer's own
    rng = np.random.default_rng(0)
    stamps = []
    for _ in range(steps):
        ix = rng.integers(0, len(tokens) - N_CTX - 1, BATCH)
        x = torch.from_numpy(np.stack([tokens[i : i + N_CTX] for i in ix]).astype(np.int64))
        y = torch.from_numpy(np.stack([tokens[i + 1 : i + 1 + N_CTX] for i in ix]).astype(np.int64))
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        stamps.append(time.perf_counter())
    return (steps - 1) * BATCH * N_CTX / (stamps[-1] - stamps[0])


def trainer_tokens_per_s(cfg: GPTConfig, steps: int) -> float:
    """Steady-state tokens/s of ``scalingkit.core.train.train`` itself.

    The trainer's callback fires after every step (``log_every=1``); the rate is taken
    between the first and the last step, so the one-off cost of the first step
    (allocations) is left out, exactly as for the plain loop.
    """
    stamps: list[float] = []
    train(config_for(cfg, steps), progress=False,
          callback=lambda info: stamps.append(time.perf_counter()))
    return (steps - 1) * BATCH * N_CTX / (stamps[-1] - stamps[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30,
                        help="optimizer steps per timed run (default 30)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each loop per shape, interleaved (default 3)")
    args = parser.parse_args()
    if args.steps < 3 or args.repeats < 1:
        parser.error("--steps must be >= 3 and --repeats >= 1")
    t_start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.steps} steps x {args.repeats} interleaved repeats per loop and shape")
    corpus = load_corpus("shakespeare")
    tokens = np.asarray(corpus.train)
    peak = hardware.measure_peak_flops(device="cpu", dtype=torch.float32, n=1024, repeats=10)
    rows = []
    for d, n_layer in SHAPES:
        cfg = GPTConfig(d_model=d, n_layer=n_layer, n_head=d // 32, n_ctx=N_CTX, vocab_size=VOCAB)
        ours: list[float] = []
        plain: list[float] = []
        for r in range(args.repeats):
            first_ours = r % 2 == 0
            for which in ("ours", "plain") if first_ours else ("plain", "ours"):
                if which == "ours":
                    ours.append(trainer_tokens_per_s(cfg, args.steps))
                else:
                    plain.append(plain_loop_tokens_per_s(cfg, tokens, args.steps))
        # Re-measure the peak next to each shape's timings, so that load from other
        # processes affects numerator and denominator alike; keep the best seen.
        peak = max(peak, hardware.measure_peak_flops(device="cpu", n=1024, repeats=5))
        rows.append((d, n_layer, flops.training_flops_per_token(cfg.shape), ours, plain))
    print(f"peak used for every MFU below: {peak / 1e9:.1f} GFLOP/s (best seen in this run)")
    for d, n_layer, per_token, ours, plain in rows:
        med_o, med_p = statistics.median(ours), statistics.median(plain)
        print(f"d_model={d:3d} n_layer={n_layer}: {per_token / 1e6:6.2f} MFLOP/token | "
              f"trainer median {med_o:8.0f} best {max(ours):8.0f} tokens/s "
              f"(MFU {med_o * per_token / peak:.3f}) | plain loop median {med_p:8.0f} "
              f"best {max(plain):8.0f} tokens/s (MFU {med_p * per_token / peak:.3f}) | "
              f"trainer/plain {med_o / med_p:.2f} (medians), {max(ours) / max(plain):.2f} (bests)")
    d, n_layer, per_token, ours, plain = rows[-1]
    print(f"total time {time.perf_counter() - t_start:.0f} s, "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    print(f"mfu_d192={statistics.median(ours) * per_token / peak:.3f} "
          f"mfu_d192_best={max(ours) * per_token / peak:.3f} "
          f"trainer_over_plain_d192={statistics.median(ours) / statistics.median(plain):.2f}")


if __name__ == "__main__":
    main()
