"""Data for training: tokenizers, corpora, synthetic Markov and HMM sources, samplers.

Modules
-------
tokenizer
    Byte-level and BPE tokenizers, bytes per token.
corpora
    Corpus specs as streams of documents: the shipped Shakespeare and English-books
    (``gutenberg_en``) archives, checked by sha256; the Python stdlib; local files.
markov
    A smoothed byte Markov chain with an exactly known entropy rate.
words
    Random words from a Zipf law: knowledge to memorise, exact entropy rate (the
    ``"words:<preset>"`` corpora).
hmm
    A sparse hidden Markov byte source: long memory, entropy rate estimated with a
    standard error (the ``"hmm:<preset>"`` corpora).
dataset
    Disk-cached ``np.memmap`` token arrays split by document; validation windows.
samplers
    Training batches: random windows, or disjoint windows each seen once per pass.
"""

from scalingkit.core.data.corpora import CorpusSource, resolve_corpus
from scalingkit.core.data.dataset import (
    TokenCorpus,
    cache_dir,
    eval_windows,
    is_validation,
    load_corpus,
    split_documents,
)
from scalingkit.core.data.hmm import HMM_PRESETS, HMMSource
from scalingkit.core.data.markov import MarkovSource
from scalingkit.core.data.samplers import SAMPLERS, BatchSampler, EpochSampler, make_sampler
from scalingkit.core.data.tokenizer import BPETokenizer, ByteTokenizer, bytes_per_token
from scalingkit.core.data.words import WORD_PRESETS, ZipfWordSource

__all__ = [
    "BPETokenizer",
    "BatchSampler",
    "EpochSampler",
    "SAMPLERS",
    "ByteTokenizer",
    "CorpusSource",
    "HMM_PRESETS",
    "HMMSource",
    "MarkovSource",
    "TokenCorpus",
    "WORD_PRESETS",
    "ZipfWordSource",
    "bytes_per_token",
    "cache_dir",
    "eval_windows",
    "is_validation",
    "load_corpus",
    "make_sampler",
    "resolve_corpus",
    "split_documents",
]
