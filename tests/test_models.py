"""The GPT model: shapes, causality, parameter counts and the model ladder."""

from __future__ import annotations

import pytest
import torch

from scalingkit.core import flops
from scalingkit.core.models import GPT, GPTConfig, shape_for_params


def tiny(**kw) -> GPTConfig:
    base = dict(d_model=32, n_layer=2, n_head=2, n_ctx=16, vocab_size=64)
    return GPTConfig(**{**base, **kw})


def test_forward_shape_and_loss_at_init_is_near_uniform():
    torch.manual_seed(0)
    model = GPT(tiny())
    idx = torch.randint(0, 64, (4, 16))
    assert model(idx).shape == (4, 16, 64)
    loss = model.loss(idx, torch.randint(0, 64, (4, 16)))
    assert abs(loss.item() - torch.log(torch.tensor(64.0)).item()) < 0.1


def test_attention_is_causal():
    torch.manual_seed(0)
    model = GPT(tiny()).eval()
    a = torch.randint(0, 64, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 64  # change the future only
    with torch.no_grad():
        la, lb = model(a), model(b)
    torch.testing.assert_close(la[:, :10], lb[:, :10])
    assert not torch.allclose(la[:, 10:], lb[:, 10:])


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("d_ff", [None, 48])
def test_param_counts_match_module_and_flops_helpers(tie, bias, d_ff):
    cfg = tiny(tie_embeddings=tie, bias=bias, d_ff=d_ff)
    model = GPT(cfg)
    assert sum(p.numel() for p in model.parameters()) == cfg.n_params()
    pc = flops.param_counts(cfg.shape, tied=tie, bias=bias)
    assert cfg.n_params() == pc.total
    assert cfg.n_params_non_embedding() == pc.non_embedding
    assert cfg.n_params_with_head() == pc.total_with_head
    embed = model.wte.weight.numel() + model.wpe.weight.numel()
    head = 0 if tie else model.head.weight.numel()
    assert cfg.n_params_non_embedding() == cfg.n_params() - embed - head


def test_tied_head_shares_storage_and_untied_does_not():
    m = GPT(tiny())
    assert m.head.weight.data_ptr() == m.wte.weight.data_ptr()
    u = GPT(tiny(tie_embeddings=False))
    assert u.head.weight.data_ptr() != u.wte.weight.data_ptr()


def test_shape_property_feeds_flop_accounting():
    cfg = tiny(d_ff=48)
    s = cfg.shape
    assert (s.d_model, s.n_layer, s.n_ctx, s.vocab_size, s.n_head, s.d_ff) == (32, 2, 16, 64, 2, 48)
    assert flops.training_flops_per_token(s) > 6 * cfg.n_params_non_embedding()


def test_generate_appends_tokens_and_respects_context():
    model = GPT(tiny())
    out = model.generate(torch.zeros(2, 3, dtype=torch.long), 20,
                         generator=torch.Generator().manual_seed(0), top_k=5)
    assert out.shape == (2, 23)
    assert int(out.max()) < 64


def test_init_is_reproducible_with_a_generator():
    a = GPT(tiny(), generator=torch.Generator().manual_seed(3))
    b = GPT(tiny(), generator=torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(d_model=30, n_head=4), "must divide"),
        (dict(n_layer=0), "n_layer"),
        (dict(vocab_size=2.5), "vocab_size"),
        (dict(d_ff=0), "d_ff"),
        (dict(init_std=-1.0), "init_std"),
    ],
)
def test_bad_configs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_sequence_longer_than_context_raises():
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        GPT(tiny())(torch.zeros(1, 17, dtype=torch.long))


def test_config_round_trips_through_dict():
    cfg = tiny(d_ff=40, bias=True)
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown GPTConfig fields"):
        GPTConfig.from_dict({**cfg.to_dict(), "colour": "red"})


@pytest.mark.parametrize("n_target", [1e5, 3e5, 1e6, 3e6, 1e7, 1e8])
@pytest.mark.parametrize("count", ["non_embedding", "total"])
def test_ladder_hits_target_and_keeps_aspect_ratio(n_target, count):
    cfg = shape_for_params(n_target, n_ctx=128, vocab_size=256, count=count)
    got = cfg.n_params_non_embedding() if count == "non_embedding" else cfg.n_params()
    assert 0.75 < got / n_target < 1.33
    assert cfg.d_model % 32 == 0 and cfg.d_model // cfg.n_head == 32
    if n_target >= 1e6:
        assert 16 <= cfg.d_model / cfg.n_layer <= 64


def test_ladder_is_monotone_in_target():
    sizes = [shape_for_params(n, n_ctx=64, vocab_size=256).n_params_non_embedding()
             for n in (1e5, 3e5, 1e6, 3e6, 1e7)]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_target=-5), "n_target"),
        (dict(n_target=float("nan")), "n_target"),
        (dict(n_target=1e6, count="all"), "count"),
        (dict(n_target=1e6, aspect_ratio=0), "aspect_ratio"),
        (dict(n_target=1e6, d_ff=10), "d_ff"),
    ],
)
def test_ladder_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shape_for_params(n_ctx=64, vocab_size=256, **kwargs)
