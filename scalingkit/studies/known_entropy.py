"""The known-entropy experiment: can an Approach 3 fit recover a true entropy rate?

Two synthetic corpora have a known entropy rate ``H`` (nats/byte, equal to nats/token
with the byte tokenizer):

* ``"markov:<k>"`` (:mod:`scalingkit.core.data.markov`), sampled from an order-``k``
  byte Markov chain, whose ``H`` is exact; a small model already reaches it;
* ``"ngram:<preset>"`` (:meth:`~scalingkit.core.data.markov.MarkovSource.random`), a
  random order-``k`` chain whose longer contexts refine the shorter ones, with ``H``
  exact; capturing its many rare contexts takes capacity and data;
* ``"words:<preset>"`` (:mod:`scalingkit.core.data.words`), random words from a Zipf
  law, with ``H`` exact; a model must memorise words, the frequent ones first, so both
  capacity and data pay over several decades;
* ``"hmm:<preset>"`` (:mod:`scalingkit.core.data.hmm`), sampled from a hidden Markov
  model with thousands of states, whose ``H`` is estimated with a standard error;
  tracking the hidden state from a long context takes capacity, so model size matters.

An IsoFLOP sweep on either, fitted with ``L(N, D) = E + A / N^alpha + B / D^beta``,
should give ``E`` close to ``H``; the relative error ``|E - H| / H`` measures how well
the fit finds the irreducible loss. :func:`source_of` returns the source behind a
corpus spec, and the functions below accept either kind.

Two finite-sample effects put the best achievable validation loss slightly above ``H``,
and both are computed here rather than assumed away:

* a window of ``n_ctx`` tokens gives its first targets little context
  (:func:`context_floor`: exact for a Markov chain and the word source, estimated for
  an HMM);
* the validation windows are a finite sample, so even the true source scores a little
  above or below ``H`` on them (:func:`source_loss_on_windows`, exact for both).

References
----------
Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models" (Approach 3).
Cover and Thomas (2006), "Elements of Information Theory", ch. 4 (entropy rates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from scalingkit.core.data.hmm import HMM_PRESETS, HMMSource
from scalingkit.core.data.markov import NGRAM_PRESETS, MarkovSource
from scalingkit.core.data.words import WORD_PRESETS, ZipfWordSource
from scalingkit.fit.stats import relative_error
from scalingkit.studies.known_entropy_fit import noise_interval, profile_E, result_table

__all__ = [
    "markov_source",
    "source_of",
    "true_entropy",
    "source_params",
    "check_source",
    "document_bytes",
    "context_floor",
    "source_loss_on_windows",
    "fit_known_entropy",
    "noise_interval",
    "profile_E",
    "result_table",
]


def markov_source(order: int, source: str = "shakespeare", *, val_fraction: float = 0.1,
                  max_doc_bytes: int = 1 << 20) -> MarkovSource:
    """The fitted chain behind the corpus ``"markov:<order>:<source>"``.

    Refits the chain exactly as :func:`scalingkit.core.data.load_corpus` does: on the
    training documents of ``source`` (the same document split), with the default
    smoothing.

    Parameters
    ----------
    order : int
        Context length ``k`` of the chain (bytes).
    source : str, default="shakespeare"
        Corpus the chain was fitted to.

    Returns
    -------
    MarkovSource
    """
    from scalingkit.core.data import is_validation, resolve_corpus

    corpus = resolve_corpus(source)
    text = b"".join(d for n, d in corpus.documents(max_doc_bytes)
                    if not is_validation(n, val_fraction))
    return MarkovSource(order=order).fit(text)


Source = MarkovSource | HMMSource | ZipfWordSource


def source_of(corpus_spec: str) -> Source:
    """The source behind a synthetic corpus spec, built as the corpus builds it.

    Parameters
    ----------
    corpus_spec : str
        ``"markov:<k>[:<source corpus>]"`` (the chain refitted by
        :func:`markov_source`), ``"ngram:<preset>"``
        (``MarkovSource.random(**NGRAM_PRESETS[preset])``), ``"words:<preset>"``
        (``ZipfWordSource(**WORD_PRESETS[preset])``) or ``"hmm:<preset>"``
        (``HMMSource(**HMM_PRESETS[preset])``).

    Returns
    -------
    MarkovSource, ZipfWordSource or HMMSource

    Raises
    ------
    ValueError
        Naming the spec, if it is malformed, names an unknown HMM preset, or is not a
        synthetic corpus.
    """
    from scalingkit.core.data.synthetic import _parse_hmm, _parse_markov, _parse_ngram, _parse_words

    if not isinstance(corpus_spec, str):
        raise ValueError(f"source spec must be a string, got {corpus_spec!r}")
    if corpus_spec.startswith("markov:"):
        order, source = _parse_markov(corpus_spec)
        return markov_source(order, source)
    if corpus_spec.startswith("ngram:"):
        return MarkovSource.random(**NGRAM_PRESETS[_parse_ngram(corpus_spec)])
    if corpus_spec.startswith("words:"):
        return ZipfWordSource(**WORD_PRESETS[_parse_words(corpus_spec)])
    if corpus_spec.startswith("hmm:"):
        return HMMSource(**HMM_PRESETS[_parse_hmm(corpus_spec)])
    raise ValueError(f"unknown source spec {corpus_spec!r}; use 'markov:<k>', "
                     f"'ngram:<preset>' ({', '.join(NGRAM_PRESETS)}), "
                     f"'words:<preset>' ({', '.join(WORD_PRESETS)}) or "
                     f"'hmm:<preset>' ({', '.join(HMM_PRESETS)})")


def true_entropy(corpus_meta: dict) -> tuple[float, float]:
    """Entropy rate of a synthetic corpus's source and its standard error (nats/token).

    Parameters
    ----------
    corpus_meta : dict
        ``TokenCorpus.meta`` of a ``markov:`` or ``hmm:`` corpus (byte tokenizer, so
        nats/byte are nats/token).

    Returns
    -------
    H, stderr : float
        The stored entropy rate; its standard error, 0 for a Markov chain (exact).
    """
    if "entropy_rate_nats_per_byte" not in corpus_meta:
        raise ValueError(f"corpus {corpus_meta.get('corpus')!r} has no known entropy rate; "
                         "use a 'markov:<k>', 'ngram:<preset>' or 'hmm:<preset>' corpus")
    return (float(corpus_meta["entropy_rate_nats_per_byte"]),
            float(corpus_meta.get("entropy_rate_stderr_nats_per_byte", 0.0)))


def source_params(corpus_meta: dict) -> dict[str, Any]:
    """The parameters of a synthetic corpus's source, from its meta.

    Returns
    -------
    dict
        An HMM's constructor arguments (``n_states``, ``n_symbols``, ...), a random
        chain's (``order``, ``n_symbols``, ``concentrations``, ...), or a fitted Markov
        chain's ``order``, smoothing ``alpha`` and the ``source`` corpus it was fitted to.
    """
    if "hmm_params" in corpus_meta:
        return dict(corpus_meta["hmm_params"])
    if "ngram_params" in corpus_meta:
        return dict(corpus_meta["ngram_params"])
    if "words_params" in corpus_meta:
        return dict(corpus_meta["words_params"])
    if "markov_order" in corpus_meta:
        return {"order": corpus_meta["markov_order"], "alpha": corpus_meta["markov_alpha"],
                "source": corpus_meta["markov_source"]}
    raise ValueError(f"corpus {corpus_meta.get('corpus')!r} is not a synthetic source")


def check_source(src: MarkovSource | HMMSource, corpus_meta: dict) -> None:
    """``RuntimeError`` unless ``src`` is the source the corpus was sampled from.

    A Markov chain must reproduce the stored entropy rate; an HMM its stored parameters.
    """
    if isinstance(src, HMMSource):
        same = src.params == corpus_meta.get("hmm_params")
    elif isinstance(src, ZipfWordSource):
        same = src.params == corpus_meta.get("words_params")
    else:
        h = true_entropy(corpus_meta)[0]
        same = abs(src.entropy_rate() - h) <= 1e-9 * h
    if not same:
        raise RuntimeError(f"the rebuilt source differs from the one that sampled the "
                           f"corpus {corpus_meta.get('corpus')!r}")


def document_bytes(corpus_meta: dict) -> int | None:
    """Length of every validation document of an ``hmm:`` corpus (bytes), else None.

    The HMM corpus's documents are independent chains of one length, concatenated in
    ``val.bin``; :func:`source_loss_on_windows` restarts the source at their borders.
    """
    if "hmm_params" not in corpus_meta and "words_params" not in corpus_meta:
        return None
    n_bytes, n_docs = corpus_meta["val_bytes"], corpus_meta["val_docs"]
    if n_docs < 1 or n_bytes % n_docs:
        raise ValueError(f"corpus {corpus_meta.get('corpus')!r}: {n_bytes} validation bytes "
                         f"do not split into {n_docs} documents of one length")
    return n_bytes // n_docs


def context_floor(src: MarkovSource | HMMSource, n_ctx: int, *, n_windows: int = 4096,
                  seed: int = 0) -> float:
    """Lowest mean loss any model with an ``n_ctx``-token window can reach (nats/token).

    A window of ``n_ctx`` inputs predicts ``n_ctx`` targets; target ``j`` (1-based)
    sees ``j`` bytes of context, and the best loss on it is ``H(X_j | X_0..X_{j-1})``.
    The floor is the mean of those over ``j = 1..T``.

    For an order-``k`` Markov chain it is exact: for ``j >= k`` the term is the entropy
    rate ``H``, and by the chain rule the first ``k - 1`` sum to
    ``H(X_0..X_{k-1}) - H(X_0)``, so the floor is

    .. math:: \\bigl[H(X_0..X_{k-1}) - H(X_0) + (T - k + 1) H\\bigr] / T.

    For an HMM each term is estimated from ``n_windows`` independent stationary windows
    (:meth:`~scalingkit.core.data.hmm.HMMSource.window_entropy` over ``T + 1`` tokens,
    dropping the first, context-free position).

    Parameters
    ----------
    src : MarkovSource or HMMSource
        A fitted chain or an HMM (stationary start, as in the sampled corpus).
    n_ctx : int
        Window length ``T`` (tokens); for a chain at least its order.
    n_windows : int, default=4096
        HMM only: windows behind the estimate.
    seed : int, default=0
        HMM only: seed of the sampled windows.

    Returns
    -------
    float
        The floor (nats/token); for a chain of order ``k <= 1`` it equals ``H``.
    """
    if isinstance(src, ZipfWordSource):
        return src.context_floor(n_ctx)
    if isinstance(src, HMMSource):
        if not isinstance(n_ctx, int) or n_ctx < 1:
            raise ValueError(f"n_ctx must be a positive integer, got {n_ctx!r}")
        per_target, _ = src.window_entropy(n_ctx + 1, n_windows=n_windows, seed=seed)
        return float(per_target[1:].mean())
    if not isinstance(n_ctx, int) or n_ctx < max(1, src.order):
        raise ValueError(f"n_ctx must be an integer >= the chain order {src.order}, "
                         f"got {n_ctx!r}")
    h = src.entropy_rate()
    k = src.order
    if k <= 1:
        return h
    head = src.block_entropy(k) - src.block_entropy(1)
    return (head + (n_ctx - k + 1) * h) / n_ctx


def source_loss_on_windows(src: MarkovSource | HMMSource, tokens: np.ndarray, n_ctx: int,
                           eval_tokens: int, *, doc_bytes: int | None = None) -> float:
    """Mean loss of the true source on the trainer's validation windows (nats/token).

    Uses the same fixed windows as the trainer
    (:func:`scalingkit.core.data.eval_windows`), and gives each target only the context
    inside its window, as a model sees it. A chain scores targets with fewer than ``k``
    bytes of window context with its exact stationary conditionals; an HMM scores every
    target exactly by the forward algorithm from a stationary start at the window's
    first token (:meth:`~scalingkit.core.data.hmm.HMMSource.conditional_log_probs`).

    Parameters
    ----------
    src : MarkovSource or HMMSource
    tokens : np.ndarray of uint8
        The validation byte array of the ``markov`` or ``hmm`` corpus.
    n_ctx, eval_tokens : int
        Window length (tokens) and tokens per evaluation, as in the ``TrainConfig``.
    doc_bytes : int, optional
        HMM or word source: length of every validation document (bytes;
        :func:`document_bytes`).
        The documents are independent chains, and a token that starts one may be one
        the previous chain's states cannot emit, so a window that crosses a border is
        scored as two pieces, the source restarting at the border (it knows where a
        document starts; a model does not, so this is a slightly lower figure). Without
        it the windows are scored as one chain, and a crossing can give ``ValueError``.

    Returns
    -------
    float
    """
    from scalingkit.core.data import eval_windows

    if isinstance(src, HMMSource | ZipfWordSource):
        starts = eval_windows(tokens, n_ctx, max(1, eval_tokens // n_ctx))
        win = np.asarray(tokens)[starts[:, None] + np.arange(n_ctx + 1)]  # (W, T + 1)
        score = _hmm_window_loss if isinstance(src, HMMSource) else _words_window_loss
        return score(src, win, _borders(starts, n_ctx, doc_bytes))
    if doc_bytes is not None:
        raise ValueError("doc_bytes applies to an HMM or word source only")
    lookup = np.full(256, -1, dtype=np.int64)
    lookup[src.alphabet_] = np.arange(len(src.alphabet_))
    starts = eval_windows(tokens, n_ctx, max(1, eval_tokens // n_ctx))
    win = lookup[np.asarray(tokens, dtype=np.int64)[starts[:, None] + np.arange(n_ctx + 1)]]
    if (win < 0).any():
        raise ValueError("tokens contain bytes outside the chain's alphabet")
    k, a = src.order, len(src.alphabet_)
    total, count = 0.0, 0
    for j in range(1, n_ctx + 1):
        m = min(j, k)
        if m == k:
            ctx = np.zeros(len(starts), dtype=np.int64)
            for i in range(j - k, j):
                ctx = ctx * a + win[:, i]
            total += -np.log(src.probs_[ctx, win[:, j]]).sum()
        else:  # P(x_j | last m symbols) from the stationary joint of m + 1 symbols
            pi = src.stationary_.reshape((a,) * k)
            joint = pi.sum(axis=tuple(range(m + 1, k))) if m + 1 < k else pi
            cond = joint / joint.sum(axis=-1, keepdims=True)
            idx = tuple(win[:, i] for i in range(j - m, j + 1))
            total += -np.log(cond[idx]).sum()
        count += len(starts)
    return total / count


def _borders(starts: np.ndarray, n_ctx: int, doc_bytes: int | None) -> np.ndarray:
    """Offset in each window of the first token of a new document, in ``1..n_ctx``;
    ``n_ctx + 1`` where the window stays inside one document."""
    none = np.full(len(starts), n_ctx + 1, dtype=np.int64)
    if doc_bytes is None:
        return none
    if not isinstance(doc_bytes, int) or doc_bytes < 1:
        raise ValueError(f"doc_bytes must be a positive integer, got {doc_bytes!r}")
    offset = (starts // doc_bytes + 1) * doc_bytes - starts  # next border after the start
    return np.where(offset <= n_ctx, offset, none)


def _hmm_window_loss(src: HMMSource, win: np.ndarray, border: np.ndarray) -> float:
    """Mean ``-ln p`` of targets ``1..T`` of windows ``win`` (W, T + 1), each scored from
    a stationary start at its first token and again at ``border`` (nats/token)."""
    def log_prob(rows: np.ndarray, first_is_target: bool) -> float:
        logp = src.conditional_log_probs(rows)
        return float((logp if first_is_target else logp[:, 1:]).sum())

    return _pieces_loss(win, border, log_prob, "a token the HMM cannot emit from its context")


def _words_window_loss(src: ZipfWordSource, win: np.ndarray, border: np.ndarray) -> float:
    """As :func:`_hmm_window_loss`, under the word source: ``ln P(window) - ln P(first
    token)`` by the chain rule, each document's piece scored as its own stationary window."""
    def log_prob(rows: np.ndarray, first_is_target: bool) -> float:
        logp = src.window_log_probs(rows)
        return float((logp if first_is_target else logp - src.window_log_probs(rows[:, :1])).sum())

    return _pieces_loss(win, border, log_prob, "text the word source cannot emit")


