"""The cluster path on a real Slurm: submit, cancel, requeue, time limit, failures.

The tests marked ``cluster`` need the throw-away one-node cluster of
``scripts/slurm-local.sh`` (``.ci/run`` starts it when it runs as root on
Debian) and skip, saying why, anywhere else: they take the node and the
partition down, which must never happen on a real cluster. The others check
the resource request, the bad-input refusals and the executor's time limits
without Slurm.

Jobs train real runs (3 runs of the ``quick`` preset at 3e10 FLOP, a few
seconds each on one core) or the stand-in trainer of ``fake_trainer.py``,
which sleeps instead of computing, so the time-limit and node tests cost wall
time but almost no CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import slurm_trainer

from scalingkit.cli import main as cli_main
from scalingkit.runs import slurm
from scalingkit.runs.executors import make_executor
from scalingkit.runs.slurm import JobState, SlurmResources
from scalingkit.runs.store import RunStore
from scalingkit.runs.submitit_executor import SubmititExecutor

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: ClusterName of the cluster that scripts/slurm-local.sh starts.
LOCAL_CLUSTER = "scalingkit-local"
#: The sweep the cluster tests train: 3 runs, about 20 s of one core in all.
QUICK = ["--preset", "quick", "--budgets", "3e10"]
#: Ceiling for any one wait in these tests (seconds; the machine may be busy).
WAIT_S = 420.0


def _cluster_problem() -> str | None:
    """Why the cluster tests cannot run here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return ("Slurm is not installed (no sinfo/sbatch on PATH); as root on Debian run "
                "scripts/slurm-local.sh install && scripts/slurm-local.sh start")
    try:
        proc = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                              timeout=20)
    except subprocess.TimeoutExpired:
        return "no Slurm controller answered within 20 s"
    if proc.returncode != 0:
        return ("no Slurm controller answers (scontrol show config failed); start one with "
                "scripts/slurm-local.sh start")
    name = next((ln.split("=", 1)[1].strip() for ln in proc.stdout.splitlines()
                 if ln.startswith("ClusterName")), "")
    if name != LOCAL_CLUSTER:
        return (f"the Slurm here is {name!r}, not the throw-away cluster of "
                "scripts/slurm-local.sh; these tests take its node and partition down")
    return None


@pytest.fixture(scope="module")
def cluster() -> dict:
    """The local cluster's partition and node (skips the test when there is none)."""
    problem = _cluster_problem()
    if problem:
        pytest.skip(problem)
    out = subprocess.run(["sinfo", "--noheader", "--format=%R %n %T"], capture_output=True,
                         text=True, timeout=30, check=True).stdout.split()
    partition, node, state = out[:3]
    if not state.startswith(("idle", "mixed", "alloc")):
        pytest.skip(f"the local Slurm node {node} is {state}; restart it with "
                    "scripts/slurm-local.sh stop && scripts/slurm-local.sh start")
    return {"partition": partition, "node": node}


@pytest.fixture
def importable(monkeypatch):
    """Let jobs (which inherit this environment) import the tests' trainers."""
    monkeypatch.syspath_prepend(str(TESTS))
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", f"{TESTS}{os.pathsep}{path}" if path else str(TESTS))


@pytest.fixture
def no_jobs_left(cluster):
    """Cancel whatever a test left in the queue, and give the node back."""
    yield
    subprocess.run(["scancel", "--quiet", "--name=scalingkit-sweep"], timeout=30)
    subprocess.run(["scontrol", "update", f"nodename={cluster['node']}", "state=resume"],
                   capture_output=True, timeout=30)
    subprocess.run(["scontrol", "update", f"partitionname={cluster['partition']}", "state=up"],
                   capture_output=True, timeout=30)


def cli(*args: str, timeout: float = WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scalingkit", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def scontrol(*args: str) -> None:
    subprocess.run(["scontrol", *args], check=True, capture_output=True, timeout=30)


def wait_for(predicate, what: str, timeout: float = WAIT_S, every: float = 0.2):
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def losses(root: Path) -> dict[str, float]:
    return {r.id: r.result["final_loss"] for r in RunStore(root).records()
            if r.status == "done"}


def run_in_thread(executor: SubmititExecutor, store: RunStore, ids: list[str]):
    """Start ``executor.run`` in a thread; return the thread and its future result dict."""
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(executor.run(store, ids)), daemon=True)
    thread.start()
    return thread, out


