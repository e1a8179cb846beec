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
``runs/<id>/claim.json``, created atomically (a hard link of a complete
temporary file, which fails if the claim exists) under the store's lock. The
claim names its owner (pid, host name, start time, a random token), and the
owner touches it every :data:`HEARTBEAT_S` seconds while it trains. So two
sweeps on one folder, or a sweep and a process pool, never train the same run:
:meth:`RunStore.pending` leaves out runs claimed by a live process, and
:meth:`RunStore.try_claim` refuses them. A claim is *stale*, and taken over by
the next process that wants the run, when

- its owner ran on this host and that pid is gone (or is a zombie), or is
  this very process, which does not hold it any more (a pid reused after a
  restart), or
- its heartbeat is older than ``claim_timeout_s`` (default
  :data:`CLAIM_TIMEOUT_S`, 10 minutes). This is the only rule for a claim
  from another host, whose pids cannot be checked from here: a run whose
  owner died on another node is retried 10 minutes after its last heartbeat.
  A process stopped for longer than that (suspended, not killed) can lose its
  claim; it then neither writes the run's outcome nor removes the new claim.

The lock is ``fcntl.flock`` on ``DIR/.lock``; on NFS, Linux maps it to POSIX
locks, which need a working lock daemon, and the clocks of the hosts should
agree to within a minute for the heartbeat rule.

