"""Training throughput and MFU of scalingkit's trainer on CPU (fp32), against a plain loop.

For each shape (d_model, n_layer) in (64, 4), (128, 4), (192, 6) with batch 32 x 128
tokens and vocabulary 256, this runs

* ``scalingkit.train.train`` itself (the real trainer: sampler, schedule, clipping,
  fused AdamW, divergence checks), timed step to step through its callback, and
* a minimal nanoGPT-style loop on the same model class: numpy batch sampling, default
  AdamW, gradient clipping and a ``loss.item()`` every step,

and prints tokens/s for both and MFU = achieved FLOP/s (exact count,
:func:`scalingkit.flops.training_flops_per_token`) / the fp32 GEMM peak measured in this
run (best of 10 products of two 1024 x 1024 matrices). Timings are best of ``REPEATS``
runs, interleaved, because the CPU may be shared. The last line is ``mfu_d192=<value>``.

Run: ``python benchmarks/train_throughput.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from scalingkit import flops
from scalingkit.data import load_corpus
from scalingkit.models import GPT, GPTConfig
from scalingkit.train import TrainConfig, train

SHAPES = [(64, 4), (128, 4), (192, 6)]
BATCH, N_CTX, VOCAB = 32, 128, 256
STEPS = {64: 6, 128: 5, 192: 4}
REPEATS = 2


def plain_loop_tokens_per_s(cfg: GPTConfig, tokens: np.ndarray, steps: int) -> float:
    """Tokens/s of a minimal training loop (the reference the trainer must match)."""
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
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
    """Steady-state tokens/s of ``scalingkit.train.train`` itself.

    The trainer's callback fires after every step (``log_every=1``); the rate is taken
    between the first and the last step, so the one-off cost of the first step
    (allocations) is left out, exactly as for the plain loop.
    """
    tc = TrainConfig(model=cfg, tokens=steps * BATCH * N_CTX, batch_size=BATCH, lr=1e-3,
                     eval_every=0, eval_tokens=N_CTX, log_every=1, device="cpu",
                     dtype="float32")
    stamps: list[float] = []
    train(tc, progress=False, callback=lambda info: stamps.append(time.perf_counter()))
    return (steps - 1) * BATCH * N_CTX / (stamps[-1] - stamps[0])


def main() -> None:
    t_start = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} logical CPUs")
    corpus = load_corpus("shakespeare")
    tokens = np.asarray(corpus.train)
    peak = flops.measure_peak_flops(device="cpu", dtype=torch.float32, n=1024, repeats=10)
    print(f"fp32 GEMM peak (1024^3 matmul, best of 10): {peak / 1e9:.1f} GFLOP/s")
    rows = []
    for d, n_layer in SHAPES:
        cfg = GPTConfig(d_model=d, n_layer=n_layer, n_head=d // 32, n_ctx=N_CTX, vocab_size=VOCAB)
        ours, plain = 0.0, 0.0
        for _ in range(REPEATS):
            ours = max(ours, trainer_tokens_per_s(cfg, STEPS[d]))
            plain = max(plain, plain_loop_tokens_per_s(cfg, tokens, STEPS[d]))
        # Re-measure the peak next to each shape's timings, so that load from other
        # processes affects numerator and denominator alike; keep the best seen.
        peak = max(peak, flops.measure_peak_flops(device="cpu", n=1024, repeats=5))
        rows.append((d, n_layer, flops.training_flops_per_token(cfg.shape), ours, plain))
    print(f"peak used for every MFU below: {peak / 1e9:.1f} GFLOP/s (best seen in this run)")
    for d, n_layer, per_token, ours, plain in rows:
        print(f"d_model={d:3d} n_layer={n_layer}: {per_token / 1e6:6.2f} MFLOP/token | "
              f"trainer {ours:8.0f} tokens/s (MFU {ours * per_token / peak:.3f}) | plain loop "
              f"{plain:8.0f} tokens/s (MFU {plain * per_token / peak:.3f}) | "
              f"trainer/plain {ours / plain:.2f}")
    d, n_layer, per_token, ours, plain = rows[-1]
    print(f"total time {time.perf_counter() - t_start:.0f} s")
    print(f"mfu_d192={ours * per_token / peak:.3f}")


if __name__ == "__main__":
    main()
