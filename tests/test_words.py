"""The Zipf word source of known entropy rate (``ZipfWordSource``, ``words:`` corpora)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalingkit.core.data import load_corpus
from scalingkit.core.data.words import WORD_PRESETS, ZipfWordSource
from scalingkit.studies import known_entropy as ke

SMALL = dict(n_letters=5, word_length=3, zipf=1.3, seed=2)


@pytest.fixture(scope="module")
def small():
    return ZipfWordSource(**SMALL)


def test_words_are_distinct_strings_with_a_zipf_law(small):
    assert small.n_words == 125 and small.period == 4
    assert sorted(small.codes) == list(range(125))  # every string once: a permutation
    p = small.rank_probs
    assert p.sum() == pytest.approx(1.0) and np.all(np.diff(p) < 0)
    assert p[0] / p[9] == pytest.approx(10**1.3)
    x = small.sample(4000, n_chains=2, seed=0)
    assert x.shape == (2, 4000) and x.dtype == np.uint8
    assert set(np.unique(x)) <= set(b" abcde")
    np.testing.assert_array_equal(x, small.sample(4000, n_chains=2, seed=0))
    assert not np.array_equal(x, small.sample(4000, n_chains=2, seed=1))


def test_stream_continues_and_never_restarts(small):
    chunks = small.stream(1000, n_chains=1, seed=5)
    joined = np.concatenate([next(chunks)[0] for _ in range(4)])
    spaces = np.flatnonzero(joined == ord(" "))
    assert np.all(np.diff(spaces) == small.period)  # one word every L + 1 bytes, across chunks
    np.testing.assert_array_equal(joined[:1000], small.sample(1000, seed=5)[0])


def test_entropy_rate_is_the_word_entropy_per_token(small):
    p = small.rank_probs
    assert small.entropy_rate() == pytest.approx(-(p * np.log(p)).sum() / 4, rel=1e-12)
    words = small.sample(40_000, n_chains=1, seed=3)[0]
    first = int(np.flatnonzero(words == ord(" "))[0]) + 1
    units = words[first: first + 4 * 9000].reshape(-1, 4)[:, :3] - ord("a")
    codes = units[:, 0] * 25 + units[:, 1] * 5 + units[:, 2]
    logp = np.log(small.word_probs[codes])
    h, se = -logp.mean() / 4, logp.std() / 4 / math.sqrt(len(logp))
    assert abs(h - small.entropy_rate()) < 4 * se
    mc, mc_se = small.monte_carlo_entropy_rate(9000, seed=3)
    assert mc == pytest.approx(h, rel=1e-9) and mc_se == pytest.approx(se, rel=1e-3)
    with pytest.raises(ValueError, match="n_words must be an integer >= 2"):
        small.monte_carlo_entropy_rate(1)


def test_block_entropies_match_sampled_windows(small):
    """Exact window entropies against -ln P of independent sampled windows."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 7, 10):
        x = small.sample(n, n_chains=3000, seed=int(rng.integers(1 << 30)))
        logp = small.window_log_probs(x)
        assert np.all(np.isfinite(logp))
        se = logp.std() / math.sqrt(len(logp))
        assert abs(-logp.mean() - small.block_entropy(n)) < 4 * se + 1e-9, n


def test_order_entropies_reach_the_rate_with_a_word_of_context(small):
    h = small.order_entropies()
    assert len(h) == small.word_length + 1  # 0 .. L tokens of context
    assert all(a > b for a, b in zip(h, h[1:], strict=False))
    assert h[-1] == pytest.approx(small.entropy_rate(), abs=1e-12)  # L tokens see a space
    longer = small.order_entropies(small.word_length + 3)
    assert longer[-1] == pytest.approx(small.entropy_rate(), abs=1e-12)
    # one more word in the window adds exactly one word's entropy
    assert small.block_entropy(14) - small.block_entropy(10) == pytest.approx(
        small.word_entropy(), rel=1e-12)
    floor = small.context_floor(128)
    assert small.entropy_rate() < floor < small.context_floor(16)
    assert small.context_floor(100_000) == pytest.approx(small.entropy_rate(), abs=1e-3)


def test_impossible_windows_have_zero_probability(small):
    bad = np.frombuffer(b"ab a b", dtype=np.uint8)[None]  # spaces out of step
    assert small.window_log_probs(bad)[0] == -math.inf
    assert small.window_log_probs(np.frombuffer(b"aaaa", dtype=np.uint8)[None])[0] == -math.inf
    assert small.window_log_probs(np.frombuffer(b"ab!", dtype=np.uint8)[None])[0] == -math.inf


@pytest.mark.parametrize("change,match", [
    ({"n_letters": 1}, "n_letters must be an integer from 2 to 26"),
    ({"n_letters": 27}, "n_letters must be an integer from 2 to 26"),
    ({"word_length": 0}, "word_length must be a positive integer"),
    ({"word_length": 2.0}, "word_length must be a positive integer"),
    ({"n_letters": 26, "word_length": 6}, "exact tables allow"),
    ({"zipf": 1.0}, "zipf must be a finite number above 1"),
    ({"zipf": float("inf")}, "zipf must be a finite number above 1"),
    ({"seed": -1}, "seed must be a non-negative integer"),
])
def test_word_source_refuses_bad_parameters(change, match):
    with pytest.raises(ValueError, match=match):
        ZipfWordSource(**{**SMALL, **change})


