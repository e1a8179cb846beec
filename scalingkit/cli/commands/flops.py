"""``python -m scalingkit flops``: itemised FLOP and parameter counts for a shape."""

from __future__ import annotations

import argparse
import json

from scalingkit.core import flops

HELP = "Count a transformer's parameters and training FLOP (per token and in total)."

_CONVENTIONS = {
    "default": flops.FlopConvention(),
    "kaplan": flops.KAPLAN_CONVENTION,
    "hoffmann": flops.HOFFMANN_CONVENTION,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--d-model", type=int, required=True, help="residual width")
    p.add_argument("--n-layer", type=int, required=True, help="number of blocks")
    p.add_argument("--n-ctx", type=int, required=True, help="context length (tokens)")
    p.add_argument("--vocab-size", type=int, default=256, help="vocabulary size (default 256)")
    p.add_argument("--n-head", type=int, default=None, help="query heads (default d_model/64)")
    p.add_argument("--n-kv-head", type=int, default=None, help="key/value heads (GQA)")
    p.add_argument("--d-ff", type=int, default=None, help="feed-forward width (default 4 d)")
    p.add_argument("--ffn", choices=["gelu", "swiglu"], default="gelu")
    p.add_argument("--convention", choices=sorted(_CONVENTIONS), default="default",
                   help="FLOP counting convention (default: look-up embedding, full attention)")
    p.add_argument("--tokens", type=float, default=None,
                   help="training tokens D; adds total FLOP and PF-days")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    shape = flops.TransformerShape(
        d_model=args.d_model, n_layer=args.n_layer, n_ctx=args.n_ctx,
        vocab_size=args.vocab_size, n_head=args.n_head, n_kv_head=args.n_kv_head,
        d_ff=args.d_ff, ffn=args.ffn,
    )
    convention = _CONVENTIONS[args.convention]
    counts = flops.param_counts(shape)
    out = {
        "params_total": counts.total,
        "params_non_embedding": counts.non_embedding,
        "params_with_head": counts.total_with_head,
        "forward_flop_per_token": flops.forward_flops_breakdown(shape, convention),
        "training_flop_per_token": flops.training_flops_per_token(shape, convention),
        "ratio_exact_to_6nd": flops.ratio_exact_to_6nd(shape, convention=convention),
    }
    if args.tokens is not None:
        total = flops.training_flops(shape, args.tokens, convention)
        out.update(tokens=args.tokens, training_flop=total,
                   training_flop_6nd=flops.flops_6nd(counts.total_with_head, args.tokens),
                   pf_days=flops.flop_to_pf_days(total))
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"parameters: total {counts.total:,}  non-embedding {counts.non_embedding:,}  "
          f"non-embedding + head {counts.total_with_head:,}")
    print(f"forward FLOP per token ({args.convention} convention):")
    for name, value in out["forward_flop_per_token"].items():
        print(f"  {name:<10} {value:>16,.0f}")
    print(f"training FLOP per token: {out['training_flop_per_token']:,.0f}  "
          f"(exact / 6N = {out['ratio_exact_to_6nd']:.4f})")
    if args.tokens is not None:
        print(f"training FLOP for {args.tokens:.4g} tokens: {out['training_flop']:.4g} "
              f"({out['pf_days']:.4g} PF-days; 6ND gives {out['training_flop_6nd']:.4g})")
    return 0