def _pieces_loss(win: np.ndarray, border: np.ndarray,
                 log_prob: Callable[[np.ndarray, bool], float], what: str) -> float:
    """Mean ``-ln p`` over targets ``1..T`` of windows cut at ``border`` (nats/token).

    ``log_prob(rows, first_is_target)`` sums the log-probabilities of a piece's targets:
    the window's first token is context, a new document's first token is a target.
    """
    total = 0.0
    for cut in np.unique(border):
        rows = win[border == cut]
        total -= log_prob(rows[:, :cut], False)
        if cut < win.shape[1]:  # the new document's tokens, from a fresh start
            total -= log_prob(rows[:, cut:], True)
    if not np.isfinite(total):
        raise ValueError(f"the validation windows hold {what}; is doc_bytes the corpus's "
                         "document length?")
    return float(total / (win.shape[0] * (win.shape[1] - 1)))


def fit_known_entropy(params: Any, tokens: Any, loss: Any, true_entropy_rate: float, *,
                      n_bootstrap: int = 1000, seed: int = 0, grid: str = "full",
                      confidence: float = 0.95,
                      noise_sd: float | None = None) -> dict[str, Any]:
    """Fit Approach 3 to runs on a source of known entropy and compare ``E`` with ``H``.

    Parameters
    ----------
    params, tokens, loss : array_like
        Model sizes N (parameters), training tokens D and final validation losses
        (nats/token) of the runs.
    true_entropy_rate : float
        The source's exact entropy rate ``H`` (nats/token).
    n_bootstrap : int, default=1000
        Bootstrap resamples of the runs for the interval on ``E``.
    seed : int, default=0
        Bootstrap seed.
    grid : {"full", "small"}, default="full"
        Initial-value grid of :class:`~scalingkit.fit.ParametricFit`.
    confidence : float, default=0.95
        Level of the percentile interval.
    noise_sd : float, optional
        The seed noise floor (nats/token): with it, ``E_ci_noise`` is a second interval
        on ``E`` from ``n_bootstrap`` refits of the losses plus normal noise of this
        standard deviation (:func:`noise_interval`).

    Returns
    -------
    dict
        ``true_entropy_rate``, ``fitted_E``, ``E_ci`` ([low, high]), ``relative_error``,
        ``H_inside_ci``, ``units`` (``"nats/token"``), the other coefficients (``A``,
        ``B``, ``alpha``, ``beta``) with their intervals, ``n_runs``, and the solver's
        ``success`` and ``message``; with ``noise_sd`` also ``noise_sd`` and
        ``E_ci_noise``.
    """
    from scalingkit.fit import ParametricFit

    est = ParametricFit(grid=grid, n_bootstrap=n_bootstrap, random_state=seed,
                        confidence=confidence).fit(params, tokens, loss)
    if n_bootstrap and est.ci_ is not None:
        ci = [float(v) for v in est.ci_["E"]]
    else:
        ci = [float("nan"), float("nan")]
    e = float(est.E_)
    out = {
        "true_entropy_rate": float(true_entropy_rate),
        "fitted_E": e,
        "E_ci": ci,
        "relative_error": relative_error(e, float(true_entropy_rate)),
        "H_inside_ci": bool(ci[0] <= true_entropy_rate <= ci[1]),
        "units": "nats/token",
        "coef": {k: float(est.coef_[k]) for k in ("E", "A", "B", "alpha", "beta")},
        "coef_ci": {k: [float(x) for x in v] for k, v in (est.ci_ or {}).items()
                    if k in ("E", "A", "B", "alpha", "beta")},
        "confidence": confidence,
        "n_bootstrap": n_bootstrap,
        "n_runs": int(est.n_points_),
        "success": bool(est.success_),
        "message": est.message_,
    }
    if noise_sd is not None:
        out["noise_sd"] = float(noise_sd)
        out["E_ci_noise"] = noise_interval(est, params, tokens, loss, noise_sd,
                                           n_resamples=n_bootstrap, seed=seed,
                                           confidence=confidence)
    return out
