"""The monotone model ladder: one shape per width, depth following width.

A sweep compares models of different sizes, so the sizes should differ in size
only. The ladder here fixes the head width and the aspect ratio and lets every
other dimension follow the width:

* ``d_model = head_dim * k`` for ``k = min_heads, min_heads + 1, ...`` (one more
  head per rung), so the head width never changes;
* ``n_layer = max(min_layers, round(d_model / aspect_ratio))``, so the aspect
  ratio ``d_model / n_layer`` is ``aspect_ratio`` (to rounding) once the model is
  wide enough, and the smallest models keep ``min_layers`` layers;
* ``d_ff = 4 d_model``, ``n_head = k``;
* weights drawn with standard deviation ``init_std``, by default ``1 / sqrt(d_model)``
  (the width-scaled init). GPT-2's fixed 0.02 suits widths near 768; at widths of
  16 to 200 it starts attention so close to uniform that byte-level models sit on a
  plateau near the bigram loss for hundreds of steps (the hyperparameters chapter
  measures it).

Width and depth never decrease from one rung to the next, so the parameter count
grows monotonically and a sweep's profile does not zig-zag between one and two
layers (as :func:`scalingkit.core.models.shape_for_params`, which picks whichever
depth lands closest to a target, can).

Units: parameter counts are parameters, ``n_ctx`` tokens.
"""

from __future__ import annotations

import math
from typing import Any

from scalingkit.core.models import GPTConfig

__all__ = ["ladder", "ladder_rung", "nearest_rung"]


def ladder_rung(
    k: int, *, n_ctx: int, vocab_size: int, head_dim: int = 16, aspect_ratio: float = 64.0,
    min_layers: int = 2, init_std: float | None = None, **config_kwargs: Any,
) -> GPTConfig:
    """Rung ``k`` of the ladder: ``k`` heads of ``head_dim`` features.

    Parameters
    ----------
    k : int
        Number of heads (>= 1); ``d_model = k * head_dim``.
    n_ctx, vocab_size : int
        Context length (tokens) and vocabulary size (tokens).
    head_dim : int, default=16
        Features per head.
    aspect_ratio : float, default=64.0
        Target ``d_model / n_layer``.
    min_layers : int, default=2
        Fewest layers of any rung.
    init_std : float, optional
        Standard deviation of the initial weights; default ``1 / sqrt(d_model)``.
    **config_kwargs
        Passed to :class:`GPTConfig` (``bias``, ``tie_embeddings``, ``init_std``).
    """
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"rung index k must be an integer >= 1, got {k!r}")
    if not (isinstance(head_dim, int) and head_dim >= 1):
        raise ValueError(f"head_dim must be a positive integer, got {head_dim!r}")
    if not (isinstance(min_layers, int) and min_layers >= 1):
        raise ValueError(f"min_layers must be a positive integer, got {min_layers!r}")
    if not (math.isfinite(aspect_ratio) and aspect_ratio > 0):
        raise ValueError(f"aspect_ratio must be a positive number, got {aspect_ratio!r}")
    d_model = k * head_dim
    n_layer = max(min_layers, math.floor(d_model / aspect_ratio + 0.5))
    std = d_model**-0.5 if init_std is None else init_std
    return GPTConfig(d_model=d_model, n_layer=n_layer, n_head=k, n_ctx=n_ctx,
                     vocab_size=vocab_size, init_std=std, **config_kwargs)


def ladder(max_params: float, **rung_kwargs: Any) -> list[GPTConfig]:
    """Every rung with at most ``max_params`` parameters (total count), smallest first.

    ``rung_kwargs`` are those of :func:`ladder_rung` other than ``k``.
    """
    if not max_params > 0:
        raise ValueError(f"max_params must be > 0, got {max_params!r}")
    rungs: list[GPTConfig] = []
    k = 1
    while (cfg := ladder_rung(k, **rung_kwargs)).n_params() <= max_params:
        rungs.append(cfg)
        k += 1
    return rungs


def nearest_rung(n_target: float, **rung_kwargs: Any) -> int:
    """The rung index ``k`` whose total parameter count is closest to ``n_target`` in log.

    Parameters
    ----------
    n_target : float
        Target parameter count (parameters, total).
    **rung_kwargs
        As for :func:`ladder_rung` (without ``k``).
    """
    if not (isinstance(n_target, int | float) and math.isfinite(n_target) and n_target > 0):
        raise ValueError(f"n_target must be a positive finite number, got {n_target!r}")
    k = 1
    while ladder_rung(k + 1, **rung_kwargs).n_params() <= n_target:
        k += 1
    below = ladder_rung(k, **rung_kwargs).n_params()
    above = ladder_rung(k + 1, **rung_kwargs).n_params()
    return k if abs(math.log(n_target / below)) <= abs(math.log(above / n_target)) else k + 1
