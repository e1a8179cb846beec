"""How long generating a synthetic source takes, against training on what it generates.

The known-entropy experiment trains on text sampled from a source (issue #19); the
sampling must be a small fraction of the training time. This script times, in one run
on this machine,

* building the word source (its ranks and permutation; once per corpus);
* sampling ``--tokens`` tokens from it (64 independent streams, as the corpus does);
* training the smallest and largest shapes of the ``laptop`` ladder on those tokens for
  ``--steps`` optimizer steps (batch 16 x 128 tokens, one thread, as a pool worker);

and prints tokens per second for each and the share of a training run's time that
sampling its tokens would take.

Usage::

    python benchmarks/source_generation.py            # words:z12, 8 Mi tokens, 30 steps
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    """Time the source and two training shapes; print the shares."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="z12", help="word source preset")
    parser.add_argument("--tokens", type=int, default=1 << 23, help="tokens to sample")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per shape")
    args = parser.parse_args()

    import numpy as np
    import torch

    from scalingkit.core.data.words import WORD_PRESETS, ZipfWordSource
    from scalingkit.core.ladder import ladder_rung
    from scalingkit.core.models import GPT
    from scalingkit.runs.sweep import preset

    torch.set_num_threads(1)
    print(f"load average: {os.getloadavg()[0]:.2f}, torch threads: 1")
    t0 = time.perf_counter()
    src = ZipfWordSource(**WORD_PRESETS[args.preset])
    _ = src.codes, src.rank_probs
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    src.sample(args.tokens // 64, n_chains=64, seed=0)
    sample_rate = args.tokens / (time.perf_counter() - t0)
    print(f"words:{args.preset}: build {build_s:.1f} s, sampling {sample_rate:,.0f} tokens/s")

    spec = preset("laptop")
    batch, n_ctx = spec.batch_size, spec.n_ctx
    data = torch.from_numpy(np.random.default_rng(0).integers(97, 123, (batch, n_ctx + 1)))
    shares = {}
    for k in (1, max(spec.rungs(spec.budgets[-1]))):
        model = GPT(ladder_rung(k, **spec.rung_kwargs()))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            logits = model(data[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), data[:, 1:].flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_rate = args.steps * batch * n_ctx / (time.perf_counter() - t0)
        shares[k] = train_rate / sample_rate
        print(f"rung {k} ({model.config.n_params():,} params): training {train_rate:,.0f} "
              f"tokens/s; sampling its tokens takes {shares[k]:.1%} of its training time")
    print(" ".join(f"share_rung{k}={v:.4f}" for k, v in shares.items())
          + f" sample_tokens_per_s={sample_rate:.0f}")


if __name__ == "__main__":
    main()
