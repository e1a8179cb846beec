"""The known-entropy experiment on a hidden Markov source: the source behind a spec,
the context floor and the source's loss against brute force, and the CLI."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from conftest import one_line_error

import scalingkit.core.data.synthetic as synthetic
import scalingkit.runs.executors as executors
from scalingkit.cli import main
from scalingkit.core.data import MarkovSource, load_corpus
from scalingkit.core.data.hmm import HMM_PRESETS, HMMSource
from scalingkit.studies import known_entropy as ke

TINY_T = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3], [0.4, 0.4, 0.2]])
TINY_E = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
#: A preset small enough to sample a corpus in about a second.
TINY_PRESET = dict(n_states=8, n_symbols=4, out_degree=3, transition_zipf=1.0, emit_degree=2,
                   emission_zipf=1.0, seed=0)
LR_RULE = {"coef": 3e-3, "exponent": 0.0, "n_ref": 1e5, "n_min": 1e3, "n_max": 1e9}


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory):
    """``hmm:tiny`` registered and cached in a fresh folder, with a cheap entropy rate."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(HMM_PRESETS, "tiny", TINY_PRESET)
        mp.setattr(synthetic, "HMM_ENTROPY_TOKENS", 64 * 64)
        mp.setenv("SCALINGKIT_CACHE", str(tmp_path_factory.mktemp("cache")))
        load_corpus("hmm:tiny")  # sampled once (about a second), shared by the tests
        yield


def _brute_log_prob(src: HMMSource, x) -> float:
    """``ln p(x)`` from a stationary start, summed over every hidden path."""
    T, E, pi = src.transition_.toarray(), src.emission_, src.stationary()
    total = 0.0
    for path in itertools.product(range(src.n_states), repeat=len(x)):
        p = pi[path[0]] * E[path[0], x[0]]
        for a, b, sym in zip(path, path[1:], x[1:], strict=False):
            p *= T[a, b] * E[b, sym]
        total += p
    return math.log(total)


def _block_entropy(src: HMMSource, n: int) -> float:
    """``H(X_1..X_n)`` (nats) by enumerating every sequence."""
    probs = [math.exp(_brute_log_prob(src, x))
             for x in itertools.product(range(src.n_symbols), repeat=n)]
    return -sum(p * math.log(p) for p in probs if p > 0)


@pytest.fixture(scope="module")
def tiny() -> HMMSource:
    return HMMSource.from_matrices(TINY_T, TINY_E)


# -------------------------------------------------------------- the source behind a spec
def test_source_of_builds_the_corpus_sources(tiny_env):
    hmm = ke.source_of("hmm:tiny")
    assert isinstance(hmm, HMMSource) and hmm.params == HMMSource(**TINY_PRESET).params
    chain = ke.source_of("markov:1")
    assert isinstance(chain, MarkovSource) and chain.order == 1
    assert chain.entropy_rate() == pytest.approx(ke.markov_source(1).entropy_rate(), rel=1e-12)


@pytest.mark.parametrize(("spec", "match"), [
    ("hmm:huge", "unknown HMM preset in 'hmm:huge'"),
    ("hmm:", "unknown HMM preset in 'hmm:'"),
    ("markov:x", "bad Markov corpus spec 'markov:x'"),
    ("zipf:2", "unknown source spec 'zipf:2'"),
])
def test_source_of_names_a_bad_spec(spec, match):
    with pytest.raises(ValueError, match=match):
        ke.source_of(spec)


