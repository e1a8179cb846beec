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
    CorpusSource,
    cache_dir,
    resolve_corpus,
)
from scalingkit.core.data.hmm import HMM_PRESETS, HMMSource
from scalingkit.core.data.markov import MarkovSource
from scalingkit.core.data.tokenizer import BPETokenizer, ByteTokenizer, load_tokenizer, token_dtype

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
#: Scored tokens behind the entropy-rate estimate stored with an ``hmm:`` corpus; about
#: 1e-3 nats/token standard error (:meth:`HMMSource.entropy_rate`).
HMM_ENTROPY_TOKENS = 1 << 20
#: Most bytes of training text a BPE tokenizer learns its merges from (bytes).
BPE_SAMPLE_BYTES = 1 << 24


def _hash_fraction(name: str) -> float:
    """First 8 bytes of SHA-256 of ``name`` as a fraction of 2^64, in [0, 1)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2.0**64


def is_validation(name: str, val_fraction: float) -> bool:
    """Whether document ``name`` falls in the validation split by its hash alone.

    A hash of the name, read as a fraction in [0, 1), is compared with
    ``val_fraction``: deterministic, machine-independent and uncorrelated with document
    order. :func:`split_documents` adds one guard on top (both splits non-empty).
    """
    return _hash_fraction(name) < val_fraction


def split_documents(names: list[str], val_fraction: float) -> set[str]:
    """The validation documents among ``names``.

    Those whose hash fraction is below ``val_fraction``; if that leaves validation
    empty, the document with the lowest hash moves there, and if it leaves training
    empty, the one with the highest hash moves back (given at least two documents).
    """
    if len(set(names)) < 2:
        raise ValueError(
            f"a corpus needs at least 2 documents to split into train and validation, "
            f"got {len(set(names))}; use a smaller max_doc_bytes or add files"
        )
    ranked = sorted(set(names), key=_hash_fraction)
    val = {n for n in ranked if is_validation(n, val_fraction)}
    if not val:
        val = {ranked[0]}
    if len(val) == len(ranked):
        val.discard(ranked[-1])
    return val


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


def _parse_markov(spec: str) -> tuple[int, str]:
    parts = spec.split(":", 2)
    try:
        order = int(parts[1])
    except (IndexError, ValueError):
        raise ValueError(f"bad Markov corpus spec {spec!r}; use 'markov:<k>' or "
                         "'markov:<k>:<source corpus>'") from None
    if order < 0:
        raise ValueError(f"Markov order must be >= 0 in {spec!r}")
    return order, parts[2] if len(parts) > 2 else "shakespeare"


def _markov_documents(
    source: CorpusSource, max_doc_bytes: int, n_bytes: int, seed: int, spec: str
) -> tuple[list[tuple[str, bytes]], dict]:
    """Fit the chain to the source's training documents and sample the corpus."""
    order, source_spec = _parse_markov(spec)
    # Fit on the source's training documents only (its default 10% split).
    text = b"".join(d for n, d in source.documents(max_doc_bytes) if not is_validation(n, 0.1))
    src = MarkovSource(order=order).fit(text)
    n_chains = max(2, min(256, n_bytes // 16384))
    docs = src.sample(n_bytes, n_chains=n_chains, seed=seed)
    meta = {
        "markov_order": order,
        "markov_alpha": src.alpha,
        "markov_source": source_spec,
        "markov_bytes": n_bytes,
        "markov_seed": seed,
        "entropy_rate_nats_per_byte": src.entropy_rate(),
        "entropy_rate_bits_per_byte": src.entropy_rate_bits(),
    }
    return [(f"chain{i:04d}", d) for i, d in enumerate(docs)], meta


def _parse_hmm(spec: str) -> str:
    """The preset of ``"hmm:<preset>[:<megabytes>]"``; ``ValueError`` for a bad spec."""
    preset = spec.split(":")[1] if spec.count(":") >= 1 else ""
    if preset not in HMM_PRESETS:
        raise ValueError(f"unknown HMM preset in {spec!r}; use 'hmm:<preset>[:<megabytes>]' "
                         f"with one of {', '.join(HMM_PRESETS)}")
    _hmm_bytes(spec, 1)
    return preset


def _hmm_bytes(spec: str, default: int) -> int:
    """Bytes of an ``"hmm:<preset>:<megabytes>"`` corpus (MiB), else ``default``."""
    parts = spec.split(":")
    if len(parts) < 3:
        return default
    if len(parts) > 3 or not parts[2].isdigit() or int(parts[2]) < 1:
        raise ValueError(f"bad HMM corpus spec {spec!r}; the size is a whole number of "
                         "megabytes, as in 'hmm:medium:256'")
    return int(parts[2]) << 20


def _hmm_documents(
    spec: str, n_bytes: int, seed: int, val_fraction: float
) -> tuple[list[tuple[str, bytes]], dict]:
    """Sample the corpus from a preset HMM and estimate its entropy rate.

    The documents are independent stationary chains. The ones that
    :func:`split_documents` will put in validation are drawn from their own seed,
    independent of the training chains', and the entropy rate from a third.
    """
    preset = _parse_hmm(spec)
    src = HMMSource(**HMM_PRESETS[preset])
    seeds = [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(3)]
    n_chains = max(2, min(256, n_bytes // 16384))
    names = [f"chain{i:04d}" for i in range(n_chains)]
    val = split_documents(names, val_fraction)
    per_chain = -(-n_bytes // n_chains)
    docs = []
    for in_val, split_seed in ((False, seeds[0]), (True, seeds[1])):
        mine = [n for n in names if (n in val) == in_val]
        rows = src.sample(per_chain, n_chains=len(mine), seed=split_seed)
        docs += [(n, row.tobytes()) for n, row in zip(mine, rows, strict=True)]
    n_est = 64
    h, se = src.entropy_rate(max(1, HMM_ENTROPY_TOKENS // n_est), n_chains=n_est,
                             seed=seeds[2])
    lower, upper = src.entropy_bounds()
    meta = {
        "hmm_preset": preset,
        "hmm_params": src.params,
        "hmm_bytes": n_bytes,
        "hmm_seed": seed,
        "entropy_rate_nats_per_byte": h,
        "entropy_rate_stderr_nats_per_byte": se,
        "entropy_rate_bits_per_byte": h / math.log(2),
        "entropy_rate_stderr_bits_per_byte": se / math.log(2),
        "entropy_rate_tokens": n_est * max(1, HMM_ENTROPY_TOKENS // n_est),
        "entropy_bounds_nats_per_byte": [lower, upper],
    }
    return sorted(docs), meta


def _generated(make) -> tuple:
    """``documents()`` and ``extra_meta()`` of a synthetic corpus that ``make()``
    samples once, on the first call, only if the corpus is not cached yet."""
    generated: dict = {}

    def documents():
        if not generated:
            generated["docs"], generated["meta"] = make()
        return iter(generated["docs"])

    def extra_meta() -> dict:
        return generated.get("meta", {})

    return documents, extra_meta


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
    synthetic = corpus.startswith(("markov:", "hmm:"))
    if synthetic and (not isinstance(markov_bytes, int) or markov_bytes < 1):
        raise ValueError(f"markov_bytes must be a positive integer, got {markov_bytes!r}")
    if corpus.startswith("markov:"):
        _, source_spec = _parse_markov(corpus)
        source = resolve_corpus(source_spec, cache=cache)
        fingerprint = f"{source.fingerprint()}-{markov_bytes}-{markov_seed}"
        split_rule: float | str = val_fraction
        documents, extra_meta = _generated(lambda: _markov_documents(
            source, max_doc_bytes, markov_bytes, markov_seed, corpus))
    elif corpus.startswith("hmm:"):
        params = HMM_PRESETS[_parse_hmm(corpus)]
        n_bytes = _hmm_bytes(corpus, markov_bytes)
        fingerprint = f"hmm1-{json.dumps(params, sort_keys=True)}-{n_bytes}-{markov_seed}"
        split_rule = val_fraction
        documents, extra_meta = _generated(lambda: _hmm_documents(
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
