"""Data-constrained scaling: what repeated epochs are worth (Muennighoff et al. 2023).

When the unique data ``U_D`` (tokens) runs out, training for ``D = U_D (1 + R_D)``
tokens repeats it ``R_D`` times. Muennighoff et al. model the *effective* data as
unique tokens plus repetitions whose value decays exponentially,

.. math:: D' = U_D + U_D R_D^* \\bigl(1 - e^{-R_D / R_D^*}\\bigr),

and likewise the effective parameters of a model larger than the compute-optimal size
``U_N`` for that data, with ``R_N = N / U_N - 1``,

.. math:: N' = U_N + U_N R_N^* \\bigl(1 - e^{-R_N / R_N^*}\\bigr).

``D'`` and ``N'`` replace ``D`` and ``N`` in the Chinchilla law. A few epochs cost
almost nothing (``D' ~ D`` while ``R_D << R_D^*``); the effective data can never exceed
``U_D (1 + R_D^*)``, however long one trains.

Units: tokens, parameters, nats/token.

References
----------
Muennighoff et al. (2023), "Scaling Data-Constrained Language Models" (eqs. 5 and 6;
fitted ``R_D^* = 15.4`` and ``R_N^* = 5.3``).
"""

from __future__ import annotations

import numpy as np

from scalingkit.fit.published import HOFFMANN_2022

__all__ = ["R_STAR_D", "R_STAR_N", "effective_tokens", "effective_params",
           "data_constrained_loss"]

#: Decay constant of repeated data (repetitions), Muennighoff et al. (2023).
R_STAR_D = 15.4
#: Decay constant of excess parameters, Muennighoff et al. (2023).
R_STAR_N = 5.3


def _positive(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name} must be positive and finite")
    return arr


def _decayed(unique: np.ndarray, repeats: np.ndarray, r_star: float) -> np.ndarray:
    return unique + unique * r_star * (1.0 - np.exp(-repeats / r_star))


def effective_tokens(unique_tokens, tokens, *, r_star: float = R_STAR_D):
    """Effective data ``D'`` of training on ``tokens`` drawn from ``unique_tokens``.

    Parameters
    ----------
    unique_tokens : float or array
        Unique tokens available ``U_D`` (tokens).
    tokens : float or array
        Tokens trained on ``D >= U_D`` (tokens); ``D / U_D`` is the number of epochs.
    r_star : float, default=15.4
        ``R_D^*`` (repetitions).

    Returns
    -------
    float or array
        ``D'`` (tokens); equals ``D`` for one epoch.
    """
    u = _positive("unique_tokens", unique_tokens)
    d = _positive("tokens", tokens)
    _positive("r_star", r_star)
    if np.any(d < u * (1 - 1e-12)):
        raise ValueError("tokens must be at least unique_tokens (one full epoch); "
                         "with fewer tokens nothing is repeated and D' = D")
    out = _decayed(u, d / u - 1.0, float(r_star))
    return float(out) if out.ndim == 0 else out


def effective_params(params, unique_params, *, r_star: float = R_STAR_N):
    """Effective parameters ``N'`` of a model of ``params`` where ``unique_params`` suffice.

    Parameters
    ----------
    params : float or array
        Model size ``N >= U_N`` (parameters).
    unique_params : float or array
        ``U_N``, the compute-optimal size for the unique data (parameters).
    r_star : float, default=5.3
        ``R_N^*``.
    """
    n = _positive("params", params)
    u = _positive("unique_params", unique_params)
    _positive("r_star", r_star)
    if np.any(n < u * (1 - 1e-12)):
        raise ValueError("params must be at least unique_params")
    out = _decayed(u, n / u - 1.0, float(r_star))
    return float(out) if out.ndim == 0 else out


def data_constrained_loss(params, unique_tokens, epochs, *, coef=None,
                          r_star: float = R_STAR_D):
    """Chinchilla loss with the data term evaluated at the effective data ``D'``.

    Parameters
    ----------
    params : float or array
        Model size ``N`` (parameters).
    unique_tokens : float or array
        Unique tokens ``U_D`` (tokens).
    epochs : float or array
        Passes over the unique data (>= 1); ``D = epochs * U_D``.
    coef : dict, optional
        ``E, A, B, alpha, beta`` of ``L = E + A/N^alpha + B/D^beta``; default
        Hoffmann et al.'s (2022) eq. 10.
    r_star : float, default=15.4

    Returns
    -------
    float or array
        Loss (nats/token).
    """
    c = HOFFMANN_2022 if coef is None else coef
    n = _positive("params", params)
    ep = _positive("epochs", epochs)
    if np.any(ep < 1):
        raise ValueError("epochs must be >= 1")
    u = _positive("unique_tokens", unique_tokens)
    d_eff = np.asarray(effective_tokens(u, ep * u, r_star=r_star))
    out = c["E"] + c["A"] / n ** c["alpha"] + c["B"] / d_eff ** c["beta"]
    return float(out) if np.ndim(out) == 0 else out
