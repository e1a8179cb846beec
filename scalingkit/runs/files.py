"""Atomic file writes and strict JSON reads for the run store.

Every write goes to a temporary file in the same folder, is flushed and
fsync'ed, and is then renamed over the old file (or hard-linked, for a file that
must not exist yet): a process killed at any moment leaves the old file or the
new one, never half of one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: A run store's lock file, which writers ``flock`` for a moment.
LOCK_FILE = ".lock"


def json_bytes(obj: Any) -> bytes:
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
    atomic_write_bytes(path, json_bytes(obj))


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


def json_type(obj: Any) -> str:
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
