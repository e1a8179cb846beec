"""A small decoder-only GPT, its parameter counts and the model ladder.

The architecture is the GPT-2 family (Radford et al. 2019) in its pre-LayerNorm form,
with the attention of Vaswani et al. (2017):

* token embedding plus a **learned absolute position embedding** (one vector per
  position ``0 .. n_ctx - 1``; simple, cheap and exactly what the GPT-2 and Kaplan et al.
  models used, at the cost of not extrapolating beyond ``n_ctx``);
* ``n_layer`` blocks of ``x + attn(ln(x))`` then ``x + mlp(ln(x))`` with causal
  :func:`torch.nn.functional.scaled_dot_product_attention` and a GELU MLP of width
  ``d_ff`` (default ``4 * d_model``);
* a final LayerNorm and a linear output head to ``vocab_size`` logits.

**Weight tying.** By default the output head *is* the token-embedding matrix
(``tie_embeddings=True``), as in GPT-2. Tying removes ``vocab_size * d_model``
parameters from the total count but not a single FLOP: the head matmul still runs, so
FLOP accounting (:mod:`scalingkit.core.flops`) always counts it. Kaplan et al.'s ``N`` (the
non-embedding count) excludes token and position embeddings whether or not the head is
tied; with an untied head, the head matrix is excluded from ``N`` too, since it is the
"unembedding".

Parameter counts (all in parameters):

* :meth:`GPTConfig.n_params` -- every trainable parameter (tied matrix counted once);
* :meth:`GPTConfig.n_params_non_embedding` -- Kaplan's ``N``: total minus token
  embedding, position embedding and (if untied) the output head;
* :meth:`GPTConfig.n_params_with_head` -- ``N`` plus the output head counted as its own
  ``vocab_size * d_model`` matrix even when tied (Porian et al. 2024's convention).

These agree with :func:`scalingkit.core.flops.param_counts` (checked in the tests).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GPTConfig", "GPT", "shape_for_params", "sample_text"]


def check_fields(cls: type, data: dict[str, Any]) -> None:
    """Refuse keys of ``data`` that are not fields of the dataclass ``cls`` (ValueError)."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a decoder-only GPT.

    Parameters
    ----------
    d_model : int
        Residual-stream width (features).
    n_layer : int
        Number of transformer blocks.
    n_head : int
        Attention heads; must divide ``d_model``.
    n_ctx : int
        Context length (tokens); also the number of learned positions.
    vocab_size : int
        Vocabulary size (tokens); 256 for the byte tokenizer.
    d_ff : int or None, default=None
        MLP hidden width; ``None`` means ``4 * d_model``.
    bias : bool, default=False
        Biases in the linear layers (GPT-2 had them; leaving them out is slightly
        faster and no worse). LayerNorms always have a gain and a bias.
    tie_embeddings : bool, default=True
        Share the token-embedding matrix with the output head.
    init_std : float, default=0.02
        Standard deviation of the normal initialisation; residual output projections
        are further scaled by ``1 / sqrt(2 * n_layer)`` (GPT-2).
    """

    d_model: int
    n_layer: int
    n_head: int
    n_ctx: int
    vocab_size: int
    d_ff: int | None = None
    bias: bool = False
    tie_embeddings: bool = True
    init_std: float = 0.02

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layer", "n_head", "n_ctx", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_ff is not None and (not isinstance(self.d_ff, int) or self.d_ff < 1):
            raise ValueError(f"d_ff must be a positive integer or None, got {self.d_ff!r}")
        if self.d_model % self.n_head:
            raise ValueError(
                f"n_head={self.n_head} must divide d_model={self.d_model}"
            )
        if not (self.init_std > 0 and math.isfinite(self.init_std)):
            raise ValueError(f"init_std must be positive and finite, got {self.init_std!r}")

    # -- derived sizes ---------------------------------------------------------------
    @property
    def ffn_width(self) -> int:
        """MLP hidden width (features): ``d_ff`` or ``4 * d_model``."""
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def shape(self) -> Any:
        """The :class:`scalingkit.core.flops.TransformerShape` used for FLOP accounting."""
        from scalingkit.core import flops

        return flops.TransformerShape(
            d_model=self.d_model,
            n_layer=self.n_layer,
            n_ctx=self.n_ctx,
            vocab_size=self.vocab_size,
            n_head=self.n_head,
            d_ff=self.ffn_width,
        )

    # -- parameter counts ------------------------------------------------------------
    def param_counts(self) -> Any:
        """Itemised counts of this model (:func:`scalingkit.core.flops.param_counts`).

        The one home of the parameter-count formula: learned positions, LayerNorms
        with gain and bias, linear biases when ``bias``, a tied or untied head.
        """
        from scalingkit.core import flops

        return flops.param_counts(self.shape, tied=self.tie_embeddings, positional="learned",
                                  bias=self.bias, layernorm_bias=True)

    def n_params_non_embedding(self) -> int:
        """Kaplan's ``N``: trainable parameters excluding embeddings (parameters).

        Counts every block (attention, MLP, LayerNorms, biases) and the final
        LayerNorm; excludes token and position embeddings and, if untied, the output
        head.
        """
        return self.param_counts().non_embedding

    def n_params_embedding(self) -> int:
        """Token plus position embedding parameters (parameters)."""
        return self.param_counts().embedding

    def n_params_head(self) -> int:
        """Parameters the output head adds to the total: 0 when tied (parameters)."""
        return self.param_counts().head

    def n_params(self) -> int:
        """Every trainable parameter, a tied matrix counted once (parameters)."""
        return self.param_counts().total

    def n_params_with_head(self) -> int:
        """Non-embedding parameters plus the output head (parameters).

        The head's ``vocab_size * d_model`` weights count whether or not they are tied
        to the input embedding; embeddings do not. This is the ``N`` that Porian et al.
        (2024) show reconciles Kaplan's and Hoffmann's compute-optimal exponents
        (:attr:`scalingkit.core.flops.ParamCounts.total_with_head`).
        """
        return self.param_counts().total_with_head

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        check_fields(cls, data)
        return cls(**data)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with a fused QKV projection."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape  # (batch, time, d_model)
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        hd = C // self.n_head
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)  # (B, H, T, hd)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)  # (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)  # (B, T, C)


class MLP(nn.Module):
    """Two-layer GELU MLP ``d_model -> d_ff -> d_model``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.ffn_width, bias=config.bias)
        self.proj = nn.Linear(config.ffn_width, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))  # (B, T, C) -> (B, T, d_ff) -> (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))  # (B, T, C)
        return x + self.mlp(self.ln2(x))  # (B, T, C)


