"""Which factor carries the difference between two rungs, under the seed noise floor.

Two rungs of the ladder differ in two ways at once: how compute is counted (factor (a):
Kaplan's ``6 N_ne D`` against the exact count with the head) and how each run is
trained (warmup, decay, learning rate). Re-reading a rung's runs in the other count
changes only the ``N`` and ``C`` the fit sees, so each factor's effect on the exponent
``a`` of ``N_opt = k C^a`` is a difference of two fits. Its uncertainty comes from the
run-to-run noise floor: every resample perturbs each run's final loss once, and both
counts of that run see the same perturbation, so a count effect is a paired difference.

Units: N in parameters, C in FLOP, losses and the noise floor in nats/token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from scalingkit.fit import percentile_ci
from scalingkit.runs.approaches import CONFIDENCE, approach_2_noise, optimum_slope
from scalingkit.studies.porian2024.analysis import _approach_runs, own_convention

#: The two ways of counting N and C (:data:`scalingkit.studies.porian2024.CONVENTIONS`).
COUNTS = ("kaplan", "with_head")


def _check(noise_sd: float, n_bootstrap: int) -> None:
    if not (np.isfinite(noise_sd) and noise_sd > 0):
        raise ValueError(f"noise_sd must be a positive number of nats/token, got {noise_sd!r}")
    if n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be at least 2, got {n_bootstrap}")


def noisy_exponents(frames: Mapping[str, pd.DataFrame], noise_sd: float, *,
                    n_bootstrap: int = 200, random_state: int | None = 0) -> pd.DataFrame:
    """Each rung's ``a`` in both counts, refitted with every final loss perturbed.

    Parameters
    ----------
    frames : mapping of str to DataFrame
        Rung name -> its runs (:func:`scalingkit.studies.porian2024.rung_frame`).
    noise_sd : float
        The run-to-run noise floor (nats/token): the standard deviation of the normal
        noise added to each final loss.
    n_bootstrap : int, default=200
        Resamples (at least 2).
    random_state : int or None, default=0

    Returns
    -------
    DataFrame
        One row per resample; columns ``(rung, count)``, ``count`` in :data:`COUNTS`;
        ``nan`` where fewer than 2 budgets bracket their minimum in that resample.
        One draw per run serves both of its counts.
    """
    _check(noise_sd, n_bootstrap)
    rng = np.random.default_rng(random_state)
    runs = {(name, count): _approach_runs(frame, count)
            for name, frame in frames.items() for count in COUNTS}
    rows = []
    for _ in range(n_bootstrap):
        noise = {name: rng.normal(0.0, noise_sd, len(frame)) for name, frame in frames.items()}
        rows.append({(name, count): optimum_slope(r, r["loss"].to_numpy(float) + noise[name])
                     for (name, count), r in runs.items()})
    return pd.DataFrame(rows, columns=pd.MultiIndex.from_tuples(runs, names=["rung", "count"]))


def factor_effects(frames: Mapping[str, pd.DataFrame], noise_sd: float, *,
                   first: str = "kaplan", last: str = "corrected", n_bootstrap: int = 200,
                   random_state: int | None = 0) -> pd.DataFrame:
    """The count effect, the recipe effect and the rungs' difference, with 95% intervals.

    Parameters
    ----------
    frames : mapping of str to DataFrame
        Rung name -> its runs; must hold ``first`` and ``last``.
    noise_sd : float
        The run-to-run noise floor (nats/token).
    first, last : str, default="kaplan", "corrected"
        The two end rungs. Each effect is ``first`` minus ``last`` or Kaplan's count
        minus the exact count.
    n_bootstrap : int, default=200
    random_state : int or None, default=0

    Returns
    -------
    DataFrame
        Index: ``count effect (<rung>'s runs)`` for each end rung, ``recipe effect
        (<count>)`` for each count, and ``between the rungs (own counts)``. Columns:
        ``effect`` (on the runs as measured), ``lo`` and ``hi`` (the 95% interval of
        the paired differences under the noise floor; resamples without a fit dropped)
        and ``resolved`` (the interval excludes 0).
    """
    for name in (first, last):
        if name not in frames:
            raise ValueError(f"frames has no rung {name!r} (has {sorted(frames)})")
    pair = {first: frames[first], last: frames[last]}
    point = {(name, count): optimum_slope(r := _approach_runs(frame, count),
                                          r["loss"].to_numpy(float))
             for name, frame in pair.items() for count in COUNTS}
    noisy = noisy_exponents(pair, noise_sd, n_bootstrap=n_bootstrap, random_state=random_state)
    own = {name: (name, own_convention(frame)) for name, frame in pair.items()}
    contrasts = {f"count effect ({name}'s runs)": ((name, "kaplan"), (name, "with_head"))
                 for name in pair}
    contrasts |= {f"recipe effect ({count} count)": ((first, count), (last, count))
                  for count in COUNTS}
    contrasts["between the rungs (own counts)"] = (own[first], own[last])
    rows = {}
    for label, (plus, minus) in contrasts.items():
        diff = (noisy[plus] - noisy[minus]).to_numpy(float)
        lo, hi = percentile_ci(diff[np.isfinite(diff)], CONFIDENCE)
        rows[label] = {"effect": point[plus] - point[minus], "lo": lo, "hi": hi,
                       "resolved": bool(lo > 0 or hi < 0)}
    return pd.DataFrame(rows).T.astype({"effect": float, "lo": float, "hi": float,
                                         "resolved": bool})


def seed_intervals(frame: pd.DataFrame, noise_sd: float, seeds: Sequence[int] = (1, 3, 10, 30),
                   *, n_bootstrap: int = 200, random_state: int | None = 0) -> pd.DataFrame:
    """How a rung's noise interval on ``a`` would narrow if each run averaged k seeds.

    The mean of ``k`` seeds has noise ``noise_sd / sqrt(k)``; each row refits the
    rung's ``a`` (its own count) under that noise. The losses are the one-seed ones,
    so the rows read how the interval narrows, not where more seeds would centre it.

    Parameters
    ----------
    frame : DataFrame
        One rung's runs (:func:`scalingkit.studies.porian2024.rung_frame`).
    noise_sd : float
        The one-seed noise floor (nats/token).
    seeds : sequence of int, default=(1, 3, 10, 30)
        Seeds per run (each at least 1).
    n_bootstrap : int, default=200
    random_state : int or None, default=0

    Returns
    -------
    DataFrame
        Index ``seeds``; columns ``noise_sd`` (nats/token), ``lo`` and ``hi`` (the
        95% interval of ``a``).
    """
    _check(noise_sd, n_bootstrap)
    if not seeds or min(seeds) < 1:
        raise ValueError(f"seeds must be counts of at least 1, got {list(seeds)}")
    runs = _approach_runs(frame, own_convention(frame))
    rows = {}
    for k in seeds:
        sd = noise_sd / np.sqrt(k)
        ci = approach_2_noise(runs, sd, n_bootstrap=n_bootstrap, seed=random_state)
        lo, hi = ci if ci is not None else (float("nan"), float("nan"))
        rows[int(k)] = {"noise_sd": sd, "lo": lo, "hi": hi}
    return pd.DataFrame(rows).T.rename_axis("seeds")
