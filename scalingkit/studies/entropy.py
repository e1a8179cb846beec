"""Entropy units and the baselines a language model's loss is judged against.

A loss is a cross-entropy, and the same number reads differently in four units:

* **nats/token** -- what the trainer minimises (natural log, per token);
* **bits/token** -- the same divided by ``ln 2``;
* **bits/byte** -- bits/token divided by the UTF-8 bytes per token of the tokenizer on
  the text (1 for the byte tokenizer); the only one of the four that compares models
  with different tokenizers;
* **bits/character** -- bits/byte times bytes per character (1 for ASCII text), the
  unit of Shannon's estimates.

Baselines, all in bits/byte on the same held-out text the trainer evaluates on
(:func:`corpus_text`):

* general-purpose compressors (gzip level 9, bz2 level 9, lzma preset 9), whose output
  length is an upper bound on what their implicit model of the text costs;
* smoothed order-``k`` byte n-gram models trained on the training split
  (:class:`NGramModel`, interpolated Witten-Bell smoothing);
* cited constants: Shannon's range for printed English and Chinchilla's fitted ``E``.

References
----------
Shannon (1951), "Prediction and Entropy of Printed English".
Witten and Bell (1991), "The zero-frequency problem".
Chen and Goodman (1999), "An empirical study of smoothing techniques for language
modeling".
Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models".
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "UNITS",
    "TextUnits",
    "measure_units",
    "convert",
    "COMPRESSORS",
    "compressed_bits_per_byte",
    "compressor_baselines",
    "corpus_text",
    "sweep_points",
    "NGramModel",
    "ngram_baselines",
    "SHANNON_BITS_PER_CHAR",
    "CHINCHILLA_E_NATS_PER_TOKEN",
    "ASSUMED_BYTES_PER_TOKEN",
    "chinchilla_e_bits_per_byte",
]

LN2 = math.log(2.0)

#: Units understood by :func:`convert`.
UNITS = ("nats/token", "bits/token", "nats/byte", "bits/byte", "bits/char")

#: Shannon's (1951) bounds on the entropy of printed English (bits/character), from
#: human prediction of 100-letter contexts over a 27-symbol alphabet (26 letters and
#: space): lower 0.6, upper 1.3.
SHANNON_BITS_PER_CHAR = (0.6, 1.3)

#: Chinchilla's fitted irreducible loss ``E`` (nats/token, Hoffmann et al. 2022, eq. 10),
#: on MassiveText with a SentencePiece tokenizer.
CHINCHILLA_E_NATS_PER_TOKEN = 1.69

#: Bytes per token assumed to convert Chinchilla's ``E``: OpenAI's rule of thumb that
#: one token of a GPT-style subword tokenizer is about 4 characters of English text
#: (about 4 bytes, since such text is nearly all ASCII). Hoffmann et al. do not report
#: their tokenizer's ratio, so this is an assumption, not a measurement.
ASSUMED_BYTES_PER_TOKEN = 4.0


@dataclass(frozen=True)
class TextUnits:
    """How long a token and a character are on one text.

    Attributes
    ----------
    bytes_per_token : float
        UTF-8 bytes per token (bytes/token).
    chars_per_byte : float
        Unicode characters per UTF-8 byte (characters/byte); 1 for ASCII.
    """

    bytes_per_token: float = 1.0
    chars_per_byte: float = 1.0

    def __post_init__(self) -> None:
        for name in ("bytes_per_token", "chars_per_byte"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")


def measure_units(text: bytes | str, tokenizer: object | None = None) -> TextUnits:
    """Measure bytes per token and characters per byte of ``tokenizer`` on ``text``.

    Parameters
    ----------
    text : bytes or str
        The text (UTF-8 when bytes; undecodable bytes count as one character each).
    tokenizer : object with ``encode(bytes) -> sequence``, optional
        E.g. :class:`scalingkit.core.data.ByteTokenizer` or ``BPETokenizer``; ``None``
        means bytes (1 byte/token).

    Returns
    -------
    TextUnits
    """
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if not raw:
        raise ValueError("text is empty; cannot measure bytes per token")
    n_chars = len(raw.decode("utf-8", errors="replace"))
    n_tokens = len(raw) if tokenizer is None else len(tokenizer.encode(raw))
    if n_tokens == 0:
        raise ValueError("the tokenizer produced no tokens for this text")
    return TextUnits(bytes_per_token=len(raw) / n_tokens, chars_per_byte=n_chars / len(raw))


def _nats_per_token_factor(unit: str, units: TextUnits) -> float:
    """Factor ``f`` such that ``value_in_unit * f`` is nats/token."""
    bpt, cpb = units.bytes_per_token, units.chars_per_byte
    factors = {
        "nats/token": 1.0,
        "bits/token": LN2,
        "nats/byte": bpt,
        "bits/byte": LN2 * bpt,
        "bits/char": LN2 * bpt * cpb,  # bits/char * chars/byte * bytes/token = bits/token
    }
    if unit not in factors:
        raise ValueError(f"unknown unit {unit!r}; choose one of {', '.join(UNITS)}")
    return factors[unit]


def convert(value: float | np.ndarray, from_unit: str, to_unit: str, *,
            bytes_per_token: float = 1.0, chars_per_byte: float = 1.0,
            units: TextUnits | None = None) -> float | np.ndarray:
    """Convert a cross-entropy between nats/token, bits/token, bits/byte and bits/char.

    Parameters
    ----------
    value : float or array
        The cross-entropy in ``from_unit``.
    from_unit, to_unit : str
        One of :data:`UNITS`.
    bytes_per_token : float, default=1.0
        UTF-8 bytes per token of the tokenizer on the text (bytes/token).
    chars_per_byte : float, default=1.0
        Characters per byte of the text (characters/byte).
    units : TextUnits, optional
        Both ratios at once (e.g. from :func:`measure_units`); overrides the two above.

    Returns
    -------
    float or array
        The value in ``to_unit``.

    Examples
    --------
    >>> round(convert(1.0, "nats/token", "bits/byte", bytes_per_token=4.0), 4)
    0.3607
    """
    u = units if units is not None else TextUnits(bytes_per_token, chars_per_byte)
    factor = _nats_per_token_factor(from_unit, u) / _nats_per_token_factor(to_unit, u)
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError("value must be finite")
    out = arr * factor
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------- compressors
#: Name -> function compressing bytes at the strongest standard setting.
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda b: gzip.compress(b, compresslevel=9, mtime=0),
    "bz2": lambda b: bz2.compress(b, compresslevel=9),
    "lzma": lambda b: lzma.compress(b, preset=9),
}


def compressed_bits_per_byte(data: bytes, method: str) -> float:
    """Compressed size of ``data`` in bits per input byte (bits/byte).

    Parameters
    ----------
    data : bytes
        Text to compress (non-empty).
    method : {"gzip", "bz2", "lzma"}
        gzip at level 9, bz2 at level 9, or lzma (xz container) at preset 9. Container
        headers are included, so very short inputs look worse than they are.
    """
    if method not in COMPRESSORS:
        raise ValueError(f"unknown compressor {method!r}; choose one of "
                         f"{', '.join(COMPRESSORS)}")
    raw = bytes(data)
    if not raw:
        raise ValueError("data is empty; nothing to compress")
    return 8.0 * len(COMPRESSORS[method](raw)) / len(raw)


def compressor_baselines(data: bytes) -> dict[str, float]:
    """Bits/byte of every compressor in :data:`COMPRESSORS` on ``data``."""
    return {name: compressed_bits_per_byte(data, name) for name in COMPRESSORS}


def corpus_text(corpus: str = "shakespeare", split: str = "val") -> bytes:
    """The raw bytes of one split of a corpus, exactly as the trainer sees them.

    Uses :func:`scalingkit.core.data.load_corpus` with the byte tokenizer and its default
    document split, so ``split="val"`` is the held-out text every validation loss in
    the book is measured on.

    Parameters
    ----------
    corpus : str, default="shakespeare"
    split : {"train", "val"}, default="val"
    """
    from scalingkit.core.data import load_corpus

    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    tc = load_corpus(corpus, "byte")
    return np.asarray(getattr(tc, split), dtype=np.uint8).tobytes()


def sweep_points(store: str | os.PathLike) -> pd.DataFrame:
    """Finished runs of a (committed) run store, with their loss in bits/byte.

    Parameters
    ----------
    store : str or PathLike
        A run-store folder written by ``python -m scalingkit sweep`` (or its export).

    Returns
    -------
    pandas.DataFrame
        One row per run with status ``done``: ``budget`` and ``flops`` (exact training
        compute, FLOP), ``params``, ``tokens``, ``loss`` (nats/token) and
        ``bits_per_byte`` (as recorded by the trainer).
    """
    from scalingkit.runs.frames import open_store, results_frame

    frame = results_frame(open_store(store).records())
    frame = frame[frame["status"] == "done"].rename(columns={"flops_exact": "flops"})
    cols = ["budget", "params", "tokens", "flops", "loss", "bits_per_byte"]
    return frame[cols].astype(float).reset_index(drop=True)


# ---------------------------------------------------------------------- n-grams
def _keys(seq: np.ndarray, order: int, start: int) -> np.ndarray:
    """Integer keys of (``order`` context bytes, next byte) for targets ``start..n-1``."""
    n = seq.size
    key = np.zeros(n - start, dtype=np.int64)
    for lag in range(order, -1, -1):  # oldest context byte first, target last
        key = (key << 8) | seq[start - lag : n - lag]
    return key


@dataclass
class _OrderTable:
    keys: np.ndarray  # sorted unique (context, byte) keys
    counts: np.ndarray  # their counts
    contexts: np.ndarray  # sorted unique contexts
    totals: np.ndarray  # tokens seen after each context
    types: np.ndarray  # distinct next bytes seen after each context


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``values`` at ``query`` keys, 0 where a key is absent."""
    if sorted_keys.size == 0:
        return np.zeros(query.size, dtype=values.dtype)
    pos = np.minimum(np.searchsorted(sorted_keys, query), sorted_keys.size - 1)
    return np.where(sorted_keys[pos] == query, values[pos], 0)


