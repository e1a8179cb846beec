"""Memory of training and serving a transformer: optimizer state and the KV cache.

Back-of-envelope counts, the companions of :mod:`scalingkit.core.flops`. Training
with Adam in mixed precision keeps, per parameter, the weights and gradients in a
16-bit format, an fp32 master copy of the weights and Adam's two fp32 moments:
``2 + 2 + 4 + 4 + 4 = 16`` bytes. Activations come on top and depend on the batch,
the context and what is recomputed, so they are left out. Serving keeps the
weights and, per token of context, the keys and values of every layer.

Units: bytes (``GB`` below means 1e9 bytes), parameters, tokens.
"""

from __future__ import annotations

from scalingkit.core.flops import TransformerShape

__all__ = ["ADAM_MIXED_BYTES", "training_state_bytes", "kv_cache_bytes"]

#: Bytes per parameter of Adam in mixed precision: 16-bit weights and gradients,
#: fp32 master weights, fp32 first and second moments.
ADAM_MIXED_BYTES = {"weights": 2, "gradients": 2, "master weights": 4,
                    "first moment": 4, "second moment": 4}


def training_state_bytes(n_params: float, *, per_param: dict[str, float] | None = None
                         ) -> dict[str, float]:
    """Bytes of the training state of ``n_params`` parameters, item by item.

    Parameters
    ----------
    n_params : float
        Parameters (every trainable one).
    per_param : dict, optional
        Bytes per parameter of each item; default :data:`ADAM_MIXED_BYTES`.

    Returns
    -------
    dict
        Bytes of each item and ``"total"``.
    """
    if not n_params > 0:
        raise ValueError(f"n_params must be positive, got {n_params!r}")
    table = ADAM_MIXED_BYTES if per_param is None else per_param
    out = {name: float(n_params) * b for name, b in table.items()}
    out["total"] = sum(out.values())
    return out


def kv_cache_bytes(shape: TransformerShape, context: int, batch: int = 1,
                   bytes_per_value: float = 2) -> float:
    """Bytes of the key/value cache for ``batch`` sequences of ``context`` tokens.

    Each layer keeps one key and one value vector of ``n_kv_head * d_head`` numbers
    per token (fewer than ``d_model`` with grouped-query attention).

    Parameters
    ----------
    shape : TransformerShape
    context : int
        Tokens held per sequence.
    batch : int, default=1
        Sequences served at once.
    bytes_per_value : float, default=2
        2 for a 16-bit cache.
    """
    if context < 1 or batch < 1 or not bytes_per_value > 0:
        raise ValueError(f"context and batch must be >= 1 and bytes_per_value > 0, got "
                         f"{context!r}, {batch!r}, {bytes_per_value!r}")
    kv_width = shape.n_kv_head * shape.d_head
    return 2.0 * shape.n_layer * kv_width * context * batch * bytes_per_value
