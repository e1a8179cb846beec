"""scalingkit: small, tested tools for neural scaling laws.

Modules
-------
flops
    Analytic FLOP and parameter accounting for decoder-only transformers
    (Kaplan et al. 2020; Hoffmann et al. 2022), the 6ND rule, MFU, unit
    conversions, and a cross-check against PyTorch's FLOP counter.
models
    A small decoder-only GPT, its parameter counts and the model ladder.
data
    Tokenizers (bytes, BPE), corpora (Shakespeare, the Python standard
    library, local files), memmap token caches, the train/validation split,
    batch sampling, and a Markov source with an exactly known entropy rate.
train
    The trainer: token or FLOP budgets, schedules, exact resume, divergence
    detection, result records with FLOP counts and MFU.
sweep, store, executors
    IsoFLOP sweep planning, the append-only run store, and sequential,
    process-pool and Slurm (submitit) executors.
fit
    Scaling-law estimators: Chinchilla's three approaches and Kaplan's forms.
entropy, known_entropy, repetition
    Units of information, compressor and n-gram baselines, the known-entropy
    experiment, and data-constrained scaling (Muennighoff et al. 2023).
kaplan, noise_scale
    Kaplan et al.'s experiments on our models; the gradient noise scale.
porian, predict, inference
    The Kaplan/Chinchilla discrepancy step by step (Porian et al. 2024),
    predicting a larger run before training it, inference-aware allocation
    (Sardana et al. 2023).
plots
    The book's figures.
provenance, book, cli
    Result provenance, chapter export, and ``python -m scalingkit``.
"""

__version__ = "0.1.0"
