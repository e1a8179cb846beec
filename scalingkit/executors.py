"""Ways to run the pending runs of a :class:`~scalingkit.store.RunStore`.

Three executors share one interface, ``executor.run(store, run_ids) -> dict``
(run id -> final status), and one unit of work, :func:`execute_run`:

``SequentialExecutor``
    One run after another in this process, with all cores for torch.
``PoolExecutor``
    A local process pool; ``workers x threads`` never exceeds the cores.
``SubmititExecutor``
    One Slurm job per run through ``submitit`` (``cluster="local"`` runs the
    same jobs as local subprocesses, which is how it is tested without Slurm).

Each run writes only its own record, so runs never contend for a file, and a
killed executor leaves records that a later call resumes (see
:mod:`scalingkit.store`).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from scalingkit.store import RunStore

#: A trainer: ``trainer(config_dict, *, run_dir, progress) -> result_dict``.
Trainer = Callable[..., dict]
#: Import path of the default trainer.
DEFAULT_TRAINER = "scalingkit.executors:train_from_dict"
#: Names accepted by :func:`make_executor`.
EXECUTORS = ("sequential", "pool", "slurm")


def train_from_dict(config: dict, *, run_dir: Path | None = None, progress: bool = False) -> dict:
    """Train one run with :func:`scalingkit.train.train` from a plain config dict.

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
    from scalingkit.train import TrainConfig, train

    result = train(TrainConfig.from_dict(config), run_dir=run_dir, progress=progress)
    return result.to_dict()


def resolve_trainer(trainer: str | Trainer) -> Trainer:
    """Turn ``"module:function"`` into the function (callables pass through)."""
    if callable(trainer):
        return trainer
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
    *, threads: int | None = None, progress: bool = False,
) -> str:
    """Run one stored run to completion and record its outcome.

    A run that is already done or diverged is skipped. Otherwise its status
    becomes ``running``, the trainer is called with ``run_dir`` set to the
    run's folder (so a partial run resumes from its checkpoint), and the
    record becomes ``done`` or ``diverged`` with the result, or ``failed``
    with the error message if the trainer raised. The checkpoint is deleted
    once the run is final.

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

    Returns
    -------
    str
        The run's final status: ``done``, ``diverged`` or ``failed``.
    """
    set_threads(threads)
    store = RunStore(store_root)
    record = store.get(run_id)
    if record.is_final:
        return record.status
    fn = resolve_trainer(trainer)
    store.update(run_id, "running")
    try:
        result = fn(record.config, run_dir=store.run_dir(run_id), progress=progress)
        status = result.get("status")
        if status not in ("done", "diverged"):
            raise RuntimeError(f"trainer returned status {status!r}")
    except Exception as exc:  # any trainer error is recorded, the sweep goes on
        store.update(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        return "failed"
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
        out = {}
        for run_id in tqdm(run_ids, desc="runs", unit="run", disable=not self.progress):
            out[run_id] = execute_run(
                store.root, run_id, self.trainer, threads=threads, progress=self.progress,
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
        out: dict[str, str] = {}
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            futures = {
                pool.submit(execute_run, str(store.root), run_id, self.trainer): run_id
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

    Parameters
    ----------
    folder : str or PathLike
        Where submitit keeps job scripts and logs (on a shared file system).
    trainer : str or callable, default=DEFAULT_TRAINER
        See :func:`execute_run`.
    cluster : str, optional
        ``None`` lets submitit pick (Slurm where ``sbatch`` exists, else
        local); ``"slurm"``, ``"local"`` or ``"debug"`` force one.
    threads : int, default=1
        CPU cores (``cpus_per_task``) and torch threads per job.
    progress : bool, default=True
        Show a progress bar over finished jobs.
    **parameters
        Passed to ``AutoExecutor.update_parameters`` (for example
        ``timeout_min=60, slurm_partition="gpu", gpus_per_node=1``).
    """

    def __init__(
        self, folder: str | os.PathLike, trainer: str | Trainer = DEFAULT_TRAINER, *,
        cluster: str | None = None, threads: int = 1, progress: bool = True,
        **parameters: Any,
    ) -> None:
        self.folder = Path(folder)
        self.trainer = trainer
        self.cluster = cluster
        self.threads = threads
        self.progress = progress
        self.parameters = parameters

    def run(self, store: RunStore, run_ids: Sequence[str]) -> dict[str, str]:
        """Submit ``run_ids`` as one job array, wait, return run id -> final status."""
        try:
            import submitit
        except ImportError as exc:  # pragma: no cover - submitit is pinned
            raise ValueError("the slurm executor needs submitit: pip install submitit") from exc
        if not run_ids:
            return {}
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        params = {"timeout_min": 24 * 60, "cpus_per_task": self.threads, "nodes": 1,
                  "tasks_per_node": 1, **self.parameters}
        if executor.cluster == "local":  # the local backend knows no cpus/nodes options
            params = {k: v for k, v in params.items() if k == "timeout_min"}
        executor.update_parameters(name="scalingkit-sweep", **params)
        task = _SubmititTask(str(store.root), self.trainer, self.threads)
        with executor.batch():
            jobs = [executor.submit(task, run_id) for run_id in run_ids]
        out: dict[str, str] = {}
        for run_id, job in tqdm(list(zip(run_ids, jobs, strict=True)), desc="jobs",
                                unit="job", disable=not self.progress):
            try:
                out[run_id] = job.result()
            except Exception as exc:  # a job killed by the scheduler
                store.update(run_id, "failed", error=f"job {job.job_id}: {exc}")
                out[run_id] = "failed"
        return out


class _SubmititTask:
    """A picklable job body; on preemption submitit requeues it and the run resumes."""

    def __init__(self, store_root: str, trainer: str | Trainer, threads: int) -> None:
        self.store_root = store_root
        self.trainer = trainer
        self.threads = threads

    def __call__(self, run_id: str) -> str:
        return execute_run(self.store_root, run_id, self.trainer, threads=self.threads)

    def checkpoint(self, run_id: str) -> Any:
        """Requeue the same call; the trainer resumes from the run's checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, run_id)


def make_executor(
    name: str, *, trainer: str | Trainer = DEFAULT_TRAINER, workers: int | None = None,
    folder: str | os.PathLike | None = None, progress: bool = True, **parameters: Any,
) -> SequentialExecutor | PoolExecutor | SubmititExecutor:
    """Build the executor called ``name`` (one of :data:`EXECUTORS`).

    ``workers`` sets the pool size; for ``slurm`` it is ignored and
    ``folder`` (default: ``<store>/submitit`` chosen by the caller) holds job
    logs.
    """
    if name == "sequential":
        return SequentialExecutor(trainer, progress=progress)
    if name == "pool":
        return PoolExecutor(trainer, workers=workers, progress=progress)
    if name == "slurm":
        if folder is None:
            raise ValueError("the slurm executor needs a folder for its job logs")
        return SubmititExecutor(folder, trainer, progress=progress, **parameters)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
