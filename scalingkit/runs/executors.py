"""Ways to run the pending runs of a :class:`~scalingkit.runs.store.RunStore`.

Three executors share one interface, ``executor.run(store, run_ids) -> dict``
(run id -> final status), and one unit of work, :func:`execute_run`:

``SequentialExecutor``
    One run after another in this process, with all cores for torch.
``PoolExecutor``
    A local process pool; ``workers x threads`` never exceeds the cores.
``SubmititExecutor`` (:mod:`scalingkit.runs.submitit_executor`)
    One Slurm job per run through ``submitit``, watched with ``squeue``
    (:mod:`scalingkit.runs.slurm`); ``cluster="local"`` runs the same jobs as local
    subprocesses, which is how it is tested without Slurm.

Each run writes only its own record, and only while it holds the run's claim,
so two executors on one store (two ``sweep`` processes, say) never train the
same run; a killed executor leaves records and claims that a later call
resumes and takes over (see :mod:`scalingkit.runs.store`).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.std import tqdm  # text bar; tqdm.auto warns in kernels without ipywidgets

from scalingkit.runs.store import RunStore

if TYPE_CHECKING:
    from scalingkit.runs.submitit_executor import SubmititExecutor

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
        from scalingkit.runs.submitit_executor import SubmititExecutor

        parameters.setdefault("cluster", "slurm")
        return SubmititExecutor(folder, trainer, progress=progress, **parameters)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
