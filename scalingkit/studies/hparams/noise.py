"""The gradient noise scale measured along a training run, for the batch-size check.

:func:`noise_along_run` trains one run of the recipe and, at each of its
evaluations, measures ``B_simple`` (:func:`scalingkit.studies.noise_scale.gpt_noise_scale`)
on the live model with training windows, so the noise scale is known at the losses
the run passes through. Measuring does not change the weights or torch's global RNG,
so the run trains exactly as it would without it.

Units: ``B_simple`` in windows (sequences of ``n_ctx`` tokens) and in tokens; losses
in nats/token.
"""

from __future__ import annotations

from typing import Any


def noise_along_run(config: Any, *, b_small: int = 4, b_big: int = 64, repeats: int = 8,
                    seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """Train ``config`` and measure ``B_simple`` at every evaluation.

    Parameters
    ----------
    config : TrainConfig or dict
        The run (its ``eval_every`` sets where the noise scale is measured).
    b_small, b_big, repeats : int, default=4, 64, 8
        As for :func:`scalingkit.studies.noise_scale.estimate_noise_scale` (windows).
    seed : int, default=0
        Seed of the measurement's own window sampler.
    progress : bool, default=False

    Returns
    -------
    dict
        ``config`` (as a dict), ``final_loss`` (nats/token), ``batch_tokens`` (tokens
        per optimizer step), and ``points``: one ``{"step", "tokens", "val_loss",
        "b_simple", "b_simple_tokens", "noise_loss"}`` per evaluation (``noise_loss`` is
        the mean training loss over the windows the measurement used).
    """
    from scalingkit.core.data import load_corpus
    from scalingkit.core.train import TrainConfig, train
    from scalingkit.studies.noise_scale import gpt_noise_scale

    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    corpus = load_corpus(config.corpus, config.tokenizer, val_fraction=config.val_fraction)
    n_ctx = config.model.n_ctx
    points: list[dict[str, Any]] = []

    def measure(info: dict[str, Any]) -> None:
        if info.get("val_loss") is None:
            return
        est = gpt_noise_scale(info["model"], corpus.train, n_ctx=n_ctx, b_small=b_small,
                              b_big=b_big, repeats=repeats, seed=seed + len(points))
        points.append({"step": int(info["step"]), "tokens": int(info["tokens"]),
                       "val_loss": float(info["val_loss"]), "b_simple": est.b_simple,
                       "b_simple_tokens": est.b_simple * n_ctx, "noise_loss": est.loss})

    result = train(config, progress=progress, callback=measure)
    return {"config": config.to_dict(), "final_loss": result.final_loss,
            "batch_tokens": config.tokens_per_step, "points": points,
            "measurement": {"b_small": b_small, "b_big": b_big, "repeats": repeats,
                            "seed": seed}}
