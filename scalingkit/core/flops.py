"""FLOP and parameter accounting for decoder-only transformers.

Everything here is itemised per matrix multiply, with the backward pass as an
explicit multiple of the forward pass. The famous ``C ~ 6 N D`` rule is a
separate, named approximation (:func:`flops_6nd`) so that its error against the
exact count can be measured (:func:`ratio_exact_to_6nd`).

Units: FLOP counts are floating-point operations (one multiply-add = 2 FLOP),
rates are FLOP/s, sizes are parameters and tokens.

Conventions differ between papers and libraries, so they are options of
:class:`FlopConvention` rather than hidden choices:

* the input embedding is a table look-up (0 FLOP, the default) or counted as a
  one-hot matmul, ``2 V d_model`` per token, as Hoffmann et al. (2022) do;
* the output head (de-embedding to logits) is always counted,
  ``2 V d_model`` per token forward, whether or not its weights are tied to the
  input embedding;
* causal attention is counted in full (what dense attention kernels compute and
  what :class:`torch.utils.flop_counter.FlopCounterMode` reports) or halved
  (only the unmasked half of the score matrix, Kaplan et al.'s convention);
* the softmax (``3 n_head n_ctx`` per token and layer in Hoffmann et al.) is
  counted or not; it is not a matmul and profilers do not count it;
* the backward pass costs ``backward_factor`` times the forward pass (2 in both
  papers), optionally plus the recomputation of attention scores that fused
  attention kernels perform in their backward pass.

References
----------
Kaplan, J. et al. (2020). Scaling Laws for Neural Language Models, Table 1.
Hoffmann, J. et al. (2022). Training Compute-Optimal Large Language Models,
Appendix F and Table A4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: One petaFLOP/s sustained for one day, in FLOP.
PF_DAY = 1e15 * 86_400  # = 8.64e19 FLOP

__all__ = [
    "PF_DAY",
    "TransformerShape",
    "FlopConvention",
    "KAPLAN_CONVENTION",
    "HOFFMANN_CONVENTION",
    "ParamCounts",
    "param_counts",
    "kaplan_non_embedding_params",
    "kaplan_forward_flops",
    "hoffmann_forward_flops",
    "forward_flops_breakdown",
    "forward_flops_per_token",
    "training_flops_per_token",
    "training_flops",
    "inference_flops_per_token",
    "flops_6nd",
    "ratio_exact_to_6nd",
    "hoffmann_table_a4",
    "flop_to_pf_days",
    "pf_days_to_flop",
    "accelerator_hours",
]


def _positive(name: str, value: float, *, integer: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    if integer and int(value) != value:
        raise ValueError(f"{name} must be a whole number, got {value!r}")


@dataclass(frozen=True)
class TransformerShape:
    """The sizes of a decoder-only transformer that FLOP counts depend on.

    Parameters
    ----------
    d_model : int
        Width of the residual stream.
    n_layer : int
        Number of transformer blocks.
    n_ctx : int
        Training context length in tokens.
    vocab_size : int
        Vocabulary size ``V`` (256 for byte-level models).
    n_head : int, default=None
        Number of query heads. Defaults to ``max(1, d_model // 64)``.
    d_head : int, default=None
        Width of one head. Defaults to ``d_model // n_head``; Chinchilla's
        tables set it separately ("kv size"), so that
        ``d_attn = n_head * d_head`` may differ from ``d_model``.
    d_ff : int, default=None
        Hidden width of the feed-forward block. Defaults to ``4 * d_model``.
    n_kv_head : int, default=None
        Number of key/value heads for grouped-query attention (Ainslie et al.
        2023). Defaults to ``n_head`` (ordinary multi-head attention).
    ffn : {"gelu", "swiglu"}, default="gelu"
        Feed-forward type: two matrices (GELU) or three (SwiGLU, Shazeer 2020).

    Examples
    --------
    >>> s = TransformerShape(d_model=768, n_layer=12, n_ctx=1024, vocab_size=50257)
    >>> s.n_head, s.d_attn, s.d_ff
    (12, 768, 3072)
    """

    d_model: int
    n_layer: int
    n_ctx: int
    vocab_size: int
    n_head: int | None = None
    d_head: int | None = None
    d_ff: int | None = None
    n_kv_head: int | None = None
    ffn: Literal["gelu", "swiglu"] = "gelu"

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layer", "n_ctx", "vocab_size"):
            _positive(name, getattr(self, name), integer=True)
        for name in ("n_head", "d_head", "d_ff", "n_kv_head"):
            value = getattr(self, name)
            if value is not None:
                _positive(name, value, integer=True)
        if self.ffn not in ("gelu", "swiglu"):
            raise ValueError(f"ffn must be 'gelu' or 'swiglu', got {self.ffn!r}")
        n_head = self.n_head or max(1, self.d_model // 64)
        object.__setattr__(self, "n_head", n_head)
        if self.d_head is None:
            if self.d_model % n_head:
                raise ValueError(
                    f"d_model={self.d_model} is not divisible by n_head={n_head}; "
                    "pass d_head explicitly"
                )
            object.__setattr__(self, "d_head", self.d_model // n_head)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        n_kv = self.n_kv_head or n_head
        if n_head % n_kv:
            raise ValueError(f"n_head={n_head} must be a multiple of n_kv_head={n_kv}")
        object.__setattr__(self, "n_kv_head", n_kv)

    @property
    def d_attn(self) -> int:
        """Total query width ``n_head * d_head``."""
        return self.n_head * self.d_head

    @property
    def d_kv(self) -> int:
        """Total key (or value) width ``n_kv_head * d_head``."""
        return self.n_kv_head * self.d_head

    @property
    def n_ffn_matrices(self) -> int:
        """Number of ``d_model x d_ff`` matrices in one feed-forward block."""
        return 3 if self.ffn == "swiglu" else 2


@dataclass(frozen=True)
class FlopConvention:
    """How to count what papers and libraries count differently.

    Parameters
    ----------
    embedding : {"gather", "matmul"}, default="gather"
        Input embedding as a table look-up (0 FLOP) or as a one-hot matmul
        costing ``2 V d_model`` FLOP per token (Hoffmann et al. 2022).
    causal : {"full", "half"}, default="full"
        Count the whole ``n_ctx x n_ctx`` score matrix (what dense kernels and
        ``FlopCounterMode`` count) or only its causal half (Kaplan et al. 2020).
    softmax : bool, default=False
        Add Hoffmann et al.'s ``3 n_head n_ctx`` FLOP per token and layer for
        the softmax. Not a matmul; profilers do not count it.
    embedding_adds : bool, default=False
        Add Kaplan et al.'s ``4 d_model`` FLOP per token for the embedding
        (token plus position) step.
    backward_factor : float, default=2.0
        Backward-pass FLOP as a multiple of the forward pass.
    recompute_attention : bool, default=False
        Add one more ``Q K^T`` product per layer to the backward pass, as fused
        attention kernels (and ``FlopCounterMode``'s formula for
        ``scaled_dot_product_attention``) do.
    """

    embedding: Literal["gather", "matmul"] = "gather"
    causal: Literal["full", "half"] = "full"
    softmax: bool = False
    embedding_adds: bool = False
    backward_factor: float = 2.0
    recompute_attention: bool = False

    def __post_init__(self) -> None:
        if self.embedding not in ("gather", "matmul"):
            raise ValueError(f"embedding must be 'gather' or 'matmul', got {self.embedding!r}")
        if self.causal not in ("full", "half"):
            raise ValueError(f"causal must be 'full' or 'half', got {self.causal!r}")
        if not (math.isfinite(self.backward_factor) and self.backward_factor >= 0):
            raise ValueError(f"backward_factor must be >= 0, got {self.backward_factor!r}")


#: Kaplan et al. (2020), Table 1: causal half of attention, embedding adds.
KAPLAN_CONVENTION = FlopConvention(embedding="gather", causal="half", embedding_adds=True)
#: Hoffmann et al. (2022), Appendix F: embedding matmul, full attention, softmax.
HOFFMANN_CONVENTION = FlopConvention(embedding="matmul", causal="full", softmax=True)


# --------------------------------------------------------------------------- params


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts of a transformer, split the ways the literature needs.

    Attributes
    ----------
    token_embedding : int
        ``V * d_model``, the input embedding table.
    position_embedding : int
        ``n_ctx * d_model`` for learned absolute positions, else 0.
    attention : int
        Q, K, V and output projections of all layers (with their biases if any).
    ffn : int
        Feed-forward matrices of all layers (with their biases if any).
    norms : int
        LayerNorm gains and biases (all layers plus the final one).
    head : int
        Output head weights when *not* tied to the input embedding, else 0.
    """

    token_embedding: int
    position_embedding: int
    attention: int
    ffn: int
    norms: int
    head: int

    @property
    def embedding(self) -> int:
        """Token plus position embeddings (parameters)."""
        return self.token_embedding + self.position_embedding

    @property
    def non_embedding(self) -> int:
        """Kaplan et al.'s N: everything except embeddings and the output head."""
        return self.attention + self.ffn + self.norms

    @property
    def total(self) -> int:
        """Every trainable parameter (tied weights counted once)."""
        return self.embedding + self.non_embedding + self.head

    @property
    def total_with_head(self) -> int:
        """Non-embedding parameters plus the output head counted as its own matrix.

        This is the convention in which the head's ``V d_model`` weights count
        towards N whether or not they are tied (Porian et al. 2024).
        """
        return self.non_embedding + self.token_embedding


def param_counts(
    shape: TransformerShape,
    *,
    tied: bool = True,
    positional: Literal["learned", "relative", "none"] = "learned",
    bias: bool = False,
    layernorm_bias: bool = True,
) -> ParamCounts:
    """Count the parameters of a GPT-style model with the given shape.

    Parameters
    ----------
    shape : TransformerShape
        Model sizes.
    tied : bool, default=True
        Output head shares its weights with the token embedding.
    positional : {"learned", "relative", "none"}, default="learned"
        Learned absolute position embeddings (``n_ctx * d_model`` parameters,
        counted as embedding); Transformer-XL style relative positions as in
        Gopher and Chinchilla (one more ``d_model x d_attn`` projection and two
        ``d_attn`` bias vectors per layer, counted with attention); or none
        (rotary or ALiBi, no parameters).
    bias : bool, default=False
        Linear layers carry biases.
    layernorm_bias : bool, default=True
        LayerNorms carry a bias as well as a gain.

    Returns
    -------
    ParamCounts
        The itemised counts (parameters).
    """
    if positional not in ("learned", "relative", "none"):
        raise ValueError(
            f"positional must be 'learned', 'relative' or 'none', got {positional!r}"
        )
    d, L, s = shape.d_model, shape.n_layer, shape
    qkv = d * (s.d_attn + 2 * s.d_kv) + (s.d_attn + 2 * s.d_kv if bias else 0)
    proj = s.d_attn * d + (d if bias else 0)
    relative = d * s.d_attn + 2 * s.d_attn if positional == "relative" else 0
    ffn_in = (s.n_ffn_matrices - 1) * (d * s.d_ff + (s.d_ff if bias else 0))
    ffn_out = s.d_ff * d + (d if bias else 0)
    per_norm = d * (2 if layernorm_bias else 1)
    return ParamCounts(
        token_embedding=s.vocab_size * d,
        position_embedding=s.n_ctx * d if positional == "learned" else 0,
        attention=L * (qkv + proj + relative),
        ffn=L * (ffn_in + ffn_out),
        norms=(2 * L + 1) * per_norm,
        head=0 if tied else s.vocab_size * d,
    )


def kaplan_non_embedding_params(shape: TransformerShape) -> int:
    """Kaplan et al.'s approximation ``N = 2 d_model n_layer (2 d_attn + d_ff)``.

    Counts the weight matrices of attention and feed-forward blocks and
    nothing else (no biases, norms or embeddings). Exact for ordinary
    multi-head attention with a GELU block; grouped-query attention and
    SwiGLU change the count (use :func:`param_counts`).
    """
    return 2 * shape.d_model * shape.n_layer * (2 * shape.d_attn + shape.d_ff)


# --------------------------------------------------------------------------- FLOPs


def kaplan_forward_flops(shape: TransformerShape) -> dict[str, float]:
    """Kaplan et al. (2020) Table 1: forward FLOP per token, by operation.

    Returns
    -------
    dict
        ``embed``, ``attention_qkv``, ``attention_mask``, ``attention_project``,
        ``feedforward``, ``de_embed`` and ``total`` (FLOP per token). The total
        equals ``2 N + 2 n_layer n_ctx d_attn`` plus the embedding and
        de-embedding terms, with N from :func:`kaplan_non_embedding_params`.
    """
    d, L, s = shape.d_model, shape.n_layer, shape
    out = {
        "embed": 4.0 * d,
        "attention_qkv": 2.0 * L * d * 3 * s.d_attn,
        "attention_mask": 2.0 * L * s.n_ctx * s.d_attn,
        "attention_project": 2.0 * L * s.d_attn * d,
        "feedforward": 2.0 * L * 2 * d * s.d_ff,
        "de_embed": 2.0 * d * s.vocab_size,
    }
    out["total"] = sum(out.values())
    return out


def hoffmann_forward_flops(shape: TransformerShape) -> dict[str, float]:
    """Hoffmann et al. (2022) Appendix F: forward FLOP per *sequence*, by item.

    The sequence has ``shape.n_ctx`` tokens. Items: ``embeddings``,
    ``attention_qkv``, ``attention_logits``, ``attention_softmax``,
    ``attention_reduce`` (softmax @ values), ``attention_project``, ``dense``
    and ``final_logits`` (all layers summed), and ``total``. The paper's
    backward pass is twice this.
    """
    d, L, T, s = shape.d_model, shape.n_layer, shape.n_ctx, shape
    out = {
        "embeddings": 2.0 * T * s.vocab_size * d,
        "attention_qkv": L * 2.0 * 3 * T * d * s.d_attn,
        "attention_logits": L * 2.0 * T * T * s.d_attn,
        "attention_softmax": L * 3.0 * s.n_head * T * T,
        "attention_reduce": L * 2.0 * T * T * s.d_attn,
        "attention_project": L * 2.0 * T * s.d_attn * d,
        "dense": L * 2.0 * T * (s.n_ffn_matrices * d * s.d_ff),
        "final_logits": 2.0 * T * d * s.vocab_size,
    }
    out["total"] = sum(out.values())
    return out


def forward_flops_breakdown(
    shape: TransformerShape, convention: FlopConvention | None = None
) -> dict[str, float]:
    """Forward FLOP per training token, itemised, under ``convention``.

    Handles grouped-query attention (K and V projections of width ``d_kv``)
    and SwiGLU (three feed-forward matrices). Attention terms are averaged
    over the ``n_ctx`` positions of a training sequence.

    Returns
    -------
    dict
        ``embedding``, ``qkv``, ``scores`` (``Q K^T``), ``softmax``,
        ``reduce`` (scores @ V), ``project``, ``ffn``, ``head`` and ``total``,
        in FLOP per token.
    """
    c = convention or FlopConvention()
    d, L, s = shape.d_model, shape.n_layer, shape
    ctx = s.n_ctx / 2 if c.causal == "half" else s.n_ctx  # keys seen per query
    out = {
        "embedding": (2.0 * s.vocab_size * d if c.embedding == "matmul" else 0.0)
        + (4.0 * d if c.embedding_adds else 0.0),
        "qkv": L * 2.0 * d * (s.d_attn + 2 * s.d_kv),
        "scores": L * 2.0 * ctx * s.d_attn,
        "softmax": L * 3.0 * s.n_head * ctx if c.softmax else 0.0,
        "reduce": L * 2.0 * ctx * s.d_attn,
        "project": L * 2.0 * s.d_attn * d,
        "ffn": L * 2.0 * s.n_ffn_matrices * d * s.d_ff,
        "head": 2.0 * d * s.vocab_size,
    }
    out["total"] = sum(out.values())
    return out


def forward_flops_per_token(
    shape: TransformerShape, convention: FlopConvention | None = None
) -> float:
    """Forward-pass FLOP per training token (see :func:`forward_flops_breakdown`)."""
    return forward_flops_breakdown(shape, convention)["total"]


def training_flops_per_token(
    shape: TransformerShape, convention: FlopConvention | None = None
) -> float:
    """Forward plus backward FLOP per training token.

    ``(1 + backward_factor) * forward``, plus one extra score product per
    layer when ``convention.recompute_attention`` is set.
    """
    c = convention or FlopConvention()
    fwd = forward_flops_breakdown(shape, c)
    total = (1.0 + c.backward_factor) * fwd["total"]
    if c.recompute_attention:
        total += fwd["scores"]
    return total


def training_flops(
    shape: TransformerShape, n_tokens: float, convention: FlopConvention | None = None
) -> float:
    """Exact training compute in FLOP for ``n_tokens`` tokens."""
    _positive("n_tokens", n_tokens)
    return training_flops_per_token(shape, convention) * float(n_tokens)


def inference_flops_per_token(
    shape: TransformerShape,
    context_len: int,
    convention: FlopConvention | None = None,
) -> float:
    """Forward FLOP to generate one token with a KV cache.

    The new token's query attends to ``context_len`` cached keys and values
    (so no causal halving applies); every projection runs once.

    Parameters
    ----------
    shape : TransformerShape
    context_len : int
        Tokens already in the cache, including the new one.
    convention : FlopConvention, default=None
        Only ``embedding`` and ``softmax`` are used.
    """
    _positive("context_len", context_len, integer=True)
    c = convention or FlopConvention()
    one_query = TransformerShape(
        **{**_shape_kwargs(shape), "n_ctx": int(context_len)}
    )
    return forward_flops_breakdown(one_query, FlopConvention(
        embedding=c.embedding, causal="full", softmax=c.softmax,
        embedding_adds=c.embedding_adds,
    ))["total"]


def _shape_kwargs(shape: TransformerShape) -> dict:
    return {f: getattr(shape, f) for f in shape.__dataclass_fields__}


def flops_6nd(n_params: float | np.ndarray, n_tokens: float | np.ndarray) -> float | np.ndarray:
    """The ``C = 6 N D`` approximation of training compute, in FLOP (elementwise on arrays).

    Two FLOP per parameter per token forward (a multiply and an add), twice
    that backward. It ignores attention over the context and counts whatever
    ``n_params`` the caller passes (conventions differ: Kaplan used
    non-embedding parameters, Hoffmann all of them).
    """
    if np.ndim(n_params) or np.ndim(n_tokens):
        n, d = np.asarray(n_params, dtype=float), np.asarray(n_tokens, dtype=float)
        for name, value in (("n_params", n), ("n_tokens", d)):
            if not np.all(np.isfinite(value) & (value > 0)):
                raise ValueError(f"{name} must be finite positive numbers")
        return 6.0 * n * d
    _positive("n_params", n_params)
    _positive("n_tokens", n_tokens)
    return 6.0 * float(n_params) * float(n_tokens)


def ratio_exact_to_6nd(
    shape: TransformerShape,
    n_params: float | None = None,
    convention: FlopConvention | None = None,
) -> float:
    """Exact training FLOP divided by ``6 N D`` (independent of D).

    Parameters
    ----------
    shape : TransformerShape
    n_params : float, default=None
        N used in ``6ND``. Defaults to the non-embedding count plus the
        output head, ``param_counts(shape).total_with_head``.
    convention : FlopConvention, default=None
    """
    n = float(n_params) if n_params is not None else float(param_counts(shape).total_with_head)
    _positive("n_params", n)
    return training_flops_per_token(shape, convention) / flops_6nd(n, 1)  # 6N per token


def hoffmann_table_a4(table, *, n_ctx: int = 2048, vocab_size: int = 32_000):
    """Recompute Hoffmann et al.'s Table A4 (their FLOP count over 6ND).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per model with columns ``params`` (as printed), ``n_layers``,
        ``d_model``, ``ffw_size``, ``n_heads``, ``kv_size`` and optionally
        ``flop_ratio_published``.
    n_ctx, vocab_size : int
        Sequence length and vocabulary of the paper (2048 and 32,000).

    Returns
    -------
    pandas.DataFrame
        The input plus ``params_ours`` (relative positions, tied embedding,
        no biases), ``ratio_appendix_f`` (every Appendix F item over 6ND with
        the printed N) and ``ratio_no_embed_logits`` (the same without the
        embedding and final-logit items), and ``ratio_no_embed_logits_our_n``
        (the same with our unrounded parameter count as N).
    """
    import pandas as pd

    out = []
    for row in table.itertuples(index=False):
        shape = TransformerShape(
            d_model=int(row.d_model), n_layer=int(row.n_layers), n_ctx=n_ctx,
            vocab_size=vocab_size, n_head=int(row.n_heads), d_head=int(row.kv_size),
            d_ff=int(row.ffw_size),
        )
        items = hoffmann_forward_flops(shape)
        six_nd = flops_6nd(float(row.params), n_ctx)  # 6 N D with D = one sequence
        without = items["total"] - items["embeddings"] - items["final_logits"]
        ours = param_counts(shape, positional="relative", layernorm_bias=False).total
        out.append({
            **row._asdict(),
            "params_ours": ours,
            "ratio_appendix_f": 3.0 * items["total"] / six_nd,
            "ratio_no_embed_logits": 3.0 * without / six_nd,
            "ratio_no_embed_logits_our_n": 3.0 * without / flops_6nd(ours, n_ctx),
        })
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- units


def flop_to_pf_days(flop: float) -> float:
    """Convert FLOP to petaFLOP/s-days (1 PF-day = 8.64e19 FLOP)."""
    _positive("flop", flop)
    return float(flop) / PF_DAY


def pf_days_to_flop(pf_days: float) -> float:
    """Convert petaFLOP/s-days to FLOP."""
    _positive("pf_days", pf_days)
    return float(pf_days) * PF_DAY


def accelerator_hours(flop: float, peak_flop_per_s: float, mfu: float) -> float:
    """Hours one accelerator needs for ``flop`` at utilisation ``mfu``.

    Parameters
    ----------
    flop : float
        Work in FLOP.
    peak_flop_per_s : float
        The accelerator's peak rate for the dtype used (FLOP/s).
    mfu : float
        Model FLOP utilisation in (0, 1].
    """
    _positive("flop", flop)
    _positive("peak_flop_per_s", peak_flop_per_s)
    _positive("mfu", mfu)
    if mfu > 1:
        raise ValueError(f"mfu must be at most 1, got {mfu!r}")
    return float(flop) / (peak_flop_per_s * mfu) / 3600.0
