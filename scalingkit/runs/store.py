"""A crash-safe, append-only store of training runs on disk, safe for concurrent sweeps.

Layout of a store folder::

    DIR/
      store.json              # format marker, creation time, the spec it was made for
      sweeps.json             # one entry per sweep invocation (spec, provenance), appended
      .lock                   # an empty file that writers lock (fcntl.flock) for a moment
      runs/<id>/record.json   # one record per run (config, plan, status, result, history)
      runs/<id>/claim.json    # while a process works on the run: its pid, host, start time
      runs/<id>/checkpoint.pt # the trainer's checkpoint while a run is partial

Each run is keyed by a hash of its full training config, so planning the same
sweep twice addresses the same records. Every write goes to a temporary file
in the same folder, is flushed and fsync'ed, and then renamed over the old
file; a process killed at any moment leaves either the old record or the new
one, never half of one. Records are never deleted: re-adding a known config
leaves its record alone, and every status change is appended to its
``history`` together with its error message, so a retry keeps the reason of
the failure before it.

A run's status is one of ``planned``, ``running``, ``done``, ``diverged`` or
``failed`` (with the error message). ``done`` and ``diverged`` are final: a
resumed sweep skips them. The others are (re)started, and a partial run
continues from its checkpoint because the trainer resumes from
``runs/<id>/checkpoint.pt``.

Concurrency
-----------
A process works on a run only while it holds the run's *claim*,
``runs/<id>/claim.json``; see :mod:`scalingkit.runs.claims`. Records and
folders are written atomically (:mod:`scalingkit.runs.files`); a record is a
:class:`~scalingkit.runs.record.RunRecord`.

What a store was made for
-------------------------
``store.json`` records the spec of the sweep that created the store (older
stores: the spec of the first entry of ``sweeps.json``). A later sweep with a
different recipe is refused, so one folder never silently mixes two sweeps
that a fit would then read as one (see :meth:`RunStore.bind_spec`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from scalingkit.runs import claims, export
from scalingkit.runs.claims import CLAIM_TIMEOUT_S, Claim
from scalingkit.runs.files import (
    LOCK_FILE,
    atomic_write_json,
    create_exclusive,
    json_bytes,
    json_safe,
    json_type,
    read_json_file,
)
from scalingkit.runs.record import STATUSES, RunRecord, config_hash

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims stay atomic, writes are not serialised
    fcntl = None

_FORMAT = "scalingkit-run-store/1"
_MARKER = "store.json"
_LOG = "sweeps.json"


# --------------------------------------------------------------------------- the store


class RunStore:
    """A folder of run records; see the module docstring for the layout.

    Parameters
    ----------
    root : str or Path
        The store folder. It is created on first write.
    claim_timeout_s : float, default=CLAIM_TIMEOUT_S
        Seconds without a heartbeat after which another process may take over
        a claimed run (the only rule for claims from another host).

    Examples
    --------
    >>> store = RunStore(tmp_path)                              # doctest: +SKIP
    >>> rid = store.add({"lr": 1e-3}, plan={"budget": 1e12})    # doctest: +SKIP
    >>> store.get(rid).status                                   # doctest: +SKIP
    'planned'
    """

    def __init__(self, root: str | os.PathLike, *,
                 claim_timeout_s: float = CLAIM_TIMEOUT_S) -> None:
        self.root = Path(root)
        self.claim_timeout_s = float(claim_timeout_s)

    # -- paths --------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        """The folder holding one sub-folder per run."""
        return self.root / "runs"

    @property
    def marker_path(self) -> Path:
        """``store.json``, the file that makes a folder a run store."""
        return self.root / _MARKER

    @property
    def log_path(self) -> Path:
        """``sweeps.json``, one entry per sweep invocation."""
        return self.root / _LOG

    def run_dir(self, run_id: str) -> Path:
        """The folder of one run (its record, claim and checkpoint)."""
        return self.runs_dir / run_id

    def _record_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "record.json"

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the store's lock (``flock`` on ``.lock``) for a short read-modify-write."""
        if fcntl is None:  # pragma: no cover - Windows
            yield
            return
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor drops the lock

    # -- the marker, store.json -----------------------------------------------
    def read_marker(self) -> dict:
        """Read and check ``store.json``.

        Raises
        ------
        ValueError
            Naming the file, if it is missing, not valid JSON, not a JSON
            object, or of another format.
        """
        path = self.marker_path
        if not path.exists():
            raise ValueError(f"{self.root} is not a run store (no {_MARKER})")
        data = read_json_file(path)
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object, got a JSON {json_type(data)}")
        if data.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a scalingkit run store (format "
                             f"{data.get('format')!r}, expected {_FORMAT!r})")
        return data

    def ensure_writable(self) -> None:
        """Create the store folder and prove that files can be written there.

        A folder that exists already must be a run store or empty: a store is
        never created on top of someone else's files.

        Raises
        ------
        ValueError
            If the folder cannot be created or written to (before any
            training starts, so a sweep fails fast), if its ``store.json`` is
            corrupt, or if it is a non-empty folder that is not a run store.
        """
        try:
            if self.root.is_dir() and not self.marker_path.exists() \
                    and any(not self._being_created(p.name) for p in self.root.iterdir()):
                raise ValueError(f"{self.root} is not empty and not a run store "
                                 f"(no {_MARKER}); choose a new or empty folder")
            self.root.mkdir(parents=True, exist_ok=True)
            if self.marker_path.exists():
                self.read_marker()
                probe = self.root / f".write-probe.{os.getpid()}"
                probe.write_text("ok")
                probe.unlink()
            elif not create_exclusive(self.marker_path, json_bytes(
                    {"format": _FORMAT, "created": time.time()})):
                self.read_marker()  # another process created it just now
            # runs/ only after the marker, so a folder being made a store by another
            # process never looks like someone else's files
            self.runs_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise ValueError(
                f"output folder {str(self.root)!r} is not writable: {exc.strerror or exc}"
            ) from exc

    @staticmethod
    def _being_created(name: str) -> bool:
        """Whether ``name`` is what another process leaves while creating a store:
        the lock file or a temporary copy of the marker (``.store.json.*.tmp``)."""
        return name == LOCK_FILE or (name.startswith(f".{_MARKER}.") and name.endswith(".tmp"))

    # -- what the store was made for ------------------------------------------
    def read_log(self) -> list[dict]:
        """The entries of ``sweeps.json`` (empty if there is none).

        Raises
        ------
        ValueError
            Naming the file, if it is not a JSON array of objects.
        """
        if not self.log_path.exists():
            return []
        data = read_json_file(self.log_path)
        if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
            raise ValueError(f"{self.log_path}: expected a JSON array of objects")
        return data

    def append_log(self, entry: Mapping[str, Any]) -> None:
        """Append one entry to ``sweeps.json`` (under the lock: no entry is lost)."""
        entry = json_safe(dict(entry))
        with self._lock():
            atomic_write_json(self.log_path, [*self.read_log(), entry])

    def made_for(self) -> dict | None:
        """The spec this store was made for, or None if it never recorded one.

        ``store.json``'s ``spec``; for stores written before it existed, the
        ``spec`` of the first entry of ``sweeps.json``.
        """
        spec = self.read_marker().get("spec")
        if spec is None:
            log = self.read_log()
            spec = log[0].get("spec") if log else None
        return spec if isinstance(spec, dict) else None

    def check_spec(self, spec: Mapping[str, Any], *, extensible: Iterable[str] = (),
                   allow_other: bool = False) -> None:
        """Refuse to add runs of ``spec`` to a store made for a different spec.

        Parameters
        ----------
        spec : mapping
            The spec (plain JSON data) of the runs about to be added.
        extensible : iterable of str, default=()
            Fields that may differ: they extend the same experiment (more
            budgets, more sizes) rather than change how a run trains.
        allow_other : bool, default=False
            Accept any spec (the caller asked to mix sweeps in one store).

        Raises
        ------
        ValueError
            Naming the store and the first differing fields.
        """
        if allow_other or not self.marker_path.exists():
            return
        recorded = self.made_for()
        if recorded is None:
            return
        new = json_safe(dict(spec))
        skip = set(extensible)
        differ = sorted(k for k in set(recorded) | set(new)
                        if k not in skip and recorded.get(k) != new.get(k))
        if not differ:
            return
        shown = "; ".join(f"{k}: {recorded.get(k)!r} there, {new.get(k)!r} now"
                          for k in differ[:3])
        more = f"; and {len(differ) - 3} more" if len(differ) > 3 else ""
        raise ValueError(
            f"{self.root} holds runs of a different sweep ({shown}{more}); use another "
            "output folder, or pass --allow-other-spec to add these runs to it anyway"
        )

    def bind_spec(self, spec: Mapping[str, Any], *, extensible: Iterable[str] = (),
                  allow_other: bool = False) -> None:
        """Check ``spec`` (:meth:`check_spec`) and record it if the store has none yet.

        The first spec stays the store's: a sweep admitted with
        ``allow_other=True`` is recorded in ``sweeps.json`` only.
        """
        with self._lock():
            self.check_spec(spec, extensible=extensible, allow_other=allow_other)
            marker = self.read_marker()
            if self.made_for() is None:
                atomic_write_json(self.marker_path, {**marker, "spec": json_safe(dict(spec))})

    # -- reading ------------------------------------------------------------
    def ids(self) -> list[str]:
        """Ids of every run in the store, sorted."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.runs_dir.glob("*/record.json"))

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and self._record_path(run_id).exists()

    def __len__(self) -> int:
        return len(self.ids())

    def get(self, run_id: str) -> RunRecord:
        """Read one record.

        Raises
        ------
        KeyError
            If no run has this id.
        ValueError
            Naming the file, if the record is not valid JSON or not a valid
            record (it never is after a crash, because writes are atomic;
            this catches hand edits and damaged copies).
        """
        path = self._record_path(run_id)
        if not path.exists():
            raise KeyError(run_id)
        try:
            data = json.loads(path.read_text())
            record = RunRecord.from_dict(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"corrupt run record {path}: {exc}") from None
        except OSError as exc:
            raise ValueError(f"cannot read run record {path}: {exc.strerror or exc}") from None
        if record.id != run_id:
            raise ValueError(f"corrupt run record {path}: it holds run {record.id!r}")
        return record

    def records(self) -> Iterator[RunRecord]:
        """Every record, in id order.

        The first unreadable record stops the iteration with a ``ValueError``
        naming its file: a fit that silently left out a run would give a
        different answer with no sign of it. :meth:`scan` lists every problem
        instead.

        Raises
        ------
        ValueError
            If ``store.json`` is corrupt or a record is.
        """
        self.read_marker()
        for run_id in self.ids():
            yield self.get(run_id)

    def scan(self) -> tuple[list[RunRecord], list[str]]:
        """Every readable record, and one message per unreadable one (naming its file)."""
        self.read_marker()
        good, bad = [], []
        for run_id in self.ids():
            try:
                good.append(self.get(run_id))
            except ValueError as exc:
                bad.append(str(exc))
        return good, bad

    def counts(self) -> dict[str, int]:
        """Number of runs per status (every status present, possibly 0)."""
        out = dict.fromkeys(STATUSES, 0)
        for record in self.records():
            out[record.status] += 1
        return out

    # -- claims (scalingkit.runs.claims) ---------------------------------------
    def _read_claim(self, run_id: str) -> dict | None:
        """The owner written in a run's claim file, ``{}`` if unreadable, None if none."""
        return claims.read_claim(self, run_id)

    def claim_of(self, run_id: str) -> dict | None:
        """Who holds a run: the claim's owner plus ``age_s`` and ``stale``, or None."""
        return claims.claim_of(self, run_id)

    def try_claim(self, run_id: str) -> Claim | None:
        """Take a run for this process, or None if a live process holds it (KeyError: no run)."""
        return claims.try_claim(self, run_id)

    def break_claim(self, run_id: str) -> bool:
        """Remove a run's claim whoever holds it (its owner is dead); whether there was one."""
        return claims.break_claim(self, run_id)

    # -- writing ------------------------------------------------------------
    def add(self, config: Mapping[str, Any], plan: Mapping[str, Any] | None = None) -> str:
        """Add a planned run unless a run with the same config exists.

        Creates the store (``store.json``) first if the folder is not one yet,
        as :meth:`ensure_writable` does.

        Parameters
        ----------
        config : mapping
            The full training config as plain JSON types.
        plan : mapping, optional
            Planner metadata kept beside the config (budget, sizes, ...).

        Returns
        -------
        str
            The run id (existing or new). An existing record is not changed,
            even by a process adding it at the same moment.
        """
        run_id = config_hash(config)
        if not self.marker_path.exists():
            self.ensure_writable()
        if run_id not in self:
            record = RunRecord(id=run_id, config=dict(config), plan=json_safe(dict(plan or {})),
                               history=[{"status": "planned", "time": time.time()}])
            self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
            create_exclusive(self._record_path(run_id), json_bytes(record.to_dict()))
        return run_id

    def update(
        self, run_id: str, status: str, *, result: Mapping[str, Any] | None = None,
        error: str | None = None, note: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Set a run's status (and result or error) atomically; return the new record.

        The change is appended to the run's history with its error message,
        if any, and ``note`` (for example the host and pid of the process
        that starts the run). The record's ``error`` keeps the last message
        while a failed run is retried; it is replaced by a new message and
        cleared when the run ends ``done``.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        record = self.get(run_id)
        record.status = status
        if result is not None:
            record.result = json_safe(dict(result))
        if error is not None:
            record.error = error
        elif status == "done":
            record.error = None
        entry = {**json_safe(dict(note or {})), "status": status, "time": time.time()}
        if error is not None:
            entry["error"] = error
        record.history.append(entry)
        atomic_write_json(self._record_path(run_id), record.to_dict())
        return record

    def pending(self) -> list[str]:
        """Ids of runs that a (resumed) sweep still has to run.

        Final runs are left out, and so are runs claimed by a live process
        (this one included); a run whose owner died is pending again.
        """
        out = []
        for record in self.records():
            claim = None if record.is_final else self.claim_of(record.id)
            if not record.is_final and (claim is None or claim["stale"]):
                out.append(record.id)
        return out

    # -- export (scalingkit.runs.export) ----------------------------------------
    def check_export(self, dest: str | os.PathLike, *, merge: bool = False) -> None:
        """Raise ``ValueError`` if :meth:`export` to ``dest`` would be refused (cheap)."""
        export.check_export(self, dest, merge=merge)

    def export(self, dest: str | os.PathLike, *, merge: bool = False) -> int:
        """Copy records and sweep log to ``dest``, no checkpoints; see :func:`.export.export`."""
        return export.export(self, dest, merge=merge)