class NGramModel:
    """Byte n-gram model of order ``k`` with interpolated Witten-Bell smoothing.

    The order is the number of context bytes (order 0 is a unigram model). The
    probability of byte ``x`` after context ``c`` (the last ``j`` bytes) is defined
    recursively from the next shorter context ``c'``:

    .. math:: P_j(x \\mid c) = \\frac{C(c, x) + T(c)\\, P_{j-1}(x \\mid c')}{C(c) + T(c)},

    with ``C(c, x)`` the training count of ``x`` after ``c``, ``C(c)`` the count of
    ``c``, ``T(c)`` the number of distinct bytes seen after ``c``, and ``P_{-1}`` uniform
    over 256 bytes; an unseen context falls back to ``P_{j-1}`` (Witten and Bell 1991,
    in the interpolated form compared by Chen and Goodman 1999). It needs no tuning,
    gives every byte a positive probability, and is computed with sorted-key lookups.

    Parameters
    ----------
    order : int, default=3
        Context length ``k`` (bytes), 0..6.

    Attributes
    ----------
    tables_ : list
        Count tables for orders 0..k.
    n_train_ : int
        Training bytes.
    """

    def __init__(self, *, order: int = 3) -> None:
        self.order = order

    def fit(self, data: bytes | np.ndarray) -> NGramModel:
        """Count the (context, byte) pairs of every order up to ``order`` in ``data``."""
        if not (isinstance(self.order, int) and not isinstance(self.order, bool)
                and 0 <= self.order <= 6):
            raise ValueError(f"order must be an integer in 0..6, got {self.order!r}")
        seq = _as_bytes_array(data)
        if seq.size <= self.order:
            raise ValueError(f"need more than order={self.order} training bytes, "
                             f"got {seq.size}")
        self.tables_ = []
        for j in range(self.order + 1):
            keys, counts = np.unique(_keys(seq, j, j), return_counts=True)
            ctx = keys >> 8
            contexts, first, types = np.unique(ctx, return_index=True, return_counts=True)
            totals = np.add.reduceat(counts, first)
            self.tables_.append(_OrderTable(keys, counts, contexts, totals, types))
        self.n_train_ = int(seq.size)
        return self

    def log2_probs(self, data: bytes | np.ndarray, *, skip: int | None = None) -> np.ndarray:
        """``log2 P(x_t | previous k bytes)`` for each target ``t >= skip`` of ``data``.

        Parameters
        ----------
        data : bytes or uint8 array
            Held-out text.
        skip : int, optional
            First target scored (default ``order``: every target has a full context).

        Returns
        -------
        numpy.ndarray, shape (len(data) - skip,)
            Log probabilities (bits, <= 0).
        """
        if not hasattr(self, "tables_"):
            raise RuntimeError("this NGramModel is not fitted yet; call fit(data) first")
        seq = _as_bytes_array(data)
        start = self.order if skip is None else skip
        if not (isinstance(start, int) and start >= self.order):
            raise ValueError(f"skip must be an integer >= order={self.order}, got {skip!r}")
        if seq.size <= start:
            raise ValueError(f"need more than {start} bytes to score, got {seq.size}")
        p = np.full(seq.size - start, 1.0 / 256.0)
        for j, t in enumerate(self.tables_):
            key = _keys(seq, j, start)
            count = _lookup(t.keys, t.counts, key)
            total = _lookup(t.contexts, t.totals, key >> 8)
            types = _lookup(t.contexts, t.types, key >> 8)
            seen = total > 0
            p = np.where(seen, (count + types * p) / np.maximum(total + types, 1), p)
        return np.log2(p)

    def bits_per_byte(self, data: bytes | np.ndarray, *, skip: int | None = None) -> float:
        """Cross-entropy on held-out ``data`` (bits/byte)."""
        return float(-self.log2_probs(data, skip=skip).mean())