def fake_store(root: Path, config: dict) -> tuple[RunStore, str]:
    store = RunStore(root)
    store.ensure_writable()
    return store, store.add(config, plan={"budget": 1.0})


def fake_steps(store: RunStore, run_id: str) -> list[int]:
    log = store.run_dir(run_id) / "steps.log"
    return [int(x) for x in log.read_text().split()] if log.exists() else []


# ------------------------------------------------------------------ on the local cluster


@pytest.fixture(scope="module")
def quick_sweep(cluster, tmp_path_factory) -> Path:
    """The quick sweep run once, uninterrupted, through the CLI on Slurm."""
    out = tmp_path_factory.mktemp("slurm") / "quick"
    proc = cli("sweep", *QUICK, "--executor", "slurm", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.slow
def test_cli_sweep_on_slurm_finishes_every_run(quick_sweep):
    proc = cli("status", str(quick_sweep), "--json", timeout=60)
    rows = json.loads(proc.stdout)["runs"]
    assert len(rows) == 3 and {r["status"] for r in rows} == {"done"}
    assert all(2.5 < r["loss"] < 5.6 for r in rows)  # below ln 256 = 5.55 nats/token
    table = cli("status", str(quick_sweep), timeout=60).stdout
    assert "3 runs: done 3" in table
    # The jobs went through sbatch with the default request of SlurmResources.
    script = next((quick_sweep / "submitit").glob("*_submission.sh")).read_text()
    for line in ("#SBATCH --cpus-per-task=1", "#SBATCH --time=1440", "#SBATCH --requeue",
                 "#SBATCH --signal=USR2@90", "#SBATCH --array=0-2%3"):
        assert line in script
    threads = {r.result["torch_threads"] for r in RunStore(quick_sweep).records()}
    assert threads == {1}


SWEEP_SCRIPT = """
import sys
from scalingkit.runs.sweep import plan_sweep, preset, run_sweep
plan = plan_sweep(preset("quick", budgets=(3e10,)))
run_sweep(plan, sys.argv[1], executor="slurm", trainer="slurm_trainer:train", progress=False,
          pending_limit_s=120, wait_limit_s=400)
"""


@pytest.mark.slow
def test_cancelled_and_requeued_jobs_resume_from_their_checkpoints(
        quick_sweep, tmp_path, importable, no_jobs_left):
    """scancel one job and scontrol-requeue another mid-run; no run lost or trained twice."""
    reference = losses(quick_sweep)
    ids = sorted(reference, key=lambda rid: -RunStore(quick_sweep).get(rid).plan["steps"])
    cancelled, requeued, untouched = ids  # the two longest runs are interrupted
    out = tmp_path / "sweep"
    RunStore(out).ensure_writable()
    for rid in (cancelled, requeued):  # make the two runs pause once they have a checkpoint
        (out / "runs" / rid).mkdir(parents=True)
        (out / "runs" / rid / "hold").write_text("")
    sweep = subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT, str(out)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run = RunStore(out).run_dir

        def holding(rid: str) -> str | None:
            if sweep.poll() is not None:
                pytest.fail(f"the sweep ended early:\n{sweep.communicate()[0]}")
            path = run(rid) / "holding"
            return path.read_text() if path.exists() else None

        job_a = wait_for(lambda: holding(cancelled), "the first job to pause")
        job_b = wait_for(lambda: holding(requeued), "the second job to pause")
        resume_a = slurm_trainer.checkpoint_step(run(cancelled))
        resume_b = slurm_trainer.checkpoint_step(run(requeued))
        assert resume_a > 0 and resume_b > 0
        subprocess.run(["scancel", job_a], check=True, timeout=30)
        scontrol("requeue", job_b)
        wait_for(lambda: len(slurm_trainer.sessions(run(requeued))) == 2,
                 "the requeued job to start again")  # the paused one was killed meanwhile
        (run(requeued) / "hold").unlink()
        log, _ = sweep.communicate(timeout=WAIT_S)
    finally:
        sweep.kill()
    store = RunStore(out)
    assert store.get(requeued).status == "done" and store.get(untouched).status == "done"
    record = store.get(cancelled)
    assert record.status == "failed", log
    assert f"slurm job {job_a} ended CANCELLED" in record.error
    assert (run(cancelled) / "checkpoint.pt").exists()  # kept for the next sweep

    (run(cancelled) / "hold").unlink()
    subprocess.run([sys.executable, "-c", SWEEP_SCRIPT, str(out)], cwd=ROOT, check=True,
                   capture_output=True, timeout=WAIT_S)
    assert store.counts()["done"] == 3
    # Each interrupted run trained once from scratch and resumed once from its checkpoint;
    # the untouched run had one session; no finished run was trained again.
    starts = {rid: [int(w[1]) for w in slurm_trainer.sessions(run(rid)) if w[0] == "start"]
              for rid in ids}
    ends = {rid: [w[1] for w in slurm_trainer.sessions(run(rid)) if w[0] == "end"]
            for rid in ids}
    assert starts == {cancelled: [0, resume_a], requeued: [0, resume_b], untouched: [0]}
    assert ends == {rid: ["done"] for rid in ids}
    # Resumed runs end exactly where the uninterrupted sweep's runs ended (same thread count).
    assert losses(out) == reference


@pytest.mark.slow
def test_job_over_its_time_limit_is_requeued_and_resumes(cluster, tmp_path, importable,
                                                         no_jobs_left):
    """A 95-s run under a 2-minute limit: SIGUSR2, requeue, resume, until it is done.

    Slurm may send the warning up to 60 s earlier than asked (``sbatch
    --signal``), so a job asking for it 30 s before a 2-minute limit gets it 30
    to 90 s after it started: the first session cannot finish, and each session
    trains for at least 30 s less its start-up.
    """
    store, rid = fake_store(tmp_path / "store", {"steps": 95, "lr": 0.1, "sleep": 1.0})
    executor = SubmititExecutor(
        tmp_path / "jobs", "fake_trainer:train", cluster="slurm", progress=False,
        resources=SlurmResources(time_min=2, signal_delay_s=30, max_requeues=5),
        wait_limit_s=WAIT_S,
        slurm_additional_parameters={"comment": "time-limit-test"})
    assert executor.run(store, [rid]) == {rid: "done"}
    script = next((tmp_path / "jobs").glob("*_submission.sh")).read_text()
    for line in ("#SBATCH --time=2", "#SBATCH --signal=USR2@30", "#SBATCH --requeue",
                 "#SBATCH --comment=time-limit-test"):  # the caller's extra kept --requeue
        assert line in script
    steps = fake_steps(store, rid)
    assert sorted(set(steps)) == list(range(1, 96))
    record = store.get(rid)
    sessions = [h for h in record.history if h["status"] == "running"]
    assert 2 <= len(sessions) <= 6  # requeued at least once, at most max_requeues times
    assert len(steps) <= 95 + len(sessions) - 1  # at most the step in flight is redone
    job_log = "".join(p.read_text() for p in (tmp_path / "jobs").glob("*_log.*"))
    assert "this job is timed-out" in job_log and "Requeued job" in job_log


@pytest.mark.slow
def test_node_down_gives_failed_status_then_resumes(cluster, tmp_path, importable,
                                                    no_jobs_left):
    """A node going down mid-run: the run is recorded failed (no hang), then resumes."""
    store, rid = fake_store(tmp_path / "store", {"steps": 30, "lr": 0.1, "sleep": 0.5})
    executor = SubmititExecutor(tmp_path / "jobs", "fake_trainer:train", cluster="slurm",
                                progress=False, pending_limit_s=5, wait_limit_s=WAIT_S)
    thread, out = run_in_thread(executor, store, [rid])
    wait_for(lambda: len(fake_steps(store, rid)) >= 4, "the job to take a few steps")
    scontrol("update", f"nodename={cluster['node']}", "state=down", "reason=scalingkit-test")
    try:
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the executor did not give up on the down node"
    finally:
        scontrol("update", f"nodename={cluster['node']}", "state=resume")
    assert out == {rid: "failed"}
    error = store.get(rid).error
    assert "could not start" in error and "DOWN" in error and "cancelled" in error
    done_before = fake_steps(store, rid)
    assert 4 <= len(done_before) < 30
    assert executor.run(store, [rid]) == {rid: "done"}
    steps = fake_steps(store, rid)
    assert sorted(set(steps)) == list(range(1, 31)) and len(steps) <= 31  # resumed


@pytest.mark.slow
@pytest.mark.parametrize(("state", "expected"), [
    ("down", "could not start"),  # sbatch queues the job; it waits for the partition
    ("inactive", "Slurm refused the jobs"),  # sbatch refuses the job
])
def test_unusable_partition_gives_failed_status(cluster, tmp_path, importable, no_jobs_left,
                                                state, expected):
    store, rid = fake_store(tmp_path / "store", {"steps": 2, "lr": 0.1})
    executor = SubmititExecutor(tmp_path / "jobs", "fake_trainer:train", cluster="slurm",
                                progress=False, pending_limit_s=5, wait_limit_s=WAIT_S,
                                resources=SlurmResources(partition=cluster["partition"]))
    scontrol("update", f"partitionname={cluster['partition']}", f"state={state}")
    try:
        started = time.monotonic()
        assert executor.run(store, [rid]) == {rid: "failed"}
        assert time.monotonic() - started < 120
    finally:
        scontrol("update", f"partitionname={cluster['partition']}", "state=up")
    error = store.get(rid).error
    assert expected in error
    assert ("PartitionDown" if state == "down" else "inactive") in error


def _queued() -> set[str]:
    return set(subprocess.run(["squeue", "--noheader", "--states=all", "--format=%i"],
                              capture_output=True, text=True, timeout=30).stdout.split())


def in_process(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI in this process (nothing is trained); return its status and stderr."""
    rc = cli_main(list(args))
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(("out", "flags", "message"), [
    ("s", ["--slurm-partition", "nope"],
     "Slurm partition 'nope' does not exist; this cluster has: "),
    ("s", ["--slurm-time", "-5"], "time limit must be a whole number of minutes >= 1, got -5"),
    ("file/s", [], "is not writable"),  # a folder below a file cannot exist, even for root
])
def test_cli_refuses_bad_slurm_input_before_submitting(cluster, tmp_path, capsys, out, flags,
                                                       message):
    (tmp_path / "file").write_text("")
    before = _queued()
    rc, err = in_process(capsys, "sweep", *QUICK, "--executor", "slurm",
                         "--out", str(tmp_path / out), *flags)
    assert rc != 0 and len(err.splitlines()) == 1 and err.startswith("error: ")
    assert message in err
    assert _queued() == before and not (tmp_path / out / "submitit").exists()


# ------------------------------------------------------------------ without a cluster


@pytest.mark.parametrize(("fields", "match"), [
    ({"time_min": -5}, "time limit must be a whole number of minutes >= 1, got -5"),
    ({"time_min": 0}, "time limit must be a whole number of minutes >= 1, got 0"),
    ({"time_min": 1.5}, "time limit must be a whole number of minutes"),
    ({"cpus": 0}, "cpus per job must be an integer >= 1"),
    ({"gpus": -1}, "gpus per job must be an integer >= 0"),
    ({"mem_gb": 0}, "memory per job must be a positive number of GB"),
    ({"mem_gb": float("nan")}, "memory per job must be a positive number of GB"),
    ({"partition": ""}, "partition must be a non-empty name"),
    ({"time_min": 1, "signal_delay_s": 60}, r"signal_delay_s must be .* in \(0, 60\)"),
    ({"max_requeues": -1}, "max_requeues must be an integer >= 0"),
])
def test_slurm_resources_refuse_bad_values(fields, match):
    with pytest.raises(ValueError, match=match):
        SlurmResources(**fields)


def test_slurm_resources_become_submitit_parameters():
    params = SlurmResources(partition="gpu", cpus=8, mem_gb=32, time_min=120,
                            gpus=1).submitit_parameters()
    assert params == {"timeout_min": 120, "cpus_per_task": 8, "nodes": 1, "tasks_per_node": 1,
                      "slurm_signal_delay_s": 90, "slurm_partition": "gpu", "mem_gb": 32,
                      "gpus_per_node": 1, "slurm_additional_parameters": {"requeue": True}}
    assert SlurmResources(time_min=1).warning_s == 30  # half a 1-minute limit, not 90 s


def test_executor_refuses_resource_fields_as_loose_parameters(tmp_path):
    with pytest.raises(ValueError, match="set timeout_min through SlurmResources"):
        SubmititExecutor(tmp_path, timeout_min=60)
    with pytest.raises(ValueError, match="set slurm_partition through SlurmResources"):
        make_executor("slurm", folder=tmp_path, slurm_partition="gpu")
    with pytest.raises(ValueError, match="pending_limit_s must be a positive number"):
        SubmititExecutor(tmp_path, pending_limit_s=0)


def test_slurm_executor_without_slurm_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, sinfo...
    executor = make_executor("slurm", folder=tmp_path / "jobs")
    with pytest.raises(ValueError, match="the slurm executor needs Slurm"):
        executor.check(tmp_path / "store")


@pytest.mark.parametrize(("flags", "match"), [
    (["--slurm-cpus", "2"], "--slurm-cpus only applies to --executor slurm"),
    (["--executor", "slurm", "--slurm-pending-limit", "0"],
     "--slurm-pending-limit must be a positive number of minutes"),
    (["--executor", "slurm", "--slurm-mem-gb", "-1", "--dry-run"],
     "memory per job must be a positive number of GB"),
])
def test_cli_refuses_bad_slurm_flags_without_a_cluster(tmp_path, capsys, flags, match):
    rc, err = in_process(capsys, "sweep", *QUICK, "--out", str(tmp_path / "s"), *flags)
    assert rc != 0 and len(err.splitlines()) == 1 and match in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(("line", "state", "ended", "blocked"), [
    ("7_0|RUNNING|None", "RUNNING", False, False),
    ("7_1|PENDING|Priority", "PENDING", False, False),
    ("7_2|PENDING|BeginTime", "PENDING", False, False),
    ("7_3|PENDING|PartitionDown", "PENDING", False, True),
    ("7_4|PENDING|Nodes required for job are DOWN, DRAINED or reserved", "PENDING", False, True),
    ("7_5|CANCELLED|None", "CANCELLED", True, False),
    ("7_6|NODE_FAIL|NodeDown", "NODE_FAIL", True, False),
])
def test_job_states_reads_squeue(monkeypatch, line, state, ended, blocked):
    answer = subprocess.CompletedProcess([], 0, stdout=line + "\n", stderr="")
    monkeypatch.setattr(slurm, "_call", lambda args, timeout_s=0: answer)
    job_id = line.split("|")[0]
    got = slurm.job_states([job_id])[job_id]
    assert (got.state, got.ended, got.blocked) == (state, ended, blocked)


class _FakeJob:
    """Just what the executor's watcher reads of a submitit job."""

    def __init__(self, job_id: str, folder: Path) -> None:
        self.job_id = job_id
        self.paths = type("P", (), {"result_pickle": folder / f"{job_id}.pkl",
                                    "stdout": folder / f"{job_id}.out"})()

    def result(self) -> str:
        return "done"


@pytest.mark.parametrize(("state", "why"), [
    (JobState("PENDING", "ReqNodeNotAvail"), "could not start for"),
    (JobState("CANCELLED", "None"), "ended CANCELLED without a result"),
    (None, "left the queue without a result"),
    (JobState("PENDING", "Priority"), "after waiting 3 s"),
])
def test_watcher_never_waits_forever(tmp_path, monkeypatch, state, why):
    """Each way a job can get stuck ends in a failed run within the executor's limits."""
    import scalingkit.runs.submitit_executor as executors

    store, rid = fake_store(tmp_path / "store", {"steps": 1, "lr": 0.1})
    cancelled = []
    monkeypatch.setattr(executors, "_RESULT_GRACE_S", 0.5)
    monkeypatch.setattr(slurm, "job_states",
                        lambda ids: {} if state is None else dict.fromkeys(ids, state))
    monkeypatch.setattr(slurm, "cancel", lambda ids: cancelled.extend(ids))
    executor = SubmititExecutor(tmp_path / "jobs", progress=False, pending_limit_s=1.0,
                                wait_limit_s=3.0, poll_s=0.5)
    started = time.monotonic()
    assert executor._watch(store, {rid: _FakeJob("9_0", tmp_path)}) == {rid: "failed"}
    assert time.monotonic() - started < 10
    assert why in store.get(rid).error and "slurm job 9_0" in store.get(rid).error
    assert cancelled == ([] if state is None or state.ended else ["9_0"])


def test_watcher_gives_up_when_slurm_stops_answering(tmp_path, monkeypatch):
    store, rid = fake_store(tmp_path / "store", {"steps": 1, "lr": 0.1})

    def silent(ids):
        raise slurm.SlurmError("squeue did not answer within 30 s")

    monkeypatch.setattr(slurm, "job_states", silent)
    executor = SubmititExecutor(tmp_path / "jobs", progress=False, pending_limit_s=1.0,
                                poll_s=0.5)
    assert executor._watch(store, {rid: _FakeJob("9_0", tmp_path)}) == {rid: "failed"}
    assert "Slurm did not answer for" in store.get(rid).error
