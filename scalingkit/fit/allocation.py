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
