"""The machine: torch device and precision, peak FLOP/s and MFU, the CPU's identity.

* :func:`resolve_device`, :func:`resolve_dtype`: what a run trains on;
* :data:`ACCELERATOR_PEAK_FLOPS`, :func:`peak_flops`, :func:`measure_peak_flops`,
  :func:`peak_flop_per_s`, :func:`mfu`: the peak FLOP/s MFU divides by (vendor
  tables for GPUs, a timed matmul elsewhere);
* :func:`cpu_identity`, :func:`same_cpu`: what decides the floats a CPU computes;
* :func:`count_flops_torch`: PyTorch's own FLOP counter, the cross-check of
  :mod:`scalingkit.core.flops`.

``"auto"`` means CUDA if available, then Apple's MPS, then the CPU. Asking for a device
that does not exist or is not available raises ``ValueError`` with the reason, instead
of failing later deep inside torch.
"""

from __future__ import annotations

import functools
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scalingkit.core.flops import _positive

__all__ = [
    "resolve_device", "resolve_dtype", "peak_flop_per_s", "ACCELERATOR_PEAK_FLOPS",
    "peak_flops", "measure_peak_flops", "mfu", "cpu_name", "cpu_identity", "same_cpu",
    "SIMD_FLAGS", "TorchFlopCount", "count_flops_torch",
]

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
    return measure_peak_flops(device=device, dtype=dtype, n=1024, repeats=10)


