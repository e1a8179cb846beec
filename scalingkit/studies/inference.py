"""Inference-aware allocation (Sardana et al. 2023): fewer parameters, more tokens.

A model that will serve ``D_inf`` inference tokens costs about ``2 N`` FLOP
per served token on top of its ``6 N D`` training FLOP. For a target loss
``l``, every size ``N`` above the smallest that can reach it has one token
count ``D(N)`` with ``L(N, D(N)) = l`` under the fitted law
``L = E + A / N^alpha + B / D^beta``; the inference-aware choice minimises

    total(N) = 6 N D(N) + 2 N D_inf

over ``N``. With ``D_inf = 0`` it is the Chinchilla compute-optimal model of
that loss; as ``D_inf`` grows it moves to smaller ``N`` trained on more tokens.

Units: N in parameters, D and D_inf in tokens, FLOP, loss in nats/token.

References
----------
Sardana, Portes, Doubov, Frankle (2023), "Beyond Chinchilla-Optimal:
Accounting for Large Language Model Inference in Scaling Laws".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scalingkit.core.flops import flops_6nd
from scalingkit.fit import compute_optimal_allocation

_COEFS = ("E", "A", "B", "alpha", "beta")


def law_coefficients(law: object) -> dict[str, float]:
    """``E, A, B, alpha, beta`` from a mapping or a fitted ``ParametricFit``."""
    if isinstance(law, Mapping):
        source = law
    else:
        source = {k: getattr(law, f"{k}_", None) for k in _COEFS}
    missing = [k for k in _COEFS if source.get(k) is None]
    if missing:
        raise ValueError(f"law lacks coefficient(s) {', '.join(missing)}")
    coef = {k: float(source[k]) for k in _COEFS}
    if not all(math.isfinite(v) and v > 0 for v in coef.values()):
        raise ValueError(f"law coefficients must be positive and finite, got {coef}")
    return coef


def tokens_for_loss(law: object, params: float, loss: float) -> float:
    """Tokens ``D`` at which a model of ``params`` parameters reaches ``loss`` (tokens).

    Returns ``inf`` when the model is too small ever to reach it.
    """
    c = law_coefficients(law)
    gap = loss - c["E"] - c["A"] / params ** c["alpha"]
    return math.inf if gap <= 0 else (c["B"] / gap) ** (1 / c["beta"])


def compute_optimal_loss(law: object, flops: float) -> float:
    """Loss (nats/token) of the compute-optimal model at ``flops`` (FLOP, ``C = 6ND``)."""
    c = law_coefficients(law)
    if not (math.isfinite(flops) and flops > 0):
        raise ValueError(f"flops must be a positive number, got {flops!r}")
    n, d = compute_optimal_allocation(flops, alpha=c["alpha"], beta=c["beta"], A=c["A"], B=c["B"])
    return c["E"] + c["A"] / n ** c["alpha"] + c["B"] / d ** c["beta"]


@dataclass(frozen=True)
class Allocation:
    """A loss-matched choice of ``N`` and ``D``.

    Attributes
    ----------
    loss : float
        Target loss (nats/token).
    inference_tokens : float
        Tokens served over the model's life (tokens).
    params, tokens : float
        Model size (parameters) and training tokens.
    train_flops, inference_flops, total_flops : float
        ``6 N D``, ``2 N D_inf`` and their sum (FLOP).
    tokens_per_param : float
        ``D / N``.
    """

    loss: float
    inference_tokens: float
    params: float
    tokens: float
    train_flops: float
    inference_flops: float
    total_flops: float
    tokens_per_param: float


def _check(loss: float, inference_tokens: float, coef: dict[str, float]) -> None:
    if not (math.isfinite(loss) and loss > coef["E"]):
        raise ValueError(f"target loss must exceed the law's irreducible loss E={coef['E']:.4g} "
                         f"nats/token, got {loss!r}")
    if not (math.isfinite(inference_tokens) and inference_tokens >= 0):
        raise ValueError(f"inference_tokens must be >= 0 and finite, got {inference_tokens!r}")


def inference_optimal(law: object, loss: float, inference_tokens: float) -> Allocation:
    """The ``N, D`` reaching ``loss`` with the least training plus inference FLOP.

    Parameters
    ----------
    law : mapping or ParametricFit
        ``E, A, B, alpha, beta`` of ``L = E + A/N^alpha + B/D^beta``.
    loss : float
        Target loss (nats/token), above ``E``.
    inference_tokens : float
        Tokens to be served, ``D_inf >= 0`` (tokens).

    Returns
    -------
    Allocation

    Notes
    -----
    The search is over ``x = ln N`` from the smallest size that can reach the
    loss, ``N_min = (A / (loss - E))^(1/alpha)``, to 12 nats above it: a grid of
    400 points, then a bounded Brent refinement around the best grid point.
    """
    coef = law_coefficients(law)
    _check(loss, inference_tokens, coef)
    x_min = math.log(coef["A"] / (loss - coef["E"])) / coef["alpha"]

    def total(x: float) -> float:
        n = math.exp(x)
        d = tokens_for_loss(coef, n, loss)
        if not math.isfinite(d):
            return math.inf
        return math.log(flops_6nd(n, d) + 2 * n * inference_tokens)

    grid = x_min + np.linspace(1e-6, 12.0, 400)
    values = np.array([total(x) for x in grid])
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(total, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10})
    x = float(res.x) if res.fun <= values[i] else float(grid[i])
    n = math.exp(x)
    d = tokens_for_loss(coef, n, loss)
    train, infer = flops_6nd(n, d), 2 * n * inference_tokens
    return Allocation(loss=loss, inference_tokens=float(inference_tokens), params=n, tokens=d,
                      train_flops=train, inference_flops=infer, total_flops=train + infer,
                      tokens_per_param=d / n)


def allocation_table(law: object, budget: float, inference_tokens: Sequence[float]) -> pd.DataFrame:
    """Inference-aware allocations for a range of ``D_inf``, at the loss of a budget.

    The target loss is that of the compute-optimal model at ``budget`` FLOP;
    each row is the inference-aware choice for one ``D_inf``, with the
    Chinchilla choice (``D_inf = 0``) for comparison.

    Parameters
    ----------
    law : mapping or ParametricFit
    budget : float
        Training budget that sets the target loss (FLOP).
    inference_tokens : sequence of float
        Inference demands (tokens).

    Returns
    -------
    pandas.DataFrame
        The :class:`Allocation` fields plus ``params_ratio`` (N over the
        Chinchilla N), ``tokens_ratio`` (D over the Chinchilla D) and
        ``saving`` (1 - total FLOP over the Chinchilla model's total FLOP at
        the same ``D_inf``).
    """
    loss = compute_optimal_loss(law, budget)
    base = inference_optimal(law, loss, 0.0)
    rows = []
    for d_inf in inference_tokens:
        alloc = inference_optimal(law, loss, float(d_inf))
        chinchilla_total = base.train_flops + 2 * base.params * float(d_inf)
        rows.append({**asdict(alloc), "params_ratio": alloc.params / base.params,
                     "tokens_ratio": alloc.tokens / base.tokens,
                     "saving": 1 - alloc.total_flops / chinchilla_total})
    return pd.DataFrame(rows)
