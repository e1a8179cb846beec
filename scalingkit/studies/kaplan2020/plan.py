"""Kaplan et al. (2020) on our own models: the experiments, how to run them, and the fits.

Five experiments share one run store (:class:`scalingkit.runs.store.RunStore`):

``L(N)``
    Model sizes along the ladder, all trained on the same large token budget drawn
    from the whole corpus, early-stopped on the validation loss, so that the loss is
    limited by ``N`` rather than by steps or data. These runs also measure the
    gradient noise scale (:mod:`scalingkit.studies.noise_scale`) at several points of training.
``horizon``
    The same sizes trained for shorter token budgets: how much the ``L(N)`` loss
    still owes to training length (how near convergence it is), and, at the budget
    of the subset runs, the ample-data reference of ``L(N, D)``.
``L(D)``
    One model trained on nested subsets of the training split (its first ``D``
    tokens, cycled), long enough to overfit the small ones; the loss is the best
    validation loss (early stopping).
``grid``
    Further (size, subset) pairs, which with the two above give the ``L(N, D)`` grid.
``shape``
    Several depth/width pairs with about the same non-embedding ``N``.

:func:`plan_kaplan` turns a :class:`KaplanSpec` into training configs, :func:`run_kaplan`
executes them resumably, and :func:`kaplan_frame` / :func:`fit_kaplan_laws` read a
store back and fit ``L(N)``, ``L(D)`` and ``L(N, D)`` with :mod:`scalingkit.fit`.

Units: ``N`` parameters (non-embedding unless named ``params_total``), ``D`` tokens,
losses nats/token.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scalingkit.core.models import GPTConfig, shape_for_params

#: Experiment names, in the order they run.
EXPERIMENTS = ("L(N)", "L(D)", "shape", "grid", "horizon")
#: Presets of :func:`preset`.
PRESETS = ("quick", "reference")
#: Kaplan et al. (2020): exponents and scales (eqs. 1.1-1.3; N_c in parameters,
#: D_c in tokens) and the overfitting rule D >= 5e3 N^0.74 (eq. 4.4).
KAPLAN_2020 = {"alpha_N": 0.076, "N_c": 8.8e13, "alpha_D": 0.095, "D_c": 5.4e13,
               "alpha_C": 0.050, "overfit_coef": 5e3, "overfit_exponent": 0.74}
_VOCAB = {"byte": 256}
_MANIFEST = "kaplan.json"


@dataclass(frozen=True)
class KaplanSpec:
    """The four experiments and the training recipe they share.

    Parameters
    ----------
    sizes : tuple of float
        Target non-embedding sizes of ``L(N)`` (parameters).
    tokens_n : int
        Training tokens of every ``L(N)`` run (tokens).
    horizon_tokens : tuple of int
        Shorter training budgets at which every ``L(N)`` size is also trained
        (tokens; may be empty).
    d_size : float
        Target non-embedding size of the ``L(D)`` model (parameters).
    subsets : tuple of int
        Nested training subsets of ``L(D)`` (tokens).
    grid_sizes : tuple of float
        Further sizes trained on ``grid_subsets`` (parameters).
    grid_subsets : tuple of int
        Subsets for ``grid_sizes`` (tokens).
    subset_epochs : float
        A subset run trains for ``subset_epochs`` passes over its subset, clipped to
        ``[subset_tokens_min, subset_tokens_max]`` tokens.
    subset_tokens_min, subset_tokens_max : int
        Bounds on a subset run's training tokens (tokens).
    shape_size : float
        Target non-embedding size of the shape runs (parameters).
    shape_layers : tuple of int
        Depths of the shape runs; ``d_model`` is the multiple of ``head_dim`` that
        brings ``12 n_layer d_model^2`` closest to ``shape_size``.
    tokens_shape : int
        Training tokens of each shape run (tokens).
    n_ctx, batch_size, head_dim : int
        Context (tokens), sequences per step, and attention head width.
    lr, warmup_fraction : float
        Peak learning rate and the share of each run's tokens spent warming up.
    evals_per_run : int
        Validation points per run (early stopping resolution).
    eval_tokens : int
        Validation tokens per evaluation.
    noise_points : int
        Noise-scale measurements during each ``L(N)`` run (besides initialisation).
    noise_b_small, noise_b_big, noise_repeats : int
        Batch sizes (sequences) and repeats of each measurement.
    corpus, tokenizer : str
    seed : int
    train : dict
        Further :class:`~scalingkit.core.train.TrainConfig` fields for every run.
    """

    sizes: tuple[float, ...] = (5e3, 1e4, 2.2e4, 4.6e4, 1e5, 2.2e5)
    tokens_n: int = 12_000_000
    horizon_tokens: tuple[int, ...] = ()
    d_size: float = 1e5
    subsets: tuple[int, ...] = tuple(2**k for k in range(12, 21))
    grid_sizes: tuple[float, ...] = (2.2e4, 4.6e4)
    grid_subsets: tuple[int, ...] = (2**13, 2**16)
    subset_epochs: float = 16.0
    subset_tokens_min: int = 2_000_000
    subset_tokens_max: int = 2_000_000
    shape_size: float = 1e5
    shape_layers: tuple[int, ...] = (1, 2, 4, 8)
    tokens_shape: int = 500_000
    n_ctx: int = 64
    batch_size: int = 32
    head_dim: int = 16
    lr: float = 3e-3
    warmup_fraction: float = 0.05
    evals_per_run: int = 20
    eval_tokens: int = 16384
    noise_points: int = 5
    noise_b_small: int = 4
    noise_b_big: int = 128
    noise_repeats: int = 4
    corpus: str = "shakespeare"
    tokenizer: str = "byte"
    seed: int = 0
    train: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("sizes", "subsets", "shape_layers"):
            if len(getattr(self, name)) == 0:
                raise ValueError(f"{name} must not be empty")
        for name in ("sizes", "grid_sizes", "subsets", "grid_subsets", "shape_layers"):
            values = getattr(self, name)
            if any(not (isinstance(v, int | float) and math.isfinite(v) and v > 0)
                   for v in values):
                raise ValueError(f"{name} must hold positive finite numbers, got {values!r}")
        if any(isinstance(t, bool) or not isinstance(t, int) or t < 1
               for t in self.horizon_tokens):
            raise ValueError("horizon_tokens must hold positive integers, got "
                             f"{self.horizon_tokens!r}")
        for name in ("tokens_n", "subset_tokens_min", "subset_tokens_max", "tokens_shape",
                     "n_ctx", "batch_size", "head_dim", "evals_per_run", "eval_tokens",
                     "noise_b_small", "noise_b_big", "noise_repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.noise_points < 0:
            raise ValueError(f"noise_points must be >= 0, got {self.noise_points!r}")
        if self.noise_b_big % self.noise_b_small or self.noise_b_big <= self.noise_b_small:
            raise ValueError("noise_b_big must be a larger multiple of noise_b_small, got "
                             f"{self.noise_b_small} and {self.noise_b_big}")
        if self.subset_tokens_min > self.subset_tokens_max:
            raise ValueError("subset_tokens_min must not exceed subset_tokens_max")
        if not self.subset_epochs > 0:
            raise ValueError(f"subset_epochs must be > 0, got {self.subset_epochs!r}")
        if self.tokenizer not in _VOCAB:
            raise ValueError(f"Kaplan experiments use the byte tokenizer, got {self.tokenizer!r}")

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimiser step: ``batch_size * n_ctx``."""
        return self.batch_size * self.n_ctx


