"""The hidden Markov byte source: construction checks, sampling, the forward algorithm,
the entropy-rate estimate and the ``hmm:<preset>`` corpus."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import scalingkit.core.data.synthetic as synthetic
from scalingkit.core.data import load_corpus
from scalingkit.core.data.hmm import HMM_PRESETS, HMMSource

TINY_T = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.4, 0.4, 0.2]])
TINY_E = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])


@pytest.fixture(scope="module")
def small() -> HMMSource:
    return HMMSource(**HMM_PRESETS["small"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_states=1), "n_states"),
        (dict(n_states=True), "n_states"),
        (dict(n_symbols=257), "n_symbols"),
        (dict(out_degree=0), "out_degree"),
        (dict(n_states=8, out_degree=8), "out_degree"),
        (dict(emit_degree=65), "emit_degree"),
        (dict(transition_zipf=math.nan), "transition_zipf"),
        (dict(emission_zipf=-1.0), "emission_zipf"),
        (dict(symbol_zipf=math.inf), "symbol_zipf"),
        (dict(seed=-1), "seed"),
        (dict(n_states=16, out_degree=1), "periodic"),  # the bare cycle has period 16
    ],
)
def test_constructor_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HMMSource(**kwargs)


@pytest.mark.parametrize(
    ("transition", "emission", "match"),
    [
        ([[1.0, 0.0], [0.0, 1.0]], [[1.0], [1.0]], "reducible"),
        ([[0.5, 0.5], [0.0, 1.0]], [[1.0], [1.0]], "reducible"),
        ([[0.0, 1.0], [1.0, 0.0]], [[1.0], [1.0]], "period 2"),
        ([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.ones((3, 1)), "period 2"),
        ([[0.5, 0.4], [0.5, 0.5]], [[1.0], [1.0]], "transition rows must sum to 1"),
        ([[1.5, -0.5], [0.5, 0.5]], [[1.0], [1.0]], "negative"),
        ([[math.nan, 1.0], [0.5, 0.5]], [[1.0], [1.0]], "non-finite"),
        (TINY_T, [[0.5, 0.6]] * 3, "emission rows must sum to 1"),
        ([[1.0]], [[1.0]], "n_states"),
        (TINY_T, TINY_E[:2], "transition must be"),
        ([1.0, 0.0], [[1.0]], "2-D"),
    ],
)
def test_from_matrices_rejects_bad_chains(transition, emission, match):
    with pytest.raises(ValueError, match=match):
        HMMSource.from_matrices(transition, emission)


def test_stationary_distribution_is_stationary(small):
    pi = small.stationary()
    assert pi.shape == (256,) and (pi > 0).all() and pi.sum() == pytest.approx(1, abs=1e-12)
    np.testing.assert_allclose(pi @ small.transition_, pi, atol=1e-14)
    tiny = HMMSource.from_matrices(TINY_T, TINY_E).stationary()
    np.testing.assert_allclose(tiny @ TINY_T, tiny, atol=1e-14)


def test_random_construction_has_the_requested_sparsity(small):
    assert (np.diff(small.transition_.indptr) == 4).all()
    assert ((small.emission_ > 0).sum(1) == 4).all()
    assert small.transition_.diagonal().max() == 0  # no self-loops
    # Symbols are shared: each is emitted by many states, so one symbol is ambiguous.
    assert (small.emission_ > 0).sum(0).min() > 10


def test_sampling_is_deterministic_and_streams_fresh_chunks(small):
    a = small.sample(500, n_chains=8, seed=3)
    assert a.dtype == np.uint8 and a.shape == (8, 500) and a.max() < small.n_symbols
    np.testing.assert_array_equal(a, small.sample(500, n_chains=8, seed=3))
    assert (a != small.sample(500, n_chains=8, seed=4)).mean() > 0.5
    chunks = small.stream(500, n_chains=8, seed=3)
    first, second = next(chunks), next(chunks)
    np.testing.assert_array_equal(first, a)  # the first chunk is sample()'s output
    assert (first != second).mean() > 0.5


def test_samples_follow_the_stationary_symbol_marginal(small):
    x = small.sample(2000, n_chains=64, seed=0)
    freq = np.bincount(x.ravel(), minlength=small.n_symbols) / x.size
    np.testing.assert_allclose(freq, small.stationary() @ small.emission_, atol=0.01)


def test_forward_algorithm_matches_enumeration_over_hidden_paths():
    src = HMMSource.from_matrices(TINY_T, TINY_E)
    pi, n = src.stationary(), 5
    seqs = np.array(list(itertools.product(range(2), repeat=n)))
    brute = np.zeros(len(seqs))
    for path in itertools.product(range(3), repeat=n):
        trans = pi[path[0]] * np.prod([TINY_T[a, b] for a, b in itertools.pairwise(path)])
        brute += trans * np.prod(TINY_E[np.array(path)[:, None], seqs.T], axis=0)
    np.testing.assert_allclose(src.log_prob(seqs), np.log(brute), rtol=1e-12)
    assert np.exp(src.log_prob(seqs)).sum() == pytest.approx(1, abs=1e-12)
    cond = src.conditional_log_probs(seqs)
    np.testing.assert_allclose(cond.sum(1), np.log(brute), rtol=1e-12)
    np.testing.assert_allclose(src.log_prob(bytes(seqs[3].astype(np.uint8))), np.log(brute[3]))


def test_impossible_token_has_zero_probability():
    src = HMMSource.from_matrices(TINY_T, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    cond = src.conditional_log_probs(np.array([[0, 2, 0], [0, 1, 1]]))
    assert np.isfinite(cond[1]).all() and cond[0, 0] > -np.inf
    assert (cond[0, 1:] == -np.inf).all()
    with pytest.raises(ValueError, match="symbols 0..2"):
        src.log_prob(np.array([0, 3]))


def test_entropy_rate_of_a_visible_chain_is_the_chain_entropy_rate():
    # Identity emission: the symbols are the states, H = sum_i pi_i H(T_i) exactly.
    src = HMMSource.from_matrices(TINY_T, np.eye(3))
    pi = src.stationary()
    exact = float(-(pi[:, None] * TINY_T * np.log(TINY_T)).sum())
    h, se = src.entropy_rate(4000, n_chains=16, burn_in=10, seed=1)
    assert 0 < se < 0.01 and abs(h - exact) < 4 * se
    assert src.entropy_bounds() == pytest.approx((exact, exact), abs=1e-12)


def test_entropy_rate_lies_between_the_exact_bounds(small):
    h, se = small.entropy_rate(600, n_chains=16, burn_in=200, seed=0)
    lower, upper = small.entropy_bounds()
    assert lower < h < upper and se < 0.05
    curve, err = small.window_entropy(16, n_windows=256, seed=0)
    marginal = small.stationary() @ small.emission_
    unigram = float(-(marginal * np.log(marginal)).sum())
    assert abs(curve[0] - unigram) < 4 * err[0]  # the first token has no context
    assert curve[-4:].mean() < curve[0] - 3 * err[0]  # context helps


def test_hmm_corpus_loads_with_its_entropy_rate(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "HMM_ENTROPY_TOKENS", 64 * 64)
    corpus = load_corpus("hmm:small", cache=tmp_path, markov_bytes=40_000, val_fraction=0.3)
    meta = corpus.meta
    assert corpus.vocab_size == 256 and meta["hmm_preset"] == "small"
    assert meta["hmm_params"] == HMM_PRESETS["small"] and meta["split"] == "hash"
    lower, upper = meta["entropy_bounds_nats_per_byte"]
    assert lower < meta["entropy_rate_nats_per_byte"] < upper
    assert meta["entropy_rate_bits_per_byte"] == pytest.approx(
        meta["entropy_rate_nats_per_byte"] / math.log(2))
    assert meta["entropy_rate_stderr_nats_per_byte"] > 0
    assert len(corpus.train) > 0 and len(corpus.val) > 0
    assert len(corpus.train) + len(corpus.val) >= 40_000
    assert max(corpus.train.max(), corpus.val.max()) < 16
    again = load_corpus("hmm:small", cache=tmp_path, markov_bytes=40_000, val_fraction=0.3)
    assert again.path == corpus.path


def test_unknown_hmm_preset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown HMM preset"):
        load_corpus("hmm:huge", cache=tmp_path)
    with pytest.raises(ValueError, match="markov_bytes"):
        load_corpus("hmm:small", cache=tmp_path, markov_bytes=0)


def test_hmm_corpus_size_comes_from_its_spec():
    from scalingkit.core.data.synthetic import _hmm_bytes, _parse_hmm

    assert _hmm_bytes("hmm:small", 123) == 123
    assert _hmm_bytes("hmm:small:3", 123) == 3 << 20
    for bad in ("hmm:small:0", "hmm:small:x", "hmm:small:1:2"):
        with pytest.raises(ValueError, match="whole number of megabytes"):
            _parse_hmm(bad)
    with pytest.raises(ValueError, match="unknown HMM preset"):
        _parse_hmm("hmm:nope:3")


def test_symbol_zipf_shares_low_symbols_among_more_states():
    flat = HMMSource(n_states=512, n_symbols=32, seed=2)
    same = HMMSource(n_states=512, n_symbols=32, seed=2, symbol_zipf=0.0)
    assert "symbol_zipf" not in flat.params  # the original presets' params are unchanged
    np.testing.assert_array_equal(flat.emission_, same.emission_)
    skewed = HMMSource(n_states=512, n_symbols=32, seed=2, symbol_zipf=1.0)
    assert skewed.params["symbol_zipf"] == 1.0
    assert ((skewed.emission_ > 0).sum(1) == 4).all()
    shared = (skewed.emission_ > 0).sum(0)  # states emitting each symbol
    assert shared[:4].mean() > 4 * shared[-4:].mean()


@pytest.mark.parametrize("preset", ["zipf64"])
def test_zipf_preset_is_reproducible_and_bracketed(preset):
    src = HMMSource(**HMM_PRESETS[preset])
    again = HMMSource(**HMM_PRESETS[preset])
    assert src.params == again.params == HMM_PRESETS[preset]
    np.testing.assert_array_equal(src.emission_, again.emission_)
    assert (src.transition_ != again.transition_).nnz == 0
    h, se = src.entropy_rate(200, n_chains=8, burn_in=100, seed=0, chunk_tokens=300)
    lower, upper = src.entropy_bounds()
    assert lower < h < upper and se < 0.1
