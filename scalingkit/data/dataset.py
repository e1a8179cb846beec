"""Tokenised corpora cached on disk as ``np.memmap``, split by document, and samplers.

:func:`load_corpus` streams the documents of a corpus through a tokenizer and appends the
ids to two flat binary files, ``train.bin`` and ``val.bin``, under the cache folder
(``$SCALINGKIT_CACHE`` or ``~/.cache/scalingkit``). Only one document (at most
``max_doc_bytes`` bytes) is held in memory at a time, and the token arrays are opened as
read-only memory maps, so corpora larger than RAM work.

The split is by document: a document goes to validation when a hash of its name falls
below ``val_fraction`` (:func:`split_documents`). Names do not depend on the machine,
so the split is the same everywhere, and no byte of a validation document is ever in
the training array.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scalingkit.data.corpora import DEFAULT_MAX_DOC_BYTES, resolve_corpus
from scalingkit.data.markov import MarkovSource
from scalingkit.data.tokenizer import BPETokenizer, ByteTokenizer, load_tokenizer, token_dtype

__all__ = [
    "TokenCorpus",
    "load_corpus",
    "cache_dir",
    "is_validation",
    "split_documents",
    "BatchSampler",
    "eval_windows",
]

_FORMAT = 2  # bump when the cache layout changes
#: Bytes of the synthetic Markov corpus unless the caller asks otherwise.
DEFAULT_MARKOV_BYTES = 1 << 22


def cache_dir() -> Path:
    """The cache folder: ``$SCALINGKIT_CACHE`` or ``~/.cache/scalingkit``."""
    env = os.environ.get("SCALINGKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scalingkit"


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
        corpora the exact entropy rate (``entropy_rate_nats_per_byte``).
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
    spec: str, max_doc_bytes: int, n_bytes: int, seed: int
) -> tuple[list[tuple[str, bytes]], dict]:
    """Fit the chain to the source's training documents and sample the corpus."""
    order, source_spec = _parse_markov(spec)
    source = resolve_corpus(source_spec)
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


