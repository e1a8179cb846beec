"""Export a run store for committing: records and sweep log, never checkpoints or claims."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from scalingkit.runs.files import LOCK_FILE, atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from scalingkit.runs.store import RunStore

def check_export(store: RunStore, dest: str | os.PathLike, *, merge: bool = False) -> None:
    """Raise ``ValueError`` if :func:`export` to ``dest`` would be refused.

    Cheap enough to call before a sweep trains anything.
    """
    dest = Path(dest)
    here, there = store.root.resolve(), dest.resolve()
    if here == there or there.is_relative_to(here) or here.is_relative_to(there):
        raise ValueError(f"cannot export the run store {store.root} into {dest}: "
                         "one folder contains the other; choose a separate folder")
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"export destination {dest} is a file, not a folder")
    above = dest
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ValueError(f"export destination {dest} cannot be created: {above} is a file")
    if not dest.is_dir() or not any(dest.iterdir()):
        return
    if not merge:
        raise ValueError(f"export destination {dest} is not empty; choose an empty folder, "
                         "or pass --merge (merge=True) to add these records to the store there")
    other = type(store)(dest)
    other.read_marker()
    ours, theirs = store.made_for(), other.made_for()
    if ours is not None and theirs is not None and ours != theirs:
        raise ValueError(f"cannot merge into {dest}: it was made for a different sweep "
                         "spec; export into an empty folder instead")

def export(store: RunStore, dest: str | os.PathLike, *, merge: bool = False) -> int:
    """Copy the store's records and sweep log, without checkpoints (for committing).

    Only ``store.json``, ``sweeps.json`` and each ``runs/<id>/record.json``
    are copied; checkpoints, claims, temporary files and the trainer's own
    ``config.json``/``result.json`` (duplicated in the record) are not.

    Parameters
    ----------
    dest : str or PathLike
        A new or empty folder; with ``merge=True`` also an existing store.
    merge : bool, default=False
        Add the records to the store at ``dest``. Its ``store.json`` stays,
        the entries of both ``sweeps.json`` are kept (ours appended), and a
        run in both keeps the record that got further: a finished one over
        an unfinished one, else ours. Two different finished records of one
        run are a conflict, and then nothing is written.

    Returns
    -------
    int
        The number of records in this store, all now present at ``dest``.

    Raises
    ------
    ValueError
        If ``dest`` is this store (or inside it, or around it), is not
        empty and ``merge`` is False, is not a run store when merging, was
        made for another spec, or holds conflicting records.
    """
    check_export(store, dest, merge=merge)
    store.read_marker()
    dest = Path(dest)
    other = type(store)(dest)
    copies, conflicts = [], []
    for run_id in store.ids():
        record = store.get(run_id)  # a corrupt record stops the export here
        data = store._record_path(run_id).read_bytes()
        if run_id in other:
            theirs = other.get(run_id)
            if other._record_path(run_id).read_bytes() == data:
                continue
            if theirs.is_final and record.is_final:
                conflicts.append(run_id)
                continue
            if theirs.is_final:
                continue
        copies.append((run_id, data))
    if conflicts:
        raise ValueError(f"cannot merge into {dest}: {len(conflicts)} run(s) finished "
                         f"differently in the two stores ({', '.join(conflicts[:3])}"
                         f"{', ...' if len(conflicts) > 3 else ''}); nothing was written")
    try:
        other.runs_dir.mkdir(parents=True, exist_ok=True)
        # Lock a destination that sweeps write to (it has a .lock); a plain export
        # folder stays free of one.
        lock = other._lock() if (dest / LOCK_FILE).exists() else contextlib.nullcontext()
        with lock:
            if not other.marker_path.exists():
                atomic_write_bytes(other.marker_path, store.marker_path.read_bytes())
            log, ours = other.read_log(), store.read_log()
            new = [e for e in ours if e not in log]
            if new:
                atomic_write_json(other.log_path, [*log, *new])
            for run_id, data in copies:
                other.run_dir(run_id).mkdir(exist_ok=True)
                atomic_write_bytes(other._record_path(run_id), data)
    except OSError as exc:
        raise ValueError(f"cannot export to {dest}: {exc.strerror or exc}") from exc
    return len(store.ids())
