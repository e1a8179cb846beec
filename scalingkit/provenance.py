"""Where a committed result came from: command, package version, git commit, machine.

Every command that writes a result for ``book/data`` records this dictionary
beside it, so a reader can rerun the exact command on a comparable machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["command_line", "cpu_identity", "cpu_name", "provenance", "same_cpu"]

_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=_ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def command_line() -> str:
    """This process's ``python -m scalingkit ...`` command line."""
    return "python -m scalingkit " + " ".join(sys.argv[1:])


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
    import torch

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


def provenance(command: str | None = None) -> dict:
    """Command, package version, git commit and machine of this process.

    Parameters
    ----------
    command : str, default=None
        The command that produced the result; defaults to this process's
        ``python -m scalingkit ...`` command line.

    Returns
    -------
    dict
        ``command``, ``version``, ``git_commit`` (None outside a git checkout),
        ``git_dirty`` (uncommitted changes to tracked files), ``python``,
        ``torch``, ``platform``, ``cpu``, ``cpu_flags``, ``torch_cpu_capability``
        (:func:`cpu_identity`), ``cores``, ``torch_threads``,
        ``load_average_1min`` (other work sharing the machine slows every run)
        and ``machine``, the hardware and software in one line.
    """
    import numpy as np
    import torch

    from scalingkit import __version__
    from scalingkit.executors import available_cores

    status = _git("status", "--porcelain", "--untracked-files=no")
    identity = cpu_identity()
    cpu, cores = identity["cpu"], available_cores()
    return {
        **identity,
        "command": command if command is not None else command_line(),
        "version": __version__, "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": platform.python_version(), "torch": torch.__version__,
        "platform": platform.platform(), "cpu": cpu, "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "machine": (f"{cpu}, {cores} cores, {platform.system()} {platform.release()}, "
                    f"Python {platform.python_version()}, numpy {np.__version__}, "
                    f"torch {torch.__version__}"),
    }
