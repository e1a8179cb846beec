"""Tokenised corpora cached on disk as ``np.memmap``, split by document, and the fixed
validation windows.

:func:`load_corpus` streams the documents of a corpus through a tokenizer and appends the
ids to two flat binary files, ``train.bin`` and ``val.bin``, under the cache folder
(``$SCALINGKIT_CACHE`` or ``~/.cache/scalingkit``). Only one document (at most
``max_doc_bytes`` bytes) is held in memory at a time, and the token arrays are opened as
read-only memory maps, so corpora larger than RAM work.

The split is by document: a document goes to validation when a hash of its name falls
below ``val_fraction`` (:func:`split_documents`). Names do not depend on the machine,
so the split is the same everywhere, and no byte of a validation document is ever in
the training array. A corpus that fixes its own split (``"gutenberg_en"``, split by
book in its manifest) keeps it, and ``val_fraction`` does not apply to it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalingkit.core.data.corpora import (
    DEFAULT_MAX_DOC_BYTES,
    cache_dir,
    resolve_corpus,
)
from scalingkit.core.data.hmm import HMM_PRESETS
from scalingkit.core.data.markov import NGRAM_PRESETS
from scalingkit.core.data.splits import is_validation, split_documents
from scalingkit.core.data.synthetic import (
    _generated,
    _hmm_bytes,
    _hmm_documents,
    _markov_documents,
    _ngram_documents,
    _parse_hmm,
    _parse_markov,
    _parse_ngram,
    _parse_words,
    _words_documents,
)
from scalingkit.core.data.tokenizer import BPETokenizer, ByteTokenizer, load_tokenizer, token_dtype
from scalingkit.core.data.words import WORD_PRESETS

__all__ = [
    "TokenCorpus",
    "load_corpus",
    "cache_dir",
    "is_validation",
    "split_documents",
    "eval_windows",
]

_FORMAT = 2  # bump when the cache layout changes
#: Bytes of the synthetic Markov corpus unless the caller asks otherwise.
DEFAULT_MARKOV_BYTES = 1 << 22
#: Most bytes of training text a BPE tokenizer learns its merges from (bytes).
BPE_SAMPLE_BYTES = 1 << 24


@dataclass
class TokenCorpus:
    """A tokenised corpus split into training and validation token arrays.

    Attributes
    ----------
    train, val : np.memmap
        Token ids of the training and validation documents, concatenated (tokens).
    tokenizer : ByteTokenizer or BPETokenizer
    meta : dict
        Spec, tokenizer name, document and byte counts per split, and for Markov
        corpora the exact entropy rate (``entropy_rate_nats_per_byte``); for HMM
        corpora its estimate and standard error
        (``entropy_rate_stderr_nats_per_byte``).
    path : Path
        Cache folder holding ``train.bin``, ``val.bin``, ``meta.json``.
    """

    train: np.ndarray
    val: np.ndarray
    tokenizer: ByteTokenizer | BPETokenizer
    meta: dict
    path: Path

    @property
    def vocab_size(self) -> int:
        """Vocabulary size (tokens)."""
        return self.tokenizer.vocab_size

    @property
    def val_bytes_per_token(self) -> float:
        """UTF-8 bytes per token on the validation split (bytes/token); 1 for bytes."""
        return self.meta["val_bytes"] / max(1, self.meta["val_tokens"])

    def bits_per_byte(self, loss_nats_per_token: float) -> float:
        """Convert a validation loss in nats/token to bits/byte."""
        return loss_nats_per_token / (math.log(2) * self.val_bytes_per_token)


#: The preset synthetic corpora: prefix -> (presets, spec parser, document builder,
#: fingerprint version).
_PRESET_CORPORA = {"hmm": (HMM_PRESETS, _parse_hmm, _hmm_documents, "hmm1"),
                   "ngram": (NGRAM_PRESETS, _parse_ngram, _ngram_documents, "ngram1"),
                   "words": (WORD_PRESETS, _parse_words, _words_documents, "words1")}


def _bpe_vocab(spec: str) -> int | None:
    """Vocabulary size of a ``"bpe:<V>"`` spec, ``None`` for ``"byte"``; else ``ValueError``."""
    if not isinstance(spec, str):
        raise ValueError(f"tokenizer must be a string, got {spec!r}")
    if spec == "byte":
        return None
    if not spec.startswith("bpe:"):
        raise ValueError(f"unknown tokenizer {spec!r}; use 'byte' or 'bpe:<vocab size>'")
    try:
        size = int(spec[4:])
    except ValueError:
        raise ValueError(f"bad tokenizer spec {spec!r}; use 'bpe:<vocab size>'") from None
    if not 257 <= size <= 65536:
        raise ValueError(f"bad tokenizer spec {spec!r}: the BPE vocabulary must be 257..65536")
    return size


def _head(raw: bytes, n_bytes: int) -> bytes:
    """The first ``n_bytes`` bytes of ``raw``, cut after its last newline if it has one."""
    if len(raw) <= n_bytes:
        return raw
    cut = raw.rfind(b"\n", 0, n_bytes) + 1
    return raw[: cut or n_bytes]


def _piece_file(name: str) -> str:
    """The file a document came from: its name without a ``#<i>`` piece number."""
    stem, sep, tail = name.rpartition("#")
    return stem if sep and tail.isdigit() else name


