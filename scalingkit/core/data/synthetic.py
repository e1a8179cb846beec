"""The documents of the synthetic corpora, sampled from sources of known entropy rate.

* ``"markov:<k>[:<source>]"``: an order-``k`` byte chain fitted to a real corpus
  (:class:`~scalingkit.core.data.markov.MarkovSource`), exact entropy rate;
* ``"ngram:<preset>[:<megabytes>]"``: a random chain of
  :data:`~scalingkit.core.data.markov.NGRAM_PRESETS`, exact entropy rate;
* ``"words:<preset>[:<megabytes>]"``: random words from a Zipf law,
  :data:`~scalingkit.core.data.words.WORD_PRESETS`, exact entropy rate;
* ``"hmm:<preset>[:<megabytes>]"``: a hidden Markov model of
  :data:`~scalingkit.core.data.hmm.HMM_PRESETS`, entropy rate estimated with a
  standard error.

:func:`scalingkit.core.data.load_corpus` calls these once, when the corpus is not
cached yet; each returns ``(documents, meta)``, the meta holding the entropy rate.
"""

from __future__ import annotations

import math

import numpy as np

from scalingkit.core.data.corpora import CorpusSource
from scalingkit.core.data.hmm import HMM_PRESETS, HMMSource
from scalingkit.core.data.markov import NGRAM_PRESETS, MarkovSource
from scalingkit.core.data.splits import is_validation, split_documents
from scalingkit.core.data.words import WORD_PRESETS, ZipfWordSource

#: Scored tokens behind the entropy-rate estimate stored with an ``hmm:`` corpus; about
#: 1e-3 nats/token standard error (:meth:`HMMSource.entropy_rate`).
HMM_ENTROPY_TOKENS = 1 << 20


def _parse_markov(spec: str) -> tuple[int, str]:
    parts = spec.split(":", 2)
    try:
        order = int(parts[1])
    except (IndexError, ValueError):
        raise ValueError(f"bad Markov corpus spec {spec!r}; use 'markov:<k>' or "
                         "'markov:<k>:<source corpus>'") from None
    if order < 0:
        raise ValueError(f"Markov order must be >= 0 in {spec!r}")
    return order, parts[2] if len(parts) > 2 else "shakespeare"


