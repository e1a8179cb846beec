"""Text corpora as streams of documents, read lazily and in bounded pieces.

A corpus spec is one of

* ``"shakespeare"`` -- Shakespeare's 38 plays as Markdown (about 5.3 MB of English),
  shipped with the package as ``files/shakespeare.tar.xz``;
* ``"gutenberg_en"`` -- 248 public-domain English books from Project Gutenberg (91.7 MB
  of training text, 2.6 MB of validation text, split by book in the shipped manifest),
  shipped as ``files/gutenberg_en.tar.xz``;
* ``"stdlib"`` -- the Python standard library's own ``.py`` source, without its test
  suites and ``site-packages`` (about 12 MB of code on CPython 3.11);
* ``"markov:<k>"`` or ``"markov:<k>:<source>"`` -- a synthetic corpus sampled from an
  order-k byte Markov chain fitted to ``<source>`` (default Shakespeare), whose entropy
  rate is known exactly (:mod:`scalingkit.core.data.markov`);
* a path to a local text file or a folder (every regular, non-hidden file under it).

Shipped corpora are checked against their sha256 every time they are resolved and
unpacked once into the cache folder (:func:`cache_dir`), in a folder named after the
archive's checksum; ``files/README.md`` gives their sources and licences.

A *document* is one file, or one piece of a file: files longer than ``max_doc_bytes``
are cut at the last newline before the limit, so no more than ``max_doc_bytes`` bytes
are ever held in memory at once. Document names are stable across machines (paths
relative to the corpus root plus a piece number), which makes the train/validation
split by document deterministic.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import sysconfig
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CorpusSource",
    "SHIPPED_CORPORA",
    "ShippedCorpus",
    "cache_dir",
    "iter_file_pieces",
    "resolve_corpus",
    "verify_sha256",
]

#: Default largest document piece held in memory (bytes).
DEFAULT_MAX_DOC_BYTES = 1 << 20
#: Folder of the corpus archives shipped with the package.
FILES_DIR = Path(__file__).resolve().parent / "files"

_STDLIB_SKIP = {"test", "tests", "idle_test", "site-packages", "__pycache__", "dist-packages"}


def cache_dir() -> Path:
    """The cache folder: ``$SCALINGKIT_CACHE`` or ``~/.cache/scalingkit``."""
    env = os.environ.get("SCALINGKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scalingkit"


@dataclass(frozen=True)
class ShippedCorpus:
    """A corpus archive shipped in :data:`FILES_DIR`.

    Attributes
    ----------
    archive : str
        File name of the ``.tar.xz`` archive.
    sha256 : str
        Expected SHA-256 of the archive (hex).
    top : str
        Folder inside the archive that document names are relative to (``"."``: none).
    manifest : str or None
        File name of a CSV with one row per file (``file``, ``bytes``, ``sha256``,
        ``split``) that fixes the train/validation split; ``None`` splits by name hash.
    manifest_sha256 : str or None
        Expected SHA-256 of the manifest.
    """

    archive: str
    sha256: str
    top: str = "."
    manifest: str | None = None
    manifest_sha256: str | None = None


#: The corpora shipped with the package, by spec.
SHIPPED_CORPORA: dict[str, ShippedCorpus] = {
    "shakespeare": ShippedCorpus(
        archive="shakespeare.tar.xz",
        sha256="34cd7a1b7aded7cd7587dcc0a1fe8a9c2421c527c14c57c1b76cfbf30e131df1",
        top="shakespeare",
    ),
    "gutenberg_en": ShippedCorpus(
        archive="gutenberg_en.tar.xz",
        sha256="d8b1b8afcf28265bbcc8d3eb01959405bd34609713490600b428dc53fba81346",
        manifest="gutenberg_en.manifest.csv",
        manifest_sha256="57092bda101d04563baf675b9de0dc04f97d0183caaa2737c4c51c34c19467d9",
    ),
}


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
    checksum : str or None, default=None
        For a shipped corpus, the SHA-256 of its archive (and manifest); it stands in
        for the files' sizes and dates in :meth:`fingerprint`.
    val_files : frozenset of str or None, default=None
        Relative names of the files that form the validation split when the corpus
        fixes its own split (a manifest); ``None`` leaves the split to a name hash.
    """

    spec: str
    root: Path
    files: tuple[Path, ...]
    checksum: str | None = None
    val_files: frozenset[str] | None = None

    def fingerprint(self) -> str:
        """Hash of the archive checksum, or of the files' names, sizes and dates."""
        h = hashlib.sha256(self.spec.encode())
        if self.checksum is not None:
            h.update(self.checksum.encode())
            return h.hexdigest()[:16]
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


def verify_sha256(path: Path, expected: str) -> None:
    """Raise ``ValueError`` unless ``path`` is a file whose SHA-256 is ``expected``."""
    if not path.is_file():
        raise ValueError(f"corpus file {path} is missing (expected sha256 {expected})")
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected:
        raise ValueError(
            f"corpus file {path} has sha256 {h.hexdigest()}, expected {expected}: "
            "the file is damaged or was replaced"
        )


