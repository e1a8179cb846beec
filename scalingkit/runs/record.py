"""One run's record in a run store: its id (a hash of its config), status and history.

Units: ``plan`` holds the planner's budget (FLOP), sizes (parameters) and tokens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from scalingkit.runs.files import json_type

#: Every status a run can have.
STATUSES = ("planned", "running", "done", "diverged", "failed")
#: Statuses that a resumed sweep does not run again.
FINAL_STATUSES = ("done", "diverged")
#: Length of a run id (hex digits of the SHA-256 of the config).
ID_LENGTH = 16
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
            raise ValueError(f"expected a JSON object, got a JSON {json_type(data)}")
        missing = [k for k in _REQUIRED_FIELDS if k not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        unknown = sorted(set(data) - set(_RECORD_FIELDS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        for key, types in _RECORD_FIELDS.items():
            if key in data and not isinstance(data[key], types):
                raise ValueError(f"field {key!r} is a JSON {json_type(data[key])}")
        if not all(isinstance(h, Mapping) for h in data.get("history", [])):
            raise ValueError("field 'history' must hold objects")
        record = cls(**dict(data))
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r}")
        return record
