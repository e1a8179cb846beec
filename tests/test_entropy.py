"""Entropy units, compressor and n-gram baselines, and the known-entropy experiment."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalingkit.cli import main
from scalingkit.core.data import ByteTokenizer, MarkovSource
from scalingkit.fit import relative_error
from scalingkit.studies import entropy as en
from scalingkit.studies import known_entropy as ke

ROOT = Path(__file__).resolve().parents[1]
KNOWN_ENTROPY_JSON = ROOT / "book" / "data" / "known_entropy_markov.json"


# ------------------------------------------------------------------ conversions
@pytest.mark.parametrize("src", en.UNITS)
@pytest.mark.parametrize("dst", en.UNITS)
def test_convert_round_trips(src, dst):
    units = en.TextUnits(bytes_per_token=3.7, chars_per_byte=0.8)
    x = np.array([0.3, 1.0, 2.5])
    there = en.convert(x, src, dst, units=units)
    back = en.convert(there, dst, src, units=units)
    np.testing.assert_allclose(back, x, rtol=1e-12)


@pytest.mark.parametrize(
    ("value", "src", "dst", "kwargs", "expected"),
    [
        (1.0, "nats/token", "bits/token", {}, 1 / math.log(2)),
        (math.log(2), "nats/token", "bits/byte", {}, 1.0),  # byte tokenizer: 1 byte/token
        (8.0, "bits/token", "bits/byte", {"bytes_per_token": 4.0}, 2.0),
        (1.0, "bits/byte", "bits/char", {"chars_per_byte": 0.5}, 2.0),  # 2-byte characters
        (2.0, "nats/byte", "nats/token", {"bytes_per_token": 3.0}, 6.0),
        (1.69, "nats/token", "bits/byte", {"bytes_per_token": 4.0}, 1.69 / (4 * math.log(2))),
    ],
)
def test_convert_known_values(value, src, dst, kwargs, expected):
    assert en.convert(value, src, dst, **kwargs) == pytest.approx(expected, rel=1e-12)


def test_chinchilla_e_in_bits_per_byte_uses_stated_assumption():
    assert en.ASSUMED_BYTES_PER_TOKEN == 4.0
    assert en.chinchilla_e_bits_per_byte() == pytest.approx(1.69 / (4 * math.log(2)))
    assert en.chinchilla_e_bits_per_byte(2.0) == pytest.approx(2 * en.chinchilla_e_bits_per_byte())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"from_unit": "bits/word", "to_unit": "bits/byte"}, "unknown unit"),
        ({"from_unit": "bits/byte", "to_unit": "nats"}, "unknown unit"),
        ({"from_unit": "bits/byte", "to_unit": "bits/char", "bytes_per_token": 0.0},
         "bytes_per_token"),
        ({"from_unit": "bits/byte", "to_unit": "bits/char", "chars_per_byte": -1.0},
         "chars_per_byte"),
    ],
)
def test_convert_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        en.convert(1.0, **kwargs)


def test_convert_rejects_non_finite_value():
    with pytest.raises(ValueError, match="finite"):
        en.convert(float("nan"), "bits/byte", "bits/token")


class _PairTokenizer:
    """Two bytes per token."""

    def encode(self, raw: bytes) -> list[bytes]:
        return [raw[i : i + 2] for i in range(0, len(raw), 2)]


@pytest.mark.parametrize(
    ("text", "tokenizer", "bpt", "cpb"),
    [
        ("hello world!", None, 1.0, 1.0),
        ("hello world!", ByteTokenizer(), 1.0, 1.0),
        ("hello world!", _PairTokenizer(), 2.0, 1.0),
        ("h\u00e9llo", ByteTokenizer(), 1.0, 5 / 6),  # e-acute is 2 UTF-8 bytes
    ],
)
def test_measure_units(text, tokenizer, bpt, cpb):
    u = en.measure_units(text, tokenizer)
    assert u.bytes_per_token == pytest.approx(bpt)
    assert u.chars_per_byte == pytest.approx(cpb)


def test_measure_units_rejects_empty_text():
    with pytest.raises(ValueError, match="empty"):
        en.measure_units(b"")


# ------------------------------------------------------------------ compressors
def _iid(symbols: bytes, n: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return np.frombuffer(symbols, dtype=np.uint8)[rng.integers(0, len(symbols), n)].tobytes()


def test_compressors_order_on_long_range_repeat():
    # A random block repeated once, 100 KB apart: gzip's 32 KB window cannot see the
    # repeat (about 8 bits/byte); lzma's dictionary and bz2's 900 KB block can (about 4).
    block = np.random.default_rng(1).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    bpb = en.compressor_baselines(block + block)
    assert bpb["gzip"] > 7.9
    assert bpb["lzma"] < 0.55 * bpb["gzip"]
    assert bpb["bz2"] < 0.7 * bpb["gzip"]


@pytest.mark.parametrize("method", list(en.COMPRESSORS))
def test_compressors_never_beat_the_entropy_of_an_iid_source(method):
    data = _iid(b"ACGT", 200_000)  # exactly 2 bits/byte of entropy
    bpb = en.compressed_bits_per_byte(data, method)
    assert 2.0 <= bpb < 3.0


@pytest.mark.parametrize("method", list(en.COMPRESSORS))
def test_compressors_squeeze_periodic_text(method):
    assert en.compressed_bits_per_byte(b"to be or not " * 20_000, method) < 0.05


@pytest.mark.parametrize(("data", "method", "match"), [
    (b"", "gzip", "empty"), (b"abc", "zstd", "unknown compressor")])
def test_compressor_rejects_bad_input(data, method, match):
    with pytest.raises(ValueError, match=match):
        en.compressed_bits_per_byte(data, method)


# ----------------------------------------------------------------------- n-grams
@pytest.mark.parametrize("order", [0, 1, 3])
def test_ngram_reaches_entropy_of_iid_source(order):
    train, val = _iid(b"ACGT", 200_000, seed=0), _iid(b"ACGT", 50_000, seed=1)
    assert en.NGramModel(order=order).fit(train).bits_per_byte(val) == pytest.approx(
        2.0, abs=0.02)


def test_ngram_matches_markov_entropy_rate_at_its_order():
    text = b"the cat sat on the mat and the dog ate the hat " * 50
    src = MarkovSource(order=2, alpha=0.5).fit(text)
    train = b"".join(src.sample(400_000, n_chains=4, seed=0))
    val = b"".join(src.sample(100_000, n_chains=4, seed=1))
    h_bits = src.entropy_rate_bits()
    got = en.ngram_baselines(train, val, orders=(0, 1, 2))
    assert got[2] == pytest.approx(h_bits, rel=0.03)
    assert got[0] > got[1] > got[2]  # more context helps on an order-2 source


def test_ngram_learns_periodic_text():
    model = en.NGramModel(order=2).fit(b"abcd" * 5000)
    assert model.bits_per_byte(b"abcd" * 100) < 0.01


def test_ngram_probabilities_are_positive_for_unseen_bytes():
    model = en.NGramModel(order=2).fit(b"aaaaabbbbb" * 100)
    lp = model.log2_probs(b"aazzqq")
    assert np.all(np.isfinite(lp)) and np.all(lp < 0)


@pytest.mark.parametrize(("order", "match"), [(7, "0..6"), (-1, "0..6"), (1.5, "0..6")])
def test_ngram_rejects_bad_order(order, match):
    with pytest.raises(ValueError, match=match):
        en.NGramModel(order=order).fit(b"abcdef")


def test_ngram_unfitted_and_bad_skip():
    with pytest.raises(RuntimeError, match="not fitted"):
        en.NGramModel(order=1).log2_probs(b"abc")
    model = en.NGramModel(order=3).fit(b"abcdefgh" * 10)
    with pytest.raises(ValueError, match="skip"):
        model.log2_probs(b"abcdefgh", skip=1)


# ---------------------------------------------------------------- known entropy
@pytest.fixture(scope="module")
def chain() -> MarkovSource:
    return MarkovSource(order=2, alpha=0.3).fit(b"she sells sea shells by the sea shore " * 40)


def test_context_floor_is_entropy_rate_plus_window_start_penalty(chain):
    h = chain.entropy_rate()
    floors = [ke.context_floor(chain, t) for t in (2, 8, 64, 4096)]
    assert all(f > h for f in floors)
    assert floors == sorted(floors, reverse=True)
    assert floors[-1] == pytest.approx(h, rel=1e-3)
    order1 = MarkovSource(order=1).fit(b"abracadabra" * 10)
    assert ke.context_floor(order1, 16) == pytest.approx(order1.entropy_rate())


def test_source_loss_on_windows_matches_context_floor(chain):
    data = np.frombuffer(b"".join(chain.sample(300_000, n_chains=8, seed=3)), dtype=np.uint8)
    got = ke.source_loss_on_windows(chain, data, n_ctx=8, eval_tokens=200_000)
    assert got == pytest.approx(ke.context_floor(chain, 8), rel=0.01)


def test_context_floor_rejects_short_window(chain):
    with pytest.raises(ValueError, match="n_ctx"):
        ke.context_floor(chain, 1)


@pytest.mark.parametrize(("fitted", "true", "expected"), [(1.05, 1.0, 0.05), (1.8, 2.0, 0.1)])
def test_relative_error(fitted, true, expected):
    assert relative_error(fitted, true) == pytest.approx(expected)


@pytest.mark.parametrize(("fitted", "true"), [(1.0, 0.0), (1.0, -2.0), (float("nan"), 1.0)])
def test_relative_error_rejects_bad_input(fitted, true):
    with pytest.raises(ValueError, match="finite"):
        relative_error(fitted, true)


def test_fit_known_entropy_recovers_e_from_a_noiseless_law():
    n = np.repeat(np.geomspace(1e4, 5e5, 6), 5)
    d = np.tile(np.geomspace(2e5, 1e7, 5), 6)
    true_e = 1.9
    loss = true_e + 40.0 / n**0.4 + 60.0 / d**0.3
    out = ke.fit_known_entropy(n, d, loss, true_e, n_bootstrap=0, grid="small")
    assert out["relative_error"] < 1e-3
    assert out["units"] == "nats/token"
    assert out["n_runs"] == 30


def test_cli_rejects_negative_order(capsys):
    assert main(["known-entropy", "--out", "unused", "--order", "-1", "--budgets", "1e11"]) == 2
    assert "order" in capsys.readouterr().err


def test_committed_known_entropy_result_is_consistent():
    res = json.loads(KNOWN_ENTROPY_JSON.read_text())
    for key in ("true_entropy_rate", "fitted_E", "E_ci", "relative_error", "units"):
        assert key in res
    assert res["units"] == "nats/token"
    assert res["relative_error"] == pytest.approx(
        abs(res["fitted_E"] - res["true_entropy_rate"]) / res["true_entropy_rate"], rel=1e-12)
    lo, hi = res["E_ci"]
    assert lo <= res["fitted_E"] <= hi
    assert res["true_entropy_rate"] == pytest.approx(
        res["corpus_meta"]["entropy_rate_nats_per_byte"], rel=1e-12)
    assert res["provenance"]["command"].startswith("python -m scalingkit known-entropy")
    assert res["n_runs"] == len(res["runs"]["loss"])


def test_sweep_points_reads_finished_runs_only(tmp_path):
    from scalingkit.runs.store import RunStore

    store = RunStore(tmp_path / "store")
    store.ensure_writable()
    for i, status in enumerate(["done", "done", "diverged"]):
        rid = store.add({"seed": i}, plan={"budget": 1e11, "params": 1000 * (i + 1),
                                            "tokens": 5000, "flops_exact": 1e11 + i})
        store.update(rid, status, result={"final_loss": 2.0 + i,
                                          "final_bits_per_byte": (2.0 + i) / math.log(2)})
    pts = en.sweep_points(tmp_path / "store")
    assert len(pts) == 2
    assert list(pts.columns) == ["budget", "params", "tokens", "flops", "loss", "bits_per_byte"]
    np.testing.assert_allclose(pts["bits_per_byte"], pts["loss"] / math.log(2))


def test_sweep_points_rejects_non_store(tmp_path):
    with pytest.raises(ValueError, match="not a run store"):
        en.sweep_points(tmp_path)


def test_profile_E_is_lowest_at_the_true_E_of_a_noiseless_law():
    n = np.repeat(np.geomspace(1e4, 5e5, 5), 4)
    d = np.tile(np.geomspace(2e5, 1e8, 4), 5)
    loss = 1.9 + 40.0 / n**0.4 + 60.0 / d**0.3
    e_values = np.array([1.0, 1.5, 1.9, 2.0])
    prof = ke.profile_E(n, d, loss, e_values)
    assert np.argmin(prof) == 2
    assert prof[2] < 1e-8 < prof[0]


@pytest.mark.parametrize("e_values", [[0.0], [-1.0], [5.0]])
def test_profile_E_rejects_e_outside_range(e_values):
    with pytest.raises(ValueError, match="below the smallest loss"):
        ke.profile_E([1e4] * 5, [1e5] * 5, [3.0] * 5, e_values)


# ------------------------------------------------------------------------ plots
def test_entropy_plots_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalingkit import plots

    pts = pd.DataFrame({"flops": [1e11, 1e12, 1e13], "bits_per_byte": [3.0, 2.5, 2.2],
                        "params": [1e4, 1e5, 1e6]})
    ax = plots.plot_bits_per_byte_vs_compute(pts, {"gzip": 3.0, "bz2": 2.3},
                                             band=(0.6, 1.3, "Shannon"))
    assert [ln.get_ydata()[0] for ln in ax.lines] == [3.0, 2.3]
    runs = pd.DataFrame({"params": [1e4, 1e4, 2e4], "tokens": [1e5, 1e6, 1e5],
                         "loss": [3.0, 2.6, 2.9]})
    ax = plots.plot_known_entropy(runs, 2.5, 2.4, (2.3, 2.45),
                                  law=lambda n, d: 2.4 + 10 / d**0.3)
    assert len(ax.lines) == 2 + 2  # one law curve per size, H and E
    ax = plots.plot_profile_E([1.0, 2.0], [0.3, 0.1], true_E=2.1, fitted_E=2.0)
    assert len(ax.lines) == 3
    plt.close("all")


def test_committed_known_entropy_runs_match_the_exported_store():
    res = json.loads(KNOWN_ENTROPY_JSON.read_text())
    pts = en.sweep_points(ROOT / "book" / "data" / "known_entropy_sweep")
    assert len(pts) == res["n_runs"]
    np.testing.assert_allclose(np.sort(pts["loss"]), np.sort(res["runs"]["loss"]), rtol=1e-12)
    # byte tokenizer: bits/byte is the loss in nats/token divided by ln 2
    np.testing.assert_allclose(pts["bits_per_byte"], pts["loss"] / math.log(2), rtol=1e-9)
    assert res["best_run_loss"] == pytest.approx(pts["loss"].min())


def test_committed_long_run_is_consistent_with_its_provenance():
    long = json.loads((ROOT / "book" / "data" / "known_entropy_long.json").read_text())
    meta = json.loads((ROOT / "book" / "data" / "known_entropy_long.meta.json").read_text())
    assert "python -m scalingkit train" in meta["command"]
    assert long["status"] == "done" and long["config"]["corpus"] == "markov:1"
    assert long["final_loss"] == pytest.approx(long["curve"][-1]["loss"])
    assert long["tokens"] == long["curve"][-1]["tokens"]