def preset(name: str, **overrides: Any) -> KaplanSpec:
    """A named :class:`KaplanSpec`, optionally with fields replaced.

    ``reference``
        What the book's chapter reads: 6 sizes over 1.8 decades of non-embedding
        ``N`` trained for 12M tokens each (2.5 passes over the 4.8M training bytes,
        early-stopped) and again for 2M and 6M tokens (``horizon``), 9 nested subsets
        over 2.4 decades (4 Ki to 1 Mi tokens) and 4 more grid runs, each trained
        for 2M tokens, and 4 shapes (aspect ratio 4 to 96, 0.5M tokens): 5.8e13
        FLOP, about an hour on 2 CPU cores (several times longer on a shared machine).
    ``quick``
        The same pipeline on toy sizes, in well under a minute (tests, demos).
    """
    if name == "reference":
        spec = KaplanSpec(horizon_tokens=(2_000_000, 6_000_000))
    elif name == "quick":
        spec = KaplanSpec(
            sizes=(4e3, 1.2e4, 3e4), tokens_n=40_960, d_size=1.2e4,
            subsets=(2**11, 2**12, 2**13),
            grid_sizes=(4e3,), grid_subsets=(2**11,), subset_epochs=8.0,
            subset_tokens_min=8192, subset_tokens_max=40_960, shape_size=1.2e4,
            shape_layers=(1, 3), tokens_shape=20_480, n_ctx=32, batch_size=16,
            evals_per_run=5, eval_tokens=2048, noise_points=2, noise_b_small=2,
            noise_b_big=8, noise_repeats=2,
        )
    else:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(spec, **overrides) if overrides else spec


@dataclass(frozen=True)
class KaplanRun:
    """One planned run: its experiment, full training config and planner notes."""

    experiment: str
    config: dict
    plan: dict
    noise: bool = False


