"""The run store: ids, atomic records, statuses, append-only behaviour, export."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scalingkit.cli import main
from scalingkit.runs import claims as claims_module
from scalingkit.runs.files import atomic_write_json
from scalingkit.runs.record import STATUSES, config_hash
from scalingkit.runs.store import RunStore


def test_config_hash_ignores_key_order_and_sees_values():
    a = {"lr": 1e-3, "model": {"d_model": 64, "n_layer": 2}}
    b = {"model": {"n_layer": 2, "d_model": 64}, "lr": 1e-3}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "lr": 2e-3})
    assert len(config_hash(a)) == 16


@pytest.mark.parametrize("bad", [{"x": object()}, {"x": math.nan}])
def test_config_hash_rejects_non_json(bad):
    with pytest.raises(ValueError, match="not plain JSON"):
        config_hash(bad)


def test_add_is_idempotent_and_append_only(tmp_path):
    store = RunStore(tmp_path / "s")
    store.ensure_writable()
    rid = store.add({"lr": 1}, plan={"budget": 1e12})
    store.update(rid, "done", result={"final_loss": 2.0})
    assert store.add({"lr": 1}, plan={"budget": 5.0}) == rid  # same config: untouched
    record = store.get(rid)
    assert record.status == "done" and record.plan == {"budget": 1e12}
    assert [h["status"] for h in record.history] == ["planned", "done"]
    assert len(store) == 1 and store.counts()["done"] == 1


def test_status_flow_and_pending(tmp_path):
    store = RunStore(tmp_path)
    store.ensure_writable()
    ids = [store.add({"i": i}) for i in range(4)]
    store.update(ids[0], "done", result={"curve": [{"loss": 1.0}]})
    store.update(ids[1], "diverged", result={"final_loss": math.nan}, error="nan loss")
    store.update(ids[2], "failed", error="RuntimeError: boom")
    store.update(ids[3], "running")
    assert sorted(store.pending()) == sorted(ids[2:])
    diverged = store.get(ids[1])
    assert diverged.result["final_loss"] is None and diverged.error == "nan loss"
    assert store.get(ids[0]).result["curve"] == [{"loss": 1.0}]
    assert set(store.counts()) == set(STATUSES)


def test_update_rejects_unknown_status(tmp_path):
    store = RunStore(tmp_path)
    rid = store.add({"a": 1})
    with pytest.raises(ValueError, match="unknown status 'finished'"):
        store.update(rid, "finished")


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left


def test_leftover_temp_files_are_ignored(tmp_path):
    store = RunStore(tmp_path)
    rid = store.add({"a": 1})
    (store.run_dir(rid) / ".record.json.123.tmp").write_text('{"half": ')
    assert store.ids() == [rid] and store.get(rid).status == "planned"


def test_corrupt_record_is_reported(tmp_path):
    store = RunStore(tmp_path)
    rid = store.add({"a": 1})
    (store.run_dir(rid) / "record.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt run record"):
        store.get(rid)


def test_unwritable_folder_is_a_clear_error(tmp_path, monkeypatch):
    """A folder the OS refuses to create (EACCES), simulated so that it fails for root too."""
    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(ValueError, match="'.*sweep' is not writable: Permission denied"):
        RunStore(tmp_path / "sweep").ensure_writable()


def test_folder_under_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is not writable"):
        RunStore(tmp_path / "f" / "sweep").ensure_writable()


def test_file_in_the_way_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is not writable"):
        RunStore(tmp_path / "f").ensure_writable()


def test_export_drops_checkpoints(tmp_path):
    store = RunStore(tmp_path / "s")
    store.ensure_writable()
    rid = store.add({"a": 1})
    (store.run_dir(rid) / "checkpoint.pt").write_bytes(b"\0" * 10)
    assert store.export(tmp_path / "e") == 1
    files = sorted(p.relative_to(tmp_path / "e").as_posix() for p in (tmp_path / "e").rglob("*")
                   if p.is_file())
    assert files == [f"runs/{rid}/record.json", "store.json"]
    assert RunStore(tmp_path / "e").get(rid).config == {"a": 1}


# -- helpers -----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def small_store(root: Path, n: int) -> tuple[RunStore, list[str]]:
    store = RunStore(root)
    store.ensure_writable()
    ids = [store.add({"i": i}, plan={"budget": 1e12, "params": 1000 * (i + 1), "tokens": 5000})
           for i in range(n)]
    return store, ids


def one_line_error(err: str) -> str:
    """The single stderr line of a refused command (fails on a traceback or more lines)."""
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("error: "), err
    return err.strip()


# -- history, add, marker -----------------------------------------------------------

def test_retry_keeps_the_failure_message_in_history(tmp_path):
    store, (rid,) = small_store(tmp_path, 1)
    store.update(rid, "running")
    store.update(rid, "failed", error="RuntimeError: out of memory")
    retried = store.update(rid, "running", note={"host": "node1", "pid": 7})
    assert retried.error == "RuntimeError: out of memory"  # still visible while retried
    done = store.update(rid, "done", result={"final_loss": 2.0})
    assert done.error is None
    assert [h["status"] for h in done.history] == ["planned", "running", "failed", "running",
                                                   "done"]
    assert done.history[2]["error"] == "RuntimeError: out of memory"
    assert (done.history[3]["host"], done.history[3]["pid"]) == ("node1", 7)
    assert store.get(rid).history == done.history


def test_add_on_a_fresh_folder_makes_a_store_the_loaders_accept(tmp_path, capsys):
    store = RunStore(tmp_path / "new" / "store")
    rid = store.add({"a": 1}, plan={"budget": 1e12, "params": 1000, "tokens": 5000})
    assert json.loads(store.marker_path.read_text())["format"] == "scalingkit-run-store/1"
    assert [r.id for r in RunStore(store.root).records()] == [rid]
    assert main(["status", str(store.root)]) == 0
    assert "1 runs: planned 1" in capsys.readouterr().out


def test_a_store_is_not_created_over_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not empty and not a run store"):
        RunStore(tmp_path).add({"a": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


BAD_RECORDS = {
    "not JSON": ("{not json", "Expecting property name"),
    "a JSON array": ("[1, 2]", "expected a JSON object, got a JSON array"),
    "no config": ('{"id": "ID", "plan": {}}', r"missing field\(s\) config"),
    "unknown status": ('{"id": "ID", "config": {}, "plan": {}, "status": "finished"}',
                       "unknown status 'finished'"),
    "plan is a string": ('{"id": "ID", "config": {}, "plan": "big"}',
                         "field 'plan' is a JSON string"),
    "another run's record": ('{"id": "0000000000000000", "config": {}, "plan": {}}',
                             "it holds run '0000000000000000'"),
    "unknown field": ('{"id": "ID", "config": {}, "plan": {}, "loss": 1}', "unknown field"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_a_malformed_record_is_an_error_naming_its_file(tmp_path, case):
    store, ids = small_store(tmp_path, 3)
    text, match = BAD_RECORDS[case]
    path = store.run_dir(ids[1]) / "record.json"
    path.write_text(text.replace("ID", ids[1]))
    with pytest.raises(ValueError, match=match) as info:
        list(store.records())
    assert f"corrupt run record {path}: " in str(info.value)
    good, bad = store.scan()
    assert [r.id for r in good] == sorted([ids[0], ids[2]])
    assert len(bad) == 1 and str(path) in bad[0]


def test_status_lists_the_readable_runs_and_names_the_bad_record(tmp_path, capsys):
    store, ids = small_store(tmp_path, 3)
    bad = store.run_dir(ids[0]) / "record.json"
    bad.write_text("[]")
    assert main(["status", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "2 runs: planned 2; 1 unreadable record(s)" in out
    assert one_line_error(err) == (f"error: corrupt run record {bad}: "
                                   "expected a JSON object, got a JSON array")
    assert main(["status", str(tmp_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert len(data["runs"]) == 2 and str(bad) in data["unreadable"][0]


BAD_MARKERS = [("{oops", "not valid JSON"),
               ("[1, 2]", "expected a JSON object, got a JSON array"),
               ('"store"', "expected a JSON object, got a JSON string"),
               ('{"format": "other/9"}', "not a scalingkit run store"),
               ("", "not valid JSON")]


@pytest.mark.parametrize(("text", "match"), BAD_MARKERS)
def test_a_corrupt_store_json_is_an_error_naming_it(tmp_path, capsys, text, match):
    store, _ = small_store(tmp_path, 2)
    store.marker_path.write_text(text)
    for call in (store.ensure_writable, store.counts, store.pending,
                 lambda: list(store.records())):
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert str(store.marker_path) in str(info.value)
    assert main(["status", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and match in one_line_error(err) and str(store.marker_path) in err


def test_status_cli_on_a_store_json_holding_a_list(tmp_path):
    """The reported case, through the real command line: no '0 runs', no traceback."""
    store, _ = small_store(tmp_path, 1)
    store.marker_path.write_text("[]\n")
    proc = subprocess.run([sys.executable, "-m", "scalingkit", "status", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and proc.stdout == ""
    assert one_line_error(proc.stderr) == (f"error: {store.marker_path}: "
                                           "expected a JSON object, got a JSON array")


COMMITTED = ["sweep_quick", "sweep_shakespeare", "kaplan_runs", "known_entropy_sweep",
             "known_entropy_words", "known_entropy_seeds", "known_entropy_words_z14",
             "known_entropy_seeds_z14", "known_entropy_words_z18", "known_entropy_seeds_z18",
             *(f"known_entropy_pilot/{s}"
               for s in ("ngram", "hmm", "words", "words_z14", "words_z16", "words_z18")),
             "hparams/lr_grid", "hparams/recipe", "sweep_reference",
             "porian/kaplan", "porian/corrected", "porian/seeds",
             *(f"porian_shakespeare/{step}"
               for step in ("kaplan", "head", "warmup", "decay", "tuned"))]


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_stores_still_load(name):
    store = RunStore(ROOT / "book" / "data" / name)
    records, problems = store.scan()
    assert records and problems == [] and store.pending() == []
    assert all(r.is_final for r in records)
    assert not (store.root / ".lock").exists()  # reading takes no lock, writes nothing


def test_status_command_reads_the_committed_reference_sweep():
    proc = subprocess.run([sys.executable, "-m", "scalingkit", "status",
                           "book/data/sweep_shakespeare"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "35 runs: done 35"


# -- the spec a store was made for --------------------------------------------------

def test_a_store_remembers_its_spec_and_refuses_another_recipe(tmp_path):
    store, _ = small_store(tmp_path, 1)
    store.bind_spec({"lr": 1e-3, "budgets": [1e12]}, extensible=["budgets"])
    assert json.loads(store.marker_path.read_text())["spec"] == {"lr": 1e-3, "budgets": [1e12]}
    store.bind_spec({"lr": 1e-3, "budgets": [1e12, 1e13]}, extensible=["budgets"])  # extended
    with pytest.raises(ValueError, match=r"holds runs of a different sweep "
                                         r"\(lr: 0.001 there, 0.003 now\).*--allow-other-spec"):
        store.bind_spec({"lr": 3e-3, "budgets": [1e12]}, extensible=["budgets"])
    store.bind_spec({"lr": 3e-3, "budgets": [1e12]}, allow_other=True)
    assert json.loads(store.marker_path.read_text())["spec"]["lr"] == 1e-3  # the first stays


def test_an_older_store_is_bound_to_its_first_logged_spec(tmp_path):
    store, _ = small_store(tmp_path, 1)
    store.append_log({"spec": {"lr": 1}})
    store.append_log({"spec": {"lr": 2}})
    assert store.made_for() == {"lr": 1}
    store.check_spec({"lr": 1})
    with pytest.raises(ValueError, match="different sweep"):
        store.check_spec({"lr": 2})


def test_run_sweep_refuses_to_mix_two_recipes_in_one_folder(tmp_path):
    from dataclasses import replace

    from scalingkit.runs.frames import results_frame
    from scalingkit.runs.sweep import SweepSpec, plan_sweep, run_sweep

    calls = []

    def trainer(config, *, run_dir=None, progress=False):
        calls.append(config["lr"])
        return {"status": "done", "final_loss": 3.0}

    spec = SweepSpec(budgets=(1e11,), sizes_per_budget=2, span=4.0, corpus_tokens=4_848_042)
    first = plan_sweep(spec)
    run_sweep(first, tmp_path, trainer=trainer, progress=False)
    with pytest.raises(ValueError, match=r"different sweep \(lr: 0.003 there, 0.001 now\)"):
        run_sweep(plan_sweep(replace(spec, lr=1e-3)), tmp_path, trainer=trainer, progress=False)
    assert len(RunStore(tmp_path)) == len(first.runs) and set(calls) == {3e-3}
    bigger = plan_sweep(replace(spec, budgets=(1e11, 3e11)))  # more budgets: the same sweep
    run_sweep(bigger, tmp_path, trainer=trainer, progress=False)
    frame = results_frame(list(RunStore(tmp_path).records()))
    assert sorted(frame["budget"].unique()) == [1e11, 3e11] and set(calls) == {3e-3}
    run_sweep(plan_sweep(replace(spec, lr=1e-3)), tmp_path, trainer=trainer, progress=False,
              allow_other_spec=True)
    assert set(calls) == {3e-3, 1e-3}


@pytest.fixture
def no_planning(monkeypatch):
    """Make a command fail loudly if it gets as far as planning (and so training)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the sweep got as far as planning")

    monkeypatch.setattr("scalingkit.runs.sweep.plan_sweep", refuse)


