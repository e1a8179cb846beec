"""Tokenizers: exact byte-level (the default) and byte-level BPE trained locally.

The byte tokenizer maps every UTF-8 byte to its own token (vocabulary 256), so a loss in
nats/token converts exactly to bits/byte (divide by ln 2). The BPE tokenizer is trained
here, on the training split of a corpus, with Hugging Face ``tokenizers``; it merges byte
pairs, so one token covers several bytes and ``bytes_per_token`` is needed to compare its
losses with byte-level ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

__all__ = ["ByteTokenizer", "BPETokenizer", "bytes_per_token", "load_tokenizer", "token_dtype"]


def token_dtype(vocab_size: int) -> np.dtype:
    """Smallest unsigned integer dtype holding ids ``0 .. vocab_size - 1``."""
    if vocab_size <= 256:
        return np.dtype(np.uint8)
    if vocab_size <= 65536:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32)


def _as_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("utf-8")
    raise ValueError(f"text must be str or bytes, got {type(text).__name__}")


class ByteTokenizer:
    """One token per UTF-8 byte; vocabulary size 256.

    Examples
    --------
    >>> tok = ByteTokenizer()
    >>> tok.encode("hé").tolist()
    [104, 195, 169]
    >>> tok.decode(tok.encode("hé"))
    'hé'
    """

    name = "byte"
    vocab_size = 256

    def encode(self, text: str | bytes) -> np.ndarray:
        """Token ids (``uint8``) of ``text``."""
        return np.frombuffer(_as_bytes(text), dtype=np.uint8).copy()

    def decode(self, ids: Iterable[int]) -> str:
        """Text for ``ids``; invalid UTF-8 (a cut multi-byte character) becomes U+FFFD."""
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError("byte token ids must lie in 0..255")
        return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def to_json(self) -> str:
        """Serialised form (see :meth:`BPETokenizer.to_json`)."""
        return json.dumps({"kind": "byte"})


class BPETokenizer:
    """Byte-level BPE trained with Hugging Face ``tokenizers``.

    Use :meth:`train` (or :meth:`from_json` for a saved one); the constructor only
    wraps an existing ``tokenizers.Tokenizer``. Byte-level pre-tokenisation makes
    decoding the exact inverse of encoding for any UTF-8 text.
    """

    def __init__(self, tokenizer) -> None:
        self._tok = tokenizer
        self.vocab_size = int(tokenizer.get_vocab_size())
        self.name = f"bpe:{self.vocab_size}"

    @classmethod
    def train(cls, texts: Iterable[str | bytes], vocab_size: int) -> BPETokenizer:
        """Learn merges from ``texts`` until the vocabulary has ``vocab_size`` tokens.

        Parameters
        ----------
        texts : iterable of str or bytes
            Training text, e.g. the training documents of a corpus.
        vocab_size : int
            Target vocabulary size (tokens); at least 257 (the 256 bytes plus one
            merge) and at most 65536.
        """
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if not isinstance(vocab_size, int) or not 257 <= vocab_size <= 65536:
            raise ValueError(f"BPE vocab_size must be an integer in 257..65536, got {vocab_size!r}")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )

        def as_text() -> Iterator[str]:
            for t in texts:
                yield _as_bytes(t).decode("utf-8", errors="replace")

        tok.train_from_iterator(as_text(), trainer=trainer)
        return cls(tok)

    def encode(self, text: str | bytes) -> np.ndarray:
        """Token ids of ``text`` (smallest unsigned dtype for the vocabulary)."""
        s = _as_bytes(text).decode("utf-8", errors="replace")
        return np.asarray(self._tok.encode(s).ids, dtype=token_dtype(self.vocab_size))

    def decode(self, ids: Iterable[int]) -> str:
        """Text for ``ids``."""
        lst = [int(i) for i in ids]
        if lst and (min(lst) < 0 or max(lst) >= self.vocab_size):
            raise ValueError(f"token ids must lie in 0..{self.vocab_size - 1}")
        return self._tok.decode(lst)

    def to_json(self) -> str:
        """Serialised tokenizer (merges and vocabulary) as a JSON string."""
        return json.dumps({"kind": "bpe", "tokenizer": self._tok.to_str()})

    @classmethod
    def from_json(cls, text: str) -> BPETokenizer:
        """Inverse of :meth:`to_json`."""
        from tokenizers import Tokenizer

        data = json.loads(text)
        if data.get("kind") != "bpe":
            raise ValueError("not a serialised BPE tokenizer")
        return cls(Tokenizer.from_str(data["tokenizer"]))


def load_tokenizer(path: str | Path) -> ByteTokenizer | BPETokenizer:
    """Read a tokenizer written with ``to_json``."""
    text = Path(path).read_text()
    kind = json.loads(text).get("kind")
    if kind == "byte":
        return ByteTokenizer()
    if kind == "bpe":
        return BPETokenizer.from_json(text)
    raise ValueError(f"{path}: unknown tokenizer kind {kind!r}")


def bytes_per_token(tokenizer: ByteTokenizer | BPETokenizer, text: str | bytes) -> float:
    """Average UTF-8 bytes per token when ``tokenizer`` encodes ``text`` (bytes/token).

    Multiply a loss in nats/token by ``1 / (ln 2 * bytes_per_token)`` to get bits/byte.
    """
    raw = _as_bytes(text)
    if not raw:
        raise ValueError("text is empty")
    return len(raw) / len(tokenizer.encode(raw))
