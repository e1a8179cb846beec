"""The Slurm executor: one ``submitit`` job per run, watched with ``squeue``.

:class:`SubmititExecutor` shares the interface and the unit of work
(:func:`~scalingkit.runs.executors.execute_run`) of the local executors in
:mod:`scalingkit.runs.executors`; what Slurm itself is asked and answers (resources,
job states) lives in :mod:`scalingkit.runs.slurm`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.std import tqdm  # text bar; tqdm.auto warns in kernels without ipywidgets

from scalingkit.runs import slurm
from scalingkit.runs.executors import (
    DEFAULT_TRAINER,
    Trainer,
    execute_run,
)
from scalingkit.runs.slurm import SlurmResources
from scalingkit.runs.store import RunStore


class SubmititExecutor:
    """Submit one job per pending run through ``submitit`` (Slurm on a cluster).

    On Slurm the jobs are watched with ``squeue`` (:mod:`scalingkit.runs.slurm`), and
    every wait has a limit, so a sweep never hangs on a job that cannot run:

    - a job that ends without a result (cancelled, failed, killed on a node
      that went down, out of memory, out of requeues) makes its run
      ``failed`` with the job id, Slurm's state and the job's log file;
    - a job that stays pending for ``pending_limit_s`` for a reason that does
      not resolve on its own (a down or drained node, a down partition, an
      administrator's hold) is cancelled and its run recorded ``failed`` with
      that reason;
    - after ``wait_limit_s`` the jobs still queued or running are cancelled and
      their runs recorded ``failed``.

    A job that reaches its time limit is requeued by submitit's checkpointing
    (``_SubmititTask.checkpoint``), and a job requeued by Slurm (``scontrol
    requeue``, preemption, a failed node) starts again; either way the run
    resumes from its last checkpoint. A ``failed`` run keeps its checkpoint,
    so running the sweep again resumes it too.

    Parameters
    ----------
    folder : str or PathLike
        Where submitit keeps job scripts and logs (on a file system the
        compute nodes share).
    trainer : str or callable, default=DEFAULT_TRAINER
        See :func:`execute_run`.
    resources : SlurmResources, optional
        What each job asks for; default ``SlurmResources()`` (1 CPU, 24 h,
        the default partition). Its ``cpus`` are also the job's torch threads.
    cluster : {"slurm", "local", "debug"}, optional
        ``None`` lets submitit pick (Slurm where ``sbatch`` exists, else
        local); ``"local"`` runs the same jobs as local subprocesses.
    progress : bool, default=True
        Show a progress bar over finished jobs.
    pending_limit_s : float, default=3600
        Longest time a job may wait for a blocked node or partition (seconds).
    wait_limit_s : float, default=604800
        Longest time to wait for all jobs (seconds; 7 days).
    poll_s : float, default=30
        Longest interval between two ``squeue`` calls (seconds); the first
        calls come every few seconds.
    **parameters
        Further ``AutoExecutor.update_parameters`` keywords that are not part
        of the resource request (for example ``slurm_account="proj"``,
        ``slurm_qos="high"``, ``slurm_constraint="a100"``).

    Raises
    ------
    ValueError
        If ``parameters`` repeats a field of the resource request, or a limit
        is not positive.
    """

    def __init__(
        self, folder: str | os.PathLike, trainer: str | Trainer = DEFAULT_TRAINER, *,
        resources: SlurmResources | None = None, cluster: str | None = None,
        progress: bool = True, pending_limit_s: float = 3600.0,
        wait_limit_s: float = 7 * 86400.0, poll_s: float = 30.0, **parameters: Any,
    ) -> None:
        resources = SlurmResources() if resources is None else resources
        if not isinstance(resources, SlurmResources):
            raise ValueError(f"resources must be a SlurmResources, got {type(resources).__name__}")
        owned = sorted(set(parameters) & slurm.RESOURCE_PARAMETERS)
        if owned:
            raise ValueError(f"set {', '.join(owned)} through SlurmResources "
                             "(partition, cpus, mem_gb, time_min, gpus), not as parameters")
        for name, value in (("pending_limit_s", pending_limit_s),
                            ("wait_limit_s", wait_limit_s), ("poll_s", poll_s)):
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self.folder = Path(folder)
        self.trainer = trainer
        self.resources = resources
        self.cluster = cluster
        self.progress = progress
        self.pending_limit_s = float(pending_limit_s)
        self.wait_limit_s = float(wait_limit_s)
        self.poll_s = float(poll_s)
        self.parameters = parameters

    def _on_slurm(self) -> bool:
        return self.cluster == "slurm" or (self.cluster is None and slurm.have_slurm())

    def check(self, store_root: str | os.PathLike) -> None:
        """Refuse, before anything is submitted, what the jobs could not do.

        Checks that Slurm answers (``sinfo``), that the requested partition
        exists, and that the run store and the job folder are writable. Jobs
        run as the submitting user, so a folder this process can write is one
        the jobs can write, provided it is on a file system the compute nodes
        share (not ``/tmp`` on a multi-node cluster).

        Raises
        ------
        ValueError
            Naming the partition or folder and the problem.
        """
        if self._on_slurm():
            if not slurm.have_slurm():
                raise ValueError("the slurm executor needs Slurm (sbatch, squeue, sinfo and "
                                 "scancel on PATH); scripts/slurm-local.sh starts a one-node "
                                 "test cluster")
            if self.resources.partition is not None:
                slurm.check_partition(self.resources.partition)
            else:
                try:
                    slurm.partitions()
                except slurm.SlurmError as exc:
                    raise ValueError(f"cannot reach Slurm: {exc}") from exc
        RunStore(store_root).ensure_writable()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".write-probe-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"job folder {str(self.folder)!r} is not writable: "
                             f"{exc.strerror or exc}") from exc

    def run(self, store: RunStore, run_ids: Sequence[str]) -> dict[str, str]:
        """Submit ``run_ids`` as one job array, wait, return run id -> final status.

        ``running`` means another process held the run (see
        :func:`execute_run`).
        """
        try:
            import submitit
        except ImportError as exc:  # pragma: no cover - submitit is pinned
            raise ValueError("the slurm executor needs submitit: pip install submitit") from exc
        if not run_ids:
            return {}
        self.check(store.root)
        on_slurm = self._on_slurm()
        executor = submitit.AutoExecutor(
            folder=self.folder, cluster="slurm" if on_slurm else (self.cluster or "local"),
            slurm_max_num_timeout=self.resources.max_requeues)
        params = {**self.resources.submitit_parameters(), **self.parameters}
        params["slurm_additional_parameters"] = {  # keep --requeue beside the caller's extras
            **self.parameters.get("slurm_additional_parameters", {}),
            **self.resources.submitit_parameters()["slurm_additional_parameters"]}
        if not on_slurm:  # the local backend knows no cpus/nodes/partition options
            params = {k: v for k, v in params.items() if k == "timeout_min"}
        executor.update_parameters(name="scalingkit-sweep", **params)
        task = _SubmititTask(str(store.root.resolve()), self.trainer, self.resources.cpus,
                             since=time.time())
        try:
            with executor.batch():
                jobs = [executor.submit(task, run_id) for run_id in run_ids]
        except Exception as exc:  # sbatch refused the jobs: say so in every run's record
            message = f"Slurm refused the jobs: {_last_message(exc)}"
            for run_id in run_ids:
                store.update(run_id, "failed", error=message)
            return dict.fromkeys(run_ids, "failed")
        if not on_slurm:
            return self._collect(store, dict(zip(run_ids, jobs, strict=True)))
        return self._watch(store, dict(zip(run_ids, jobs, strict=True)))

    def _collect(self, store: RunStore, jobs: dict[str, Any]) -> dict[str, str]:
        """Wait for local jobs in order (they cannot be stuck in a queue)."""
        out = {}
        for run_id, job in tqdm(list(jobs.items()), desc="jobs", unit="job",
                                disable=not self.progress):
            out[run_id] = self._outcome(store, run_id, job)
        return out

    def _outcome(self, store: RunStore, run_id: str, job: Any) -> str:
        """The status of a run whose job left a result (or raised)."""
        try:
            return job.result()
        except Exception as exc:  # a job killed by the scheduler or out of requeues
            return _job_lost(store, run_id, job, _last_message(exc))

    def _watch(self, store: RunStore, jobs: dict[str, Any]) -> dict[str, str]:
        """Wait for Slurm jobs with :func:`scalingkit.runs.slurm.job_states`, within the limits."""
        out: dict[str, str] = {}
        left = dict(jobs)
        start = next_poll = time.monotonic()
        since: dict[str, float] = {}  # run id (or "squeue") -> when it was first seen stuck
        bar = tqdm(total=len(jobs), desc="jobs", unit="job", disable=not self.progress)

        def finish(run_id: str, why: str | None = None) -> None:
            job = left.pop(run_id)
            out[run_id] = (self._outcome(store, run_id, job) if why is None
                           else _job_lost(store, run_id, job, why))
            bar.update()

        while left:
            for run_id in [r for r, job in left.items() if job.paths.result_pickle.exists()]:
                finish(run_id)
            now = time.monotonic()
            if left and now >= next_poll:
                next_poll = now + min(self.poll_s, 2.0 + (now - start) / 10)
                for run_id, why in self._stuck(left, since, now).items():
                    finish(run_id, why)
            if left and now - start >= self.wait_limit_s:
                for run_id, why in self._give_up(left).items():
                    finish(run_id, why)
            if left:
                time.sleep(1.0)
        bar.close()
        return {run_id: out[run_id] for run_id in jobs}

    def _stuck(self, left: dict[str, Any], since: dict[str, float],
               now: float) -> dict[str, str]:
        """Runs whose jobs will not give a result, each with the reason (one ``squeue``).

        A job that ended (or that Slurm forgot) without a result file for
        :data:`_RESULT_GRACE_S`, or that has been blocked for
        ``pending_limit_s`` (it is cancelled); all jobs if ``squeue`` has failed
        for ``pending_limit_s``. ``since`` keeps when each was first seen so.
        """
        try:
            states = slurm.job_states(job.job_id for job in left.values())
        except slurm.SlurmError as exc:
            silent = now - since.setdefault("squeue", now)
            if silent < self.pending_limit_s:
                return {}
            return dict.fromkeys(left, f"is in an unknown state: Slurm did not answer "
                                       f"for {silent:.0f} s ({exc})")
        since.pop("squeue", None)
        out = {}
        for run_id, job in left.items():
            state = states.get(job.job_id)
            ended = state is None or state.ended
            if not (ended or state.blocked):
                since.pop(run_id, None)
                continue
            waited = now - since.setdefault(run_id, now)
            if ended and waited >= _RESULT_GRACE_S:
                why = f"ended {state.describe()}" if state is not None else "left the queue"
                out[run_id] = f"{why} without a result"
            elif not ended and waited >= self.pending_limit_s:
                slurm.cancel([job.job_id])
                out[run_id] = (f"could not start for {waited:.0f} s (limit "
                               f"{self.pending_limit_s:g} s): {state.describe()}; cancelled")
        return out

    def _give_up(self, left: dict[str, Any]) -> dict[str, str]:
        """Cancel the jobs still queued or running after ``wait_limit_s``; say why for each."""
        slurm.cancel([job.job_id for job in left.values()])
        states: dict[str, slurm.JobState] = {}
        with contextlib.suppress(slurm.SlurmError):
            states = slurm.job_states(job.job_id for job in left.values())
        out = {}
        for run_id, job in left.items():
            state = states.get(job.job_id)
            out[run_id] = (f"still {state.describe() if state else 'queued'} after waiting "
                           f"{self.wait_limit_s:g} s for the sweep's jobs; cancelled")
        return out


#: Seconds to wait for a job's result file after Slurm says the job ended.
_RESULT_GRACE_S = 15.0


def _last_message(exc: BaseException) -> str:
    """The most telling line of a submitit or sbatch error (its last exception line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("sbatch: error:", "error:"))
              or (": " in ln and ln.split(": ", 1)[0].rsplit(".", 1)[-1].endswith(
                  ("Error", "Exception")))]
    return (errors or lines or [type(exc).__name__])[-1]


