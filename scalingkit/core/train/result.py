"""What a training run produced: :class:`TrainResult`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class TrainResult:
    """What a run produced.

    Attributes
    ----------
    status : {"done", "diverged"}
    message : str
        Empty when done; the reason when diverged.
    params_total, params_non_embedding, params_with_head : int
        ``N`` under the three conventions of :class:`scalingkit.core.models.GPTConfig`.
    tokens : int
        Training tokens actually seen, ``D`` (tokens).
    steps : int
        Optimiser steps taken.
    flops_exact : float
        ``D * training_flops_per_token(shape)`` (FLOP).
    flops_6nd : float
        ``6 N D`` with Kaplan's non-embedding ``N`` (FLOP).
    final_loss : float or None
        Validation loss at the end (nats/token); ``None`` if diverged.
    final_bits_per_byte : float or None
        The same in bits/byte.
    best_loss : float or None
        Lowest validation loss on ``curve`` (nats/token): the early-stopping loss.
    best_tokens : int or None
        Training tokens seen at that point (tokens).
    curve : list of dict
        Validation points: ``step``, ``tokens``, ``flops`` (exact), ``loss`` (nats/token).
    train_curve : list of dict
        Training-loss points (mean over the last ``log_every`` steps): ``step``,
        ``tokens``, ``flops``, ``loss``, ``lr``.
    wall_time_s : float
        Total wall time, evaluation and checkpoints included (seconds).
    tokens_per_s : float
        Training throughput, timing only the optimiser steps (tokens/s).
    mfu : float
        ``tokens_per_s * flops per token / peak_flop_per_s``.
    peak_flop_per_s : float
        The peak used for MFU (FLOP/s) and ``peak_source`` where it came from.
    epochs : float
        Passes over the training tokens used (the split, or its first
        ``train_tokens_limit`` tokens).
    device, dtype : str
    torch_threads : int
        Intra-op threads torch used. On CPU a run is bitwise reproducible only
        with the same count (reductions are split differently).
    cpu, cpu_flags, torch_cpu_capability
        The CPU model, its SIMD flags and torch's kernel set
        (:func:`scalingkit.core.hardware.cpu_identity`): bitwise reproduction needs
        the same ones too.
    val_bytes_per_token : float
        Bytes per token on the validation split (1 for the byte tokenizer).
    config : dict
        The :class:`TrainConfig` as a dict.
    """

    status: str
    message: str
    params_total: int
    params_non_embedding: int
    params_with_head: int
    tokens: int
    steps: int
    flops_exact: float
    flops_6nd: float
    final_loss: float | None
    final_bits_per_byte: float | None
    best_loss: float | None = None
    best_tokens: int | None = None
    curve: list[dict] = field(default_factory=list)
    train_curve: list[dict] = field(default_factory=list)
    wall_time_s: float = 0.0
    tokens_per_s: float = 0.0
    mfu: float = 0.0
    peak_flop_per_s: float = 0.0
    peak_source: str = ""
    epochs: float = 0.0
    device: str = ""
    dtype: str = ""
    torch_threads: int = 0
    cpu: str = ""
    cpu_flags: list[str] = field(default_factory=list)
    torch_cpu_capability: str = ""
    val_bytes_per_token: float = 1.0
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainResult:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
