"""Slurm, as a sweep uses it: the per-job resource request, partitions and job states.

A sweep on Slurm submits one job per run through ``submitit``
(:class:`scalingkit.runs.submitit_executor.SubmititExecutor`) and then watches the jobs with
``squeue``, which knows pending and running jobs and, for ``MinJobAge``
seconds (default 300), finished ones. It never uses ``sacct``, which needs an
accounting database that small clusters often lack (without one, submitit's
own watcher reports every job as ``UNKNOWN`` forever). Every call to a Slurm
command has a timeout (:data:`COMMAND_TIMEOUT_S`).

What each job asks for (CPUs, memory, time, GPUs, partition) is a
:class:`SlurmResources`, the one place those defaults live; the ``sweep``
command's ``--slurm-*`` flags override its fields.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Seconds any one call to a Slurm command may take before it counts as failed.
COMMAND_TIMEOUT_S = 30.0
#: Job states after which a job does not run again (squeue's ``%T``).
ENDED_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
})
#: Pending reasons (substrings of squeue's ``%r``) that do not resolve on their own:
#: a down or drained node, a down or inactive partition, a request the partition
#: cannot meet, an administrator's hold. Waiting for Priority or Resources is normal.
BLOCKED_REASONS = (
    "ReqNodeNotAvail", "DOWN", "DRAINED", "NodeDown", "PartitionDown", "PartitionInactive",
    "PartitionNodeLimit", "PartitionTimeLimit", "PartitionConfig", "BadConstraints",
    "InvalidAccount", "InvalidQOS", "JobHeldAdmin", "launch failed", "DependencyNeverSatisfied",
)
#: submitit parameters that only :class:`SlurmResources` sets (one place for the request).
RESOURCE_PARAMETERS = frozenset({
    "timeout_min", "cpus_per_task", "mem_gb", "gpus_per_node", "nodes", "tasks_per_node",
    "slurm_partition", "slurm_time", "slurm_cpus_per_task", "slurm_mem", "slurm_gpus_per_node",
    "slurm_signal_delay_s", "slurm_max_num_timeout",
})
#: Default time limit per job (minutes).
DEFAULT_TIME_MIN = 24 * 60
#: Longest warning before the time limit that a job gets to checkpoint (seconds).
MAX_SIGNAL_DELAY_S = 90


@dataclass(frozen=True)
class SlurmResources:
    """What each job of a sweep asks Slurm for (one job trains one run).

    Parameters
    ----------
    partition : str, optional
        Slurm partition; None submits to the cluster's default partition.
    cpus : int, default=1
        CPU cores per job (``--cpus-per-task``), also the job's torch threads.
    mem_gb : float, optional
        Memory per job (GB, ``--mem``); None takes the partition's default.
    time_min : int, default=1440
        Time limit per job (minutes, ``--time``). A run that needs longer is
        checkpointed and requeued (at most ``max_requeues`` times).
    gpus : int, default=0
        GPUs per job (``--gpus-per-node``).
    signal_delay_s : int, optional
        Seconds before the time limit at which Slurm sends ``SIGUSR2``, so that
        the job requeues itself and its run resumes from its last checkpoint.
        Default: ``min(90, 30 * time_min)``. Slurm may send the warning up to
        60 s earlier than asked (``sbatch --signal``), so with time limits of
        a few minutes a job can be warned right after it starts; give jobs at
        least 5 minutes.
    max_requeues : int, default=3
        How many times a job that reached its time limit is requeued before
        its run is recorded as failed.

    Raises
    ------
    ValueError
        For a non-positive time limit, CPU count or memory, a negative GPU
        count, or a warning delay that is not shorter than the time limit.
    """

    partition: str | None = None
    cpus: int = 1
    mem_gb: float | None = None
    time_min: int = DEFAULT_TIME_MIN
    gpus: int = 0
    signal_delay_s: int | None = None
    max_requeues: int = 3

    def __post_init__(self) -> None:
        if not (isinstance(self.time_min, int) and self.time_min >= 1):
            raise ValueError(f"Slurm time limit must be a whole number of minutes >= 1, "
                             f"got {self.time_min!r}")
        if not (isinstance(self.cpus, int) and self.cpus >= 1):
            raise ValueError(f"Slurm cpus per job must be an integer >= 1, got {self.cpus!r}")
        if not (isinstance(self.gpus, int) and self.gpus >= 0):
            raise ValueError(f"Slurm gpus per job must be an integer >= 0, got {self.gpus!r}")
        if self.mem_gb is not None and not (
                isinstance(self.mem_gb, int | float) and math.isfinite(self.mem_gb)
                and self.mem_gb > 0):
            raise ValueError(f"Slurm memory per job must be a positive number of GB, "
                             f"got {self.mem_gb!r}")
        if not (isinstance(self.max_requeues, int) and self.max_requeues >= 0):
            raise ValueError(f"max_requeues must be an integer >= 0, got {self.max_requeues!r}")
        if self.partition is not None and not (isinstance(self.partition, str)
                                               and self.partition.strip()):
            raise ValueError(f"Slurm partition must be a non-empty name, got {self.partition!r}")
        if self.signal_delay_s is not None and not (
                isinstance(self.signal_delay_s, int)
                and 0 < self.signal_delay_s < 60 * self.time_min):
            raise ValueError(f"signal_delay_s must be a whole number of seconds in (0, "
                             f"{60 * self.time_min}) for a {self.time_min}-minute time limit, "
                             f"got {self.signal_delay_s!r}")

    @property
    def warning_s(self) -> int:
        """Seconds before the time limit at which the job is told to checkpoint."""
        if self.signal_delay_s is not None:
            return self.signal_delay_s
        return min(MAX_SIGNAL_DELAY_S, 30 * self.time_min)

    def submitit_parameters(self) -> dict[str, Any]:
        """The request as ``submitit.AutoExecutor.update_parameters`` keywords.

        Jobs are marked requeueable (``--requeue``), so that a job preempted,
        requeued by an administrator or on a failed node starts again, and
        resumes its run, on clusters whose default is not to requeue.
        """
        params: dict[str, Any] = {
            "timeout_min": self.time_min, "cpus_per_task": self.cpus, "nodes": 1,
            "tasks_per_node": 1, "slurm_signal_delay_s": self.warning_s,
            "slurm_additional_parameters": {"requeue": True},
        }
        if self.partition is not None:
            params["slurm_partition"] = self.partition
        if self.mem_gb is not None:
            params["mem_gb"] = self.mem_gb
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        return params


@dataclass(frozen=True)
class JobState:
    """One job as squeue reports it.

    Attributes
    ----------
    state : str
        squeue's ``%T`` (``PENDING``, ``RUNNING``, ``CANCELLED``...).
    reason : str
        squeue's ``%r``: why a job is pending, or why it ended.
    """

    state: str
    reason: str

    @property
    def ended(self) -> bool:
        """True once the job will not run again."""
        return self.state in ENDED_STATES

    @property
    def blocked(self) -> bool:
        """True for a pending job that waits on something an administrator must fix."""
        return self.state == "PENDING" and any(r in self.reason for r in BLOCKED_REASONS)

    def describe(self) -> str:
        """``STATE`` or ``STATE (reason)``."""
        if not self.reason or self.reason == "None":
            return self.state
        return f"{self.state} ({self.reason})"


class SlurmError(RuntimeError):
    """A Slurm command failed or did not answer within :data:`COMMAND_TIMEOUT_S`."""


def have_slurm() -> bool:
    """True when the Slurm commands a sweep uses are on ``PATH``."""
    return all(shutil.which(c) for c in ("sbatch", "squeue", "sinfo", "scancel"))


def _call(args: list[str], timeout_s: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise SlurmError(f"{args[0]} not found; is Slurm installed on this machine?") from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"{args[0]} did not answer within {timeout_s:g} s") from exc


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def partitions() -> list[str]:
    """Names of the cluster's partitions (``sinfo``), sorted.

    Raises
    ------
    SlurmError
        If ``sinfo`` fails or does not answer.
    """
    proc = _call(["sinfo", "--noheader", "--format=%R"])
    if proc.returncode != 0:
        raise SlurmError(f"sinfo failed: {_last_line(proc.stderr)}")
    return sorted({ln.strip() for ln in proc.stdout.splitlines() if ln.strip()})


def check_partition(name: str) -> None:
    """Raise ``ValueError`` unless the cluster has a partition called ``name``."""
    try:
        known = partitions()
    except SlurmError as exc:
        raise ValueError(f"cannot check Slurm partition {name!r}: {exc}") from exc
    if name not in known:
        raise ValueError(f"Slurm partition {name!r} does not exist; this cluster has: "
                         f"{', '.join(known) or 'none'}")


def job_states(job_ids: Iterable[str]) -> dict[str, JobState]:
    """The state of each job Slurm still knows, by job id (``123`` or ``123_4``).

    Jobs that Slurm has forgotten (finished more than ``MinJobAge`` seconds
    ago) are missing from the answer.

    Raises
    ------
    SlurmError
        If ``squeue`` fails or does not answer.
    """
    ids = sorted({str(j).split("_")[0] for j in job_ids})
    if not ids:
        return {}
    proc = _call(["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(ids)}",
                  "--format=%i|%T|%r"])
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:  # every id has been forgotten
            return {}
        raise SlurmError(f"squeue failed: {_last_line(proc.stderr)}")
    out = {}
    for line in proc.stdout.splitlines():
        job_id, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if job_id:
            out[job_id] = JobState(state.strip(), reason.strip())
    return out


def cancel(job_ids: Iterable[str]) -> None:
    """Cancel jobs (``scancel``); jobs that already ended are ignored."""
    ids = sorted(set(job_ids))
    if ids:
        _call(["scancel", "--quiet", *ids])
