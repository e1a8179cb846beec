"""A stand-in trainer for executor and store tests (no torch, deterministic).

It follows the trainer contract used by :mod:`scalingkit.runs.executors`:
``train(config, *, run_dir, progress) -> dict``. It "trains" for
``config["steps"]`` steps of ``config.get("sleep", 0)`` seconds each, writes a
checkpoint after every step, resumes from it, and appends every step it
executes to ``run_dir/steps.log`` so tests can check that nothing ran twice.
A learning rate above 1 "diverges"; ``config["fail"]`` raises.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path


def train(config: dict, *, run_dir: Path | None = None, progress: bool = False) -> dict:
    if config.get("fail"):
        raise RuntimeError("simulated crash")
    run_dir = Path(run_dir) if run_dir is not None else None
    ckpt = run_dir / "checkpoint.pt" if run_dir else None
    step, loss = 0, 5.0
    if ckpt is not None and ckpt.exists():
        state = json.loads(ckpt.read_text())
        step, loss = state["step"], state["loss"]
    curve = []
    while step < config["steps"]:
        time.sleep(config.get("sleep", 0.0))
        step += 1
        loss = loss * 0.9 if config["lr"] <= 1 else math.inf
        if run_dir is not None:
            with open(run_dir / "steps.log", "a") as fh:
                fh.write(f"{step}\n")
            tmp = ckpt.with_suffix(".tmp")
            tmp.write_text(json.dumps({"step": step, "loss": loss}))
            os.replace(tmp, ckpt)
        curve.append({"step": step, "loss": loss})
        if not math.isfinite(loss):
            return {"status": "diverged", "message": f"loss is {loss} at step {step}",
                    "final_loss": loss, "curve": curve, "pid": os.getpid()}
    return {"status": "done", "message": "", "final_loss": loss, "curve": curve,
            "pid": os.getpid(), "threads": os.environ.get("OMP_NUM_THREADS")}
