"""A crash-safe, append-only store of training runs on disk.

Layout of a store folder::

    DIR/
      store.json              # format marker and creation time
      runs/<id>/record.json   # one record per run (config, plan, status, result)
      runs/<id>/checkpoint.pt # the trainer's checkpoint while a run is partial

Each run is keyed by a hash of its full training config, so planning the same
sweep twice addresses the same records. Every write goes to a temporary file
in the same folder, is flushed and fsync'ed, and then renamed over the old
file; a process killed at any moment leaves either the old record or the new
one, never half of one. Records are never deleted: re-adding a known config
leaves its record alone, and status changes are appended to its ``history``.

A run's status is one of ``planned``, ``running``, ``done``, ``diverged`` or
``failed`` (with the error message). ``done`` and ``diverged`` are final: a
resumed sweep skips them. The others are (re)started, and a partial run
continues from its checkpoint because the trainer resumes from
``runs/<id>/checkpoint.pt``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Every status a run can have.
STATUSES = ("planned", "running", "done", "diverged", "failed")
#: Statuses that a resumed sweep does not run again.
FINAL_STATUSES = ("done", "diverged")
#: Length of a run id (hex digits of the SHA-256 of the config).
ID_LENGTH = 16
_FORMAT = "scalingkit-run-store/1"


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


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` so that readers see all of it or none.

    The data go to a temporary file in the same folder, which is flushed,
    fsync'ed and renamed over ``path``; the folder is fsync'ed afterwards so
    the rename itself survives a power cut.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
        ``tokens``; see :mod:`scalingkit.sweep`.
    status : str
        One of :data:`STATUSES`.
    result : dict or None
        ``TrainResult.to_dict()`` once the run finished (done or diverged),
        including its training curves.
    error : str or None
        The error message of a failed run, or the trainer's message for a
        diverged one.
    history : list of dict
        Every status change as ``{"status": ..., "time": <unix seconds>}``.
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
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Rebuild a record from :meth:`to_dict` output, checking its status."""
        record = cls(**dict(data))
        if record.status not in STATUSES:
            raise ValueError(f"run {record.id}: unknown status {record.status!r}")
        return record


class RunStore:
    """A folder of run records; see the module docstring for the layout.

    Parameters
    ----------
    root : str or Path
        The store folder. It is created on first write.

    Examples
    --------
    >>> store = RunStore(tmp_path)                              # doctest: +SKIP
    >>> rid = store.add({"lr": 1e-3}, plan={"budget": 1e12})    # doctest: +SKIP
    >>> store.get(rid).status                                   # doctest: +SKIP
    'planned'
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # -- paths --------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        """The folder holding one sub-folder per run."""
        return self.root / "runs"

    def run_dir(self, run_id: str) -> Path:
        """The folder of one run (its record and its checkpoint)."""
        return self.runs_dir / run_id

    def _record_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "record.json"

    # -- setup --------------------------------------------------------------
    def ensure_writable(self) -> None:
        """Create the store folder and prove that files can be written there.

        Raises
        ------
        ValueError
            If the folder cannot be created or written to (before any
            training starts, so a sweep fails fast).
        """
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            marker = self.root / "store.json"
            if marker.exists():
                data = json.loads(marker.read_text())
                if data.get("format") != _FORMAT:
                    raise ValueError(f"{self.root} is not a scalingkit run store")
                probe = self.root / ".write-probe"
                probe.write_text("ok")
                probe.unlink()
            else:
                atomic_write_json(marker, {"format": _FORMAT, "created": time.time()})
        except OSError as exc:
            raise ValueError(
                f"output folder {str(self.root)!r} is not writable: {exc.strerror or exc}"
            ) from exc

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
            If the record file is not valid JSON (it never is after a crash,
            because writes are atomic; this catches hand edits).
        """
        path = self._record_path(run_id)
        if not path.exists():
            raise KeyError(run_id)
        try:
            return RunRecord.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"corrupt run record {path}: {exc}") from exc

    def records(self) -> Iterator[RunRecord]:
        """Every record, in id order."""
        for run_id in self.ids():
            yield self.get(run_id)

    def counts(self) -> dict[str, int]:
        """Number of runs per status (every status present, possibly 0)."""
        out = dict.fromkeys(STATUSES, 0)
        for record in self.records():
            out[record.status] += 1
        return out

    # -- writing ------------------------------------------------------------
    def _write(self, record: RunRecord) -> None:
        self.run_dir(record.id).mkdir(parents=True, exist_ok=True)
        atomic_write_json(self._record_path(record.id), record.to_dict())

    def add(self, config: Mapping[str, Any], plan: Mapping[str, Any] | None = None) -> str:
        """Add a planned run unless a run with the same config exists.

        Parameters
        ----------
        config : mapping
            The full training config as plain JSON types.
        plan : mapping, optional
            Planner metadata kept beside the config (budget, sizes, ...).

        Returns
        -------
        str
            The run id (existing or new). An existing record is not changed.
        """
        run_id = config_hash(config)
        if run_id not in self:
            now = time.time()
            self._write(RunRecord(
                id=run_id, config=dict(config), plan=dict(plan or {}),
                history=[{"status": "planned", "time": now}],
            ))
        return run_id

    def update(
        self, run_id: str, status: str, *, result: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> RunRecord:
        """Set a run's status (and result or error) atomically; return the new record."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {STATUSES}")
        record = self.get(run_id)
        record.status = status
        if result is not None:
            record.result = json_safe(dict(result))
        record.error = error
        record.history.append({"status": status, "time": time.time()})
        self._write(record)
        return record

    def pending(self) -> list[str]:
        """Ids of runs that a (resumed) sweep still has to run."""
        return [r.id for r in self.records() if not r.is_final]

    def export(self, dest: str | os.PathLike) -> int:
        """Copy the store's records and sweep log, without checkpoints (for committing).

        Only ``store.json``, ``sweeps.json`` and each ``runs/<id>/record.json``
        are copied; checkpoints, temporary files and the trainer's own
        ``config.json``/``result.json`` (duplicated in the record) are not.

        Returns
        -------
        int
            The number of records copied.
        """
        dest = Path(dest)
        n = 0
        (dest / "runs").mkdir(parents=True, exist_ok=True)
        for name in ("store.json", "sweeps.json"):
            if (self.root / name).exists():
                shutil.copy2(self.root / name, dest / name)
        for run_id in self.ids():
            (dest / "runs" / run_id).mkdir(exist_ok=True)
            shutil.copy2(self._record_path(run_id), dest / "runs" / run_id / "record.json")
            n += 1
        return n