def _get_tokenizer(spec: str, train_texts) -> ByteTokenizer | BPETokenizer:
    if spec == "byte":
        return ByteTokenizer()
    if spec.startswith("bpe:"):
        try:
            size = int(spec[4:])
        except ValueError:
            raise ValueError(f"bad tokenizer spec {spec!r}; use 'bpe:<vocab size>'") from None
        return BPETokenizer.train(train_texts(), size)
    raise ValueError(f"unknown tokenizer {spec!r}; use 'byte' or 'bpe:<vocab size>'")


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
        ``"shakespeare"``, ``"stdlib"``, ``"markov:<k>[:<source>]"`` or a path
        (see :mod:`scalingkit.data.corpora`).
    tokenizer : str, default="byte"
        ``"byte"`` (vocabulary 256) or ``"bpe:<vocab size>"`` (trained on the training
        documents of this corpus).
    val_fraction : float, default=0.1
        Expected share of documents held out for validation, in (0, 1).
    max_doc_bytes : int, default=1048576
        Largest piece of a file read into memory at once (bytes); larger files are
        split into several documents at line boundaries.
    markov_bytes : int, default=4194304
        Size of a synthetic Markov corpus (bytes).
    markov_seed : int, default=0
        Seed of the Markov sampler.
    cache : path, default=None
        Cache root; ``None`` uses :func:`cache_dir`.

    Returns
    -------
    TokenCorpus
    """
    if not (isinstance(val_fraction, int | float) and 0 < val_fraction < 1):
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction!r}")
    if not isinstance(max_doc_bytes, int) or max_doc_bytes < 1:
        raise ValueError(f"max_doc_bytes must be a positive integer, got {max_doc_bytes!r}")
    if not isinstance(tokenizer, str):
        raise ValueError(f"tokenizer must be a string, got {tokenizer!r}")
    if not isinstance(corpus, str):
        raise ValueError(f"corpus must be a string (spec or path), got {corpus!r}")
    if tokenizer != "byte" and not tokenizer.startswith("bpe:"):
        raise ValueError(f"unknown tokenizer {tokenizer!r}; use 'byte' or 'bpe:<vocab size>'")
    if corpus.startswith("markov:"):
        _, source_spec = _parse_markov(corpus)
        if not isinstance(markov_bytes, int) or markov_bytes < 1:
            raise ValueError(f"markov_bytes must be a positive integer, got {markov_bytes!r}")
        source = resolve_corpus(source_spec)
        fingerprint = f"{source.fingerprint()}-{markov_bytes}-{markov_seed}"

        generated: dict = {}  # sampled once, on the first call, only if not cached

        def documents():
            if not generated:
                generated["docs"], generated["meta"] = _markov_documents(
                    corpus, max_doc_bytes, markov_bytes, markov_seed
                )
            return iter(generated["docs"])

        def extra_meta() -> dict:
            return generated.get("meta", {})
    else:
        source = resolve_corpus(corpus)
        fingerprint = source.fingerprint()

        def documents():
            return source.documents(max_doc_bytes)

        def extra_meta() -> dict:
            return {}

    key = hashlib.sha256(
        json.dumps([_FORMAT, corpus, fingerprint, tokenizer, val_fraction, max_doc_bytes]).encode()
    ).hexdigest()[:20]
    root = Path(cache) if cache is not None else cache_dir()
    folder = root / "corpora" / key
    if not (folder / "meta.json").exists():
        _build(folder, documents, tokenizer, val_fraction, corpus, extra_meta)
    meta = json.loads((folder / "meta.json").read_text())
    tok = load_tokenizer(folder / "tokenizer.json")
    dtype = np.dtype(meta["dtype"])
    arrays = []
    for split in ("train", "val"):
        n = meta[f"{split}_tokens"]
        arrays.append(np.memmap(folder / f"{split}.bin", dtype=dtype, mode="r", shape=(n,)))
    return TokenCorpus(train=arrays[0], val=arrays[1], tokenizer=tok, meta=meta, path=folder)


def _build(folder: Path, documents, tokenizer_spec: str, val_fraction: float,
           corpus: str, extra_meta) -> None:
    """Tokenise every document into a temporary folder, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))

    val_names = split_documents([n for n, _ in documents()], val_fraction)

    def train_texts():
        return (d for n, d in documents() if n not in val_names)

    tok = _get_tokenizer(tokenizer_spec, train_texts)
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
            "val_fraction": val_fraction, "dtype": dtype.name, **counts,
            **extra_meta()}
    (tmp / "tokenizer.json").write_text(tok.to_json())
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(folder)
    except OSError:  # another process built the same cache first: keep theirs
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


class BatchSampler:
    """Random windows of ``n_ctx + 1`` tokens from a token array.

    Parameters
    ----------
    tokens : np.ndarray
        Token ids (a memmap is fine).
    batch_size : int
        Windows per batch.
    n_ctx : int
        Context length (tokens); inputs are ``tokens[i : i + n_ctx]`` and targets are
        shifted by one.
    seed : int, default=0
        Seed of the sampler's own ``torch.Generator``; its state is saved in
        checkpoints so that a resumed run draws the same batches.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, n_ctx: int, *, seed: int = 0) -> None:
        if batch_size < 1 or n_ctx < 1:
            raise ValueError("batch_size and n_ctx must be positive")
        if len(tokens) < n_ctx + 1:
            raise ValueError(
                f"token array has {len(tokens)} tokens, fewer than n_ctx + 1 = {n_ctx + 1}"
            )
        self.tokens = tokens
        self.batch_size = batch_size
        self.n_ctx = n_ctx
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = np.arange(n_ctx + 1)

    def starts(self) -> np.ndarray:
        """Draw ``batch_size`` window start positions."""
        hi = len(self.tokens) - self.n_ctx  # last start i has i + n_ctx <= len - 1
        return torch.randint(0, hi, (self.batch_size,), generator=self.generator).numpy()

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch: inputs and targets, each ``(batch_size, n_ctx)`` int64."""
        idx = self.starts()[:, None] + self._offsets  # (B, T + 1)
        window = torch.from_numpy(np.asarray(self.tokens[idx], dtype=np.int64))  # (B, T + 1)
        return window[:, :-1], window[:, 1:]

    def state(self) -> torch.Tensor:
        """The generator state (a uint8 tensor, safe for ``weights_only`` loading)."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        """Restore a state from :meth:`state`."""
        self.generator.set_state(state)


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