#: Spec prefixes of the synthetic corpora, sampled from a source of known entropy.
SYNTHETIC_PREFIXES = ("markov:", "hmm:", "ngram:", "words:")


def load_corpus(
    corpus: str = "shakespeare",
    tokenizer: str = "byte",
    *,
    val_fraction: float = 0.1,
    max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
    markov_bytes: int = DEFAULT_MARKOV_BYTES,
    markov_seed: int = 0,
    cache: Path | str | None = None,
) -> TokenCorpus:
    """Tokenise a corpus once, cache it as memory-mapped arrays and return them.

    Parameters
    ----------
    corpus : str, default="shakespeare"
        ``"shakespeare"``, ``"gutenberg_en"``, ``"stdlib"``, ``"markov:<k>[:<source>]"``,
        ``"ngram:<preset>[:<megabytes>]"`` (a random chain of
        :data:`~scalingkit.core.data.markov.NGRAM_PRESETS`, sampled to that many MiB),
        ``"words:<preset>[:<megabytes>]"`` (random words,
        :data:`~scalingkit.core.data.words.WORD_PRESETS`),
        ``"hmm:<preset>[:<megabytes>]"`` (a preset of
        :data:`~scalingkit.core.data.hmm.HMM_PRESETS`, sampled to that many MiB, by
        default ``markov_bytes``) or a path (see :mod:`scalingkit.core.data.corpora`).
    tokenizer : str, default="byte"
        ``"byte"`` (vocabulary 256) or ``"bpe:<vocab size>"``, trained on the training
        documents of this corpus. When those exceed ``BPE_SAMPLE_BYTES`` (16 MiB), the
        BPE is trained on the first ``BPE_SAMPLE_BYTES / n`` bytes of each of the ``n``
        training documents (cut after a newline), so training time stays bounded while
        every document is represented; the whole corpus is still encoded with it. On
        ``"gutenberg_en"`` ``"bpe:4096"`` took 13 s to train and about 5 minutes to
        encode (2 busy cores), once; the byte tokenizer takes seconds.
    val_fraction : float, default=0.1
        Expected share of documents held out for validation, in (0, 1). Ignored by a
        corpus that fixes its own split (``"gutenberg_en"``: 11 books by its manifest).
    max_doc_bytes : int, default=1048576
        Largest piece of a file read into memory at once (bytes); larger files are
        split into several documents at line boundaries.
    markov_bytes : int, default=4194304
        Size of a synthetic Markov or HMM corpus (bytes).
    markov_seed : int, default=0
        Seed of the Markov or HMM sampler.
    cache : path, default=None
        Cache root for token arrays and unpacked shipped corpora; ``None`` uses
        :func:`cache_dir`.

    Returns
    -------
    TokenCorpus

    Raises
    ------
    ValueError
        For a bad argument, an unknown corpus, or a shipped corpus file that is
        missing or fails its sha256 check.
    """
    if not (isinstance(val_fraction, int | float) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction!r}")
    if not isinstance(max_doc_bytes, int) or max_doc_bytes < 1:
        raise ValueError(f"max_doc_bytes must be a positive integer, got {max_doc_bytes!r}")
    if not isinstance(corpus, str):
        raise ValueError(f"corpus must be a string (spec or path), got {corpus!r}")
    _bpe_vocab(tokenizer)
    synthetic = corpus.startswith(SYNTHETIC_PREFIXES)
    if synthetic and (not isinstance(markov_bytes, int) or markov_bytes < 1):
        raise ValueError(f"markov_bytes must be a positive integer, got {markov_bytes!r}")
    if corpus.startswith("markov:"):
        _, source_spec = _parse_markov(corpus)
        source = resolve_corpus(source_spec, cache=cache)
        fingerprint = f"{source.fingerprint()}-{markov_bytes}-{markov_seed}"
        split_rule: float | str = val_fraction
        documents, extra_meta = _generated(lambda: _markov_documents(
            source, max_doc_bytes, markov_bytes, markov_seed, corpus))
    elif corpus.startswith(("hmm:", "ngram:", "words:")):
        kind = corpus.split(":")[0]
        presets, parse, make, version = _PRESET_CORPORA[kind]
        params = presets[parse(corpus)]
        n_bytes = _hmm_bytes(corpus, markov_bytes)
        fingerprint = f"{version}-{json.dumps(params, sort_keys=True)}-{n_bytes}-{markov_seed}"
        split_rule = val_fraction
        documents, extra_meta = _generated(lambda: make(
            corpus, n_bytes, markov_seed, val_fraction))
    else:
        source = resolve_corpus(corpus, cache=cache)
        fingerprint = source.fingerprint()
        split_rule = val_fraction if source.val_files is None else "manifest"

        def documents():
            return source.documents(max_doc_bytes)

        def extra_meta() -> dict:
            return {}

    key = hashlib.sha256(
        json.dumps([_FORMAT, corpus, fingerprint, tokenizer, split_rule, max_doc_bytes]).encode()
    ).hexdigest()[:20]
    root = Path(cache) if cache is not None else cache_dir()
    folder = root / "corpora" / key
    if not (folder / "meta.json").exists():
        val_files = None if synthetic else source.val_files
        _build(folder, documents, tokenizer, val_fraction, val_files, corpus, extra_meta)
    meta = json.loads((folder / "meta.json").read_text())
    tok = load_tokenizer(folder / "tokenizer.json")
    dtype = np.dtype(meta["dtype"])
    arrays = []
    for split in ("train", "val"):
        n = meta[f"{split}_tokens"]
        arrays.append(np.memmap(folder / f"{split}.bin", dtype=dtype, mode="r", shape=(n,)))
    return TokenCorpus(train=arrays[0], val=arrays[1], tokenizer=tok, meta=meta, path=folder)


