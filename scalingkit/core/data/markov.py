"""A synthetic text source whose entropy rate is known exactly.

An order-``k`` byte Markov chain predicts each byte from the ``k`` bytes before it. Fitted
to a real corpus with add-``alpha`` smoothing, every transition has positive probability,
so the chain on contexts is irreducible and aperiodic and has a unique stationary
distribution ``pi``. Its entropy rate is then exactly

.. math:: H = -\\sum_c \\pi(c) \\sum_x P(x \\mid c) \\ln P(x \\mid c) \\quad \\text{nats/byte},

the loss (nats/token with the byte tokenizer) that a perfect model of the source reaches
and no model can beat (Shannon 1948; Cover and Thomas, ch. 4). Samples start in the
stationary distribution, so that floor holds from the first byte on.

:meth:`MarkovSource.random` builds a chain without a corpus, for the ``"ngram:<preset>"``
corpora (:data:`NGRAM_PRESETS`): each context's next-symbol distribution is drawn
around the distribution of its one-shorter suffix (a hierarchy of Dirichlet draws), so
every extra symbol of context tells a model something, and the contexts that carry the
last of it are many and Zipf-like in frequency: model size and data both matter.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["MarkovSource", "NGRAM_PRESETS"]

#: Largest transition table (contexts x alphabet) fitted, in entries (float64).
MAX_TABLE_ENTRIES = 20_000_000
#: Smallest transition probability of a random chain: every transition stays possible,
#: so the chain is irreducible and aperiodic and its entropy rate is defined.
MIN_PROB = 1e-9
#: Byte of symbol 0 of a random chain; its symbols are consecutive printable bytes.
FIRST_SYMBOL = 33
#: Named random chains for the ``"ngram:<preset>[:<megabytes>]"`` corpora (issue #19),
#: :meth:`MarkovSource.random`'s arguments. ``v48k3``: 48 symbols, order 3; the
#: conditional entropy falls from 3.72 nats with no context to 3.27, 2.60 and finally
#: ``H`` = 1.31 nats/token with 1, 2 and 3 symbols, and half of the stationary mass sits
#: on about 3,000 of its 110,592 contexts, 90 % on about 16,000.
NGRAM_PRESETS: dict[str, dict] = {
    "v48k3": dict(order=3, n_symbols=48, concentrations=(48.0, 48.0, 2.0), symbol_zipf=0.5,
                  seed=0),
}


class MarkovSource:
    """Smoothed order-``k`` byte Markov chain.

    Parameters
    ----------
    order : int, default=2
        Context length ``k`` (bytes); 0 gives independent bytes.
    alpha : float, default=0.1
        Add-alpha smoothing count added to every (context, next byte) pair.

    Attributes
    ----------
    alphabet_ : np.ndarray of uint8
        The distinct bytes of the training text (symbols of the chain).
    probs_ : np.ndarray, shape (n_contexts, n_symbols)
        ``P(next symbol | context)``; context ``c`` encodes its ``k`` symbols in base
        ``n_symbols``, oldest first.
    stationary_ : np.ndarray, shape (n_contexts,)
        Stationary distribution over contexts.

    Examples
    --------
    >>> src = MarkovSource(order=1).fit(b"abababababba")
    >>> round(src.entropy_rate(), 3) > 0
    True
    """

    def __init__(self, *, order: int = 2, alpha: float = 0.1) -> None:
        self.order = order
        self.alpha = alpha

    # -- fitting ---------------------------------------------------------------------
    def fit(self, data: bytes | np.ndarray, *, tol: float = 1e-14, max_iter: int = 100_000):
        """Count transitions in ``data`` and solve for the stationary distribution.

        Parameters
        ----------
        data : bytes or array of uint8
            Training text.
        tol : float, default=1e-14
            Power iteration stops when the L1 change of ``pi`` falls below this.
        max_iter : int, default=100000
            Iteration cap; not converging raises ``RuntimeError``.

        Returns
        -------
        MarkovSource
            ``self``, fitted.
        """
        if not isinstance(self.order, int) or isinstance(self.order, bool) or self.order < 0:
            raise ValueError(f"order must be a non-negative integer, got {self.order!r}")
        alpha = self.alpha
        if not (isinstance(alpha, int | float) and alpha > 0 and math.isfinite(alpha)):
            raise ValueError(f"alpha must be positive and finite, got {self.alpha!r}")
        raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else np.asarray(data)
        if raw.dtype != np.uint8:
            raise ValueError("data must be bytes or a uint8 array")
        if raw.size <= self.order:
            raise ValueError(f"need more than order={self.order} bytes of data, got {raw.size}")
        alphabet, seq = np.unique(raw, return_inverse=True)
        A, k = len(alphabet), self.order
        n_ctx = A**k
        if n_ctx * A > MAX_TABLE_ENTRIES:
            raise ValueError(
                f"order {k} with {A} distinct bytes needs a {n_ctx} x {A} table, more than "
                f"{MAX_TABLE_ENTRIES} entries; use a lower order"
            )
        seq = seq.astype(np.int64)
        ctx = np.zeros(seq.size - k, dtype=np.int64)
        for j in range(k):  # context of position t is seq[t-k : t], oldest first
            ctx = ctx * A + seq[j : seq.size - k + j]
        counts = np.bincount(ctx * A + seq[k:], minlength=n_ctx * A).reshape(n_ctx, A)
        probs = (counts + self.alpha) / (counts.sum(1, keepdims=True) + A * self.alpha)
        self.alphabet_ = alphabet.astype(np.uint8)
        self.probs_ = probs
        self.stationary_ = self._stationary(probs, A, k, tol, max_iter)
        return self

    @staticmethod
    def _stationary(probs: np.ndarray, A: int, k: int, tol: float, max_iter: int) -> np.ndarray:
        n_ctx = probs.shape[0]
        if k == 0:
            return np.ones(1)
        pi = np.full(n_ctx, 1.0 / n_ctx)
        for _ in range(max_iter):
            # Context c = s1 * A^(k-1) + r moves to r * A + x with probability P[c, x].
            flow = (pi[:, None] * probs).reshape(A, n_ctx // A, A)  # (s1, r, x)
            new = flow.sum(0).reshape(n_ctx)
            change = np.abs(new - pi).sum()
            pi = new
            if change < tol:
                return pi / pi.sum()
        raise RuntimeError(f"stationary distribution did not converge in {max_iter} iterations")

    @classmethod
    def random(cls, *, order: int, n_symbols: int, concentrations: tuple[float, ...],
               symbol_zipf: float = 0.0, seed: int = 0, tol: float = 1e-14,
               max_iter: int = 100_000) -> MarkovSource:
        """A random order-``k`` chain whose longer contexts refine the shorter ones.

        With no context the next symbol follows a Zipf law, ``P(x) ~ (x + 1)^-symbol_zipf``.
        Each context of ``j = 1..k`` symbols draws its next-symbol distribution from a
        Dirichlet centred on that of its last ``j - 1`` symbols, with concentration
        ``concentrations[j - 1]``: a large value keeps it close to the shorter context's,
        a small one (about 1) makes it peaked and different. The order-``k`` rows are
        the chain, floored at :data:`MIN_PROB` so that every transition is possible
        (irreducible and aperiodic), and its stationary distribution is solved for as in
        :meth:`fit`. Symbols are the bytes ``FIRST_SYMBOL .. FIRST_SYMBOL + n_symbols - 1``.

        Parameters
        ----------
        order : int
            Context length ``k`` (symbols), at least 1.
        n_symbols : int
            Alphabet size, 2 to 94 (printable ASCII bytes).
        concentrations : sequence of float
            One positive Dirichlet concentration per context length ``1..k``.
        symbol_zipf : float, default=0.0
            Exponent of the context-free Zipf law (0: uniform).
        seed : int, default=0
        tol, max_iter
            As in :meth:`fit`.

        Returns
        -------
        MarkovSource
            Fitted (``probs_``, ``stationary_``, ``alphabet_``), with ``alpha`` None.
        """
        _check_random_args(order, n_symbols, concentrations, symbol_zipf)
        rng = np.random.default_rng(seed)
        p = (np.arange(n_symbols) + 1.0) ** -float(symbol_zipf)
        p /= p.sum()
        for level in range(order):  # prepend one (oldest) symbol per level
            base = np.broadcast_to(p, (n_symbols, *p.shape))
            draws = rng.gamma(float(concentrations[level]) * base)
            total = draws.sum(axis=-1, keepdims=True)
            p = np.where(total > 0, draws / np.where(total > 0, total, 1.0), base)
        probs = np.maximum(p.reshape(n_symbols**order, n_symbols), MIN_PROB)
        probs /= probs.sum(axis=1, keepdims=True)
        src = cls(order=order, alpha=None)
        src.alphabet_ = (FIRST_SYMBOL + np.arange(n_symbols)).astype(np.uint8)
        src.probs_ = probs
        src.stationary_ = cls._stationary(probs, n_symbols, order, tol, max_iter)
        return src

    def _check_fitted(self) -> None:
        if not hasattr(self, "probs_"):
            raise RuntimeError("this MarkovSource is not fitted yet; call fit(data) first")

    # -- exact quantities ------------------------------------------------------------
    def entropy_rate(self) -> float:
        """Exact entropy rate of the chain (nats/byte)."""
        self._check_fitted()
        p = self.probs_
        h_ctx = -(p * np.log(p)).sum(1)  # (n_contexts,)
        return float(self.stationary_ @ h_ctx)

    def block_entropy(self, length: int) -> float:
        """Entropy of ``length <= order`` consecutive stationary symbols (nats)."""
        self._check_fitted()
        k, a = self.order, len(self.alphabet_)
        if not 0 <= length <= k:
            raise ValueError(f"length must be 0..{k} (the chain's order), got {length!r}")
        if length == 0:
            return 0.0
        pi = self.stationary_.reshape((a,) * k)  # axes: oldest symbol first
        marginal = pi.sum(axis=tuple(range(length, k))) if length < k else pi
        p = marginal[marginal > 0]
        return float(-(p * np.log(p)).sum())

    def order_entropies(self, max_context: int | None = None) -> list[float]:
        """``H(X | j symbols of context)`` for ``j = 0 .. max_context`` (nats/token), exact.

        The loss of the best model that sees only the last ``j`` symbols: the unigram
        entropy at ``j = 0``, the entropy rate from ``j = order`` on. A model whose loss
        sits between two of them has learned some, not all, of the next order's
        contexts. ``max_context`` defaults to the order (the same call as the word
        source's :meth:`~scalingkit.core.data.words.ZipfWordSource.order_entropies`).
        """
        m = self.order if max_context is None else max_context
        if not isinstance(m, int) or isinstance(m, bool) or m < 0:
            raise ValueError(f"max_context must be a non-negative integer, got {max_context!r}")
        top = min(m + 1, self.order)
        blocks = [self.block_entropy(j) for j in range(top + 1)]
        out = [b - a for a, b in zip(blocks, blocks[1:], strict=False)]
        return out + [self.entropy_rate()] * (m + 1 - len(out))

    def context_gain(self) -> pd.DataFrame:
        """Where the last symbol of context pays: the contexts, most frequent first.

        The information the full context adds over its last ``order - 1`` symbols,
        ``H(X | order - 1) - H``, is a sum over contexts ``c`` of
        ``pi(c) KL(P(. | c) || P(. | shorter suffix of c))``. A model that knew the
        ``m`` most frequent contexts exactly, and backed off to the shorter suffix
        elsewhere, would be ``remaining`` above the entropy rate.

        Returns
        -------
        pandas.DataFrame
            One row per context, by falling stationary probability: ``rank`` (1 = the
            most frequent), ``probability``, ``cumulative_probability``, ``gain`` and
            ``remaining`` (nats/token).
        """
        self._check_fitted()
        if self.order < 1:
            raise ValueError("context_gain needs a chain of order 1 or more")
        k, a = self.order, len(self.alphabet_)
        joint = (self.stationary_[:, None] * self.probs_).reshape((a,) * (k + 1))
        shorter = joint.sum(axis=0)
        backoff = shorter / shorter.sum(axis=-1, keepdims=True)
        back = np.broadcast_to(backoff, (a,) * (k + 1)).reshape(a**k, a)
        kl = (self.probs_ * np.log(self.probs_ / back)).sum(axis=1)
        order = np.argsort(-self.stationary_, kind="stable")
        gain = (self.stationary_ * kl)[order]
        prob = self.stationary_[order]
        return pd.DataFrame({"rank": np.arange(1, order.size + 1), "probability": prob,
                             "cumulative_probability": np.cumsum(prob), "gain": gain,
                             "remaining": gain.sum() - np.cumsum(gain)})

    def entropy_rate_bits(self) -> float:
        """Exact entropy rate (bits/byte)."""
        return self.entropy_rate() / math.log(2)

    # -- sampling --------------------------------------------------------------------
    def _run(self, n_chains: int, length: int, rng: np.random.Generator, score: bool):
        self._check_fitted()
        A, k = len(self.alphabet_), self.order
        n_ctx = self.probs_.shape[0]
        cdf = np.cumsum(self.probs_, axis=1)
        state = rng.choice(n_ctx, size=n_chains, p=self.stationary_)
        out = np.empty((n_chains, k + length), dtype=np.int64)
        s = state.copy()
        for j in range(k - 1, -1, -1):  # unpack the starting context, oldest first
            out[:, j] = s % A
            s //= A
        nll = np.zeros(n_chains)
        mod = n_ctx // A if k else 1
        for t in range(length):
            u = rng.random(n_chains)
            x = np.minimum((cdf[state] < u[:, None]).sum(1), A - 1)
            if score:
                nll -= np.log(self.probs_[state, x])
            out[:, k + t] = x
            state = (state % mod) * A + x if k else state
        return out, nll

    def sample(
        self, n_bytes: int, *, n_chains: int = 64, seed: int | None = 0
    ) -> list[bytes]:
        """Draw about ``n_bytes`` bytes as ``n_chains`` independent stationary documents.

        Each document starts from a context drawn from the stationary distribution and
        then follows the chain, so every byte after the first ``order`` has conditional
        entropy exactly :meth:`entropy_rate` on average.

        Returns
        -------
        list of bytes
            ``n_chains`` documents of ``max(ceil(n_bytes / n_chains), order + 1)``
            bytes each.
        """
        if not isinstance(n_bytes, int) or n_bytes < 1:
            raise ValueError(f"n_bytes must be a positive integer, got {n_bytes!r}")
        if not isinstance(n_chains, int) or n_chains < 1:
            raise ValueError(f"n_chains must be a positive integer, got {n_chains!r}")
        per_chain = max(1, -(-n_bytes // n_chains) - self.order)
        sym, _ = self._run(n_chains, per_chain, np.random.default_rng(seed), score=False)
        return [self.alphabet_[row].tobytes() for row in sym]

    def monte_carlo_entropy_rate(
        self, n_steps: int, *, n_chains: int = 64, seed: int | None = 0
    ) -> tuple[float, float]:
        """Estimate the entropy rate by simulation (nats/byte).

        Runs ``n_chains`` independent stationary chains for ``n_steps`` steps each and
        averages ``-ln P(x_t | context_t)``.

        Returns
        -------
        mean, stderr : float
            The estimate and its standard error, from the spread of the independent
            per-chain averages.
        """
        if n_chains < 2:
            raise ValueError("need at least 2 chains for a standard error")
        _, nll = self._run(n_chains, n_steps, np.random.default_rng(seed), score=True)
        per_chain = nll / n_steps
        return float(per_chain.mean()), float(per_chain.std(ddof=1) / math.sqrt(n_chains))


def _check_random_args(order: object, n_symbols: object, concentrations: object,
                       symbol_zipf: object) -> None:
    """``ValueError`` naming the first bad argument of :meth:`MarkovSource.random`."""
    def whole(x: object) -> bool:
        return isinstance(x, int | np.integer) and not isinstance(x, bool)

    if not whole(order) or order < 1:
        raise ValueError(f"order must be a positive integer, got {order!r}")
    if not whole(n_symbols) or not 2 <= n_symbols <= 94:
        raise ValueError(f"n_symbols must be an integer from 2 to 94, got {n_symbols!r}")
    conc = np.asarray(concentrations, dtype=float) if np.ndim(concentrations) == 1 else None
    if conc is None or conc.size != order or not np.all(np.isfinite(conc) & (conc > 0)):
        raise ValueError(f"concentrations must be {order} positive finite numbers (one per "
                         f"context length), got {concentrations!r}")
    if not (isinstance(symbol_zipf, int | float) and math.isfinite(symbol_zipf)
            and symbol_zipf >= 0):
        raise ValueError(f"symbol_zipf must be a finite number >= 0, got {symbol_zipf!r}")
    if n_symbols ** (order + 1) > MAX_TABLE_ENTRIES:
        raise ValueError(f"order {order} with {n_symbols} symbols needs a table of "
                         f"{n_symbols ** (order + 1):,} entries, more than {MAX_TABLE_ENTRIES:,}")
