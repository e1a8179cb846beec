"""Claims: which process works on which run of a run store, and for how long.

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
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scalingkit.runs.files import atomic_write_json, create_exclusive, json_bytes

if TYPE_CHECKING:
    from scalingkit.runs.store import RunStore

#: Seconds between two touches of a held claim.
HEARTBEAT_S = 30.0
#: Seconds after its last heartbeat that a claim counts as abandoned, whatever its host.
CLAIM_TIMEOUT_S = 600.0
#: A run's claim file, ``runs/<id>/claim.json``.
CLAIM_FILE = "claim.json"

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
        self.path = store.run_dir(run_id) / CLAIM_FILE
        self.owner = owner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """True while the claim file still carries this claim's token."""
        current = read_claim(self.store, self.run_id)
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


def read_claim(store: RunStore, run_id: str) -> dict | None:
    """The owner written in a run's claim file, ``{}`` if unreadable, None if none."""
    try:
        data = json.loads((store.run_dir(run_id) / CLAIM_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

def claim_of(store: RunStore, run_id: str) -> dict | None:
    """Who holds a run: the claim's owner plus ``age_s`` and ``stale``, or None.

    ``age_s`` is the time since the last heartbeat (seconds); ``stale`` says
    whether another process may take the run over (module docstring).
    """
    path = store.run_dir(run_id) / CLAIM_FILE
    owner = read_claim(store, run_id)
    try:
        age = max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
    if owner is None:
        return None
    return {**owner, "age_s": age, "stale": is_stale(store, owner, age)}

def is_stale(store: RunStore, owner: Mapping[str, Any], age_s: float) -> bool:
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        if owner["pid"] == os.getpid():
            with _HELD_LOCK:
                return owner.get("token") not in _HELD
        if not _pid_alive(owner["pid"]):
            return True
    return age_s > store.claim_timeout_s

def try_claim(store: RunStore, run_id: str) -> Claim | None:
    """Take a run for this process, or return None if a live process holds it.

    A stale claim (its owner is gone) is taken over. Use the returned
    :class:`Claim` as a context manager so that it heartbeats and is
    released.

    Raises
    ------
    KeyError
        If no run has this id.
    """
    if run_id not in store:
        raise KeyError(run_id)
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
             "token": uuid.uuid4().hex}
    path = store.run_dir(run_id) / CLAIM_FILE
    with store._lock():
        if not create_exclusive(path, json_bytes(owner)):
            current = claim_of(store, run_id)
            if current is not None and not current["stale"]:
                return None
            atomic_write_json(path, owner)  # take over (the lock keeps this exclusive)
        claim = Claim(store, run_id, owner)
        with _HELD_LOCK:
            _HELD[owner["token"]] = claim
    return claim

def break_claim(store: RunStore, run_id: str) -> bool:
    """Remove a run's claim whoever holds it (its owner is known to be dead).

    Returns
    -------
    bool
        Whether there was a claim.
    """
    path = store.run_dir(run_id) / CLAIM_FILE
    with store._lock():
        existed = path.exists()
        path.unlink(missing_ok=True)
    return existed