def _read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a corpus manifest; each has at least ``file``, ``bytes``, ``sha256``, ``split``."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    bad = [r.get("file") for r in rows if r.get("split") not in ("train", "val")]
    if not rows or bad:
        raise ValueError(f"manifest {path}: no rows, or rows without a train/val split {bad[:3]}")
    return rows


def _check_unpacked(root: Path, rows: list[dict[str, str]]) -> None:
    """Raise ``ValueError`` unless every manifest file under ``root`` has its size and hash."""
    for row in rows:
        path = root / row["file"]
        if not path.is_file() or path.stat().st_size != int(row["bytes"]):
            raise ValueError(f"{path}: missing or not {row['bytes']} bytes as the manifest says")
        verify_sha256(path, row["sha256"])


def _unpack(archive: Path, sha256: str, cache: Path, rows: list[dict[str, str]] | None) -> Path:
    """Unpack ``archive`` once into ``cache/shipped/<stem>-<sha256[:16]>``; return that folder.

    The archive is unpacked into a temporary sibling folder that is renamed into place
    only when complete, so a reader never sees a half-unpacked corpus, and two
    processes unpacking at once both end with the same folder.
    """
    stem = archive.name.split(".")[0]
    folder = cache / "shipped" / f"{stem}-{sha256[:16]}"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=folder.parent))
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tarfile.open(archive, "r:xz") as tar:
            tar.extractall(tmp, **safe)
        if rows is not None:
            _check_unpacked(tmp, rows)
        try:
            tmp.rename(folder)
        except OSError:  # another process unpacked it first: keep theirs
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _shipped_files(
    spec: str, cache: Path | str | None, files_dir: Path | str | None
) -> tuple[Path, list[Path], str, frozenset[str] | None]:
    """Check a shipped corpus's checksums and unpack it if needed.

    Returns the root folder, the files, the checksum that stands for their content and
    the validation files named by the manifest (``None`` without one).
    """
    shipped = SHIPPED_CORPORA[spec]
    files_dir = FILES_DIR if files_dir is None else Path(files_dir)
    archive = files_dir / shipped.archive
    verify_sha256(archive, shipped.sha256)
    rows = None
    checksum = shipped.sha256
    if shipped.manifest is not None:
        manifest = files_dir / shipped.manifest
        verify_sha256(manifest, shipped.manifest_sha256 or "")
        rows = _read_manifest(manifest)
        checksum += f"+{shipped.manifest_sha256}"
    folder = _unpack(archive, shipped.sha256, cache_dir() if cache is None else Path(cache), rows)
    root = folder / shipped.top
    if rows is None:
        return root, [f for f in root.rglob("*") if f.is_file()], checksum, None
    val = frozenset(r["file"] for r in rows if r["split"] == "val")
    return root, [root / r["file"] for r in rows], checksum, val


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


def resolve_corpus(
    spec: str, *, cache: Path | str | None = None, files_dir: Path | str | None = None
) -> CorpusSource:
    """Turn a file-backed corpus spec into its list of files.

    Parameters
    ----------
    spec : str
        ``"shakespeare"``, ``"gutenberg_en"``, ``"stdlib"`` or a path to a file or
        folder. (Synthetic ``"markov:..."`` corpora are handled by
        :func:`scalingkit.core.data.load_corpus`.)
    cache : path, default=None
        Cache root that shipped corpora are unpacked under; ``None`` uses
        :func:`cache_dir`.
    files_dir : path, default=None
        Folder holding the shipped archives; ``None`` uses the package's own
        (:data:`FILES_DIR`). Tests point it elsewhere.

    Raises
    ------
    ValueError
        If the path does not exist, the corpus has no files, or a shipped corpus's
        file is missing or fails its sha256 check.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"corpus must be a non-empty string, got {spec!r}")
    if spec in SHIPPED_CORPORA:
        root, files, checksum, val_files = _shipped_files(spec, cache, files_dir)
    elif spec == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"]).resolve()
        files = _stdlib_files(root)
        checksum = val_files = None
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise ValueError(
                f"unknown corpus {spec!r}: not {', '.join(map(repr, SHIPPED_CORPORA))}, "
                "'stdlib', 'markov:<k>' or an existing file or folder"
            )
        path = path.resolve()
        if path.is_file():
            root, files = path.parent, [path]
        else:
            root, files = path, _folder_files(path)
        checksum = val_files = None
    files = sorted(files, key=lambda f: f.relative_to(root).as_posix())
    if not files:
        raise ValueError(f"corpus {spec!r} contains no files")
    return CorpusSource(spec=spec, root=root, files=tuple(files), checksum=checksum,
                        val_files=val_files)
