"""The random n-gram source of known entropy rate (``MarkovSource.random``, ``ngram:`` corpora)."""

from __future__ import annotations

import numpy as np
import pytest

from scalingkit.core.data import load_corpus
from scalingkit.core.data.markov import MIN_PROB, NGRAM_PRESETS, MarkovSource
from scalingkit.studies import known_entropy as ke

SMALL = dict(order=2, n_symbols=12, concentrations=(12.0, 2.0), symbol_zipf=0.5, seed=3)


def test_random_chain_is_deterministic_and_every_transition_possible():
    a, b = MarkovSource.random(**SMALL), MarkovSource.random(**SMALL)
    np.testing.assert_array_equal(a.probs_, b.probs_)
    other = MarkovSource.random(**{**SMALL, "seed": 4})
    assert not np.array_equal(a.probs_, other.probs_)
    assert a.probs_.shape == (12**2, 12) and a.probs_.min() >= MIN_PROB * 0.99
    np.testing.assert_allclose(a.probs_.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(a.stationary_.sum(), 1.0, rtol=1e-12)
    assert set(a.alphabet_.tobytes()) <= set(range(33, 127))  # printable bytes


def test_random_chain_entropy_rate_matches_simulation():
    src = MarkovSource.random(**SMALL)
    h = src.entropy_rate()
    mean, se = src.monte_carlo_entropy_rate(20_000, n_chains=32, seed=1)
    assert abs(mean - h) < 4 * se and se < 0.01


def test_every_symbol_of_context_tells_something():
    """The hierarchy: each extra symbol of context lowers the conditional entropy."""
    src = MarkovSource.random(**SMALL)
    h = src.order_entropies()
    assert len(h) == src.order + 1 and h[-1] == src.entropy_rate()
    assert all(x > y + 0.01 for x, y in zip(h, h[1:], strict=False)), h
    assert h[0] < np.log(src.probs_.shape[1])  # Zipf symbols: below the uniform entropy
    one = MarkovSource(order=1).fit(b"abcab" * 50)
    assert one.order_entropies()[-1] == pytest.approx(one.entropy_rate())
    assert src.order_entropies(1) == h[:2]  # a shorter list, the same values
    assert src.order_entropies(src.order + 2) == h + [src.entropy_rate()] * 2
    with pytest.raises(ValueError, match="max_context must be a non-negative integer"):
        src.order_entropies(-1)


@pytest.mark.parametrize("change,match", [
    ({"order": 0}, "order must be a positive integer"),
    ({"order": 2.0}, "order must be a positive integer"),
    ({"n_symbols": 1}, "n_symbols must be an integer from 2 to 94"),
    ({"n_symbols": 95}, "n_symbols must be an integer from 2 to 94"),
    ({"concentrations": (1.0,)}, "concentrations must be 2 positive finite numbers"),
    ({"concentrations": (1.0, -1.0)}, "concentrations must be 2 positive finite numbers"),
    ({"concentrations": (1.0, float("nan"))}, "concentrations must be 2 positive finite"),
    ({"symbol_zipf": -0.5}, "symbol_zipf must be a finite number >= 0"),
    ({"order": 5, "n_symbols": 40, "concentrations": (1.0,) * 5}, "more than"),
])
def test_random_chain_refuses_bad_parameters(change, match):
    with pytest.raises(ValueError, match=match):
        MarkovSource.random(**{**SMALL, **change})


def test_ngram_corpus_carries_its_exact_entropy_rate(tmp_path):
    corpus = load_corpus("ngram:v48k3:1", cache=tmp_path)
    meta = corpus.meta
    src = ke.source_of("ngram:v48k3")
    ke.check_source(src, meta)
    assert ke.true_entropy(meta) == (src.entropy_rate(), 0.0)
    assert ke.source_params(meta) == {k: list(v) if isinstance(v, tuple) else v
                                      for k, v in NGRAM_PRESETS["v48k3"].items()}
    assert meta["train_tokens"] + meta["val_tokens"] >= 1 << 20 and meta["val_docs"] >= 1
    symbols = np.unique(np.asarray(corpus.train))
    assert set(symbols) <= set(src.alphabet_)
    floor = ke.context_floor(src, 128)
    assert src.entropy_rate() < floor < src.entropy_rate() + 0.1  # the first 3 targets
    on_val = ke.source_loss_on_windows(src, np.asarray(corpus.val), 128, 16384)
    assert abs(on_val - floor) < 0.05


@pytest.mark.parametrize("spec,match", [
    ("ngram:nope", "unknown n-gram preset"), ("ngram:v48k3:x", "whole number of megabytes"),
    ("ngram:v48k3:0", "whole number of megabytes"),
])
def test_ngram_corpus_refuses_bad_specs(tmp_path, spec, match):
    with pytest.raises(ValueError, match=match):
        load_corpus(spec, cache=tmp_path)
    if "nope" in spec:
        with pytest.raises(ValueError, match="'ngram:<preset>'"):
            ke.source_of("bogus:1")


def test_context_gain_adds_up_to_the_last_order():
    src = MarkovSource.random(**SMALL)
    gain = src.context_gain()
    h = src.order_entropies()
    assert len(gain) == 12**2 and gain["probability"].is_monotonic_decreasing
    assert gain["gain"].sum() == pytest.approx(h[-2] - h[-1], rel=1e-9)
    assert gain["remaining"].iloc[-1] == pytest.approx(0.0, abs=1e-12)
    assert gain["cumulative_probability"].iloc[-1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="order 1 or more"):
        MarkovSource(order=0).fit(b"abcab" * 10).context_gain()
