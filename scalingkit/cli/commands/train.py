"""``python -m scalingkit train``: train one GPT and print (or save) its result record."""

from __future__ import annotations

import argparse
import json
import sys

from scalingkit.core.models import GPTConfig, shape_for_params
from scalingkit.core.train import SCHEDULES, TrainConfig, tokens_for_flop_budget, train

HELP = "Train one small GPT on a token or FLOP budget and report loss, FLOP, tokens/s, MFU."


def add_arguments(p: argparse.ArgumentParser) -> None:
    shape = p.add_argument_group("model (give --params, or --d-model and --n-layer)")
    shape.add_argument("--params", type=float, help="target non-embedding N (model ladder)")
    shape.add_argument("--d-model", type=int, help="residual width")
    shape.add_argument("--n-layer", type=int, help="number of blocks")
    shape.add_argument("--n-head", type=int, help="attention heads (default d_model/32)")
    shape.add_argument("--n-ctx", type=int, default=128, help="context length (default 128)")
    shape.add_argument("--vocab-size", type=int, default=256,
                       help="vocabulary size; must match the tokenizer (default 256)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--tokens", type=float, help="token budget D")
    budget.add_argument("--flops", type=float, help="FLOP budget C (exact count)")
    p.add_argument("--corpus", default="shakespeare",
                   help="shakespeare, gutenberg_en, stdlib, markov:<k>[:<source>] or a path")
    p.add_argument("--tokenizer", default="byte", help="byte or bpe:<vocab size>")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--warmup-tokens", type=int, default=0)
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--horizon-tokens", type=int, help="horizon of cosine_fixed")
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=100, help="steps between evaluations")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:i] or mps")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16")
    p.add_argument("--compile", action="store_true", help="use torch.compile")
    p.add_argument("--run-dir", help="folder for checkpoints and result.json (resumes)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the full record as JSON")


def _model(args: argparse.Namespace) -> GPTConfig:
    if args.params is not None:
        if args.d_model is not None or args.n_layer is not None:
            raise ValueError("give either --params or --d-model/--n-layer, not both")
        return shape_for_params(args.params, n_ctx=args.n_ctx, vocab_size=args.vocab_size)
    if args.d_model is None or args.n_layer is None:
        raise ValueError("give --params, or both --d-model and --n-layer")
    n_head = args.n_head if args.n_head is not None else max(1, args.d_model // 32)
    return GPTConfig(d_model=args.d_model, n_layer=args.n_layer, n_head=n_head,
                     n_ctx=args.n_ctx, vocab_size=args.vocab_size)


def _check_whole_steps(config: TrainConfig, option: str) -> None:
    """Refuse a budget below one optimiser step; say so when it is rounded to whole steps.

    The trainer runs ``round(tokens / (batch_size * n_ctx))`` whole steps (at
    least one), so a smaller budget would silently train a whole batch.
    """
    per_step = config.tokens_per_step
    if config.tokens < per_step:
        raise ValueError(
            f"{option} gives {config.tokens:,} training tokens, less than one optimiser step "
            f"of batch_size * n_ctx = {config.batch_size} * {config.model.n_ctx} = "
            f"{per_step:,} tokens; raise it or lower --batch-size"
        )
    trained = config.steps * per_step
    if trained != config.tokens:
        print(f"note: {option} gives {config.tokens:,} tokens; training {config.steps:,} whole "
              f"steps of {per_step:,} = {trained:,} tokens", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    model = _model(args)
    if args.tokens is not None:
        if not args.tokens >= 1:
            raise ValueError(f"--tokens must be at least 1, got {args.tokens}")
        tokens = round(args.tokens)
    else:
        tokens = tokens_for_flop_budget(model, args.flops)
    config = TrainConfig(
        model=model, corpus=args.corpus, tokenizer=args.tokenizer, tokens=tokens,
        batch_size=args.batch_size, lr=args.lr, warmup_tokens=args.warmup_tokens,
        schedule=args.schedule, horizon_tokens=args.horizon_tokens, grad_clip=args.grad_clip,
        eval_every=args.eval_every, seed=args.seed, device=args.device, dtype=args.dtype,
        compile=args.compile, checkpoint_every=args.checkpoint_every,
    )
    _check_whole_steps(config, "--tokens" if args.tokens is not None else "--flops")
    result = train(config, run_dir=args.run_dir, progress=not args.quiet)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(f"status: {result.status}{' (' + result.message + ')' if result.message else ''}")
        print(f"model: d_model={model.d_model} n_layer={model.n_layer} n_head={model.n_head} "
              f"N(non-embedding)={result.params_non_embedding:,} N(total)={result.params_total:,}")
        print(f"D = {result.tokens:,} tokens, C = {result.flops_exact:.4g} FLOP "
              f"(6ND: {result.flops_6nd:.4g}), {result.epochs:.3g} epochs")
        if result.final_loss is not None:
            print(f"final validation loss: {result.final_loss:.4f} nats/token = "
                  f"{result.final_bits_per_byte:.4f} bits/byte")
        print(f"{result.wall_time_s:.1f} s wall, {result.tokens_per_s:,.0f} tokens/s, "
              f"MFU {result.mfu:.3f} on {result.device} ({result.dtype})")
    return 0 if result.status == "done" else 1