def _train_tokenizer(spec: str, train_docs) -> ByteTokenizer | BPETokenizer:
    """The tokenizer for ``spec``; BPE learns from ``train_docs()`` (name, bytes) pairs."""
    vocab = _bpe_vocab(spec)
    if vocab is None:
        return ByteTokenizer()
    sizes = [len(d) for _, d in train_docs()]
    per_doc = max(sizes) if sum(sizes) <= BPE_SAMPLE_BYTES else BPE_SAMPLE_BYTES // len(sizes)
    return BPETokenizer.train((_head(d, per_doc) for _, d in train_docs()), vocab)


def _build(folder: Path, documents, tokenizer_spec: str, val_fraction: float,
           val_files: frozenset[str] | None, corpus: str, extra_meta) -> None:
    """Tokenise every document into a temporary folder, then rename it into place.

    Documents are streamed one at a time and their ids appended to ``train.bin`` or
    ``val.bin``. The validation documents are those of the files in ``val_files``
    when given, else those chosen by :func:`split_documents`.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        names = [n for n, _ in documents()]
        if val_files is None:
            val_names = split_documents(names, val_fraction)
        else:
            val_names = {n for n in names if _piece_file(n) in val_files}

        def train_docs():
            return ((n, d) for n, d in documents() if n not in val_names)

        tok = _train_tokenizer(tokenizer_spec, train_docs)
        dtype = token_dtype(tok.vocab_size)
        counts = {"train_tokens": 0, "val_tokens": 0, "train_bytes": 0, "val_bytes": 0,
                  "train_docs": 0, "val_docs": 0}
        with open(tmp / "train.bin", "wb") as ftrain, open(tmp / "val.bin", "wb") as fval:
            for name, raw in documents():
                split = "val" if name in val_names else "train"
                ids = tok.encode(raw).astype(dtype, copy=False)
                (fval if split == "val" else ftrain).write(ids.tobytes())
                counts[f"{split}_tokens"] += int(ids.size)
                counts[f"{split}_bytes"] += len(raw)
                counts[f"{split}_docs"] += 1
        meta = {"format": _FORMAT, "corpus": corpus, "tokenizer": tok.name,
                "val_fraction": val_fraction if val_files is None else None,
                "split": "hash" if val_files is None else "manifest",
                "dtype": dtype.name, **counts, **extra_meta()}
        (tmp / "tokenizer.json").write_text(tok.to_json())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            tmp.rename(folder)
        except OSError:  # another process built the same cache first: keep theirs
            if not (folder / "meta.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def eval_windows(tokens: np.ndarray, n_ctx: int, n_windows: int) -> np.ndarray:
    """Start positions of ``n_windows`` evenly spaced validation windows.

    The same windows are used at every evaluation, so validation curves are free of
    sampling noise between evaluations. Windows do not overlap when the array holds
    ``n_windows * (n_ctx + 1)`` tokens or more.
    """
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    hi = len(tokens) - n_ctx - 1
    if hi < 0:
        raise ValueError(f"validation array has {len(tokens)} tokens, fewer than n_ctx + 1")
    return np.unique(np.linspace(0, hi, n_windows).round().astype(np.int64))
