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

from scalingkit.core.hardware import cpu_identity

__all__ = ["command_line", "provenance"]

_ROOT = Path(__file__).resolve().parents[2]


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
        (:func:`scalingkit.core.hardware.cpu_identity`), ``cores``, ``torch_threads``,
        ``load_average_1min`` (other work sharing the machine slows every run)
        and ``machine``, the hardware and software in one line.
    """
    import numpy as np
    import torch

    from scalingkit import __version__
    from scalingkit.runs.executors import available_cores

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
