"""Executors: sequential, process pool and submitit, with a stand-in trainer.

The stand-in (``tests/fake_trainer.py``) checkpoints after every step and logs
each step it runs, so the tests can see resumption and double work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalingkit.executors import (
    PoolExecutor,
    SequentialExecutor,
    SubmititExecutor,
    execute_run,
    make_executor,
    plan_workers,
    resolve_trainer,
)
from scalingkit.store import RunStore

TESTS = Path(__file__).resolve().parent
FAKE = "fake_trainer:train"


@pytest.fixture(autouse=True)
def _fake_importable(monkeypatch):
    """Let worker processes import ``fake_trainer`` from the tests folder."""
    monkeypatch.syspath_prepend(str(TESTS))
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{path}" if path else str(TESTS))


def make_store(root: Path, configs: list[dict]) -> tuple[RunStore, list[str]]:
    store = RunStore(root)
    store.ensure_writable()
    return store, [store.add(c, plan={"budget": 1.0}) for c in configs]


def steps_run(store: RunStore, rid: str) -> list[int]:
    log = store.run_dir(rid) / "steps.log"
    return [int(x) for x in log.read_text().split()] if log.exists() else []


@pytest.mark.parametrize(
    ("n_runs", "workers", "cores", "expected"),
    [(10, None, 2, (2, 1)), (1, None, 8, (1, 8)), (10, 3, 8, (3, 2)), (10, 1, 2, (1, 2))],
)
def test_plan_workers_never_oversubscribes(n_runs, workers, cores, expected):
    got = plan_workers(n_runs, workers=workers, cores=cores)
    assert got == expected and got[0] * got[1] <= cores


@pytest.mark.parametrize(("workers", "match"), [(0, "workers must be >= 1"),
                                                (3, "oversubscribe the 2 available")])
def test_plan_workers_rejects_bad_counts(workers, match):
    with pytest.raises(ValueError, match=match):
        plan_workers(5, workers=workers, cores=2)


@pytest.mark.parametrize("spec", ["nomodule", "no_such_module_xyz:train", "fake_trainer:nope"])
def test_resolve_trainer_errors(spec):
    with pytest.raises(ValueError, match="trainer"):
        resolve_trainer(spec)


def test_make_executor_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown executor 'mpi'"):
        make_executor("mpi")


def test_execute_run_records_done_diverged_and_failed(tmp_path):
    store, ids = make_store(tmp_path, [{"steps": 3, "lr": 0.1}, {"steps": 3, "lr": 5.0},
                                       {"steps": 3, "lr": 0.1, "fail": True}])
    statuses = [execute_run(tmp_path, rid, FAKE) for rid in ids]
    assert statuses == ["done", "diverged", "failed"]
    done, diverged, failed = (store.get(r) for r in ids)
    assert done.result["final_loss"] == pytest.approx(5 * 0.9**3)
    assert not (store.run_dir(ids[0]) / "checkpoint.pt").exists()  # final: checkpoint gone
    assert diverged.result["final_loss"] is None and "loss is inf" in diverged.error
    assert failed.error == "RuntimeError: simulated crash" and failed.result is None
    assert execute_run(tmp_path, ids[0], FAKE) == "done"  # final runs are skipped
    assert steps_run(store, ids[0]) == [1, 2, 3]


def test_execute_run_resumes_from_checkpoint(tmp_path):
    store, (rid,) = make_store(tmp_path, [{"steps": 5, "lr": 0.1}])
    store.update(rid, "running")  # as if a previous process died mid-run
    (store.run_dir(rid) / "checkpoint.pt").write_text('{"step": 3, "loss": 1.0}')
    assert execute_run(tmp_path, rid, FAKE) == "done"
    assert steps_run(store, rid) == [4, 5]
    assert store.get(rid).result["final_loss"] == pytest.approx(0.81)


def test_sequential_and_pool_agree(tmp_path):
    configs = [{"steps": 4, "lr": lr} for lr in (0.1, 0.2, 0.3, 9.0)]
    seq, ids = make_store(tmp_path / "seq", configs)
    pool, ids2 = make_store(tmp_path / "pool", configs)
    assert ids == ids2
    out_seq = SequentialExecutor(FAKE, progress=False).run(seq, ids)
    out_pool = PoolExecutor(FAKE, workers=2, progress=False).run(pool, ids)
    assert out_seq == out_pool
    assert list(out_seq.values()) == ["done", "done", "done", "diverged"]
    pids = {pool.get(r).result["pid"] for r in ids if pool.get(r).status == "done"}
    assert os.getpid() not in pids
    threads = {pool.get(r).result["threads"] for r in ids if pool.get(r).status == "done"}
    assert threads == {str(plan_workers(4, workers=2)[1])}


@pytest.mark.slow
def test_submitit_local_executor(tmp_path):
    store, ids = make_store(tmp_path / "s", [{"steps": 2, "lr": 0.1}, {"steps": 2, "lr": 7.0}])
    ex = SubmititExecutor(tmp_path / "jobs", FAKE, cluster="local", progress=False)
    assert ex.run(store, ids) == {ids[0]: "done", ids[1]: "diverged"}
    assert store.get(ids[0]).result["pid"] != os.getpid()


KILL_SCRIPT = """
import sys
from scalingkit.executors import SequentialExecutor
from scalingkit.store import RunStore
store = RunStore(sys.argv[1])
SequentialExecutor("fake_trainer:train", progress=False).run(store, store.pending())
"""


def test_sigkill_mid_sweep_then_resume(tmp_path):
    """Kill a sweep with SIGKILL in the middle of a run; resuming finishes each run once."""
    configs = [{"steps": 6, "lr": 0.1, "sleep": 0.05, "i": i} for i in range(4)]
    store, ids = make_store(tmp_path, configs)
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path)],
                            env=dict(os.environ))
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until one run is done and the next is under way
        counts = store.counts()
        running = [r for r in store.records() if r.status == "running"]
        if counts["done"] >= 1 and running and steps_run(store, running[0].id):
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.counts()["done"] < len(ids), "the sweep finished before it was killed"
    partial = [r.id for r in store.records() if r.status == "running"]
    assert len(partial) == 1

    SequentialExecutor(FAKE, progress=False).run(store, store.pending())

    records = list(store.records())  # every record parses: none is corrupt
    assert sorted(r.id for r in records) == sorted(ids)
    for r in records:
        assert r.status == "done"
        assert [h["status"] for h in r.history].count("done") == 1
        # Resumed, not restarted: step 1 ran once. Only a step killed between its
        # log line and its checkpoint may have run twice.
        steps = steps_run(store, r.id)
        assert steps.count(1) == 1 and sorted(set(steps)) == list(range(1, 7))
        assert len(steps) <= 7
        assert r.result["final_loss"] == pytest.approx(5 * 0.9**6)
