"""Back-of-envelope memory: Adam's training state and the KV cache."""

from __future__ import annotations

import pytest

from scalingkit.core.flops import TransformerShape
from scalingkit.core.memory import ADAM_MIXED_BYTES, kv_cache_bytes, training_state_bytes


def test_adam_mixed_precision_keeps_16_bytes_per_parameter():
    state = training_state_bytes(1e9)
    assert sum(ADAM_MIXED_BYTES.values()) == 16
    assert state["total"] == pytest.approx(16e9)
    assert training_state_bytes(10, per_param={"w": 4})["total"] == 40
    with pytest.raises(ValueError, match="n_params"):
        training_state_bytes(0)


def test_kv_cache_counts_keys_and_values_of_the_kv_heads_only():
    mha = TransformerShape(d_model=64, n_layer=2, n_ctx=16, vocab_size=10, n_head=4)
    gqa = TransformerShape(d_model=64, n_layer=2, n_ctx=16, vocab_size=10, n_head=4,
                           n_kv_head=1)
    assert kv_cache_bytes(mha, context=16) == 2 * 2 * 64 * 16 * 2
    assert kv_cache_bytes(gqa, context=16, batch=3) == 3 * kv_cache_bytes(mha, 16) / 4
    with pytest.raises(ValueError, match="context"):
        kv_cache_bytes(mha, context=0)
