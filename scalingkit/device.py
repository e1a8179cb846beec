"""Pick the torch device and compute precision, and know its peak FLOP/s.

``"auto"`` means CUDA if available, then Apple's MPS, then the CPU. Asking for a device
that does not exist or is not available raises ``ValueError`` with the reason, instead
of failing later deep inside torch.
"""

from __future__ import annotations

import functools

import torch

from scalingkit import flops

__all__ = ["resolve_device", "resolve_dtype", "peak_flop_per_s"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` into a device.

    Raises
    ------
    ValueError
        For an unknown device string or one that this machine cannot use.
    """
    if not isinstance(name, str):
        raise ValueError(f"device must be a string, got {name!r}")
    mps_ok = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"unknown device {name!r}; use 'auto', 'cpu', 'cuda', 'cuda:<index>' or 'mps'"
        ) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} requested but CUDA is not available "
                "(this torch build or machine has no usable GPU); use 'cpu' or 'auto'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {name!r} requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
        return dev
    if dev.type == "mps":
        if not mps_ok:
            raise ValueError(f"device {name!r} requested but MPS is not available here")
        return dev
    raise ValueError(f"unsupported device type {dev.type!r}; use 'auto', 'cpu', 'cuda' or 'mps'")


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Compute precision: ``"auto"`` is bfloat16 autocast on CUDA, float32 elsewhere.

    Parameters
    ----------
    name : {"auto", "float32", "bfloat16", "float16"}
    device : torch.device
    """
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name not in _DTYPES:
        raise ValueError(f"unknown dtype {name!r}; use 'auto', {', '.join(map(repr, _DTYPES))}")
    return _DTYPES[name]


@functools.cache
def _measured_peak(device: str, dtype: torch.dtype) -> float:
    return flops.measure_peak_flops(device=device, dtype=dtype, n=1024, repeats=10)


def peak_flop_per_s(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """Peak FLOP/s to divide by for MFU, and where it came from.

    On a GPU the vendor's table (:func:`scalingkit.flops.peak_flops`) is used when it
    lists the card; otherwise (CPUs, unlisted GPUs) a 1024 x 1024 matmul is timed once
    per process and the result cached.

    Returns
    -------
    peak : float
        FLOP/s.
    source : str
        ``"vendor:<name>"`` or ``"measured"``.
    """
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        key = "bf16" if dtype == torch.bfloat16 else "fp16" if dtype == torch.float16 else "fp32"
        if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
            key = "tf32"
        try:
            return flops.peak_flops(name, key), f"vendor:{name}"
        except ValueError:
            pass
    return _measured_peak(str(device), dtype), "measured"
