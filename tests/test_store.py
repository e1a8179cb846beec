"""The run store: ids, atomic records, statuses, append-only behaviour, export."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

from scalingkit.store import STATUSES, RunStore, atomic_write_json, config_hash


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


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ValueError, match="is not writable"):
            RunStore(locked / "sweep").ensure_writable()
    finally:
        locked.chmod(stat.S_IRWXU)


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