def _as_bytes_array(data: bytes | np.ndarray) -> np.ndarray:
    if isinstance(data, bytes | bytearray | memoryview):
        return np.frombuffer(bytes(data), dtype=np.uint8).astype(np.int64)
    arr = np.asarray(data)
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise ValueError("data must be bytes or a 1-D uint8 array")
    return arr.astype(np.int64)


def ngram_baselines(train: bytes | np.ndarray, val: bytes | np.ndarray,
                    orders: tuple[int, ...] = (1, 2, 3, 4, 5)) -> dict[int, float]:
    """Validation bits/byte of Witten-Bell n-gram models of several orders.

    Every order is scored on the same targets (all but the first ``max(orders)`` bytes
    of ``val``), so the numbers compare directly.

    Returns
    -------
    dict
        Order -> cross-entropy (bits/byte).
    """
    if not orders:
        raise ValueError("orders is empty")
    skip = max(orders)
    return {k: NGramModel(order=k).fit(train).bits_per_byte(val, skip=skip) for k in orders}


# ------------------------------------------------------------------- constants
def chinchilla_e_bits_per_byte(bytes_per_token: float = ASSUMED_BYTES_PER_TOKEN) -> float:
    """Chinchilla's ``E = 1.69`` nats/token in bits/byte, under a bytes-per-token ratio.

    Parameters
    ----------
    bytes_per_token : float, default=4.0
        Assumed UTF-8 bytes per token of the Chinchilla tokenizer on MassiveText
        (see :data:`ASSUMED_BYTES_PER_TOKEN`).

    Returns
    -------
    float
        ``1.69 / (ln 2 * bytes_per_token)`` (bits/byte); about 0.61 at 4 bytes/token.
    """
    return convert(CHINCHILLA_E_NATS_PER_TOKEN, "nats/token", "bits/byte",
                   bytes_per_token=bytes_per_token)
