"""A language of random words drawn from a Zipf law: knowledge a model must memorise.

:class:`ZipfWordSource` writes words of ``L`` letters, each followed by a space, the
words drawn independently from a Zipf law over every one of the ``V^L`` strings
(``P(word of rank i) ~ i^-s``, ranks assigned to strings by a seeded random
permutation). The words carry no structure a model could compute: predicting the
letters of a word means having memorised it, and the frequent words are worth more. A
model of ``N`` parameters can store a number of words that grows with ``N``, and ``D``
tokens show a word of rank ``i`` about ``D i^-s / (L + 1)`` times, so the loss falls with
both, over as many decades as the vocabulary of words allows (the idea of the
"quantization model" of neural scaling: Michaud et al., 2023).

Everything about the source is exact: the words are distinct, so the entropy rate is
the entropy of the word law over ``L + 1`` tokens; and the marginals of a word's
prefixes, suffixes and infixes are sums over the ``V^L`` strings, so the entropy of any
window of ``n`` stationary tokens (:meth:`ZipfWordSource.block_entropy`) and the best
loss of a model that sees a window of ``T`` tokens (:meth:`ZipfWordSource.context_floor`)
are computed, not estimated.

Units: entropies in nats (per token for rates), tokens are bytes (the byte tokenizer).

References
----------
Michaud, Liu, Girit and Tegmark (2023), "The Quantization Model of Neural Scaling".
Cover and Thomas (2006), "Elements of Information Theory", ch. 4 (entropy rates).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import cached_property

import numpy as np

__all__ = ["WORD_PRESETS", "ZipfWordSource"]

#: The space that ends every word.
SEPARATOR = ord(" ")
#: Byte of letter 0; letters are consecutive lower-case ASCII.
FIRST_LETTER = ord("a")
#: Largest number of distinct words (``V^L``); the exact tables hold one float per word.
MAX_WORDS = 1 << 26
#: Named sources for the ``"words:<preset>[:<megabytes>]"`` corpora (issue #19). ``z12``:
#: words of 5 letters out of 26, Zipf exponent 1.2, ``H`` = 1.0528 nats/token; its pilot
#: (``book/data/known_entropy_pilot/words``) brackets an optimum at 1e12 and 2.38e12 FLOP.
#: ``z14``: the same with exponent 1.4 (``H`` = 0.6484 nats/token), a lighter tail of rare
#: words: a model that knows the 1,000 most frequent words is within 7% of ``H`` (``z12``:
#: 12%), so a laptop sweep ends nearer the floor it has to find. ``z16`` and ``z18``
#: (``H`` = 0.4539 and 0.3441 nats/token) lighten the tail further; the pilot of all four
#: (``book/data/known_entropy_pilot``) chose ``z18`` for the sweep after ``z14`` missed.
WORD_PRESETS: dict[str, dict] = {
    "z12": dict(n_letters=26, word_length=5, zipf=1.2, seed=0),
    "z14": dict(n_letters=26, word_length=5, zipf=1.4, seed=0),
    "z16": dict(n_letters=26, word_length=5, zipf=1.6, seed=0),
    "z18": dict(n_letters=26, word_length=5, zipf=1.8, seed=0),
}


def _check(n_letters: object, word_length: object, zipf: object, seed: object) -> None:
    """``ValueError`` naming the first argument that makes the source undefined."""
    if not isinstance(n_letters, int) or isinstance(n_letters, bool) or not 2 <= n_letters <= 26:
        raise ValueError(f"n_letters must be an integer from 2 to 26, got {n_letters!r}")
    if not isinstance(word_length, int) or isinstance(word_length, bool) or word_length < 1:
        raise ValueError(f"word_length must be a positive integer, got {word_length!r}")
    if n_letters**word_length > MAX_WORDS:
        raise ValueError(f"n_letters ** word_length = {n_letters ** word_length:,} words is more "
                         f"than the {MAX_WORDS:,} the exact tables allow")
    if not isinstance(zipf, int | float) or not math.isfinite(zipf) or zipf <= 1:
        raise ValueError(f"zipf must be a finite number above 1 (a power law with a finite "
                         f"mean rank), got {zipf!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


class ZipfWordSource:
    """Words of ``word_length`` letters, drawn i.i.d. from a Zipf law, each followed by a space.

    Parameters
    ----------
    n_letters : int, default=26
        Alphabet size ``V`` (the letters ``a`` onwards).
    word_length : int, default=5
        Letters per word ``L``; the words are all ``V^L`` strings of that length.
    zipf : float, default=1.2
        Exponent ``s`` of the word law, above 1.
    seed : int, default=0
        Seed of the permutation that gives each string its rank.

    Attributes
    ----------
    n_words : int
        ``V^L``.
    period : int
        Tokens per word with its space, ``L + 1``.
    """

    def __init__(self, *, n_letters: int = 26, word_length: int = 5, zipf: float = 1.2,
                 seed: int = 0) -> None:
        _check(n_letters, word_length, zipf, seed)
        self.n_letters, self.word_length = n_letters, word_length
        self.zipf, self.seed = float(zipf), seed
        self.n_words = n_letters**word_length
        self.period = word_length + 1

    @property
    def params(self) -> dict:
        """The constructor's arguments (JSON-ready)."""
        return {"n_letters": self.n_letters, "word_length": self.word_length,
                "zipf": self.zipf, "seed": self.seed}

    # -- the word law ------------------------------------------------------------------
    @cached_property
    def rank_probs(self) -> np.ndarray:
        """``P(word of rank i)`` for ranks ``1..V^L`` (falling)."""
        p = np.arange(1, self.n_words + 1, dtype=np.float64) ** -self.zipf
        return p / p.sum()

    @cached_property
    def codes(self) -> np.ndarray:
        """The string of each rank, as its letters' base-``V`` number (first letter highest)."""
        return np.random.default_rng(self.seed).permutation(self.n_words).astype(np.int64)

    @cached_property
    def word_probs(self) -> np.ndarray:
        """``P(word)`` indexed by the string's code."""
        out = np.empty(self.n_words)
        out[self.codes] = self.rank_probs
        return out

    def word_entropy(self) -> float:
        """Entropy of one word (nats)."""
        p = self.rank_probs
        return float(-(p * np.log(p)).sum())

    def entropy_rate(self) -> float:
        """Exact entropy rate (nats/token): a word's entropy over its ``L + 1`` tokens."""
        return self.word_entropy() / self.period

    def entropy_rate_bits(self) -> float:
        """Exact entropy rate (bits/token)."""
        return self.entropy_rate() / math.log(2)

    def monte_carlo_entropy_rate(self, n_words: int = 100_000, *,
                                 seed: int | None = 0) -> tuple[float, float]:
        """The entropy rate estimated from sampled words, with its standard error.

        A check of :meth:`entropy_rate` that shares none of its sums: ``-ln P`` of
        ``n_words`` words read back from a sampled stream, averaged and divided by the
        tokens per word.

        Parameters
        ----------
        n_words : int, default=100_000
            Words to score (at least 2).
        seed : int or None, default=0
            Seed of the stream.

        Returns
        -------
        (float, float)
            The estimate and its standard error (nats/token).
        """
        if not isinstance(n_words, int) or isinstance(n_words, bool) or n_words < 2:
            raise ValueError(f"n_words must be an integer >= 2, got {n_words!r}")
        flat = self.sample((n_words + 1) * self.period, seed=seed)[0]
        start = int(np.flatnonzero(flat == SEPARATOR)[0]) + 1  # the first whole word
        units = flat[start: start + n_words * self.period].reshape(n_words, self.period)
        digits = units[:, : self.word_length].astype(np.int64) - FIRST_LETTER
        codes = digits @ (self.n_letters ** np.arange(self.word_length - 1, -1, -1))
        per_token = -np.log(self.word_probs[codes]) / self.period
        return float(per_token.mean()), float(per_token.std(ddof=1) / math.sqrt(n_words))

    def infix_probs(self, start: int, length: int) -> np.ndarray:
        """Law of letters ``start .. start + length - 1`` of a word, by their code."""
        v, n = self.n_letters, self.word_length
        if not (0 <= start and 0 <= length and start + length <= n):
            raise ValueError(f"letters {start}..{start + length - 1} are not inside a word "
                             f"of {n} letters")
        cache = self.__dict__.setdefault("_infix", {})
        if (start, length) not in cache:
            cache[start, length] = self.word_probs.reshape(
                v**start, v**length, v ** (n - start - length)).sum(axis=(0, 2))
        return cache[start, length]

    # -- windows -----------------------------------------------------------------------
    def _part_entropy(self, start: int, length: int) -> float:
        if length == 0:
            return 0.0
        if length == self.word_length:
            return self.word_entropy()
        p = self.infix_probs(start, length)
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    def block_entropy(self, length: int) -> float:
        """Entropy of ``length`` consecutive stationary tokens (nats), exact.

        The window starts at a phase ``phi`` (its first token is letter ``phi`` of a word,
        or the space when ``phi = L``), each with probability ``1 / (L + 1)``. A window
        holding a space reveals its phase; it is then the end of one word, whole words
        and the start of another, independent given the phase. The windows without a
        space are letters of one word, a mixture over the phases that fit them.
        """
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}")
        if length == 0:
            return 0.0
        n, p = self.word_length, self.period
        total, mixture = 0.0, None
        for phi in range(p):
            to_space = n - phi  # letters before the first space
            if to_space >= length:  # no space in the window
                part = self.infix_probs(phi, length) / p
                mixture = part if mixture is None else mixture + part
                continue
            rest = length - to_space - 1
            total += (math.log(p) + self._part_entropy(phi, to_space)
                      + rest // p * self.word_entropy()
                      + self._part_entropy(0, rest % p)) / p
        if mixture is not None:
            q = mixture[mixture > 0]
            total -= float((q * np.log(q)).sum())
        return total

    def memoriser_loss(self, known: int | np.ndarray) -> float | np.ndarray:
        """Loss of a model that knows the ``known`` most frequent words and no others.

        The model gives each of the ``K`` most frequent words its true probability and
        spreads the remaining mass evenly over the other ``V^L - K`` strings; its
        cross-entropy on the source, per token, is ``H`` plus the relative entropy of
        the tail it does not know, ``sum_{i > K} P(i) ln(P(i) / q)`` over ``L + 1``
        tokens, with ``q = P(rank > K) / (V^L - K)``. It is exact, and it falls to ``H``
        only when every word is known: a picture of where a run stands.

        Parameters
        ----------
        known : int or array of int
            Words known, ``K``, from 0 to ``V^L``.

        Returns
        -------
        float or numpy.ndarray
            Loss (nats/token), the same shape as ``known``.
        """
        k = np.asarray(known)
        if k.dtype.kind not in "iu" or np.any((k < 0) | (k > self.n_words)):
            raise ValueError(f"known must be whole numbers of words from 0 to {self.n_words:,}, "
                             f"got {known!r}")
        p = self.rank_probs
        tail_mass = np.concatenate([np.cumsum(p[::-1])[::-1], [0.0]])  # P(rank > K), K = 0..
        plogp = np.concatenate([np.cumsum((p * np.log(p))[::-1])[::-1], [0.0]])
        n_rest = self.n_words - k
        with np.errstate(divide="ignore", invalid="ignore"):
            log_q = np.where(n_rest > 0, np.log(tail_mass[k]) - np.log(np.maximum(n_rest, 1)), 0.0)
        excess = plogp[k] - tail_mass[k] * log_q
        out = self.entropy_rate() + excess / self.period
        return float(out) if np.ndim(out) == 0 else out

    def order_entropies(self, max_context: int | None = None) -> list[float]:
        """``H(X | j tokens of context)`` for ``j = 0 .. max_context`` (nats/token), exact.

        With ``L`` tokens of context the last space is always in view and the loss is
        the entropy rate; ``max_context`` defaults to ``L``.
        """
        m = self.word_length if max_context is None else max_context
        blocks = [self.block_entropy(j) for j in range(m + 2)]
        return [b - a for a, b in zip(blocks, blocks[1:], strict=False)]

    def context_floor(self, n_ctx: int) -> float:
        """Lowest mean loss of a model that sees windows of ``n_ctx`` inputs (nats/token).

        Target ``j`` of a window sees ``j`` tokens; by the chain rule the targets'
        conditional entropies sum to ``H(X_0..X_T) - H(X_0)``, so the floor is that over
        ``T``. It lies above the entropy rate by the information the window's first
        tokens lack (the phase and the start of the first word).
        """
        if not isinstance(n_ctx, int) or n_ctx < 1:
            raise ValueError(f"n_ctx must be a positive integer, got {n_ctx!r}")
        return (self.block_entropy(n_ctx + 1) - self.block_entropy(1)) / n_ctx

    def window_log_probs(self, windows: np.ndarray) -> np.ndarray:
        """``ln P(window)`` of stationary windows of bytes, exact (nats), shape ``(W,)``.

        ``-inf`` for a window the source cannot emit (spaces out of step, a byte that is
        neither a letter nor the space).
        """
        win = np.asarray(windows, dtype=np.int64)
        if win.ndim != 2 or win.shape[1] < 1:
            raise ValueError(f"windows must be a 2-D array of bytes, got shape {win.shape}")
        out = np.full(len(win), -np.inf)
        for i, row in enumerate(win):
            out[i] = self._window_log_prob(row)
        return out

    def _window_log_prob(self, row: np.ndarray) -> float:
        n, p, v = self.word_length, self.period, self.n_letters
        space = row == SEPARATOR
        letters = row - FIRST_LETTER
        if ((~space) & ((letters < 0) | (letters >= v))).any():
            return -math.inf
        where = np.flatnonzero(space)
        if where.size == 0:  # letters of one word, at any phase that fits
            if len(row) > n:
                return -math.inf
            code = int(np.polyval(letters, v)) if len(row) else 0
            mass = sum(self.infix_probs(phi, len(row))[code] for phi in range(n - len(row) + 1))
            return math.log(mass / p) if mass > 0 else -math.inf
        first = int(where[0])
        expected = np.zeros(len(row), dtype=bool)
        expected[first::p] = True
        if first > n or not np.array_equal(space, expected):
            return -math.inf
        logp = -math.log(p) + self._log_part(letters[:first], n - first)
        starts = range(first + 1, len(row), p)
        for s in starts:
            word = letters[s: s + n]
            logp += self._log_part(word, 0)
        return logp

    def _log_part(self, letters: np.ndarray, start: int) -> float:
        if len(letters) == 0:
            return 0.0
        code = int(np.polyval(letters, self.n_letters))
        mass = self.infix_probs(start, len(letters))[code] if len(letters) < self.word_length \
            else self.word_probs[code]
        return math.log(mass) if mass > 0 else -math.inf

    # -- sampling ----------------------------------------------------------------------
    def _ranks(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` ranks (1-based) from the Zipf law truncated at ``V^L``."""
        out = np.empty(0, dtype=np.int64)
        while out.size < count:
            draw = rng.zipf(self.zipf, size=max(1024, 2 * (count - out.size)))
            out = np.concatenate([out, draw[draw <= self.n_words]])
        return out[:count]

    def _words(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` words with their spaces, as a flat uint8 array of ``count * (L + 1)``."""
        codes = self.codes[self._ranks(count, rng) - 1]
        n, v = self.word_length, self.n_letters
        units = np.full((count, self.period), SEPARATOR, dtype=np.uint8)
        for j in range(n):  # letter j of each word: digit n - 1 - j of its code
            units[:, j] = FIRST_LETTER + (codes // v ** (n - 1 - j)) % v
        return units.reshape(-1)

    def stream(self, chunk_tokens: int, *, n_chains: int = 1,
               seed: int | None = 0) -> Iterator[np.ndarray]:
        """Chunks of ``(n_chains, chunk_tokens)`` bytes, forever, never repeating.

        Each chain starts at a uniform phase (stationary) and continues across chunks.
        Same seed, same chunks.
        """
        for name, value in (("chunk_tokens", chunk_tokens), ("n_chains", n_chains)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        rng = np.random.default_rng(seed)
        carry = [self._words(1, rng)[int(rng.integers(self.period)):] for _ in range(n_chains)]
        while True:
            chunk = np.empty((n_chains, chunk_tokens), dtype=np.uint8)
            for c in range(n_chains):
                need = chunk_tokens - carry[c].size
                more = self._words(max(0, -(-need // self.period)), rng)
                flat = np.concatenate([carry[c], more])
                chunk[c], carry[c] = flat[:chunk_tokens], flat[chunk_tokens:]
            yield chunk

    def sample(self, n_tokens: int, *, n_chains: int = 1, seed: int | None = 0) -> np.ndarray:
        """``n_chains`` independent stationary sequences of ``n_tokens`` bytes.

        The first chunk of :meth:`stream` with the same seed.

        Returns
        -------
        np.ndarray of uint8, shape (n_chains, n_tokens)
        """
        return next(self.stream(n_tokens, n_chains=n_chains, seed=seed))