def test_sweep_refuses_an_out_folder_made_for_another_preset(tmp_path, capsys, no_planning):
    from scalingkit.runs.sweep import GRID_FIELDS, preset, spec_dict

    store, _ = small_store(tmp_path / "ref", 0)
    store.bind_spec(spec_dict(preset("reference")), extensible=GRID_FIELDS)
    assert main(["sweep", "--preset", "quick", "--out", str(store.root)]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert "holds runs of a different sweep (eval_tokens: 32768 there, 8192 now" in err
    assert "--allow-other-spec" in err and len(store) == 0


@pytest.mark.parametrize("where", ["same", "inside", "parent"])
def test_sweep_export_into_its_own_folder_fails_before_training(tmp_path, capsys, no_planning,
                                                                where):
    out = tmp_path / "s"
    dest = {"same": out, "inside": out / "export", "parent": tmp_path}[where]
    assert main(["sweep", "--budgets", "1e11", "--out", str(out), "--export", str(dest)]) == 2
    err = one_line_error(capsys.readouterr().err)
    assert err.startswith(f"error: cannot export the run store {out} into {dest}")


def test_sweep_export_to_a_non_empty_folder_fails_before_training(tmp_path, capsys,
                                                                  no_planning):
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "keep.txt").write_text("mine")
    argv = ["sweep", "--budgets", "1e11", "--out", str(tmp_path / "s")]
    assert main([*argv, "--export", str(tmp_path / "dest")]) == 2
    assert "is not empty; choose an empty folder, or pass --merge" in one_line_error(
        capsys.readouterr().err)
    assert main([*argv, "--export", str(tmp_path / "dest"), "--merge"]) == 2
    assert "is not a run store" in one_line_error(capsys.readouterr().err)
    assert main([*argv, "--merge"]) == 2
    assert "--merge only applies to --export" in one_line_error(capsys.readouterr().err)