def _markov_documents(
    source: CorpusSource, max_doc_bytes: int, n_bytes: int, seed: int, spec: str
) -> tuple[list[tuple[str, bytes]], dict]:
    """Fit the chain to the source's training documents and sample the corpus."""
    order, source_spec = _parse_markov(spec)
    # Fit on the source's training documents only (its default 10% split).
    text = b"".join(d for n, d in source.documents(max_doc_bytes) if not is_validation(n, 0.1))
    src = MarkovSource(order=order).fit(text)
    n_chains = max(2, min(256, n_bytes // 16384))
    docs = src.sample(n_bytes, n_chains=n_chains, seed=seed)
    meta = {
        "markov_order": order,
        "markov_alpha": src.alpha,
        "markov_source": source_spec,
        "markov_bytes": n_bytes,
        "markov_seed": seed,
        "entropy_rate_nats_per_byte": src.entropy_rate(),
        "entropy_rate_bits_per_byte": src.entropy_rate_bits(),
    }
    return [(f"chain{i:04d}", d) for i, d in enumerate(docs)], meta


def _derived_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent seeds derived from a corpus's ``seed``."""
    return [int(np.random.SeedSequence([seed, i]).generate_state(1)[0]) for i in range(count)]


def _chain_documents(sample, n_bytes: int, seeds: list[int],
                     val_fraction: float) -> list[tuple[str, bytes]]:
    """About ``n_bytes`` of independent stationary chains, as named documents.

    ``sample(length, n, seed)`` draws ``n`` chains of ``length`` bytes. The chains that
    :func:`split_documents` puts in validation are drawn from ``seeds[1]``, the
    training ones from ``seeds[0]``, so the two splits are independent samples.
    """
    n_chains = max(2, min(256, n_bytes // 16384))
    names = [f"chain{i:04d}" for i in range(n_chains)]
    val = split_documents(names, val_fraction)
    per_chain = -(-n_bytes // n_chains)
    docs = []
    for in_val, split_seed in ((False, seeds[0]), (True, seeds[1])):
        mine = [n for n in names if (n in val) == in_val]
        docs += list(zip(mine, sample(per_chain, len(mine), split_seed), strict=True))
    return docs


def _parse_preset(spec: str, presets: dict, kind: str) -> str:
    """The preset of ``"<prefix>:<preset>[:<megabytes>]"``; ``ValueError`` for a bad spec."""
    prefix = spec.split(":")[0]
    preset = spec.split(":")[1] if spec.count(":") >= 1 else ""
    if preset not in presets:
        raise ValueError(f"unknown {kind} preset in {spec!r}; use "
                         f"'{prefix}:<preset>[:<megabytes>]' with one of {', '.join(presets)}")
    _hmm_bytes(spec, 1)
    return preset


def _parse_hmm(spec: str) -> str:
    """The preset of ``"hmm:<preset>[:<megabytes>]"``; ``ValueError`` for a bad spec."""
    return _parse_preset(spec, HMM_PRESETS, "HMM")


def _hmm_bytes(spec: str, default: int) -> int:
    """Bytes of an ``"hmm:<preset>:<megabytes>"`` or ``"ngram:<preset>:<megabytes>"``
    corpus (MiB), else ``default``."""
    parts = spec.split(":")
    if len(parts) < 3:
        return default
    if len(parts) > 3 or not parts[2].isdigit() or int(parts[2]) < 1:
        raise ValueError(f"bad synthetic corpus spec {spec!r}; the size is a whole number of "
                         f"megabytes, as in '{parts[0]}:{parts[1]}:256'")
    return int(parts[2]) << 20


def _parse_ngram(spec: str) -> str:
    """The preset of ``"ngram:<preset>[:<megabytes>]"``; ``ValueError`` for a bad spec."""
    return _parse_preset(spec, NGRAM_PRESETS, "n-gram")


def _ngram_documents(
    spec: str, n_bytes: int, seed: int, val_fraction: float
) -> tuple[list[tuple[str, bytes]], dict]:
    """Sample the corpus from a preset random chain (:meth:`MarkovSource.random`).

    Independent stationary chains, the validation ones from their own seed, as for the
    HMM corpora; the entropy rate is exact.
    """
    preset = _parse_ngram(spec)
    params = NGRAM_PRESETS[preset]
    src = MarkovSource.random(**params)
    docs = _chain_documents(lambda length, n, s: src.sample(length * n, n_chains=n, seed=s),
                            n_bytes, _derived_seeds(seed, 2), val_fraction)
    meta = {
        "ngram_preset": preset,
        "ngram_params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "ngram_bytes": n_bytes,
        "ngram_seed": seed,
        "entropy_rate_nats_per_byte": src.entropy_rate(),
        "entropy_rate_bits_per_byte": src.entropy_rate_bits(),
    }
    return sorted(docs), meta


def _parse_words(spec: str) -> str:
    """The preset of ``"words:<preset>[:<megabytes>]"``; ``ValueError`` for a bad spec."""
    return _parse_preset(spec, WORD_PRESETS, "word")


def _words_documents(
    spec: str, n_bytes: int, seed: int, val_fraction: float
) -> tuple[list[tuple[str, bytes]], dict]:
    """Sample the corpus from a preset Zipf word source (:class:`ZipfWordSource`).

    Independent stationary streams, the validation ones from their own seed, as for
    the other preset sources; the entropy rate is exact.
    """
    src = ZipfWordSource(**WORD_PRESETS[_parse_words(spec)])
    docs = _chain_documents(
        lambda length, n, s: [row.tobytes() for row in src.sample(length, n_chains=n, seed=s)],
        n_bytes, _derived_seeds(seed, 2), val_fraction)
    meta = {
        "words_preset": _parse_words(spec),
        "words_params": src.params,
        "words_bytes": n_bytes,
        "words_seed": seed,
        "entropy_rate_nats_per_byte": src.entropy_rate(),
        "entropy_rate_bits_per_byte": src.entropy_rate_bits(),
    }
    return sorted(docs), meta


def _hmm_documents(
    spec: str, n_bytes: int, seed: int, val_fraction: float
) -> tuple[list[tuple[str, bytes]], dict]:
    """Sample the corpus from a preset HMM and estimate its entropy rate.

    The documents are independent stationary chains. The ones that
    :func:`split_documents` will put in validation are drawn from their own seed,
    independent of the training chains', and the entropy rate from a third.
    """
    preset = _parse_hmm(spec)
    src = HMMSource(**HMM_PRESETS[preset])
    seeds = _derived_seeds(seed, 3)
    docs = _chain_documents(
        lambda length, n, s: [row.tobytes() for row in src.sample(length, n_chains=n, seed=s)],
        n_bytes, seeds[:2], val_fraction)
    n_est = 64
    h, se = src.entropy_rate(max(1, HMM_ENTROPY_TOKENS // n_est), n_chains=n_est,
                             seed=seeds[2])
    lower, upper = src.entropy_bounds()
    meta = {
        "hmm_preset": preset,
        "hmm_params": src.params,
        "hmm_bytes": n_bytes,
        "hmm_seed": seed,
        "entropy_rate_nats_per_byte": h,
        "entropy_rate_stderr_nats_per_byte": se,
        "entropy_rate_bits_per_byte": h / math.log(2),
        "entropy_rate_stderr_bits_per_byte": se / math.log(2),
        "entropy_rate_tokens": n_est * max(1, HMM_ENTROPY_TOKENS // n_est),
        "entropy_bounds_nats_per_byte": [lower, upper],
    }
    return sorted(docs), meta


def _generated(make) -> tuple:
    """``documents()`` and ``extra_meta()`` of a synthetic corpus that ``make()``
    samples once, on the first call, only if the corpus is not cached yet."""
    generated: dict = {}

    def documents():
        if not generated:
            generated["docs"], generated["meta"] = make()
        return iter(generated["docs"])

    def extra_meta() -> dict:
        return generated.get("meta", {})

    return documents, extra_meta
