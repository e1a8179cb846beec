"""Running the Kaplan et al. (2020) experiments: train every planned run resumably, with
the gradient noise scale measured along the ``L(N)`` runs, and export the store.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scalingkit.studies.kaplan2020.plan import (
    _MANIFEST,
    EXPERIMENTS,
    KaplanSpec,
    _manifest,
    plan_kaplan,
)


def train_with_noise_scale(
    config: dict, *, run_dir: str | Path | None = None, progress: bool = False,
    b_small: int = 4, b_big: int = 128, repeats: int = 4,
) -> dict:
    """Train like :func:`scalingkit.runs.executors.train_from_dict` and measure ``B_simple``.

    The noise scale is measured at initialisation and at every checkpoint the trainer
    writes (``checkpoint_every`` steps): the trainer's callback hands over the live
    model, its weights are copied into a second model and
    :func:`scalingkit.studies.noise_scale.gpt_noise_scale` runs on training windows with its
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

    from scalingkit.core.data import load_corpus
    from scalingkit.core.models import GPT
    from scalingkit.core.train import TrainConfig, train
    from scalingkit.studies.noise_scale import gpt_noise_scale

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
    from scalingkit.runs.executors import DEFAULT_TRAINER, SequentialExecutor
    from scalingkit.runs.files import atomic_write_json
    from scalingkit.runs.store import RunStore

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

    from scalingkit.runs.store import RunStore

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