# -- export ------------------------------------------------------------------------

def test_export_into_itself_is_a_clear_error(tmp_path):
    store, _ = small_store(tmp_path / "s", 1)
    for dest in (store.root, tmp_path / "s" / ".", store.runs_dir):
        with pytest.raises(ValueError, match="one folder contains the other"):
            store.export(dest)


def test_export_refuses_a_non_empty_destination(tmp_path):
    store, _ = small_store(tmp_path / "s", 2)
    dest = tmp_path / "e"
    dest.mkdir()
    (dest / "README.md").write_text("mine")
    with pytest.raises(ValueError, match=r"export destination .*e is not empty"):
        store.export(dest)
    assert [p.name for p in dest.iterdir()] == ["README.md"]
    (dest / "README.md").unlink()
    assert store.export(dest) == 2  # an empty folder is fine


def test_export_merge_keeps_both_sweep_logs_and_the_finished_records(tmp_path):
    a, ids = small_store(tmp_path / "a", 3)
    a.append_log({"command": "first sweep"})
    b = RunStore(tmp_path / "b")
    assert a.export(b.root) == 3
    marker = b.marker_path.read_bytes()
    b.append_log({"command": "sweep on the other machine"})
    b.update(ids[2], "done", result={"final_loss": 3.0})
    a.update(ids[0], "done", result={"final_loss": 2.0})
    a.append_log({"command": "second sweep"})
    with pytest.raises(ValueError, match="not empty"):
        a.export(b.root)
    assert a.export(b.root, merge=True) == 3
    assert [e["command"] for e in b.read_log()] == ["first sweep", "sweep on the other machine",
                                                    "second sweep"]
    assert b.get(ids[0]).result == {"final_loss": 2.0}  # finished here beats planned there
    assert b.get(ids[2]).result == {"final_loss": 3.0}  # and the other way round
    assert b.get(ids[1]).status == "planned" and b.marker_path.read_bytes() == marker
    before = {r: b._record_path(r).read_bytes() for r in ids}
    a.update(ids[2], "done", result={"final_loss": 9.0})
    with pytest.raises(ValueError, match="1 run\\(s\\) finished differently"):
        a.export(b.root, merge=True)
    assert {r: b._record_path(r).read_bytes() for r in ids} == before  # nothing written


