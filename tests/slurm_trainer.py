"""The real trainer, instrumented for the Slurm tests (imported inside Slurm jobs).

:func:`train` trains exactly as :func:`scalingkit.runs.executors.train_from_dict`
does (same config, same numbers) and also

- appends ``start <step> <job>`` to ``run_dir/sessions.log`` when a session
  begins (``<step>`` is the checkpoint it resumes from, 0 for a fresh run)
  and ``end <status> <job>`` when it ends, so a test sees every session of a
  run and where it resumed;
- pauses while a file ``run_dir/hold`` exists, once a checkpoint has been
  written, after writing the job id to ``run_dir/holding``: a test can then
  cancel or requeue the job at a known point, mid-run, on a slow machine too.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

#: Longest pause on a hold file (seconds), so a forgotten file cannot block a job.
HOLD_LIMIT_S = 300.0


def job_id() -> str:
    """This Slurm job's id as squeue shows it (``123`` or ``123_4``), or ``local``."""
    env = os.environ
    if "SLURM_ARRAY_JOB_ID" in env and "SLURM_ARRAY_TASK_ID" in env:
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID", "local")


def checkpoint_step(run_dir: Path) -> int:
    """The optimizer step stored in ``run_dir/checkpoint.pt`` (0 without one)."""
    import torch

    path = Path(run_dir) / "checkpoint.pt"
    if not path.exists():
        return 0
    return int(json.loads(torch.load(path, weights_only=True)["state"])["step"])


def _log(run_dir: Path, line: str) -> None:
    with open(run_dir / "sessions.log", "a") as fh:
        fh.write(line + "\n")


def sessions(run_dir: Path) -> list[list[str]]:
    """The lines of ``run_dir/sessions.log``, split into words."""
    path = Path(run_dir) / "sessions.log"
    return [ln.split() for ln in path.read_text().splitlines()] if path.exists() else []


def train(config: dict, *, run_dir: Path | None = None, progress: bool = False) -> dict:
    from scalingkit.core.train import TrainConfig
    from scalingkit.core.train import train as train_model

    run_dir = Path(run_dir)
    job = job_id()
    _log(run_dir, f"start {checkpoint_step(run_dir)} {job}")

    def pause(_point: dict) -> None:
        hold = run_dir / "hold"
        if not (hold.exists() and (run_dir / "checkpoint.pt").exists()):
            return
        (run_dir / "holding").write_text(job)
        deadline = time.monotonic() + HOLD_LIMIT_S
        while hold.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    result = train_model(TrainConfig.from_dict(config), run_dir=run_dir, progress=progress,
                         callback=pause).to_dict()
    _log(run_dir, f"end {result['status']} {job}")
    return result