def peak_flop_per_s(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """Peak FLOP/s to divide by for MFU, and where it came from.

    On a GPU the vendor's table (:func:`peak_flops`) is used when it
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
            return peak_flops(name, key), f"vendor:{name}"
        except ValueError:
            pass
    return _measured_peak(str(device), dtype), "measured"


# ---------------------------------------------------------------- hardware peaks

#: Dense (no structured sparsity) peak FLOP/s by accelerator and dtype, from the
#: vendors' specification sheets (see the bibliography: nvidia2020a100,
#: nvidia2022h100, nvidia2024h200, nvidia2023l4, nvidia2022ada). "fp32" is the
#: non-tensor-core rate; "tf32", "bf16", "fp16" and "fp8" are tensor-core rates
#: with fp32 accumulation where the card distinguishes.
ACCELERATOR_PEAK_FLOPS: dict[str, dict[str, float]] = {
    "A100": {"fp64": 9.7e12, "fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12, "fp16": 312e12},
    "H100 SXM": {
        "fp64": 34e12, "fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12,
        "fp16": 989.4e12, "fp8": 1978.9e12,
    },
    "H100 PCIe": {
        "fp64": 26e12, "fp32": 51e12, "tf32": 378e12, "bf16": 756e12,
        "fp16": 756e12, "fp8": 1513e12,
    },
    "H200": {
        "fp64": 34e12, "fp32": 67e12, "tf32": 494.7e12, "bf16": 989.4e12,
        "fp16": 989.4e12, "fp8": 1978.9e12,
    },
    "L4": {"fp32": 30.3e12, "tf32": 60e12, "bf16": 121e12, "fp16": 121e12, "fp8": 242.5e12},
    "RTX 4090": {
        "fp32": 82.6e12, "tf32": 82.6e12, "bf16": 165.2e12, "fp16": 165.2e12, "fp8": 330.3e12,
    },
}

_DTYPE_ALIASES = {
    "float32": "fp32", "torch.float32": "fp32", "fp32": "fp32",
    "float16": "fp16", "torch.float16": "fp16", "half": "fp16", "fp16": "fp16",
    "bfloat16": "bf16", "torch.bfloat16": "bf16", "bf16": "bf16",
    "tf32": "tf32", "float64": "fp64", "torch.float64": "fp64", "fp64": "fp64",
    "fp8": "fp8", "float8": "fp8",
}


def _accelerator_key(name: str) -> str | None:
    """Map a device name such as ``"NVIDIA H100 80GB HBM3"`` to a table key."""
    n = name.upper().replace("-", " ")
    if "H200" in n:
        return "H200"
    if "H100" in n:
        return "H100 PCIe" if "PCIE" in n else "H100 SXM"
    if "A100" in n:
        return "A100"
    if "L4" in n.split() or n.endswith(" L4"):
        return "L4"
    if "4090" in n:
        return "RTX 4090"
    return None


def peak_flops(accelerator: str, dtype: str) -> float:
    """Vendor peak FLOP/s of ``accelerator`` for ``dtype`` (dense, no sparsity).

    Parameters
    ----------
    accelerator : str
        A table key or a device name as ``torch.cuda.get_device_name`` returns
        it, e.g. ``"NVIDIA A100-SXM4-80GB"``.
    dtype : str
        ``"fp32"``, ``"tf32"``, ``"bf16"``, ``"fp16"``, ``"fp8"``, ``"fp64"``
        or a torch dtype name.

    Raises
    ------
    ValueError
        For an accelerator or dtype the table does not list. For CPUs and
        unlisted devices use :func:`measure_peak_flops`.
    """
    key = _accelerator_key(str(accelerator))
    if key is None:
        raise ValueError(
            f"unknown accelerator {accelerator!r}; known: {sorted(ACCELERATOR_PEAK_FLOPS)}. "
            "For CPUs or other devices measure the peak with measure_peak_flops()."
        )
    dt = _DTYPE_ALIASES.get(str(dtype).lower())
    table = ACCELERATOR_PEAK_FLOPS[key]
    if dt not in table:
        raise ValueError(f"no {dtype!r} peak listed for {key}; listed: {sorted(table)}")
    return table[dt]


def measure_peak_flops(
    device: str = "cpu",
    dtype=None,
    n: int = 1024,
    repeats: int = 10,
) -> float:
    """Measure a matmul peak on the spot, in FLOP/s.

    Times ``repeats`` products of two ``n x n`` matrices (``2 n^3`` FLOP each)
    and returns the best rate. This is the fair denominator for MFU on a CPU
    or any device without a published peak: what a large GEMM reaches here.

    Parameters
    ----------
    device : str, default="cpu"
        A torch device string.
    dtype : torch.dtype, default=torch.float32
    n : int, default=1024
        Matrix size.
    repeats : int, default=10
        Timed repetitions after one warm-up product.
    """
    _positive("n", n, integer=True)
    _positive("repeats", repeats, integer=True)
    dtype = dtype or torch.float32
    dev = torch.device(device)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    torch.mm(a, b)
    sync()
    best = math.inf
    for _ in range(int(repeats)):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def mfu(achieved_flop_per_s: float, peak_flop_per_s: float) -> float:
    """Model FLOP utilisation: achieved model FLOP/s over peak FLOP/s.

    "Model" FLOP counts only the work the model needs (no recomputation),
    following Chowdhery et al. (2022). The peak is always an argument: take
    it from :func:`peak_flops` or :func:`measure_peak_flops`.
    """
    _positive("achieved_flop_per_s", achieved_flop_per_s)
    _positive("peak_flop_per_s", peak_flop_per_s)
    return float(achieved_flop_per_s) / float(peak_flop_per_s)


# ------------------------------------------------------------------ the CPU


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` where it exists, else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


#: Instruction-set flags that change which SIMD kernels numpy, OpenBLAS and torch run.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "asimd", "sve")


def _cpu_flags() -> list[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return []
    for line in cpuinfo.read_text().splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return [f for f in SIMD_FLAGS if f in have]
    return []


def cpu_identity() -> dict:
    """What decides the floats a CPU computes: model, SIMD flags, torch's kernel choice.

    Returns
    -------
    dict
        ``cpu`` (model name), ``cpu_flags`` (the :data:`SIMD_FLAGS` this CPU has) and
        ``torch_cpu_capability`` (the kernel set torch dispatches to, which
        ``ATEN_CPU_CAPABILITY`` can lower).
    """
    return {"cpu": cpu_name(), "cpu_flags": _cpu_flags(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def same_cpu(record: dict, threads: int | None = None) -> bool:
    """Whether a result recorded with :func:`cpu_identity` ran on a CPU like this one.

    Bitwise reproduction of a training run is a fair demand only on the same CPU
    model, instruction flags, torch kernel set and thread count; a record without
    these keys (older runs) counts as another CPU.

    Parameters
    ----------
    record : dict
        A run result or provenance dict holding ``cpu``, ``cpu_flags`` and
        ``torch_cpu_capability`` (and ``torch_threads`` when ``threads`` is given).
    threads : int, optional
        The thread count this process trains with.
    """
    here = cpu_identity()
    if any(record.get(k) != v for k, v in here.items()):
        return False
    return threads is None or record.get("torch_threads") == threads


# ------------------------------------------------------------- profiler check


@dataclass(frozen=True)
class TorchFlopCount:
    """FLOP counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Attributes
    ----------
    forward, backward : float
        FLOP of one forward and one backward pass over the given input.
    by_operator : dict
        Forward plus backward FLOP per aten operator name.
    """

    forward: float
    backward: float
    by_operator: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Forward plus backward FLOP."""
        return self.forward + self.backward


def count_flops_torch(module, inputs, loss_fn=None) -> TorchFlopCount:
    """Count the FLOP of one forward and backward pass of a torch module.

    Parameters
    ----------
    module : torch.nn.Module
    inputs : torch.Tensor or tuple of tensors
        Positional arguments of ``module``.
    loss_fn : callable, default=None
        Maps the module's output to a scalar for the backward pass; defaults
        to ``output.float().sum()`` (or the first element of a tuple output).

    Returns
    -------
    TorchFlopCount
        What PyTorch's own profiler formulae count: matrix products and
        attention, not element-wise work.

    Notes
    -----
    PyTorch's counter has formulae for the CUDA attention kernels but (as of
    torch 2.13) none for the fused CPU kernel that
    ``scaled_dot_product_attention`` dispatches to on a CPU, so on a CPU it
    silently counts attention as 0 FLOP. We pass the same formulae for the
    CPU kernel through ``custom_mapping``, so the count is the same on every
    device.
    """
    from torch.utils.flop_counter import FlopCounterMode

    args = inputs if isinstance(inputs, tuple) else (inputs,)
    mapping = _cpu_attention_formulas()

    def default_loss(out):
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float().sum()

    loss_fn = loss_fn or default_loss
    by_op: dict[str, float] = {}
    with FlopCounterMode(display=False, custom_mapping=mapping) as fwd_mode:
        loss = loss_fn(module(*args))
    with FlopCounterMode(display=False, custom_mapping=mapping) as bwd_mode:
        loss.backward()
    for mode in (fwd_mode, bwd_mode):
        for op, count in mode.get_flop_counts().get("Global", {}).items():
            by_op[str(op)] = by_op.get(str(op), 0.0) + float(count)
    return TorchFlopCount(
        forward=float(fwd_mode.get_total_flops()),
        backward=float(bwd_mode.get_total_flops()),
        by_operator=by_op,
    )


def _cpu_attention_formulas() -> dict:
    """FLOP formulae for the fused CPU attention kernel, missing from torch's table."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten
    forward_op = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    backward_op = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    mapping = {}
    if forward_op is not None and forward_op not in fc.flop_registry:

        def forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
            return fc.sdpa_flop_count(query_shape, key_shape, value_shape)

        mapping[forward_op] = forward
    if backward_op is not None and backward_op not in fc.flop_registry:

        def backward(grad_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                     **kwargs):
            return fc.sdpa_backward_flop_count(grad_shape, query_shape, key_shape, value_shape)

        mapping[backward_op] = backward
    return mapping