def _job_lost(store: RunStore, run_id: str, job: Any, why: str) -> str:
    """Record that a run's job ended without finishing it; return the run's status.

    A run that reached a final status before its job was killed keeps it.
    Otherwise the dead job's claim is removed and the run is recorded
    ``failed``, with its checkpoint kept for the next sweep to resume from.
    """
    record = store.get(run_id)
    if record.is_final:
        return record.status
    store.break_claim(run_id)  # its owner is dead (or cancelled); free the run at once
    store.update(run_id, "failed", error=f"slurm job {job.job_id} {why} (log: {job.paths.stdout})")
    return "failed"


class _SubmititTask:
    """A picklable job body; on a time limit or preemption it requeues and the run resumes."""

    def __init__(self, store_root: str, trainer: str | Trainer, threads: int,
                 since: float | None = None) -> None:
        self.store_root = store_root
        self.trainer = trainer
        self.threads = threads
        self.since = since

    def __call__(self, run_id: str) -> str:
        return execute_run(self.store_root, run_id, self.trainer, threads=self.threads,
                           since=self.since)

    def checkpoint(self, run_id: str) -> Any:
        """Requeue the same call; the trainer resumes from the run's checkpoint.

        submitit calls this on ``SIGUSR2`` (sent ``signal_delay_s`` before the
        time limit, or on preemption), then requeues the job. The run's claim
        is released first, so the requeued job can take the run at once on
        any node.
        """
        import submitit

        from scalingkit.runs.claims import release_all_claims

        release_all_claims()
        return submitit.helpers.DelayedSubmission(self, run_id)