def test_export_merge_refuses_a_store_of_another_sweep(tmp_path):
    a, _ = small_store(tmp_path / "a", 1)
    a.bind_spec({"lr": 1})
    b, _ = small_store(tmp_path / "b", 1)
    b.bind_spec({"lr": 2})
    with pytest.raises(ValueError, match="made for a different sweep spec"):
        a.export(b.root, merge=True)


# -- claims --------------------------------------------------------------------------

HOST = socket.gethostname()


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_claim(store: RunStore, rid: str, *, pid: int, host: str, age_s: float) -> Path:
    """A claim file as another process would leave it, last touched ``age_s`` ago."""
    path = store.run_dir(rid) / "claim.json"
    then = time.time() - age_s
    path.write_text(json.dumps({"pid": pid, "host": host, "started": then, "token": "other"}))
    os.utime(path, (then, then))
    return path


def test_a_claim_names_its_owner_and_keeps_the_run_from_others(tmp_path):
    store, (a, b) = small_store(tmp_path, 2)
    claim = store.try_claim(a)
    owner = json.loads(claim.path.read_text())
    assert (owner["pid"], owner["host"]) == (os.getpid(), HOST)
    assert abs(owner["started"] - time.time()) < 60
    assert store.try_claim(a) is None  # held by a live process: this one
    assert store.pending() == [b]
    claim.release()
    assert not claim.path.exists() and store.pending() == sorted([a, b])
    with store.try_claim(a) as again:
        assert again.held
    assert not again.path.exists()


