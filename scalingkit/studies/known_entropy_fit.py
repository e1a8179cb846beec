"""Fits of the known-entropy experiment: how well the runs pin down the irreducible loss.

* :func:`noise_interval`: an interval on Approach 3's ``E`` from refits under the seed
  noise floor (a parametric bootstrap);
* :func:`profile_E`: the Approach 3 objective with ``E`` held fixed, against ``E``;
* :func:`result_table`: a committed result's ``E`` against ``H``, one row per quantity.

All three are re-exported by :mod:`scalingkit.studies.known_entropy`. Units: losses and
``E`` in nats/token.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["noise_interval", "profile_E", "result_table"]


def noise_interval(est: Any, params: Any, tokens: Any, loss: Any, noise_sd: float, *,
                   n_resamples: int = 200, seed: int = 0,
                   confidence: float = 0.95) -> list[float]:
    """An interval on ``E`` from the seed noise floor (a parametric bootstrap).

    Each resample adds independent normal noise of standard deviation ``noise_sd`` to
    every run's loss and refits Approach 3 from the fitted estimate and the next best
    distinct starts of the full fit's grid, so it measures how far ``E`` moves when the
    runs are retrained under other seeds (the run bootstrap measures how far it moves
    when other runs are chosen).

    Parameters
    ----------
    est : ParametricFit
        The fit to the runs' losses.
    params, tokens, loss : array_like
        The runs: N (parameters), D (tokens), final loss (nats/token).
    noise_sd : float
        Seed noise floor (nats/token), positive.
    n_resamples : int, default=200
        Noisy refits; 0 gives ``[nan, nan]``.
    seed : int, default=0
        Seed of the noise.
    confidence : float, default=0.95
        Level of the percentile interval.

    Returns
    -------
    list of float
        ``[low, high]`` of ``E`` (nats/token).
    """
    import warnings

    from scalingkit.fit import ParametricFit, ScalingFitWarning
    from scalingkit.fit.stats import percentile_ci

    if not (isinstance(noise_sd, int | float) and math.isfinite(noise_sd) and noise_sd > 0):
        raise ValueError(f"noise_sd must be a positive number of nats/token, got {noise_sd!r}")
    if n_resamples == 0:
        return [float("nan"), float("nan")]
    lo = np.asarray(loss, dtype=float)
    finite = np.isfinite(est.start_objectives_)
    order = np.flatnonzero(finite)[np.argsort(est.start_objectives_[finite])]
    starts = np.vstack([est.theta_, est.start_solutions_[order[:7]]])
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(n_resamples)):
        noisy = np.maximum(lo + rng.normal(0.0, noise_sd, lo.size), 1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScalingFitWarning)
            refit = ParametricFit(grid=starts, n_polish=1).fit(params, tokens, noisy)
        values.append(refit.E_)
    return [float(v) for v in percentile_ci(np.asarray(values), confidence)]


def profile_E(params: Any, tokens: Any, loss: Any, e_values: Any, *,
              huber_delta: float = 1e-3) -> np.ndarray:
    """Profile of the Approach 3 objective over the irreducible loss ``E``.

    For each fixed ``E`` the other four parameters (``A, B, alpha, beta``) are fitted
    by L-BFGS-B from eight starts and the previous ``E``'s optimum; the
    best sum of Huber losses of log residuals is returned. A flat profile means the
    runs cannot tell ``E`` apart from the ``B / D^beta`` term: ``E`` is not identified.

    Parameters
    ----------
    params, tokens, loss : array_like
        Runs: N (parameters), D (tokens), final loss (nats/token).
    e_values : array_like
        Values of ``E`` to profile (nats/token), each positive and below every loss.
    huber_delta : float, default=1e-3
        Huber threshold, as in :class:`~scalingkit.fit.ParametricFit`.

    Returns
    -------
    numpy.ndarray
        The profiled objective at each ``E`` (same shape as ``e_values``).
    """
    import itertools

    from scipy.optimize import minimize

    from scalingkit.fit.objective import huber_objective

    n, d, lo = (np.asarray(v, dtype=float) for v in (params, tokens, loss))
    e_arr = np.asarray(e_values, dtype=float)
    if not (n.shape == d.shape == lo.shape and n.ndim == 1 and n.size >= 5):
        raise ValueError("params, tokens and loss must be 1-D arrays of the same length >= 5")
    if not (np.all(e_arr > 0) and np.all(e_arr < lo.min())):
        raise ValueError("every E must be positive and below the smallest loss")
    ln, ld, ll = np.log(n), np.log(d), np.log(lo)
    mu_n, mu_d = ln.mean(), ld.mean()  # centred logs, as ParametricFit does
    cn, cd = ln - mu_n, ld - mu_d

    def fun(x: np.ndarray, e: float):
        theta = np.array([[x[0], x[1], math.log(e), x[2], x[3]]])
        f, g = huber_objective(theta, cn, cd, ll, huber_delta)
        if not np.isfinite(f[0]):
            return 1e10, np.zeros(4)
        return float(f[0]), g[0, [0, 1, 3, 4]]

    grid = [np.array(s, dtype=float) for s in itertools.product(
        (-3.0, 1.0), (-3.0, 1.0), (0.3,), (0.2, 0.8))]
    out = np.empty(e_arr.size)
    warm: np.ndarray | None = None
    for i, e in enumerate(e_arr.ravel()):
        best = (np.inf, None)
        for x0 in ([warm] if warm is not None else []) + grid:
            res = minimize(fun, x0, args=(float(e),), jac=True, method="L-BFGS-B",
                           bounds=[(None, None), (None, None), (0.0, 5.0), (0.0, 5.0)])
            if res.fun < best[0]:
                best = (float(res.fun), res.x)
        out[i], warm = best
    return out.reshape(e_arr.shape)


def result_table(result: dict[str, Any]) -> dict[str, Any]:
    """A committed known-entropy result (``known-entropy --output``) as one column.

    Parameters
    ----------
    result : dict
        The JSON written by ``python -m scalingkit known-entropy --output``.

    Returns
    -------
    dict
        Label -> value: ``H`` (exact), the fitted ``E``, both 95% intervals, the
        relative error, whether ``H`` lies inside each interval, the context floor,
        the source's loss on the validation windows and the best run (losses in the
        result's units, nats/token).
    """
    h = result["true_entropy_rate"]
    ci, ci_noise = result["E_ci"], result.get("E_ci_noise") or [math.nan, math.nan]
    return {"H (exact)": h, "fitted E": result["fitted_E"],
            "E, bootstrap 95%": f"{ci[0]:.4f} - {ci[1]:.4f}",
            "E, seed-noise 95%": f"{ci_noise[0]:.4f} - {ci_noise[1]:.4f}",
            "relative error |E - H| / H": result["relative_error"],
            "H inside the bootstrap interval": bool(ci[0] <= h <= ci[1]),
            "H inside the seed-noise interval": bool(ci_noise[0] <= h <= ci_noise[1]),
            "context floor (n_ctx = 128)": result["context_floor"],
            "true source on the validation windows": result["source_loss_on_val_windows"],
            "best run": result["best_run_loss"]}
