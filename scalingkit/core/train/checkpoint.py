"""Checkpoints of a training run: exact-resume payloads, RNG states and the saved model.

A checkpoint holds the model, the optimiser moments, the sampler's and torch's RNG
states and the run's curves, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from scalingkit.core.hardware import resolve_device
from scalingkit.core.models import GPT, GPTConfig

#: Version of the checkpoint payload written by :func:`save_checkpoint`.
CKPT_FORMAT = 1


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_model(run_dir: str | Path, device: str = "cpu") -> GPT:
    """The trained model that :func:`train` saved in ``run_dir/model.pt``, in eval mode."""
    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise ValueError(f"{path} does not exist; train with run_dir and save_model=True")
    payload = torch.load(path, map_location=resolve_device(device), weights_only=True)
    model = GPT(GPTConfig.from_dict(json.loads(payload["model_config"])))
    model.load_state_dict(payload["model"])
    return model.to(resolve_device(device)).eval()
