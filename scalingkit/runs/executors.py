"""Ways to run the pending runs of a :class:`~scalingkit.runs.store.RunStore`.

Three executors share one interface, ``executor.run(store, run_ids) -> dict``
(run id -> final status), and one unit of work, :func:`execute_run`:

``SequentialExecutor``
    One run after another in this process, with all cores for torch.
``PoolExecutor``
    A local process pool; ``workers x threads`` never exceeds the cores.
``SubmititExecutor``
    One Slurm job per run through ``submitit``, watched with ``squeue``
    (:mod:`scalingkit.runs.slurm`); ``cluster="local"`` runs the same jobs as local
    subprocesses, which is how it is tested without Slurm.

Each run writes only its own record, and only while it holds the run's claim,
so two executors on one store (two ``sweep`` processes, say) never train the
same run; a killed executor leaves records and claims that a later call
resumes and takes over (see :mod:`scalingkit.runs.store`).
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm.std import tqdm  # text bar; tqdm.auto warns in kernels without ipywidgets

from scalingkit.runs import slurm
from scalingkit.runs.slurm import SlurmResources
from scalingkit.runs.store import RunStore

#: A trainer: ``trainer(config_dict, *, run_dir, progress) -> result_dict``.
Trainer = Callable[..., dict]
#: Import path of the default trainer.
DEFAULT_TRAINER = "scalingkit.runs.executors:train_from_dict"
#: Names accepted by :func:`make_executor`.
EXECUTORS = ("sequential", "pool", "slurm")


def train_from_dict(config: dict, *, run_dir: Path | None = None, progress: bool = False) -> dict:
    """Train one run with :func:`scalingkit.core.train.train` from a plain config dict.

    Parameters
    ----------
    config : dict
        ``TrainConfig.to_dict()`` output.
    run_dir : Path, optional
        Where the trainer keeps ``checkpoint.pt`` and resumes from it.
    progress : bool, default=False
        Show the trainer's own progress bar.

    Returns
    -------
    dict
        ``TrainResult.to_dict()``: status, losses (nats/token), curves, FLOP.
    """
    from scalingkit.core.train import TrainConfig, train

    result = train(TrainConfig.from_dict(config), run_dir=run_dir, progress=progress)
    return result.to_dict()


#: Trainer paths from before the package layout of issue #16 -> where they live now
#: (a store or a sweep log written before it may name the old path).
MOVED_TRAINERS = {"scalingkit.executors:train_from_dict": DEFAULT_TRAINER}


def resolve_trainer(trainer: str | Trainer) -> Trainer:
    """Turn ``"module:function"`` into the function (callables pass through)."""
    if callable(trainer):
        return trainer
    trainer = MOVED_TRAINERS.get(str(trainer), trainer)
    module_name, sep, attr = str(trainer).partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"trainer must be 'module:function', got {trainer!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import trainer {trainer!r}: {exc}") from exc


def set_threads(threads: int | None) -> None:
    """Limit torch (and OpenMP/MKL in child processes) to ``threads`` threads."""
    if threads is None:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def execute_run(
    store_root: str | os.PathLike, run_id: str, trainer: str | Trainer = DEFAULT_TRAINER,
    *, threads: int | None = None, progress: bool = False, since: float | None = None,
) -> str:
    """Run one stored run to completion, if no other process has it, and record its outcome.

    A run that is already done or diverged is skipped. Otherwise the run is
    claimed (:meth:`RunStore.try_claim`); a run that another live process
    holds is left to it. Under the claim the record is read again (another
    process may have finished the run meanwhile), its status becomes
    ``running`` with this host and pid in its history, the trainer is called
    with ``run_dir`` set to the run's folder (so a partial run resumes from
    its checkpoint), and the record becomes ``done`` or ``diverged`` with the
    result, or ``failed`` with the error message if the trainer raised. The
    checkpoint is deleted once the run is final, and the claim is released.

    Parameters
    ----------
    store_root : str or PathLike
        Folder of the :class:`RunStore`.
    run_id : str
        The run to execute.
    trainer : str or callable, default=DEFAULT_TRAINER
        ``trainer(config_dict, *, run_dir, progress) -> result_dict`` or its
        ``"module:function"`` import path (picklable for worker processes).
    threads : int, optional
        torch threads for this run; None leaves the current setting.
    progress : bool, default=False
        Passed to the trainer.
    since : float, optional
        Unix time at which the calling sweep started: a run that failed after
        it was tried by a concurrent sweep and is not tried again by this one.

    Returns
    -------
    str
        ``done``, ``diverged`` or ``failed``; ``running`` if another process
        holds the run.
    """
    set_threads(threads)
    store = RunStore(store_root)
    record = store.get(run_id)
    if record.is_final:
        return record.status
    fn = resolve_trainer(trainer)
    claim = store.try_claim(run_id)
    if claim is None:
        return "running"
    with claim:
        record = store.get(run_id)
        if record.is_final:
            return record.status
        if (since is not None and record.status == "failed" and record.history
                and record.history[-1].get("time", 0.0) >= since):
            return "failed"
        store.update(run_id, "running", note={"host": claim.owner["host"],
                                              "pid": claim.owner["pid"]})
        try:
            result = fn(record.config, run_dir=store.run_dir(run_id), progress=progress)
            status = result.get("status")
            if status not in ("done", "diverged"):
                raise RuntimeError(f"trainer returned status {status!r}")
        except Exception as exc:  # any trainer error is recorded, the sweep goes on
            if claim.held:
                store.update(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            return "failed"
        if not claim.held:  # stopped past the timeout and taken over: the new owner records
            return "running"
        message = result.get("message") if status == "diverged" else None
        store.update(run_id, status, result=result, error=message or None)
        for path in store.run_dir(run_id).glob("checkpoint*"):
            path.unlink(missing_ok=True)
        return status


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def plan_workers(
    n_runs: int, *, workers: int | None = None, cores: int | None = None,
) -> tuple[int, int]:
    """Choose ``(workers, threads_per_worker)`` so that cores are not oversubscribed.

    Parameters
    ----------
    n_runs : int
        Runs to execute; there are never more workers than runs.
    workers : int, optional
        Requested worker processes; default one per core.
    cores : int, optional
        Cores to share; default :func:`available_cores`.

    Returns
    -------
    (int, int)
        Worker processes and torch threads per worker, with
        ``workers * threads <= cores``.

    Raises
    ------
    ValueError
        If ``workers`` is below 1 or above the number of cores.
    """
    cores = available_cores() if cores is None else int(cores)
    if cores < 1:
        raise ValueError(f"cores must be >= 1, got {cores}")
    if workers is None:
        workers = cores
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if workers > cores:
        raise ValueError(
            f"workers={workers} would oversubscribe the {cores} available cores; "
            f"use at most {cores}"
        )
    workers = max(1, min(workers, n_runs))
    return workers, max(1, cores // workers)


class SequentialExecutor:
    """Run every pending run in this process, one after another.

    Parameters
    ----------
    trainer : str or callable, default=DEFAULT_TRAINER
        See :func:`execute_run`.
    threads : int, optional
        torch threads; default all available cores.
    progress : bool, default=True
        Show a progress bar over runs (and the trainer's bar for each run).
    """

    def __init__(
        self, trainer: str | Trainer = DEFAULT_TRAINER, *, threads: int | None = None,
        progress: bool = True,
    ) -> None:
        self.trainer = trainer
        self.threads = threads
        self.progress = progress

    def run(self, store: RunStore, run_ids: Sequence[str]) -> dict[str, str]:
        """Execute ``run_ids``; return run id -> final status."""
        threads = self.threads or available_cores()
        since = time.time()
        out = {}
        for run_id in tqdm(run_ids, desc="runs", unit="run", disable=not self.progress):
            out[run_id] = execute_run(
                store.root, run_id, self.trainer, threads=threads, progress=self.progress,
                since=since,
            )
        return out


def _init_worker(threads: int) -> None:
    set_threads(threads)


class PoolExecutor:
    """Run pending runs in a local pool of worker processes.

    Parameters
    ----------
    trainer : str or callable, default=DEFAULT_TRAINER
        See :func:`execute_run`; give a ``"module:function"`` string or a
        module-level function, because workers are started with ``spawn``.
    workers : int, optional
        Worker processes; default one per core (at most one per run).
    progress : bool, default=True
        Show a progress bar over finished runs.

    Notes
    -----
    Threads per worker are ``cores // workers`` (:func:`plan_workers`), so two
    workers on two cores get one torch thread each.
    """

    def __init__(
        self, trainer: str | Trainer = DEFAULT_TRAINER, *, workers: int | None = None,
        progress: bool = True,
    ) -> None:
        self.trainer = trainer
        self.workers = workers
        self.progress = progress

    def run(self, store: RunStore, run_ids: Sequence[str]) -> dict[str, str]:
        """Execute ``run_ids``; return run id -> final status."""
        if not run_ids:
            return {}
        workers, threads = plan_workers(len(run_ids), workers=self.workers)
        since = time.time()
        out: dict[str, str] = {}
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            futures = {
                pool.submit(execute_run, str(store.root), run_id, self.trainer,
                            since=since): run_id
                for run_id in run_ids
            }
            bar = tqdm(total=len(futures), desc=f"runs ({workers}x{threads} threads)",
                       unit="run", disable=not self.progress)
            for future in as_completed(futures):
                out[futures[future]] = future.result()
                bar.update()
            bar.close()
        return out


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

        from scalingkit.runs.store import release_all_claims

        release_all_claims()
        return submitit.helpers.DelayedSubmission(self, run_id)


def make_executor(
    name: str, *, trainer: str | Trainer = DEFAULT_TRAINER, workers: int | None = None,
    folder: str | os.PathLike | None = None, progress: bool = True, **parameters: Any,
) -> SequentialExecutor | PoolExecutor | SubmititExecutor:
    """Build the executor called ``name`` (one of :data:`EXECUTORS`).

    ``workers`` sets the pool size; for ``slurm`` it is ignored and
    ``folder`` (default: ``<store>/submitit`` chosen by the caller) holds job
    logs. ``slurm`` means Slurm (``cluster="slurm"``) unless ``cluster`` says
    otherwise; ``parameters`` go to :class:`SubmititExecutor` (``resources``,
    ``pending_limit_s``...).
    """
    if name == "sequential":
        return SequentialExecutor(trainer, progress=progress)
    if name == "pool":
        return PoolExecutor(trainer, workers=workers, progress=progress)
    if name == "slurm":
        if folder is None:
            raise ValueError("the slurm executor needs a folder for its job logs")
        parameters.setdefault("cluster", "slurm")
        return SubmititExecutor(folder, trainer, progress=progress, **parameters)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