What a store was made for
-------------------------
``store.json`` records the spec of the sweep that created the store (older
stores: the spec of the first entry of ``sweeps.json``). A later sweep with a
different recipe is refused, so one folder never silently mixes two sweeps
that a fit would then read as one (see :meth:`RunStore.bind_spec`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims stay atomic, writes are not serialised
    fcntl = None

#: Every status a run can have.
STATUSES = ("planned", "running", "done", "diverged", "failed")
#: Statuses that a resumed sweep does not run again.
FINAL_STATUSES = ("done", "diverged")
#: Length of a run id (hex digits of the SHA-256 of the config).
ID_LENGTH = 16
#: Seconds between two touches of a held claim.
HEARTBEAT_S = 30.0
#: Seconds after its last heartbeat that a claim counts as abandoned, whatever its host.
CLAIM_TIMEOUT_S = 600.0
_FORMAT = "scalingkit-run-store/1"
_MARKER = "store.json"
_LOG = "sweeps.json"
_LOCK = ".lock"
_CLAIM = "claim.json"
_RECORD_FIELDS = {"id": (str,), "config": (dict,), "plan": (dict,), "status": (str,),
                  "result": (dict, type(None)), "error": (str, type(None)),
                  "history": (list,)}
_REQUIRED_FIELDS = ("id", "config", "plan")


def config_hash(config: Mapping[str, Any]) -> str:
    """Return the run id of a training config: a hash of its canonical JSON.

    Parameters
    ----------
    config : mapping
        The full training config as plain JSON types (``TrainConfig.to_dict()``).

    Returns
    -------
    str
        The first :data:`ID_LENGTH` hex digits of the SHA-256 of the config
        serialised with sorted keys, so key order does not matter.
    """
    try:
        text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config is not plain JSON data: {exc}") from exc
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _temp_copy(path: Path, data: bytes) -> str:
    """Write ``data`` to a new, fsync'ed temporary file beside ``path``; return its name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or none.

    The data go to a temporary file in the same folder, which is flushed,
    fsync'ed and renamed over ``path``; the folder is fsync'ed afterwards so
    the rename itself survives a power cut.
    """
    path = Path(path)
    tmp = _temp_copy(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (see :func:`atomic_write_bytes`).

    Nothing is written, and no temporary file is left, when ``obj`` is not
    plain JSON data.
    """
    atomic_write_bytes(path, _json_bytes(obj))


def create_exclusive(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True if this call created it.

    The complete file is written under a temporary name and hard-linked to
    ``path``; the link fails if ``path`` exists, so of two processes racing
    exactly one wins and nobody ever sees a half-written file. Where the file
    system has no hard links, ``open(O_CREAT | O_EXCL)`` does the same job.
    """
    path = Path(path)
    tmp = _temp_copy(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some FUSE or SMB mounts)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        Path(tmp).unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def json_safe(obj: Any) -> Any:
    """Copy ``obj`` with non-finite floats (a diverged loss) replaced by None.

    JSON has no NaN or infinity, and records must stay strict JSON.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def _json_type(obj: Any) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(obj), "number")


def read_json_file(path: Path) -> Any:
    """Parse a JSON file, or raise a one-line ``ValueError`` that names it.

    Raises
    ------
    ValueError
        If the file cannot be read or is not valid JSON.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a JSON text file") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


@dataclass
class RunRecord:
    """Everything the store knows about one run.

    Attributes
    ----------
    id : str
        :func:`config_hash` of ``config``.
    config : dict
        The full training config (``TrainConfig.to_dict()``).
    plan : dict
        What the planner intended: at least ``budget`` (FLOP), ``params`` and
        ``tokens``; see :mod:`scalingkit.runs.sweep`.
    status : str
        One of :data:`STATUSES`.
    result : dict or None
        ``TrainResult.to_dict()`` once the run finished (done or diverged),
        including its training curves.
    error : str or None
        The message of the latest failure, or the trainer's message for a
        diverged run; kept while a failed run is retried and cleared when it
        ends ``done`` (every message stays in ``history``).
    history : list of dict
        Every status change as ``{"status": ..., "time": <unix seconds>}``,
        with ``"error"`` when the change carried a message and ``"host"`` and
        ``"pid"`` for the process that started a run.
    """

    id: str
    config: dict
    plan: dict
    status: str = "planned"
    result: dict | None = None
    error: str | None = None
    history: list[dict] = field(default_factory=list)

    @property
    def is_final(self) -> bool:
        """True for a run that a resumed sweep skips (done or diverged)."""
        return self.status in FINAL_STATUSES

    def to_dict(self) -> dict:
        """The record as plain JSON data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """Rebuild a record from :meth:`to_dict` output, checking every field.

        Raises
        ------
        ValueError
            If ``data`` is not an object, lacks a field, has an unknown one,
            a field of the wrong type, or an unknown status.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got a JSON {_json_type(data)}")
        missing = [k for k in _REQUIRED_FIELDS if k not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        unknown = sorted(set(data) - set(_RECORD_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        for key, types in _RECORD_FIELDS.items():
            if key in data and not isinstance(data[key], types):
                raise ValueError(f"field {key!r} is a JSON {_json_type(data[key])}")
        if not all(isinstance(h, Mapping) for h in data.get("history", [])):
            raise ValueError("field 'history' must hold objects")
        record = cls(**dict(data))
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r}")
        return record


# --------------------------------------------------------------------------- claims

#: Claims this process holds: token -> Claim (so a claim with our own pid that is
#: not in here is a leftover of an earlier process with the same pid).
_HELD: dict[str, Claim] = {}
_HELD_LOCK = threading.Lock()


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS), or it just exited
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


class Claim:
    """This process's hold on one run; see the module docstring.

    Use it as a context manager: inside, a daemon thread touches the claim
    file every :data:`HEARTBEAT_S` seconds; on exit the claim is released.

    Attributes
    ----------
    run_id : str
    path : Path
        The claim file, ``runs/<id>/claim.json``.
    owner : dict
        ``pid``, ``host``, ``started`` (unix seconds) and ``token``.
    """

    def __init__(self, store: RunStore, run_id: str, owner: dict) -> None:
        self.store = store
        self.run_id = run_id
        self.path = store.run_dir(run_id) / _CLAIM
        self.owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """True while the claim file still carries this claim's token."""
        current = self.store._read_claim(self.run_id)
        return current is not None and current.get("token") == self.owner["token"]

    def heartbeat(self) -> None:
        """Touch the claim file (its modification time is the heartbeat)."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.path)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.heartbeat()

    def __enter__(self) -> Claim:
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"claim-{self.run_id}")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Stop the heartbeat and remove the claim file if it is still this claim's."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with _HELD_LOCK:
            _HELD.pop(self.owner["token"], None)
        with self.store._lock():
            if self.held:
                self.path.unlink(missing_ok=True)


def release_all_claims() -> int:
    """Release every claim this process holds (for a job about to be preempted).

    Returns
    -------
    int
        Claims released.
    """
    with _HELD_LOCK:
        claims = list(_HELD.values())
    for claim in claims:
        claim.release()
    return len(claims)


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
        fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
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
            raise ValueError(f"{path}: expected a JSON object, got a JSON {_json_type(data)}")
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
                    and any(self.root.iterdir()):
                raise ValueError(f"{self.root} is not empty and not a run store "
                                 f"(no {_MARKER}); choose a new or empty folder")
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            if self.marker_path.exists():
                self.read_marker()
                probe = self.root / f".write-probe.{os.getpid()}"
                probe.write_text("ok")
                probe.unlink()
            elif not create_exclusive(self.marker_path, _json_bytes(
                    {"format": _FORMAT, "created": time.time()})):
                self.read_marker()  # another process created it just now
        except OSError as exc:
            raise ValueError(
                f"output folder {str(self.root)!r} is not writable: {exc.strerror or exc}"
            ) from exc

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

    # -- claims ---------------------------------------------------------------
    def _read_claim(self, run_id: str) -> dict | None:
        """The owner written in a run's claim file, ``{}`` if unreadable, None if none."""
        try:
            data = json.loads((self.run_dir(run_id) / _CLAIM).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def claim_of(self, run_id: str) -> dict | None:
        """Who holds a run: the claim's owner plus ``age_s`` and ``stale``, or None.

        ``age_s`` is the time since the last heartbeat (seconds); ``stale`` says
        whether another process may take the run over (module docstring).
        """
        path = self.run_dir(run_id) / _CLAIM
        owner = self._read_claim(run_id)
        try:
            age = max(0.0, time.time() - path.stat().st_mtime)
        except FileNotFoundError:
            return None
        if owner is None:
            return None
        return {**owner, "age_s": age, "stale": self._is_stale(owner, age)}

    def _is_stale(self, owner: Mapping[str, Any], age_s: float) -> bool:
        if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
            if owner["pid"] == os.getpid():
                with _HELD_LOCK:
                    return owner.get("token") not in _HELD
            if not _pid_alive(owner["pid"]):
                return True
        return age_s > self.claim_timeout_s

    def try_claim(self, run_id: str) -> Claim | None:
        """Take a run for this process, or return None if a live process holds it.

        A stale claim (its owner is gone) is taken over. Use the returned
        :class:`Claim` as a context manager so that it heartbeats and is
        released.

        Raises
        ------
        KeyError
            If no run has this id.
        """
        if run_id not in self:
            raise KeyError(run_id)
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                 "token": uuid.uuid4().hex}
        path = self.run_dir(run_id) / _CLAIM
        with self._lock():
            if not create_exclusive(path, _json_bytes(owner)):
                current = self.claim_of(run_id)
                if current is not None and not current["stale"]:
                    return None
                atomic_write_json(path, owner)  # take over (the lock keeps this exclusive)
            claim = Claim(self, run_id, owner)
            with _HELD_LOCK:
                _HELD[owner["token"]] = claim
        return claim

    def break_claim(self, run_id: str) -> bool:
        """Remove a run's claim whoever holds it (its owner is known to be dead).

        Returns
        -------
        bool
            Whether there was a claim.
        """
        path = self.run_dir(run_id) / _CLAIM
        with self._lock():
            existed = path.exists()
            path.unlink(missing_ok=True)
        return existed

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
            create_exclusive(self._record_path(run_id), _json_bytes(record.to_dict()))
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

    # -- export -----------------------------------------------------------------
    def check_export(self, dest: str | os.PathLike, *, merge: bool = False) -> None:
        """Raise ``ValueError`` if :meth:`export` to ``dest`` would be refused.

        Cheap enough to call before a sweep trains anything.
        """
        dest = Path(dest)
        here, there = self.root.resolve(), dest.resolve()
        if here == there or there.is_relative_to(here) or here.is_relative_to(there):
            raise ValueError(f"cannot export the run store {self.root} into {dest}: "
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
        other = RunStore(dest)
        other.read_marker()
        ours, theirs = self.made_for(), other.made_for()
        if ours is not None and theirs is not None and ours != theirs:
            raise ValueError(f"cannot merge into {dest}: it was made for a different sweep "
                             "spec; export into an empty folder instead")

    def export(self, dest: str | os.PathLike, *, merge: bool = False) -> int:
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
        self.check_export(dest, merge=merge)
        self.read_marker()
        dest = Path(dest)
        other = RunStore(dest)
        copies, conflicts = [], []
        for run_id in self.ids():
            record = self.get(run_id)  # a corrupt record stops the export here
            data = self._record_path(run_id).read_bytes()
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
            lock = other._lock() if (dest / _LOCK).exists() else contextlib.nullcontext()
            with lock:
                if not other.marker_path.exists():
                    atomic_write_bytes(other.marker_path, self.marker_path.read_bytes())
                log, ours = other.read_log(), self.read_log()
                new = [e for e in ours if e not in log]
                if new:
                    atomic_write_json(other.log_path, [*log, *new])
                for run_id, data in copies:
                    other.run_dir(run_id).mkdir(exist_ok=True)
                    atomic_write_bytes(other._record_path(run_id), data)
        except OSError as exc:
            raise ValueError(f"cannot export to {dest}: {exc.strerror or exc}") from exc
        return len(self.ids())