class GPT(nn.Module):
    """Decoder-only transformer language model.

    Parameters
    ----------
    config : GPTConfig
        The model shape.
    generator : torch.Generator or None, default=None
        Source of randomness for the initialisation (the global RNG when ``None``).

    Examples
    --------
    >>> model = GPT(GPTConfig(d_model=32, n_layer=2, n_head=2, n_ctx=16, vocab_size=256))
    >>> logits = model(torch.zeros(3, 16, dtype=torch.long))
    >>> tuple(logits.shape)
    (3, 16, 256)
    """

    def __init__(self, config: GPTConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.n_ctx, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.wte.weight
        self.register_buffer("pos", torch.arange(config.n_ctx), persistent=False)
        self._init_weights(generator)

    @torch.no_grad()
    def _init_weights(self, generator: torch.Generator | None) -> None:
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                s = residual_std if name.endswith("proj.weight") else std
                p.normal_(0.0, s, generator=generator)
            elif name.endswith("bias"):
                p.zero_()
            else:  # LayerNorm gains
                p.fill_(1.0)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits for every position.

        Parameters
        ----------
        idx : torch.Tensor
            Token ids, shape ``(B, T)`` with ``T <= n_ctx``.

        Returns
        -------
        torch.Tensor
            Logits (unnormalised log-probabilities), shape ``(B, T, vocab_size)``.
        """
        B, T = idx.shape  # (batch, time)
        if T > self.config.n_ctx:
            raise ValueError(f"sequence length {T} exceeds n_ctx={self.config.n_ctx}")
        x = self.wte(idx) + self.wpe(self.pos[:T])  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.head(self.ln_f(x))  # (B, T, V)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy (nats/token) of ``targets`` given ``idx``."""
        logits = self(idx)  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        n_new: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample ``n_new`` tokens after the prompt ``idx`` of shape ``(B, T)``.

        Returns the prompt followed by the samples, shape ``(B, T + n_new)``.
        ``temperature`` scales the logits; ``top_k`` keeps only the k most likely
        tokens at each step.
        """
        if n_new < 0:
            raise ValueError(f"n_new must be >= 0, got {n_new}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        for _ in range(n_new):
            context = idx[:, -self.config.n_ctx :]  # (B, <=n_ctx)
            logits = self(context)[:, -1, :].float() / temperature  # (B, V)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=-1)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)  # (B, T + 1)
        return idx


def shape_for_params(
    n_target: float,
    *,
    n_ctx: int,
    vocab_size: int,
    aspect_ratio: float = 32.0,
    head_dim: int = 32,
    count: str = "non_embedding",
    **config_kwargs: Any,
) -> GPTConfig:
    """The model ladder: a width/depth/heads shape with about ``n_target`` parameters.

    Policy: keep the aspect ratio ``d_model / n_layer`` near ``aspect_ratio`` (Kaplan et
    al. 2020 found loss nearly flat over a wide range of aspect ratios, so one fixed
    ratio is a fair ladder) and the head width fixed at ``head_dim``. Using
    ``N ~ 12 n_layer d_model^2``, the ideal depth is ``(N / (12 a^2))^(1/3)``; for the
    two integer depths around it, ``d_model`` is solved exactly from the chosen count
    and rounded to a multiple of ``head_dim``; the candidate whose count is closest to
    ``n_target`` in log space wins.

    Parameters
    ----------
    n_target : float
        Target parameter count (parameters).
    n_ctx, vocab_size : int
        Context length (tokens) and vocabulary size (tokens).
    aspect_ratio : float, default=32.0
        Target ``d_model / n_layer``.
    head_dim : int, default=32
        Width of each attention head; ``d_model`` is a multiple of it.
    count : {"non_embedding", "total"}, default="non_embedding"
        Which count to match: Kaplan's non-embedding ``N`` or every parameter.
    **config_kwargs
        Passed to :class:`GPTConfig` (``bias``, ``tie_embeddings``, ``init_std``).

    Returns
    -------
    GPTConfig
    """
    if not (isinstance(n_target, int | float) and math.isfinite(n_target) and n_target > 0):
        raise ValueError(f"n_target must be a positive finite number, got {n_target!r}")
    if not aspect_ratio > 0:
        raise ValueError(f"aspect_ratio must be > 0, got {aspect_ratio!r}")
    if not (isinstance(head_dim, int) and head_dim >= 1):
        raise ValueError(f"head_dim must be a positive integer, got {head_dim!r}")
    if count not in ("non_embedding", "total"):
        raise ValueError(f"count must be 'non_embedding' or 'total', got {count!r}")
    if "d_ff" in config_kwargs:
        raise ValueError("shape_for_params uses d_ff = 4 * d_model; do not pass d_ff")

    def make(n_layer: int, d_model: int) -> GPTConfig:
        return GPTConfig(
            d_model=d_model, n_layer=n_layer, n_head=d_model // head_dim, n_ctx=n_ctx,
            vocab_size=vocab_size, **config_kwargs,
        )

    def counted(cfg: GPTConfig) -> int:
        return cfg.n_params_non_embedding() if count == "non_embedding" else cfg.n_params()

    ideal = (n_target / (12.0 * aspect_ratio**2)) ** (1.0 / 3.0)
    best: tuple[float, GPTConfig] | None = None
    for n_layer in sorted({max(1, math.floor(ideal)), max(1, math.ceil(ideal))}):
        # counted(d) is increasing in d: bisect over multiples of head_dim.
        lo, hi = 1, 1
        while counted(make(n_layer, hi * head_dim)) < n_target:
            hi *= 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if counted(make(n_layer, mid * head_dim)) < n_target:
                lo = mid
            else:
                hi = mid
        for m in {lo, hi}:
            cfg = make(n_layer, m * head_dim)
            err = abs(math.log(counted(cfg) / n_target))
            if best is None or err < best[0]:
                best = (err, cfg)
    assert best is not None  # internal invariant: the loop runs at least once
    return best[1]


def sample_text(
    model: GPT,
    tokenizer: Any,
    prompt: str,
    n_new: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """Continue ``prompt`` with ``n_new`` sampled tokens and return the decoded text.

    Parameters
    ----------
    model : GPT
    tokenizer : object with ``encode(str) -> ids`` and ``decode(ids) -> str``
        E.g. :class:`scalingkit.core.data.ByteTokenizer`.
    prompt : str
        Non-empty start text.
    n_new : int
        Tokens to sample.
    temperature, top_k
        As in :meth:`GPT.generate`.
    seed : int, default=0
        Seed of the sampling generator (the same seed gives the same text).
    """
    if not prompt:
        raise ValueError("prompt must be a non-empty string")
    device = next(model.parameters()).device
    ids = torch.as_tensor(tokenizer.encode(prompt).astype("int64"), device=device)[None]
    gen = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    out = model.generate(ids, n_new, temperature=temperature, top_k=top_k, generator=gen)
    model.train(was_training)
    return tokenizer.decode(out[0].tolist())