def shape_config(n_target: float, n_layer: int, *, n_ctx: int, head_dim: int,
                 vocab_size: int = 256) -> GPTConfig:
    """The ``n_layer``-deep model whose ``12 n_layer d_model^2`` is closest to ``n_target``.

    ``d_model`` is a multiple of ``head_dim`` (at least one head).
    """
    if isinstance(n_layer, bool) or not isinstance(n_layer, int) or n_layer < 1:
        raise ValueError(f"n_layer must be a positive integer, got {n_layer!r}")
    heads = max(1, round(math.sqrt(n_target / (12 * n_layer)) / head_dim))
    d_model = heads * head_dim
    return GPTConfig(d_model=d_model, n_layer=n_layer, n_head=heads, n_ctx=n_ctx,
                     vocab_size=vocab_size)


def _steps(spec: KaplanSpec, tokens: float) -> int:
    return max(1, round(tokens / spec.tokens_per_step))


def _config(spec: KaplanSpec, model: GPTConfig, tokens: int, *, subset: int | None = None,
            checkpoints: int = 5) -> dict:
    from scalingkit.core.train import TrainConfig

    steps = _steps(spec, tokens)
    log_every = 10 if steps >= 100 else 1
    every = max(log_every, (steps // (checkpoints + 1)) // log_every * log_every)
    data = {
        **dict(spec.train), "model": model.to_dict(), "corpus": spec.corpus,
        "tokenizer": spec.tokenizer, "tokens": steps * spec.tokens_per_step,
        "batch_size": spec.batch_size, "lr": spec.lr,
        "warmup_tokens": int(round(spec.warmup_fraction * steps * spec.tokens_per_step)),
        "schedule": "cosine", "eval_every": max(1, steps // spec.evals_per_run),
        "eval_tokens": spec.eval_tokens, "log_every": log_every, "seed": spec.seed,
        "checkpoint_every": every if steps > every else 0,
    }
    if subset is not None:
        data["train_tokens_limit"] = int(subset)
    return TrainConfig.from_dict(data).to_dict()


def _subset_tokens(spec: KaplanSpec, subset: int) -> int:
    return int(min(spec.subset_tokens_max, max(spec.subset_tokens_min,
                                               spec.subset_epochs * subset)))


def plan_kaplan(spec: KaplanSpec) -> list[KaplanRun]:
    """Every run of the four experiments, in execution order (cheapest first in each).

    Returns
    -------
    list of KaplanRun
        ``plan`` holds ``experiment``, ``n_target``, ``params`` (non-embedding),
        ``params_total``, ``subset`` (tokens, ``None`` for the whole split) and
        ``aspect`` (``d_model / n_layer``).
    """
    vocab = _VOCAB[spec.tokenizer]

    def ladder(n: float) -> GPTConfig:
        return shape_for_params(float(n), n_ctx=spec.n_ctx, vocab_size=vocab,
                                head_dim=spec.head_dim, count="non_embedding")

    def notes(experiment: str, model: GPTConfig, n: float, subset: int | None) -> dict:
        return {"experiment": experiment, "n_target": float(n),
                "params": model.n_params_non_embedding(), "params_total": model.n_params(),
                "subset": subset, "aspect": model.d_model / model.n_layer}

    runs = []
    for n in sorted(spec.sizes):
        model = ladder(n)
        cfg = _config(spec, model, spec.tokens_n, checkpoints=spec.noise_points)
        runs.append(KaplanRun("L(N)", cfg, notes("L(N)", model, n, None),
                              noise=spec.noise_points > 0))
    for tokens in sorted(spec.horizon_tokens):
        for n in sorted(spec.sizes):
            model = ladder(n)
            cfg = _config(spec, model, tokens, checkpoints=spec.noise_points)
            runs.append(KaplanRun("horizon", cfg, notes("horizon", model, n, None)))
    model = ladder(spec.d_size)
    for d in sorted(spec.subsets):
        cfg = _config(spec, model, _subset_tokens(spec, d), subset=d)
        runs.append(KaplanRun("L(D)", cfg, notes("L(D)", model, spec.d_size, d)))
    for layers in spec.shape_layers:
        model = shape_config(spec.shape_size, int(layers), n_ctx=spec.n_ctx,
                             head_dim=spec.head_dim, vocab_size=vocab)
        cfg = _config(spec, model, spec.tokens_shape)
        runs.append(KaplanRun("shape", cfg, notes("shape", model, spec.shape_size, None)))
    for n in sorted(spec.grid_sizes):
        model = ladder(n)
        for d in sorted(spec.grid_subsets):
            cfg = _config(spec, model, _subset_tokens(spec, d), subset=d)
            runs.append(KaplanRun("grid", cfg, notes("grid", model, n, d)))
    return runs


def _manifest(root: Path) -> dict:
    path = Path(root) / _MANIFEST
    if not path.exists():
        raise ValueError(f"{root} has no {_MANIFEST}: not a Kaplan run store")
    return json.loads(path.read_text())