def test_true_entropy_and_params_from_the_meta():
    hmm_meta = {"entropy_rate_nats_per_byte": 1.5, "entropy_rate_stderr_nats_per_byte": 0.01,
                "hmm_params": {"n_states": 8}}
    markov_meta = {"entropy_rate_nats_per_byte": 2.0, "markov_order": 1, "markov_alpha": 0.5,
                   "markov_source": "shakespeare"}
    assert ke.true_entropy(hmm_meta) == (1.5, 0.01)
    assert ke.true_entropy(markov_meta) == (2.0, 0.0)
    assert ke.source_params(hmm_meta) == {"n_states": 8}
    assert ke.source_params(markov_meta) == {"order": 1, "alpha": 0.5, "source": "shakespeare"}
    with pytest.raises(ValueError, match="no known entropy rate"):
        ke.true_entropy({"corpus": "shakespeare"})


# ------------------------------------------------------------------ exact quantities
def test_hmm_context_floor_matches_enumeration(tiny):
    n_ctx = 3
    blocks = [_block_entropy(tiny, n) for n in range(1, n_ctx + 2)]
    exact = np.mean(np.diff(blocks))  # H(X_j | X_0..X_{j-1}) for j = 1..n_ctx
    assert ke.context_floor(tiny, n_ctx, n_windows=20_000) == pytest.approx(exact, abs=0.01)
    lower, _ = tiny.entropy_bounds()
    assert exact > lower


