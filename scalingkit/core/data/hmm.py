"""A hidden Markov byte source: long-memory synthetic text with a known entropy rate.

A hidden state ``S_t`` walks a sparse Markov chain over ``n_states`` states and each
state emits one byte ``X_t`` from a few symbols that many states share, so one byte
says little about the state and a good predictor has to track a belief over thousands
of states from a long context. The entropy rate

.. math:: H = \\lim_{n \\to \\infty} \\frac{1}{n} H(X_1, \\dots, X_n) \\quad \\text{nats/token}

has no closed form for a hidden Markov model, but ``-ln p(x_1..x_n)`` is exact (the
forward algorithm), and by the Shannon-McMillan-Breiman theorem its mean per token on a
long stationary sample converges to ``H`` (Cover and Thomas 2006, ch. 4 and 16.8).
:meth:`HMMSource.entropy_rate` returns that estimate with its standard error;
:meth:`HMMSource.entropy_bounds` gives exact bounds ``H(X_t | S_{t-1}) <= H <=
H(X_t | X_{t-1})``.

References
----------
Cover and Thomas (2006), "Elements of Information Theory", sections 4.5 and 16.8.
Rabiner (1989), "A Tutorial on Hidden Markov Models" (the scaled forward algorithm).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from scalingkit.core.data.hmm_parts import (
    check_exponent,
    check_int,
    check_irreducible_aperiodic,
    distinct_rows,
    padded_cdf,
    stochastic,
    weighted_rows,
    zipf_weights,
)

__all__ = ["HMM_PRESETS", "HMMSource"]

#: Named sources for the ``"hmm:<preset>"`` corpora, by the capacity they demand.
HMM_PRESETS: dict[str, dict] = {
    name: dict(n_states=n_states, n_symbols=16, out_degree=4, transition_zipf=1.0,
               emit_degree=4, emission_zipf=1.0, seed=0)
    for name, n_states in (("small", 256), ("medium", 1024), ("large", 4096))
}
#: A candidate for a source where model size matters (issue #19): 64 symbols shared by
#: states along a Zipf law, so the unigram entropy exceeds ``H`` by about 1 nat/token and
#: the context floor falls out to 16-32 tokens (``HMMSource``'s ``symbol_zipf``). The
#: pilot rejected it: laptop-scale models at 2.38e12 FLOP stay at its unigram entropy.
HMM_PRESETS["zipf64"] = dict(n_states=8192, n_symbols=64, out_degree=4, transition_zipf=1.0,
                             emit_degree=4, emission_zipf=1.0, seed=0, symbol_zipf=1.0)
#: Largest number of hidden states accepted.
MAX_STATES = 1 << 16
#: Power iterations tried before the stationary distribution is solved for directly.
POWER_ITERS = 2000
#: Time steps whose emissions are drawn at once (bounds temporary memory).
EMIT_BLOCK = 1024


class HMMSource:
    """A random sparse hidden Markov model emitting bytes.

    State ``i`` moves to ``out_degree`` states: its successor on a random cycle through
    all states, plus ``out_degree - 1`` distinct random states other than itself and
    that successor. The move probabilities are Zipf, ``rank^-transition_zipf``, over
    those targets in random order. Each state emits ``emit_degree`` distinct random
    symbols of ``0..n_symbols-1`` with Zipf probabilities ``rank^-emission_zipf``. The
    cycle makes the chain irreducible; construction checks that it is also aperiodic.

    With ``symbol_zipf > 0`` the symbols a state emits are not drawn uniformly: symbol
    ``x`` is picked with weight ``(x + 1)^-symbol_zipf`` (without replacement), so low
    symbols are shared by many states and say little about the state, while rare ones
    pin it down. The unigram law is then Zipf-like and the information about the
    hidden state arrives at a spread of context lengths instead of all at once.

    Parameters
    ----------
    n_states : int, default=1024
        Hidden states, 2..65536.
    n_symbols : int, default=64
        Alphabet size, 1..256; emitted as the bytes ``0..n_symbols-1``.
    out_degree : int, default=4
        Targets per state, 1..n_states-1 (1 gives the bare cycle, which is periodic).
    transition_zipf : float, default=1.0
        Zipf exponent of the move probabilities (0: uniform over the targets).
    emit_degree : int, default=4
        Symbols per state, 1..n_symbols.
    emission_zipf : float, default=1.0
        Zipf exponent of the emission probabilities.
    seed : int, default=0
        Seed of the random construction.
    symbol_zipf : float, default=0.0
        Zipf exponent of how many states share each symbol (0: uniform, the original
        construction, whose ``params`` then omit this key).

    Attributes
    ----------
    transition_ : scipy.sparse.csr_array, shape (n_states, n_states)
        ``P(S_{t+1} = j | S_t = i)``.
    emission_ : np.ndarray, shape (n_states, n_symbols)
        ``P(X_t = x | S_t = i)``.

    Examples
    --------
    >>> src = HMMSource(n_states=64, n_symbols=8, seed=1)
    >>> src.sample(5, n_chains=2, seed=0).shape
    (2, 5)
    """

    def __init__(self, *, n_states: int = 1024, n_symbols: int = 64, out_degree: int = 4,
                 transition_zipf: float = 1.0, emit_degree: int = 4,
                 emission_zipf: float = 1.0, seed: int = 0,
                 symbol_zipf: float = 0.0) -> None:
        S = check_int("n_states", n_states, 2, MAX_STATES)
        M = check_int("n_symbols", n_symbols, 1, 256)
        d = check_int("out_degree", out_degree, 1, S - 1)
        k = check_int("emit_degree", emit_degree, 1, M)
        a_t = check_exponent("transition_zipf", transition_zipf)
        a_e = check_exponent("emission_zipf", emission_zipf)
        a_s = check_exponent("symbol_zipf", symbol_zipf)
        rng = np.random.default_rng(check_int("seed", seed, 0))
        self.params = dict(n_states=S, n_symbols=M, out_degree=d, transition_zipf=a_t,
                           emit_degree=k, emission_zipf=a_e, seed=int(seed))
        if a_s > 0:  # absent at 0, so the original presets keep their stored params
            self.params["symbol_zipf"] = a_s
        order = rng.permutation(S)
        succ = np.empty(S, dtype=np.int64)
        succ[order] = np.roll(order, -1)
        # Extra targets: offsets 1..S-1 from the state (never itself), minus the successor.
        offsets = distinct_rows(rng, S, d, S - 1) + 1
        others = (np.arange(S)[:, None] + offsets) % S
        keep = np.argsort(others == succ[:, None], axis=1, kind="stable")[:, : d - 1]
        targets = np.column_stack([succ, np.take_along_axis(others, keep, 1)])
        t_probs = zipf_weights(d, a_t)[rng.permuted(np.tile(np.arange(d), (S, 1)), axis=1)]
        transition = sparse.csr_array(
            (t_probs.ravel(), (np.repeat(np.arange(S), d), targets.ravel())), shape=(S, S))
        emission = np.zeros((S, M))
        symbols = (distinct_rows(rng, S, k, M) if a_s == 0
                   else weighted_rows(rng, S, k, zipf_weights(M, a_s)))
        np.put_along_axis(emission, symbols, np.tile(zipf_weights(k, a_e), (S, 1)), axis=1)
        self._setup(transition, emission)

    @classmethod
    def from_matrices(cls, transition, emission) -> HMMSource:
        """An HMM from explicit matrices, with the same checks as the constructor.

        Parameters
        ----------
        transition : array-like or scipy sparse, shape (n_states, n_states)
            Row-stochastic, irreducible and aperiodic.
        emission : array-like, shape (n_states, n_symbols)
            Row-stochastic, ``n_symbols <= 256``.

        Returns
        -------
        HMMSource
        """
        self = cls.__new__(cls)
        self.params = {"explicit": True}
        self._setup(transition, emission)
        return self

    def _setup(self, transition, emission) -> None:
        T = stochastic("transition", transition)
        E = stochastic("emission", emission)
        S, M = E.shape
        if T.shape != (S, S):
            raise ValueError(f"transition must be ({S}, {S}) to match emission's {S} "
                             f"states, got {T.shape}")
        check_int("n_states", S, 2, MAX_STATES)
        check_int("n_symbols", M, 1, 256)
        check_irreducible_aperiodic(T)
        self.transition_ = T
        self.emission_ = E.toarray()
        self._emission_t = np.ascontiguousarray(self.emission_.T)  # (M, S)
        self._transition_t = sparse.csr_array(T.T)  # forward pass: alpha_{t+1} = T^T alpha_t
        self._t_cdf, self._t_cols = padded_cdf(T)  # (S, max out-degree)
        self._e_cdf, self._e_cols = padded_cdf(E)  # (S, max symbols per state)
        self._pi = self._solve_stationary()

    @property
    def n_states(self) -> int:
        """Number of hidden states."""
        return self.emission_.shape[0]

    @property
    def n_symbols(self) -> int:
        """Alphabet size (symbols are the bytes ``0..n_symbols-1``)."""
        return self.emission_.shape[1]

    # -- exact quantities ------------------------------------------------------------
    def _solve_stationary(self) -> np.ndarray:
        """Power iteration (fast on well-mixing chains), else a sparse LU solve of
        ``pi (I - T) = 0`` with ``sum(pi) = 1``."""
        S = self.n_states
        pi = np.full(S, 1.0 / S)
        for _ in range(POWER_ITERS):
            new = self._transition_t @ pi
            new /= new.sum()
            change = np.abs(new - pi).sum()
            pi = new
            if change < 1e-15:
                break
        else:
            A = sparse.lil_array((sparse.eye_array(S) - self.transition_).T)
            A[S - 1, :] = 1.0  # one balance equation is redundant; replace it by the sum
            b = np.zeros(S)
            b[-1] = 1.0
            pi = np.clip(spsolve(sparse.csc_array(A), b, permc_spec="MMD_AT_PLUS_A"), 0, None)
            pi /= pi.sum()
        residual = np.abs(pi @ self.transition_ - pi).sum()
        if not residual < 1e-9:
            raise RuntimeError(f"stationary distribution inaccurate: residual {residual:.3g}")
        return pi

    def stationary(self) -> np.ndarray:
        """Stationary distribution of the hidden chain, shape ``(n_states,)``."""
        return self._pi.copy()

    def entropy_bounds(self) -> tuple[float, float]:
        """Exact bounds ``H(X_t | S_{t-1}) <= H <= H(X_t | X_{t-1})`` (nats/token).

        Knowing the previous hidden state is worth at least the whole past of the
        symbols (lower bound); one symbol of context is worth at most that (upper
        bound). The gap is what a model gains from context beyond the last token.
        """
        pi, E = self._pi, self.emission_
        nxt = self.transition_ @ E  # (S, M): P(X_t | S_{t-1})
        lower = float(pi @ _row_entropy(nxt))
        joint = (E * pi[:, None]).T @ nxt  # (M, M): P(X_{t-1}, X_t)
        marginal = joint.sum(1)
        upper = float(_entropy(joint.ravel()) - _entropy(marginal))
        return lower, upper

    # -- sampling --------------------------------------------------------------------
    def _walk(self, prev: np.ndarray, n_steps: int, rng: np.random.Generator):
        """``n_steps`` moves of every chain from states ``prev``; symbols emitted.

        Returns symbols ``(n_chains, n_steps)`` uint8 and the last states.
        """
        cdf, cols = self._t_cdf, self._t_cols
        u = rng.random((n_steps, prev.size))
        states = np.empty((prev.size, n_steps), dtype=np.int64)
        s = prev
        for t in range(n_steps):  # inverse-CDF draw of every chain's next state
            s = cols[s, (cdf[s] < u[t][:, None]).sum(1)]  # (C,)
            states[:, t] = s
        symbols = np.empty(states.shape, dtype=np.uint8)
        for lo in range(0, n_steps, EMIT_BLOCK):  # emissions, independent given states
            st = states[:, lo:lo + EMIT_BLOCK]
            v = rng.random(st.shape)
            symbols[:, lo:lo + EMIT_BLOCK] = self._e_cols[st, (self._e_cdf[st] < v[..., None])
                                                          .sum(-1)]
        return symbols, s

    def _start(self, n_chains: int, rng: np.random.Generator) -> np.ndarray:
        """States drawn from the stationary distribution; their next step is stationary."""
        cum = np.cumsum(self._pi)
        return np.minimum(np.searchsorted(cum, rng.random(n_chains) * cum[-1], side="right"),
                          self.n_states - 1)

    def sample(self, n_tokens: int, *, n_chains: int = 1, seed: int | None = 0) -> np.ndarray:
        """``n_chains`` independent stationary sequences of ``n_tokens`` symbols.

        Every chain starts in the stationary distribution, so each token has the same
        marginal law from the first on. Same seed, same output (also equal to the first
        chunk of :meth:`stream` with that seed). Memory: about 24 bytes per token.

        Returns
        -------
        np.ndarray of uint8, shape (n_chains, n_tokens)
        """
        return next(self.stream(n_tokens, n_chains=n_chains, seed=seed))

    def stream(self, chunk_tokens: int, *, n_chains: int = 1,
               seed: int | None = 0) -> Iterator[np.ndarray]:
        """Chunks of ``(n_chains, chunk_tokens)`` uint8 symbols, forever.

        Each chunk continues every chain from the hidden state where the last one
        ended, so consecutive chunks join into one stationary sequence per chain and
        never repeat.
        """
        check_int("chunk_tokens", chunk_tokens, 1)
        check_int("n_chains", n_chains, 1)
        rng = np.random.default_rng(seed)
        state = self._start(n_chains, rng)
        while True:
            symbols, state = self._walk(state, chunk_tokens, rng)
            yield symbols

    # -- exact log-probabilities -----------------------------------------------------
    def _forward(self, x: np.ndarray, alpha: np.ndarray | None):
        """Scaled forward pass over ``x`` (n_chains, n); ``alpha`` (n_states, n_chains)
        is the filtered state distribution after the previous token, ``None`` at start.

        Returns ``ln p(x_t | x_<t)`` (n_chains, n) and the final ``alpha``.
        """
        Et, Tt = self._emission_t, self._transition_t
        out = np.empty(x.shape[::-1])
        for t in range(x.shape[1]):
            pred = np.repeat(self._pi[:, None], x.shape[0], 1) if alpha is None else Tt @ alpha
            pred *= Et[x[:, t]].T  # (S, C): P(S_t = s, x_t | x_<t)
            c = pred.sum(0)  # (C,): p(x_t | x_<t)
            with np.errstate(divide="ignore"):
                out[t] = np.log(c)
            pred *= 1.0 / np.where(c > 0, c, 1.0)  # an impossible token zeroes the chain
            alpha = pred
        return out.T, alpha

    def _symbols(self, sequences) -> np.ndarray:
        x = np.frombuffer(sequences, np.uint8) if isinstance(sequences, bytes) else sequences
        x = np.asarray(x)
        if x.ndim not in (1, 2) or x.shape[-1] < 1 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"sequences must be a 1-D or 2-D integer array of length >= 1, "
                             f"got dtype {x.dtype} and shape {x.shape}")
        if x.min() < 0 or x.max() >= self.n_symbols:
            raise ValueError(f"sequences must hold symbols 0..{self.n_symbols - 1}")
        return np.atleast_2d(x).astype(np.int64)

    def conditional_log_probs(self, sequences) -> np.ndarray:
        """Exact ``ln p(x_t | x_1..x_{t-1})`` of every token (nats), stationary start.

        Parameters
        ----------
        sequences : bytes or integer array, shape (n,) or (n_chains, n)

        Returns
        -------
        np.ndarray, shape (n_chains, n)
            ``-inf`` from the first token the model cannot emit onwards.
        """
        x = self._symbols(sequences)
        return self._forward(x, None)[0]

    def log_prob(self, sequences) -> np.ndarray:
        """Exact ``ln p(x_1..x_n)`` of each sequence (nats), by the forward algorithm.

        Returns
        -------
        np.ndarray, shape (n_chains,)
        """
        return self.conditional_log_probs(sequences).sum(1)

    def entropy_rate(self, n_tokens: int = 1 << 14, *, n_chains: int = 64,
                     burn_in: int = 512, seed: int | None = 0,
                     chunk_tokens: int = 4096) -> tuple[float, float]:
        """Shannon-McMillan-Breiman estimate of the entropy rate (nats/token).

        Samples ``n_chains`` independent stationary chains of ``burn_in + n_tokens``
        tokens and averages the exact ``-ln p(x_t | x_<t)`` over the last ``n_tokens``
        of each. Its expectation is the mean of ``H(X_t | X_<t)`` over those
        positions, which decreases to ``H`` as ``t`` grows, so any bias is upward and
        shrinks with ``burn_in``. The standard error comes from the spread of the
        ``n_chains`` independent per-chain means. The defaults (about 1e6 scored
        tokens) give a standard error near 1e-3 nats/token on the presets; the time
        is about 7 microseconds per token per 1024 states on one core.

        Returns
        -------
        H, stderr : float
            Estimate and standard error (nats/token).
        """
        check_int("n_tokens", n_tokens, 1)
        check_int("n_chains", n_chains, 2)
        check_int("burn_in", burn_in, 0)
        total = np.zeros(n_chains)
        done, alpha = 0, None
        for chunk in self.stream(chunk_tokens, n_chains=n_chains, seed=seed):
            logp, alpha = self._forward(chunk.astype(np.int64), alpha)
            lo = max(0, burn_in - done)
            hi = min(chunk_tokens, burn_in + n_tokens - done)
            total -= logp[:, lo:hi].sum(1)
            done += chunk_tokens
            if done >= burn_in + n_tokens:
                break
        per_chain = total / n_tokens
        return float(per_chain.mean()), float(per_chain.std(ddof=1) / math.sqrt(n_chains))

    def window_entropy(self, n_ctx: int, *, n_windows: int = 4096,
                       seed: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
        """``H(X_t | X_1..X_{t-1})`` for ``t = 1..n_ctx`` (nats/token), estimated.

        The loss a perfect model reaches on the ``t``-th target of a window of
        ``n_ctx`` tokens; its mean over ``t`` is the best mean loss of any model with
        that window. Estimated from ``n_windows`` independent stationary windows.

        Returns
        -------
        mean, stderr : np.ndarray, shape (n_ctx,)
        """
        check_int("n_ctx", n_ctx, 1)
        check_int("n_windows", n_windows, 2)
        nll = -self.conditional_log_probs(self.sample(n_ctx, n_chains=n_windows, seed=seed))
        return nll.mean(0), nll.std(0, ddof=1) / math.sqrt(n_windows)


def _entropy(p: np.ndarray) -> float:
    """Entropy of a probability vector (nats); zero entries contribute nothing."""
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def _row_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy of each row of a row-stochastic matrix (nats)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(1)
