"""Executors: sequential, process pool and submitit, with a stand-in trainer.

The stand-in (``tests/fake_trainer.py``) checkpoints after every step and logs
each step it runs, so the tests can see resumption and double work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalingkit.runs.executors import (
    PoolExecutor,
    SequentialExecutor,
    execute_run,
    make_executor,
    plan_workers,
    resolve_trainer,
)
from scalingkit.runs.store import RunStore
from scalingkit.runs.submitit_executor import SubmititExecutor

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
from scalingkit.runs.executors import SequentialExecutor
from scalingkit.runs.store import RunStore
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
    claim = store.claim_of(partial[0])  # left behind by the dead process, so stale
    assert claim["pid"] == proc.pid and claim["stale"] and partial[0] in store.pending()

    SequentialExecutor(FAKE, progress=False).run(store, store.pending())
    assert not list(tmp_path.glob("runs/*/claim.json"))

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


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_run_held_by_a_live_process_is_left_to_it(tmp_path, live_pid):
    store, (rid,) = make_store(tmp_path, [{"steps": 2, "lr": 0.1}])
    claim = {"pid": live_pid.pid, "host": socket.gethostname(), "started": time.time(),
             "token": "other"}
    (store.run_dir(rid) / "claim.json").write_text(json.dumps(claim))
    assert store.pending() == []
    assert execute_run(tmp_path, rid, FAKE) == "running"
    assert steps_run(store, rid) == [] and store.get(rid).status == "planned"
    live_pid.kill()
    live_pid.wait()  # its owner is gone: the claim is stale and taken over
    assert store.pending() == [rid]
    assert execute_run(tmp_path, rid, FAKE) == "done"
    assert steps_run(store, rid) == [1, 2]
    assert not (store.run_dir(rid) / "claim.json").exists()


def test_a_retried_run_keeps_the_earlier_error(tmp_path):
    import fake_trainer

    store, (rid,) = make_store(tmp_path, [{"steps": 2, "lr": 0.1}])
    attempts = []

    def flaky(config, *, run_dir=None, progress=False):
        attempts.append(run_dir)
        if len(attempts) == 1:
            raise RuntimeError("CUDA out of memory")
        return fake_trainer.train(config, run_dir=run_dir)

    assert execute_run(tmp_path, rid, flaky) == "failed"
    assert store.get(rid).error == "RuntimeError: CUDA out of memory"
    assert execute_run(tmp_path, rid, flaky) == "done"
    record = store.get(rid)
    assert [h["status"] for h in record.history] == ["planned", "running", "failed",
                                                     "running", "done"]
    assert record.history[2]["error"] == "RuntimeError: CUDA out of memory"
    assert record.history[3]["pid"] == os.getpid() and record.error is None


def test_a_run_that_failed_during_this_sweep_is_not_tried_again(tmp_path):
    store, (rid,) = make_store(tmp_path, [{"steps": 2, "lr": 0.1}])
    since = time.time()
    store.update(rid, "failed", error="RuntimeError: on the other sweep")
    assert execute_run(tmp_path, rid, FAKE, since=since) == "failed"
    assert steps_run(store, rid) == []
    assert execute_run(tmp_path, rid, FAKE, since=time.time()) == "done"  # a later sweep does


RACE_SCRIPT = """
import sys, time
from pathlib import Path
from scalingkit.runs.executors import PoolExecutor, SequentialExecutor
from scalingkit.runs.store import RunStore
store, ready, go, kind = RunStore(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
ids = sorted(store.pending(), key=lambda r: bool(store.get(r).config.get("fail")))
ready.write_text("ready")
while not go.exists():
    time.sleep(0.002)
runner = (PoolExecutor("fake_trainer:train", progress=False) if kind == "pool"
          else SequentialExecutor("fake_trainer:train", progress=False))
runner.run(store, ids)
"""


def start_racers(root: Path, kinds: list[str]) -> list[subprocess.Popen]:
    """Start one sweep process per kind on ``root``; release them together once all listed."""
    procs = [subprocess.Popen([sys.executable, "-c", RACE_SCRIPT, str(root),
                               str(root / f"ready{i}"), str(root / "go"), kind],
                              env=dict(os.environ))
             for i, kind in enumerate(kinds)]
    deadline = time.time() + 120
    while not all((root / f"ready{i}").exists() for i in range(len(kinds))):
        assert time.time() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    (root / "go").write_text("go")
    return procs


@pytest.mark.parametrize("kinds", [["sequential", "sequential"], ["sequential", "pool"]])
def test_two_sweeps_on_one_store_train_each_run_once(tmp_path, kinds):
    configs = [{"steps": 5, "lr": 0.1, "sleep": 0.03, "i": i} for i in range(8)]
    store, ids = make_store(tmp_path, [*configs, {"steps": 1, "lr": 0.1, "fail": True}])
    procs = start_racers(tmp_path, kinds)
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    *good, failing = ids
    for rid in good:
        record = store.get(rid)
        assert record.status == "done" and steps_run(store, rid) == [1, 2, 3, 4, 5]
        assert [h["status"] for h in record.history] == ["planned", "running", "done"]
    assert [h["status"] for h in store.get(failing).history] == ["planned", "running", "failed"]
    assert not list(tmp_path.glob("runs/*/claim.json"))
    if kinds == ["sequential", "sequential"]:  # both did part of the work
        assert {store.get(r).result["pid"] for r in good} == {p.pid for p in procs}


def test_sigkill_one_of_two_sweeps_then_resume(tmp_path):
    """Kill one of two sweeps mid-run: the other goes on, the killed run is resumed once."""
    # 0.1 s a step: the window in which to kill a run stays wide on a loaded machine
    configs = [{"steps": 6, "lr": 0.1, "sleep": 0.1, "i": i} for i in range(6)]
    store, ids = make_store(tmp_path, configs)
    victim, survivor = start_racers(tmp_path, ["sequential", "sequential"])
    deadline = time.time() + 60
    killed = None
    while time.time() < deadline and killed is None:
        for r in store.records():
            if (r.status == "running" and r.history[-1].get("pid") == victim.pid
                    and steps_run(store, r.id) and store.counts()["done"] >= 1):
                killed = r.id
                break
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert killed is not None, "the victim finished its runs before it could be killed"
    assert survivor.wait(timeout=300) == 0
    assert set(store.pending()) <= {killed}  # at most the killed run is left, claimable

    SequentialExecutor(FAKE, progress=False).run(store, store.pending())

    for r in store.records():
        statuses = [h["status"] for h in r.history]
        assert r.status == "done" and statuses.count("done") == 1
        steps = steps_run(store, r.id)
        assert steps.count(1) == 1 and sorted(set(steps)) == list(range(1, 7))
        assert len(steps) <= 7  # resumed: only the step killed mid-way may run twice
    starts = [h.get("pid") for h in store.get(killed).history if h["status"] == "running"]
    assert starts[0] == victim.pid and len(starts) == 2 and starts[1] != victim.pid
    assert not list(tmp_path.glob("runs/*/claim.json"))


SWEEP_SCRIPT = """
import sys
import fake_trainer
from scalingkit.runs.sweep import SweepSpec, plan_sweep, run_sweep

def trainer(config, *, run_dir=None, progress=False):  # a planned config, trained fast
    return fake_trainer.train({"steps": 4, "lr": 0.1, "sleep": 0.03}, run_dir=run_dir)

spec = SweepSpec(budgets=(1e11, 3e11), sizes_per_budget=3, span=4.0, corpus_tokens=4_848_042)
run_sweep(plan_sweep(spec), sys.argv[1], trainer=trainer, progress=False, command=sys.argv[2])
"""


def test_two_run_sweep_processes_on_one_folder(tmp_path):
    """The sweep entry point itself, twice at once: one log entry each, every run once."""
    out = tmp_path / "sweep"
    procs = [subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT, str(out), name],
                              env=dict(os.environ)) for name in ("first", "second")]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    store = RunStore(out)
    records = list(store.records())
    assert len(records) == 6
    for r in records:
        assert r.status == "done" and steps_run(store, r.id) == [1, 2, 3, 4]
        assert [h["status"] for h in r.history] == ["planned", "running", "done"]
    log = store.read_log()
    assert sorted(e["provenance"]["command"] for e in log) == ["first", "second"]
    assert sum(e["pending_at_start"] for e in log) >= 6


def test_resolve_trainer_maps_the_trainer_path_from_before_the_layout():
    from scalingkit.runs.executors import train_from_dict

    assert resolve_trainer("scalingkit.executors:train_from_dict") is train_from_dict