def _brute_window_loss(src, tokens, n_ctx, eval_tokens, doc_bytes):
    """Each target scored given only its window's tokens of its own document."""
    from scalingkit.core.data import eval_windows

    total, count = 0.0, 0
    for s in eval_windows(tokens, n_ctx, eval_tokens // n_ctx):
        for j in range(s + 1, s + n_ctx + 1):
            a = max(s, j // doc_bytes * doc_bytes)  # first context token of j's document
            prev = _brute_log_prob(src, tokens[a:j]) if j > a else 0.0
            total -= _brute_log_prob(src, tokens[a:j + 1]) - prev
            count += 1
    return total / count


def test_hmm_source_loss_matches_enumeration(tiny):
    docs = tiny.sample(9, n_chains=4, seed=3)  # 4 documents of 9 bytes
    tokens = docs.ravel().astype(np.uint8)
    got = ke.source_loss_on_windows(tiny, tokens, 4, 40, doc_bytes=9)
    assert got == pytest.approx(_brute_window_loss(tiny, tokens, 4, 40, 9), rel=1e-10)


def test_a_window_across_documents_restarts_the_source():
    # state 1 emits 1 and always moves to state 0, which emits 0: "1 1" is impossible
    src = HMMSource.from_matrices([[0.5, 0.5], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]])
    tokens = np.array([0, 0, 1, 1, 0, 0], dtype=np.uint8)  # documents "001" and "100"
    with pytest.raises(ValueError, match="cannot emit"):
        ke.source_loss_on_windows(src, tokens, 5, 5)
    assert math.isfinite(ke.source_loss_on_windows(src, tokens, 5, 5, doc_bytes=3))
    with pytest.raises(ValueError, match="HMM or word source only"):
        ke.source_loss_on_windows(MarkovSource(order=1).fit(b"0011"), tokens, 2, 2,
                                  doc_bytes=3)


# ------------------------------------------------------------------------------ CLI
SMALL = ["--n-ctx", "16", "--batch-size", "4", "--evals-per-run", "2", "--eval-tokens", "512"]


def test_dry_run_prints_the_plan_and_the_entropy_rate(tiny_env, tmp_path, capsys):
    assert main(["known-entropy", "--out", str(tmp_path / "s"), "--source", "hmm:tiny",
                 "--budgets", "1e10", *SMALL, "--dry-run"]) == 0
    out = capsys.readouterr().out
    meta = load_corpus("hmm:tiny").meta
    line = out.strip().splitlines()[-1]
    assert line.startswith("source hmm:tiny: H = ") and "+-" in line and "bounds" in line
    assert f"{meta['entropy_rate_nats_per_byte']:.4f}" in line
    assert not (tmp_path / "s").exists()


def test_dry_run_with_the_laptop_recipe(tiny_env, tmp_path, capsys):
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps({"rule": LR_RULE}))
    assert main(["known-entropy", "--out", str(tmp_path / "s"), "--source", "hmm:tiny",
                 "--budgets", "1e12", "--recipe", "laptop", "--lr-rule", str(rule),
                 "--bracket", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "runs on hmm:tiny" in out and "a pilot on the two smallest budgets" in out


@pytest.mark.parametrize(("extra", "fragments"), [
    (["--source", "hmm:huge"], ["hmm:huge", "small"]),
    (["--source", "markov:x"], ["markov:x"]),
    (["--source", "zipf:2"], ["zipf:2"]),
    (["--source", "hmm:small", "--order", "1"], ["--order", "--source markov:1"]),
    (["--recipe", "laptop"], ["--lr-rule"]),
    (["--recipe", "laptop", "--lr", "0.01"], ["--lr", "laptop"]),
    (["--bracket"], ["--bracket", "--recipe"]),
    (["--recipe", "laptop", "--lr-rule", "missing.json"], ["missing.json"]),
])
def test_bad_input_is_one_line(extra, fragments, tmp_path, capsys):
    one_line_error(capsys, ["known-entropy", "--out", str(tmp_path / "s"), "--budgets", "1e11",
                            *extra], 2, *fragments)


def _law(h: float):
    """A stand-in trainer: the final loss is ``h + 30 / N^0.35 + 40 / D^0.3``."""
    from scalingkit.core.train import TrainConfig

    def train(config, *, run_dir=None, progress=False):
        cfg = TrainConfig.from_dict(config)
        n, d = cfg.model.n_params(), cfg.tokens
        return {"status": "done", "final_loss": h + 30 / n**0.35 + 40 / d**0.3}
    return train


def test_result_json_of_an_hmm_sweep(tiny_env, tmp_path, monkeypatch, capsys):
    meta = load_corpus("hmm:tiny").meta
    h = meta["entropy_rate_nats_per_byte"]
    monkeypatch.setattr(executors, "DEFAULT_TRAINER", _law(h))
    out = tmp_path / "ke.json"
    assert main(["known-entropy", "--out", str(tmp_path / "s"), "--source", "hmm:tiny",
                 "--budgets", "3e10", "1e11", "3e11", "--sizes-per-budget", "3", *SMALL,
                 "--bootstrap", "2", "--no-progress", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["true_entropy_rate"] == h
    assert res["true_entropy_rate_stderr"] == meta["entropy_rate_stderr_nats_per_byte"] > 0
    assert res["source"] == res["corpus"] == "hmm:tiny"
    assert res["source_params"] == TINY_PRESET
    assert res["E_covers_H"] == (res["E_ci"][0] <= h <= res["E_ci"][1])
    assert res["relative_error"] < 0.02 and res["units"] == "nats/token"
    assert res["n_runs"] == len(res["runs"]["loss"]) >= 5
    assert res["context_floor"] > 0 and math.isfinite(res["source_loss_on_val_windows"])
    assert res["provenance"]["command"].startswith("python -m scalingkit")


def test_laptop_recipe_brackets_through_run_bracketed(tiny_env, tmp_path, monkeypatch, capsys):
    h = load_corpus("hmm:tiny").meta["entropy_rate_nats_per_byte"]
    monkeypatch.setattr(executors, "DEFAULT_TRAINER", _law(h))
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps({"rule": LR_RULE}))
    out = tmp_path / "ke.json"
    assert main(["known-entropy", "--out", str(tmp_path / "s"), "--source", "hmm:tiny",
                 "--budgets", "1e12", "2e12", "--recipe", "laptop", "--lr-rule", str(rule),
                 "--bracket", "--no-pilot", "--sizes-per-budget", "3", "--bootstrap", "2",
                 "--no-progress", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    assert "every budget is bracketed" in capsys.readouterr().out
    assert res["sweep"]["recipe"] == "laptop" and res["sweep"]["ladder"] == "monotone"
    assert res["n_runs"] >= 6
