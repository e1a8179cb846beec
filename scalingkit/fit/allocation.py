"""The compute-optimal allocation under ``C = 6 N D``: one home for the formula.

Minimising ``L(N, D) = E + A/N^alpha + B/D^beta`` subject to ``6 N D = C`` gives
``N_opt = G (C/6)^a`` and ``D_opt = G^-1 (C/6)^b`` (Hoffmann et al. 2022, eq. 4).
``fit`` imports nothing else of the package, so the 6ND count it needs lives here
too (:func:`six_nd`, :func:`six_nd_tokens`); outside ``fit`` use
``scalingkit.core.flops.flops_6nd``.

Units: N in parameters, D in tokens, C in FLOP.
"""

from __future__ import annotations

import numpy as np


def six_nd(params, tokens):
    """Training FLOP ``6 N D`` of ``params`` parameters on ``tokens`` tokens (FLOP)."""
    return 6 * params * tokens


def six_nd_tokens(flops, params):
    """Tokens ``D = C / (6 N)`` that spend ``flops`` (FLOP) on ``params`` parameters."""
    return flops / (6 * params)


def allocation_exponents(alpha: float, beta: float, A: float, B: float) -> dict[str, float]:
    """Closed-form compute-optimal allocation under ``C = 6 N D``.

    Minimising ``E + A N^-alpha + B D^-beta`` subject to ``6 N D = C`` gives
    ``N_opt = G (C/6)^a`` and ``D_opt = G^-1 (C/6)^b`` with
    ``a = beta / (alpha + beta)``, ``b = alpha / (alpha + beta)`` and
    ``G = (alpha A / (beta B))^(1 / (alpha + beta))`` (Hoffmann et al. 2022, eq. 4).

    Returns
    -------
    dict
        ``{"a": a, "b": b, "G": G}``.
    """
    if not (alpha > 0 and beta > 0):
        raise ValueError(
            f"the allocation needs alpha > 0 and beta > 0, got alpha={alpha}, beta={beta}"
        )
    s = alpha + beta
    log_g = (np.log(alpha * A) - np.log(beta * B)) / s  # in logs: G can over- or underflow
    with np.errstate(over="ignore", under="ignore"):
        return {"a": beta / s, "b": alpha / s, "G": float(np.exp(log_g))}


def allocate(flops, *, a: float, b: float, G: float) -> tuple:
    """``(N_opt, D_opt)`` (parameters, tokens) at ``flops`` (FLOP) from ``a, b, G``."""
    return G * (flops / 6) ** a, (flops / 6) ** b / G


def compute_optimal_allocation(
    flops, *, alpha: float, beta: float, A: float, B: float
) -> tuple:
    """Compute-optimal ``(N_opt, D_opt)`` of the law at ``flops`` (FLOP), ``C = 6 N D``.

    Parameters
    ----------
    flops : float or array_like
        Training budgets (FLOP).
    alpha, beta, A, B : float
        Coefficients of ``L = E + A/N^alpha + B/D^beta`` (``E`` does not move the optimum).

    Returns
    -------
    tuple
        ``(N_opt, D_opt)`` in parameters and tokens, shaped like ``flops``.
    """
    return allocate(flops, **allocation_exponents(alpha, beta, A, B))


def size_overhead(coef: dict, flops: float, factors) -> np.ndarray:
    """Extra compute to reach the optimal loss with a model ``factor`` times the optimal size.

    At budget ``C`` the compute-optimal pair ``(N_opt, D_opt)`` of
    ``L(N, D) = E + A/N^alpha + B/D^beta`` (under ``C = 6 N D``) reaches a loss
    ``L*``. A model of ``k N_opt`` parameters reaches ``L*`` after
    ``D = (B / (L* - E - A/(k N_opt)^alpha))^(1/beta)`` tokens, which costs
    ``6 k N_opt D``; the overhead is that compute over ``C``, minus one. A model
    too small to reach ``L*`` at all gives ``inf``.

    Parameters
    ----------
    coef : dict
        ``E, A, B, alpha, beta`` (nats/token; A, B in the units of N and D).
    flops : float
        The budget ``C`` (FLOP).
    factors : array_like
        Sizes as multiples of ``N_opt``.

    Returns
    -------
    numpy.ndarray
        Fractional extra compute per factor (0.2 = 20% more).
    """
    e, a_, b_, alpha, beta = (coef[k] for k in ("E", "A", "B", "alpha", "beta"))
    ex = allocation_exponents(alpha, beta, a_, b_)
    n_opt, d_opt = allocate(np.asarray([flops], float), a=ex["a"], b=ex["b"], G=ex["G"])
    target = e + a_ / n_opt[0] ** alpha + b_ / d_opt[0] ** beta
    n = np.asarray(factors, float) * n_opt[0]
    room = target - e - a_ / n**alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(room > 0, (b_ / room) ** (1 / beta), np.inf)
    return six_nd(n, d) / flops - 1