CLAIMS = {  # owner -> (pid fixture or "self", host, seconds since its heartbeat, stale?)
    "dead process on this host": ("dead_pid", HOST, 0.0, True),
    "live process on this host": ("live_pid", HOST, 0.0, False),
    "live pid on this host, silent past the timeout (a reused pid)": ("live_pid", HOST,
                                                                      3600.0, True),
    "this pid, left by an earlier process": ("self", HOST, 0.0, True),
    "another host, recent heartbeat": ("live_pid", "elsewhere.example", 60.0, False),
    "another host, silent past the timeout": ("live_pid", "elsewhere.example", 3600.0, True),
}


@pytest.mark.parametrize("case", list(CLAIMS))
def test_stale_claims_are_taken_over_and_live_ones_are_not(tmp_path, request, case):
    which, host, age, stale = CLAIMS[case]
    pid = os.getpid() if which == "self" else request.getfixturevalue(which)
    store, (rid,) = small_store(tmp_path, 1)
    path = write_claim(store, rid, pid=pid, host=host, age_s=age)
    assert store.claim_of(rid)["stale"] is stale
    assert store.pending() == ([rid] if stale else [])
    claim = store.try_claim(rid)
    assert (claim is not None) is stale
    if claim is None:
        assert json.loads(path.read_text())["pid"] == pid  # left alone
    else:
        assert json.loads(path.read_text())["token"] == claim.owner["token"]
        claim.release()


def test_a_held_claim_heartbeats(tmp_path, monkeypatch):
    monkeypatch.setattr(claims_module, "HEARTBEAT_S", 0.02)
    store = RunStore(tmp_path, claim_timeout_s=60.0)
    _, (rid,) = small_store(tmp_path, 1)
    with store.try_claim(rid) as claim:
        old = time.time() - 3600
        os.utime(claim.path, (old, old))
        deadline = time.time() + 10
        while store.claim_of(rid)["age_s"] > 60 and time.time() < deadline:
            time.sleep(0.02)
        assert not store.claim_of(rid)["stale"]
    assert store.claim_of(rid) is None


def test_release_leaves_a_claim_that_was_taken_over(tmp_path):
    store, (rid,) = small_store(tmp_path, 1)
    claim = store.try_claim(rid)
    write_claim(store, rid, pid=1, host="elsewhere.example", age_s=0.0)
    assert not claim.held
    claim.release()
    assert json.loads(claim.path.read_text())["host"] == "elsewhere.example"


LOG_SCRIPT = """
import sys
from scalingkit.runs.store import RunStore
for i in range(25):
    RunStore(sys.argv[1]).append_log({"who": sys.argv[2], "i": i})
"""


def test_sweep_log_entries_from_concurrent_processes_are_all_kept(tmp_path):
    store, _ = small_store(tmp_path, 0)
    procs = [subprocess.Popen([sys.executable, "-c", LOG_SCRIPT, str(tmp_path), who])
             for who in "ab"]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    log = store.read_log()
    assert sorted((e["who"], e["i"]) for e in log) == [(w, i) for w in "ab" for i in range(25)]


def test_export_under_a_file_is_refused_before_writing(tmp_path):
    store, _ = small_store(tmp_path / "s", 1)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"cannot be created: .*f is a file"):
        store.check_export(tmp_path / "f" / "deeper" / "export")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        store.export(tmp_path / "f")
