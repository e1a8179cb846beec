"""A minimal GPT block stack used only to cross-check analytic FLOP counts.

Kept deliberately plain (no dropout, no weight tying logic beyond sharing the
table) so that every matmul it performs is one the analytic count itemises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scalingkit.core.flops import TransformerShape


class Block(nn.Module):
    def __init__(self, s: TransformerShape):
        super().__init__()
        self.s = s
        self.ln1 = nn.LayerNorm(s.d_model)
        self.ln2 = nn.LayerNorm(s.d_model)
        self.qkv = nn.Linear(s.d_model, s.d_attn + 2 * s.d_kv, bias=False)
        self.proj = nn.Linear(s.d_attn, s.d_model, bias=False)
        n_in = s.n_ffn_matrices - 1
        self.ff_in = nn.Linear(s.d_model, n_in * s.d_ff, bias=False)
        self.ff_out = nn.Linear(s.d_ff, s.d_model, bias=False)

    def forward(self, x):  # x: (B, T, d_model)
        s = self.s
        B, T, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split([s.d_attn, s.d_kv, s.d_kv], dim=-1)
        q = q.view(B, T, s.n_head, s.d_head).transpose(1, 2)  # (B, H, T, dh)
        k = k.view(B, T, s.n_kv_head, s.d_head).transpose(1, 2)  # (B, Hkv, T, dh)
        v = v.view(B, T, s.n_kv_head, s.d_head).transpose(1, 2)
        rep = s.n_head // s.n_kv_head
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, dh)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, s.d_attn))
        h = self.ff_in(self.ln2(x))
        if s.ffn == "swiglu":
            a, b = h.chunk(2, dim=-1)
            h = F.silu(a) * b
        else:
            h = F.gelu(h)
        return x + self.ff_out(h)


class TinyGPT(nn.Module):
    def __init__(self, s: TransformerShape):
        super().__init__()
        self.tok = nn.Embedding(s.vocab_size, s.d_model)
        self.pos = nn.Embedding(s.n_ctx, s.d_model)
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.n_layer))
        self.ln_f = nn.LayerNorm(s.d_model)
        self.head = nn.Linear(s.d_model, s.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied

    def forward(self, idx):  # idx: (B, T) token ids
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # (B, T, V)