def test_words_corpus_carries_its_exact_entropy_rate(tmp_path, monkeypatch):
    from scalingkit.core.data import words

    monkeypatch.setitem(words.WORD_PRESETS, "tiny", dict(SMALL))
    corpus = load_corpus("words:tiny:1", cache=tmp_path)
    meta = corpus.meta
    src = ke.source_of("words:tiny")
    ke.check_source(src, meta)
    assert ke.true_entropy(meta) == (src.entropy_rate(), 0.0)
    assert ke.source_params(meta) == src.params
    doc = ke.document_bytes(meta)
    floor = ke.context_floor(src, 64)
    on_val = ke.source_loss_on_windows(src, np.asarray(corpus.val), 64, 16384, doc_bytes=doc)
    assert src.entropy_rate() < floor and abs(on_val - floor) < 0.05
    assert WORD_PRESETS["z12"] == dict(n_letters=26, word_length=5, zipf=1.2, seed=0)
    with pytest.raises(ValueError, match="unknown word preset"):
        load_corpus("words:nope", cache=tmp_path)


def test_hparams_seeds_train_on_a_word_source(tmp_path, monkeypatch, capsys):
    """``hparams plan seeds --corpus words:...`` plans the sweep's own configs on that source."""
    from scalingkit.cli import main
    from scalingkit.core.data import words

    monkeypatch.setitem(words.WORD_PRESETS, "tiny", dict(SMALL))
    monkeypatch.setenv("SCALINGKIT_CACHE", str(tmp_path / "cache"))
    args = ["hparams", "plan", "seeds", "--lr-rule", "book/data/hparams/lr_rule.json",
            "--budget", "1e11", "--rungs", "1", "--seeds", "3"]
    assert main(args + ["--corpus", "words:tiny:1"]) == 0
    out = capsys.readouterr().out
    row = out.splitlines()[-1].split()
    train = len(load_corpus("words:tiny:1").train)
    tokens, epochs, seed = int(row[6]), float(row[11]), int(row[13])
    assert seed == 3 and epochs == pytest.approx(tokens / train, rel=1e-3)
    assert main(args + ["--corpus", "words:nope"]) == 2
    assert "unknown word preset" in capsys.readouterr().err


def test_noise_interval_widens_with_the_noise_floor():
    """The seed-noise interval on E holds the fitted E and grows with the noise."""
    from scalingkit.fit import ParametricFit

    rng = np.random.default_rng(1)
    n = np.repeat(np.geomspace(2e4, 6e5, 6), 4)
    d = np.tile(np.geomspace(1e6, 6e7, 4), 6) * rng.uniform(0.9, 1.1, n.size)
    loss = 1.05 + 40.0 / n ** 0.45 + 300.0 / d ** 0.4
    est = ParametricFit(grid="small").fit(n, d, loss)
    small = ke.noise_interval(est, n, d, loss, 0.002, n_resamples=40)
    large = ke.noise_interval(est, n, d, loss, 0.02, n_resamples=40)
    assert small[0] <= est.E_ <= small[1]
    assert large[1] - large[0] > 2 * (small[1] - small[0])
    with pytest.raises(ValueError, match="noise_sd must be a positive"):
        ke.noise_interval(est, n, d, loss, 0.0)


def test_memoriser_loss_runs_from_uniform_words_to_the_entropy_rate(small):
    k = np.arange(small.n_words + 1)
    loss = small.memoriser_loss(k)
    assert loss[0] == pytest.approx(math.log(small.n_words) / small.period, rel=1e-12)
    assert loss[-1] == pytest.approx(small.entropy_rate(), rel=1e-12)
    assert np.all(np.diff(loss) <= 1e-15)
    p = small.rank_probs  # brute force at K = 7: known words exact, the rest even
    q = np.concatenate([p[:7], np.full(p.size - 7, p[7:].sum() / (p.size - 7))])
    assert loss[7] == pytest.approx(-(p * np.log(q)).sum() / small.period, rel=1e-12)
    assert small.memoriser_loss(7) == pytest.approx(loss[7], rel=1e-15)
    for bad in (-1, small.n_words + 1, 2.5):
        with pytest.raises(ValueError, match="known must be whole numbers"):
            small.memoriser_loss(bad)


def test_presets_differ_only_in_the_tail():
    """``z12`` .. ``z18``: the same words, a lighter tail of rare words at each step."""
    names = ("z12", "z14", "z16", "z18")
    assert set(names) <= set(WORD_PRESETS)
    srcs = [ZipfWordSource(**WORD_PRESETS[n]) for n in names]
    assert all({**s.params, "zipf": 0} == {**srcs[0].params, "zipf": 0} for s in srcs)
    h = np.array([s.entropy_rate() for s in srcs])
    gap = np.array([s.memoriser_loss(1000) for s in srcs]) / h - 1
    assert np.all(np.diff([s.zipf for s in srcs]) > 0)
    assert np.all(np.diff(h) < 0) and np.all(np.diff(gap) < 0)
