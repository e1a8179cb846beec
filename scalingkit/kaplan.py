"""Kaplan et al. (2020) on our own models: the experiments, how to run them, and the fits.

Five experiments share one run store (:class:`scalingkit.store.RunStore`):

``L(N)``
    Model sizes along the ladder, all trained on the same large token budget drawn
    from the whole corpus, early-stopped on the validation loss, so that the loss is
    limited by ``N`` rather than by steps or data. These runs also measure the
    gradient noise scale (:mod:`scalingkit.noise_scale`) at several points of training.
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

import functools
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalingkit.models import GPTConfig, shape_for_params

__all__ = [
    "EXPERIMENTS", "KAPLAN_2020", "KaplanSpec", "KaplanRun", "preset", "PRESETS",
    "plan_kaplan", "run_kaplan", "train_with_noise_scale", "kaplan_frame", "noise_frame",
    "curves", "fit_kaplan_laws", "overfit_threshold", "shape_config", "overfitting",
    "tokens_to_reach", "compare_with_kaplan", "export_store", "ample_data_runs", "convergence",
]

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
        Further :class:`~scalingkit.train.TrainConfig` fields for every run.
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
    from scalingkit.train import TrainConfig

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


# ----------------------------------------------------------------------------- running


def train_with_noise_scale(
    config: dict, *, run_dir: str | Path | None = None, progress: bool = False,
    b_small: int = 4, b_big: int = 128, repeats: int = 4,
) -> dict:
    """Train like :func:`scalingkit.executors.train_from_dict` and measure ``B_simple``.

    The noise scale is measured at initialisation and at every checkpoint the trainer
    writes (``checkpoint_every`` steps): the trainer's callback hands over the live
    model, its weights are copied into a second model and
    :func:`scalingkit.noise_scale.gpt_noise_scale` runs on training windows with its
    own sampler, so the training run itself is unchanged. Measurements are saved to
    ``run_dir/noise_scale.json`` as they come, so a resumed run keeps them.

    Returns
    -------
    dict
        ``TrainResult.to_dict()`` plus ``noise_scale``: a list of dicts with ``step``,
        ``tokens``, ``loss`` (training windows, nats/token), ``grad_sq``,
        ``trace_cov``, ``b_simple`` (sequences) and ``b_simple_tokens``.
    """
    import torch

    from scalingkit.data import load_corpus
    from scalingkit.models import GPT
    from scalingkit.noise_scale import gpt_noise_scale
    from scalingkit.train import TrainConfig, train

    cfg = TrainConfig.from_dict(config)
    tmp = None
    if run_dir is None:
        tmp = tempfile.TemporaryDirectory()
        run_dir = tmp.name
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(cfg.corpus, cfg.tokenizer, val_fraction=cfg.val_fraction)
    tokens = corpus.train if cfg.train_tokens_limit is None else (
        corpus.train[: cfg.train_tokens_limit])
    n_ctx, tps = cfg.model.n_ctx, cfg.tokens_per_step
    log_path = run_dir / "noise_scale.json"
    points = json.loads(log_path.read_text()) if log_path.exists() else []
    probe = GPT(cfg.model, generator=torch.Generator().manual_seed(cfg.seed))

    def measure(step: int) -> None:
        est = gpt_noise_scale(probe, tokens, n_ctx=n_ctx, b_small=b_small, b_big=b_big,
                              repeats=repeats, seed=cfg.seed + 7919 * (step + 1))
        points.append({"step": step, "tokens": step * tps, **est.to_dict(),
                       "b_simple_tokens": est.b_simple * n_ctx})
        log_path.write_text(json.dumps(points))

    if not any(p["step"] == 0 for p in points):
        measure(0)  # the trainer initialises from the same seed, so these are its weights
    seen = {p["step"] for p in points}

    def callback(info: dict) -> None:
        # Measure at every checkpoint, on a copy of the live weights, so that the
        # training model, its gradients and torch's RNG are left as they were.
        if info["checkpoint"] and info["step"] not in seen:
            seen.add(info["step"])
            probe.load_state_dict(info["model"].state_dict())
            measure(info["step"])

    try:
        result = train(cfg, run_dir=run_dir, progress=progress, callback=callback).to_dict()
    finally:
        if tmp is not None:
            tmp.cleanup()
    result["noise_scale"] = sorted(points, key=lambda p: p["step"])
    return result


def run_kaplan(
    spec: KaplanSpec, out: str | Path, *, threads: int | None = 1, progress: bool = True,
    experiments: Sequence[str] | None = None, provenance: dict | None = None,
) -> Any:
    """Store the planned runs under ``out`` and train those not finished, in order.

    Runs already done or diverged are skipped; a partial run resumes from its
    checkpoint. The manifest ``out/kaplan.json`` records the spec and which run ids
    belong to which experiment.

    Parameters
    ----------
    spec : KaplanSpec
    out : str or Path
        Run store folder.
    threads : int or None, default=1
        torch threads (None: every core).
    progress : bool, default=True
    experiments : sequence of str, optional
        Run only these (default: all of :data:`EXPERIMENTS`); all are still planned.
    provenance : dict, optional
        Appended to the manifest's ``invocations`` (command, version, commit, machine).

    Returns
    -------
    RunStore
    """
    from scalingkit.executors import DEFAULT_TRAINER, SequentialExecutor
    from scalingkit.store import RunStore, atomic_write_json

    chosen = tuple(EXPERIMENTS if experiments is None else experiments)
    unknown = [e for e in chosen if e not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; choose from {EXPERIMENTS}")
    store = RunStore(out)
    store.ensure_writable()
    runs = plan_kaplan(spec)
    ids = [store.add(r.config, plan=r.plan) for r in runs]
    path = store.root / _MANIFEST
    previous = json.loads(path.read_text()) if path.exists() else {}
    invocations = previous.get("invocations", []) + ([provenance] if provenance else [])
    manifest = {"spec": asdict(spec), "invocations": invocations, "experiments": {
        e: [i for i, r in zip(ids, runs, strict=True) if r.experiment == e] for e in EXPERIMENTS
    }}
    atomic_write_json(store.root / _MANIFEST, manifest)
    noisy = functools.partial(train_with_noise_scale, b_small=spec.noise_b_small,
                              b_big=spec.noise_b_big, repeats=spec.noise_repeats)
    for experiment in EXPERIMENTS:
        if experiment not in chosen:
            continue
        for run_id, run in zip(ids, runs, strict=True):
            if run.experiment != experiment or store.get(run_id).is_final:
                continue
            trainer = noisy if run.noise else DEFAULT_TRAINER
            SequentialExecutor(trainer, threads=threads, progress=False).run(store, [run_id])
            if progress:
                rec = store.get(run_id)
                loss = (rec.result or {}).get("best_loss")
                shown = f"{loss:.4f}" if isinstance(loss, float) else "-"
                print(f"{experiment:6s} {run_id} N={run.plan['params']:>8,} "
                      f"subset={run.plan['subset']} {rec.status} best_loss={shown}",
                      flush=True)
    return store


def export_store(source: str | Path, dest: str | Path) -> int:
    """Copy the manifest and the records of the runs it lists into a new or empty folder.

    Checkpoints, noise-scale logs and runs of earlier plans left in the store (records
    are never deleted) stay behind.

    Returns
    -------
    int
        Records copied.
    """
    import shutil

    from scalingkit.store import RunStore

    source, dest = Path(source), Path(dest)
    manifest = _manifest(source)
    store = RunStore(source)
    store.check_export(dest)  # a new or empty folder, never the store itself: no silent merge
    ids = sorted({i for ids in manifest["experiments"].values() for i in ids if i in store})
    (dest / "runs").mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "store.json", dest / "store.json")
    shutil.copy2(source / _MANIFEST, dest / _MANIFEST)
    for run_id in ids:
        (dest / "runs" / run_id).mkdir(exist_ok=True)
        shutil.copy2(store.run_dir(run_id) / "record.json", dest / "runs" / run_id / "record.json")
    return len(ids)


# ---------------------------------------------------------------------------- analysis


def _manifest(root: Path) -> dict:
    path = Path(root) / _MANIFEST
    if not path.exists():
        raise ValueError(f"{root} has no {_MANIFEST}: not a Kaplan run store")
    return json.loads(path.read_text())


def kaplan_frame(root: str | Path) -> pd.DataFrame:
    """One row per finished run of a Kaplan store.

    Columns: ``experiment``, ``id``, ``params`` (non-embedding ``N``), ``params_total``,
    ``d_model``, ``n_layer``, ``aspect``, ``subset`` (tokens of the training subset,
    the whole split when none), ``tokens`` (trained), ``D`` (distinct training tokens
    seen: ``min(subset, tokens)``), ``best_loss``, ``best_tokens``, ``final_loss``
    (nats/token), ``best_epochs`` (passes over the subset at the best point), ``epochs``,
    ``wall_time_s``. A run in several experiments appears once per experiment.
    """
    from scalingkit.store import RunStore

    root = Path(root)
    manifest = _manifest(root)
    store = RunStore(root)
    rows = []
    for experiment, ids in manifest["experiments"].items():
        for run_id in ids:
            if run_id not in store:
                continue
            rec = store.get(run_id)
            res = rec.result or {}
            if rec.status != "done" or res.get("best_loss") is None:
                continue
            model = rec.config["model"]
            trained = int(res["tokens"])
            subset = rec.config.get("train_tokens_limit") or int(round(trained / res["epochs"]))
            rows.append({
                "experiment": experiment, "id": run_id,
                "params": int(res["params_non_embedding"]),
                "params_total": int(res["params_total"]),
                "d_model": model["d_model"], "n_layer": model["n_layer"],
                "aspect": model["d_model"] / model["n_layer"], "subset": int(subset),
                "tokens": trained, "D": int(min(subset, trained)),
                "best_loss": float(res["best_loss"]), "best_tokens": int(res["best_tokens"]),
                "final_loss": float(res["final_loss"]),
                "best_epochs": res["best_tokens"] / subset, "epochs": float(res["epochs"]),
                "wall_time_s": float(res["wall_time_s"]),
            })
    if not rows:
        raise ValueError(f"{root} holds no finished Kaplan runs")
    return pd.DataFrame(rows)


def _records(root: str | Path, experiment: str) -> list:
    from scalingkit.store import RunStore

    store = RunStore(root)
    ids = _manifest(Path(root))["experiments"].get(experiment, [])
    return [store.get(i) for i in ids if i in store and store.get(i).status == "done"]


def noise_frame(root: str | Path) -> pd.DataFrame:
    """Noise-scale measurements of the ``L(N)`` runs: one row per (run, step).

    Columns: ``params`` (non-embedding), ``step``, ``tokens``, ``loss`` (nats/token on
    training windows), ``grad_sq``, ``trace_cov``, ``b_simple`` (sequences) and
    ``b_simple_tokens`` (tokens).
    """
    rows = []
    for rec in _records(root, "L(N)"):
        for p in rec.result.get("noise_scale") or []:
            rows.append({"params": rec.result["params_non_embedding"], **p})
    if not rows:
        raise ValueError(f"{root} holds no noise-scale measurements")
    return pd.DataFrame(rows)


def curves(root: str | Path, experiment: str = "L(N)", key: str = "params"
           ) -> dict[int, pd.DataFrame]:
    """Validation curves (``tokens``, ``flops``, ``loss``) of one experiment's runs.

    Keyed by non-embedding ``N`` (``key="params"``) or by training subset size in
    tokens (``key="subset"``; runs on the whole split are left out).
    """
    if key not in ("params", "subset"):
        raise ValueError(f"key must be 'params' or 'subset', got {key!r}")
    out = {}
    for r in _records(root, experiment):
        k = (r.result["params_non_embedding"] if key == "params"
             else r.config.get("train_tokens_limit"))
        if k is not None:
            out[int(k)] = pd.DataFrame(r.result["curve"])
    return out


def _interval(samples: np.ndarray | None, confidence: float) -> list[float] | None:
    if samples is None or len(samples) < 2:
        return None
    tail = 50.0 * (1.0 - confidence)
    return [float(np.percentile(samples, tail)), float(np.percentile(samples, 100 - tail))]


def overfit_threshold(joint: dict[str, float], penalty: float = 0.02) -> tuple[float, float]:
    """Kaplan's rule ``D >= k N^r`` implied by an ``L(N, D)`` fit (eq. 4.4).

    The overfitting penalty ``L(N, D) / L(N, inf) - 1 = (1 + (N/N_c)^r D_c/D)^alpha_D - 1``
    with ``r = alpha_N / alpha_D`` stays below ``penalty`` when ``D >= k N^r`` with
    ``k = D_c / (x N_c^r)`` and ``x = (1 + penalty)^(1/alpha_D) - 1``.

    Parameters
    ----------
    joint : dict
        ``alpha_N``, ``alpha_D``, ``N_c`` (parameters), ``D_c`` (tokens).
    penalty : float, default=0.02
        Tolerated relative loss excess (Kaplan used 2%).

    Returns
    -------
    (float, float)
        ``(k, r)``: tokens = ``k * N**r``.
    """
    if not penalty > 0:
        raise ValueError(f"penalty must be > 0, got {penalty!r}")
    r = joint["alpha_N"] / joint["alpha_D"]
    x = (1.0 + penalty) ** (1.0 / joint["alpha_D"]) - 1.0
    return float(joint["D_c"] / (x * joint["N_c"] ** r)), float(r)


def fit_kaplan_laws(
    frame: pd.DataFrame, *, n_bootstrap: int = 1000, joint_bootstrap: int = 0,
    confidence: float = 0.95, random_state: int = 0,
) -> dict[str, Any]:
    """Fit ``L(N)``, ``L(D)`` and ``L(N, D)`` to a :func:`kaplan_frame` with scalingkit.fit.

    ``L(N)`` uses the ``L(N)`` runs (best validation loss against non-embedding and
    against total ``N``); ``L(D)`` the ``L(D)`` runs (best loss against the subset
    size ``D``); ``L(N, D)`` every ``L(D)`` and grid run plus the ample-data runs
    trained for as many tokens (:func:`ample_data_runs`), against ``N`` and ``D``, so
    that only ``N`` and ``D`` differ between its points. ``overfit_exponent`` is
    ``alpha_N / alpha_D`` of the two one-variable fits, its interval from pairing
    their (independent) bootstrap samples.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`.
    n_bootstrap : int, default=1000
        Resamples for the one-variable fits (closed form, fast).
    joint_bootstrap : int, default=0
        Resamples for ``L(N, D)`` (an iterative fit from 81 starts: about a second or
        two each on a laptop CPU).
    confidence : float, default=0.95
    random_state : int, default=0

    Returns
    -------
    dict
        ``alpha_N``, ``N_c``, ``alpha_D``, ``D_c``, ``overfit_exponent`` (each a dict
        with ``value`` and ``interval``), ``joint_overfit_exponent`` (the same ratio
        from the ``L(N, D)`` fit), ``L(N)``, ``L(N) total``, ``L(D)``, ``L(N, D)``
        (each estimator's ``to_dict()``) and ``threshold`` (``coef`` and ``exponent``
        of ``D >= coef N^exponent`` from the joint fit).
    """
    from scalingkit.fit import KaplanDFit, KaplanNDFit, KaplanNFit

    opts = {"n_bootstrap": n_bootstrap, "confidence": confidence, "random_state": random_state}
    ln = frame[frame["experiment"] == "L(N)"]
    ld = frame[frame["experiment"] == "L(D)"]
    joint = frame["experiment"].isin(["L(D)", "grid"]) | frame.index.isin(
        ample_data_runs(frame).index)
    grid = frame[joint].drop_duplicates("id")
    fit_n = KaplanNFit(**opts).fit(ln["params"], ln["best_loss"])
    fit_total = KaplanNFit(**opts).fit(ln["params_total"], ln["best_loss"])
    fit_d = KaplanDFit(**opts).fit(ld["D"], ld["best_loss"])
    fit_nd = KaplanNDFit(**{**opts, "n_bootstrap": joint_bootstrap}).fit(
        grid["params"], grid["D"], grid["best_loss"])

    def entry(fit, name: str) -> dict:
        ci = (fit.ci_ or {}).get(name)
        return {"value": fit.coef_[name], "interval": None if ci is None else list(ci)}

    ratio = None
    if fit_n.bootstrap_ is not None and fit_d.bootstrap_ is not None:
        m = min(len(fit_n.bootstrap_["alpha_N"]), len(fit_d.bootstrap_["alpha_D"]))
        ratio = fit_n.bootstrap_["alpha_N"][:m] / fit_d.bootstrap_["alpha_D"][:m]
    coef, exponent = overfit_threshold(fit_nd.coef_)
    boot = fit_nd.bootstrap_
    joint_ratio = None if boot is None else boot["alpha_N"] / boot["alpha_D"]
    return {
        "alpha_N": entry(fit_n, "alpha_N"), "N_c": entry(fit_n, "N_c"),
        "alpha_D": entry(fit_d, "alpha_D"), "D_c": entry(fit_d, "D_c"),
        "overfit_exponent": {"value": fit_n.alpha_N_ / fit_d.alpha_D_,
                             "interval": _interval(ratio, confidence)},
        "L(N)": fit_n.to_dict(), "L(N) total": fit_total.to_dict(), "L(D)": fit_d.to_dict(),
        "L(N, D)": fit_nd.to_dict(),
        "joint_overfit_exponent": {"value": fit_nd.alpha_N_ / fit_nd.alpha_D_,
                                   "interval": _interval(joint_ratio, confidence)},
        "threshold": {"coef": coef, "exponent": exponent, "penalty": 0.02},
        "n_runs": {e: int((frame["experiment"] == e).sum()) for e in EXPERIMENTS},
        "confidence": confidence,
    }


def ample_data_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The whole-corpus runs trained for as long as the subset runs: ``L(N)`` at ample data.

    The subset runs (``L(D)`` and ``grid``) differ from a whole-corpus run of the
    same size only in ``D`` when both train for the same number of tokens. Of the
    ``horizon`` budgets, the one nearest (in log) the subset runs' median training
    tokens is chosen; without ``horizon`` runs, the ``L(N)`` runs stand in.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`.

    Returns
    -------
    DataFrame
        The chosen rows of ``frame``.
    """
    horizon = frame[frame["experiment"] == "horizon"]
    subsets = frame[frame["experiment"].isin(["L(D)", "grid"])]
    if horizon.empty or subsets.empty:
        return frame[frame["experiment"] == "L(N)"]
    target = math.log(float(subsets["tokens"].median()))
    budgets = horizon["tokens"].unique()
    best = min(budgets, key=lambda t: abs(math.log(float(t)) - target))
    return horizon[horizon["tokens"] == best]


def convergence(frame: pd.DataFrame) -> pd.DataFrame:
    """Best loss of each ``L(N)`` size at every training budget it was trained for.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`; uses the ``L(N)`` and ``horizon`` runs.

    Returns
    -------
    DataFrame
        Indexed by non-embedding ``params``, one column of best loss (nats/token) per
        training budget (tokens, ascending), then ``gain_pct``: how much lower the
        loss is at the longest budget than at the one before it (percent), and
        ``tokens_per_param`` at the longest budget.
    """
    runs = frame[frame["experiment"].isin(["L(N)", "horizon"])].drop_duplicates("id")
    if runs["tokens"].nunique() < 2:
        raise ValueError("convergence needs L(N) sizes trained for at least two budgets; "
                         "the spec's horizon_tokens is empty")
    table = runs.pivot_table(index="params", columns="tokens", values="best_loss")
    table = table[sorted(table.columns)]
    longest, before = table.columns[-1], table.columns[-2]
    table["gain_pct"] = 100 * (1 - table[longest] / table[before])
    table["tokens_per_param"] = longest / table.index.to_numpy(dtype=float)
    return table


def overfitting(frame: pd.DataFrame, threshold: tuple[float, float] | None = None) -> pd.DataFrame:
    """How much each subset run lost to overfitting, measured and as the rule predicts.

    A run on a subset is compared with the whole-corpus run of the same size trained
    for as many tokens (:func:`ample_data_runs`):
    ``penalty_pct = 100 * (best_loss / reference_loss - 1)``.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`.
    threshold : (float, float), optional
        ``(k, r)`` of ``D >= k N^r`` (:func:`overfit_threshold`); adds ``D_min`` (tokens)
        and ``below_threshold``.

    Returns
    -------
    DataFrame
        One row per ``L(D)`` or grid run whose size has an ample-data run: ``params``,
        ``subset``, ``D``, ``best_loss``, ``reference_loss`` (nats/token),
        ``penalty_pct``, ``best_epochs`` (passes over the subset at the best point).
    """
    ref = ample_data_runs(frame).set_index("params")["best_loss"]
    subs = frame[frame["experiment"].isin(["L(D)", "grid"]) & frame["params"].isin(ref.index)]
    out = subs[["params", "subset", "D", "best_loss", "best_epochs"]].copy()
    out.insert(4, "reference_loss", ref.loc[out["params"]].to_numpy())
    out.insert(5, "penalty_pct", 100 * (out["best_loss"] / out["reference_loss"] - 1))
    if threshold is not None:
        k, r = threshold
        out["D_min"] = k * out["params"].astype(float) ** r
        out["below_threshold"] = out["D"] < out["D_min"]
    return out.sort_values(["params", "D"], ignore_index=True)


def tokens_to_reach(curves: dict[int, pd.DataFrame], loss: float) -> pd.Series:
    """Training tokens each run needed to first reach a validation loss (nats/token).

    Interpolates linearly in log tokens between the two evaluations around the crossing;
    NaN for a run that never reaches ``loss``.
    """
    out = {}
    for key, curve in sorted(curves.items()):
        t = curve["tokens"].to_numpy(dtype=float)
        v = curve["loss"].to_numpy(dtype=float)
        hit = np.flatnonzero(v <= loss)
        if hit.size == 0:
            out[key] = np.nan
        elif hit[0] == 0:
            out[key] = t[0]
        else:
            i = hit[0]
            frac = (v[i - 1] - loss) / (v[i - 1] - v[i])
            out[key] = float(np.exp(np.log(t[i - 1]) + frac * (np.log(t[i]) - np.log(t[i - 1]))))
    return pd.Series(out, name="tokens", dtype=float)


def compare_with_kaplan(laws: dict[str, Any]) -> pd.DataFrame:
    """Our fitted constants beside Kaplan et al.'s (:data:`KAPLAN_2020`).

    Parameters
    ----------
    laws : dict
        Output of :func:`fit_kaplan_laws` (or ``kaplan_laws.json``).

    Returns
    -------
    DataFrame
        Index ``alpha_N``, ``alpha_D``, ``overfit_exponent``, ``N_c``, ``D_c``; columns
        ``ours``, ``low``, ``high`` (interval) and ``Kaplan 2020``.
    """
    rows = {}
    for key in ("alpha_N", "alpha_D", "overfit_exponent", "N_c", "D_c"):
        entry = laws[key]
        low, high = entry["interval"] if entry.get("interval") else (np.nan, np.nan)
        rows[key] = {"ours": entry["value"], "low": low, "high": high,
                     "Kaplan 2020": KAPLAN_2020[key]}
    return pd.DataFrame.from_dict(rows, orient="index")
