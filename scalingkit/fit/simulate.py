"""Synthetic scaling-law data drawn from a known law, for testing the fitters.

A fitter that cannot recover the parameters it was given is wrong; one that
recovers them with a bias that depends on the experiment design (how widely the
model sizes are spread around the optimum, how finely they are spaced) is
fragile in a way worth measuring. These helpers build such experiments.
"""

from __future__ import annotations

import numpy as np

from scalingkit.fit._validation import as_positive_1d
from scalingkit.fit.allocation import compute_optimal_allocation, six_nd, six_nd_tokens


def chinchilla_law(E: float, A: float, B: float, alpha: float, beta: float):
    """Return ``L(N, D) = E + A/N^alpha + B/D^beta`` (nats/token) as a function."""

    def law(params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return E + A / np.asarray(params) ** alpha + B / np.asarray(tokens) ** beta

    return law


def optimal_size(
    E: float, A: float, B: float, alpha: float, beta: float, flops: np.ndarray
) -> np.ndarray:
    """Exact compute-optimal N (parameters) of the law at ``flops`` (FLOP), C = 6ND."""
    return compute_optimal_allocation(np.asarray(flops), alpha=alpha, beta=beta, A=A, B=B)[0]


def isoflop_sweep(
    coef: dict[str, float],
    flops: object,
    *,
    half_width: float = 1.0,
    step: float = 0.25,
    offset: object = 0.0,
    ladder: bool = False,
    noise: float = 0.0,
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Simulate an IsoFLOP sweep: sizes spread around each budget's true optimum.

    Parameters
    ----------
    coef : dict
        ``E, A, B, alpha, beta`` of the true law (loss in nats/token).
    flops : array_like
        Budgets (FLOP).
    half_width : float, default=1.0
        Sizes span ``N_opt * 10**[-half_width, +half_width]`` (decades).
    step : float, default=0.25
        Spacing of the sizes (decades).
    offset : float or array_like, default=0.0
        Shift of each budget's size grid from its optimum (decades), e.g. an
        experimenter centring the sweep on a wrong guess of N_opt.
    ladder : bool, default=False
        If True, sizes come from one fixed ladder ``10**(step * k)`` shared by
        all budgets (as when a sweep reuses the same model shapes): each budget
        keeps the rungs within ``half_width`` decades of its (offset) centre,
        so the optimum sits at a different place in each budget's window.
    noise : float, default=0.0
        Standard deviation of multiplicative log-normal noise on the loss.
    seed : int or None, default=None

    Returns
    -------
    dict
        ``params``, ``tokens`` (= C / 6N), ``flops``, ``loss`` arrays.
    """
    c = as_positive_1d("flops", flops)
    if not half_width > 0 or not step > 0:
        raise ValueError(f"half_width and step must be positive, got {half_width}, {step}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    ks = {k: coef[k] for k in ("E", "A", "B", "alpha", "beta")}
    centre = np.log10(optimal_size(**ks, flops=c)) + np.broadcast_to(offset, c.shape)
    if ladder:
        sizes = []
        for mid in centre:
            lo, hi = np.ceil((mid - half_width) / step), np.floor((mid + half_width) / step)
            k = np.arange(lo, hi + 1)
            sizes.append(10.0 ** (k * step))
    else:
        decades = np.arange(-half_width, half_width + 1e-9, step)
        sizes = [10.0 ** (mid + decades) for mid in centre]
    n = np.concatenate(sizes)
    cc = np.concatenate([np.full(len(s), ci) for s, ci in zip(sizes, c, strict=True)])
    d = six_nd_tokens(cc, n)
    rng = np.random.default_rng(seed)
    loss = chinchilla_law(**ks)(n, d) * np.exp(noise * rng.standard_normal(n.size))
    return {"params": n, "tokens": d, "flops": cc, "loss": loss}


def random_runs(
    coef: dict[str, float],
    n_runs: int,
    *,
    params_range: tuple[float, float] = (1e7, 1e10),
    tokens_range: tuple[float, float] = (1e8, 1e12),
    noise: float = 0.0,
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Runs with log-uniform sizes and token counts, loss from the law plus noise."""
    rng = np.random.default_rng(seed)
    n = np.exp(rng.uniform(*np.log(params_range), n_runs))
    d = np.exp(rng.uniform(*np.log(tokens_range), n_runs))
    ks = {k: coef[k] for k in ("E", "A", "B", "alpha", "beta")}
    loss = chinchilla_law(**ks)(n, d) * np.exp(noise * rng.standard_normal(n_runs))
    return {"params": n, "tokens": d, "flops": six_nd(n, d), "loss": loss}


def training_curves(
    coef: dict[str, float],
    params: object,
    max_flops: float,
    *,
    n_points: int = 40,
    min_tokens: float = 1e7,
    noise: float = 0.0,
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Training curves ``L(N, D_t)`` for ``D_t`` up to ``max_flops / 6N``.

    An idealisation: each point of a curve is taken to be the final loss of a
    run trained to that many tokens (as if every run had its own schedule).

    Returns
    -------
    dict
        ``params``, ``tokens``, ``flops``, ``loss``, ``run`` arrays, one row per point.
    """
    sizes = as_positive_1d("params", params)
    ks = {k: coef[k] for k in ("E", "A", "B", "alpha", "beta")}
    law = chinchilla_law(**ks)
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(sizes):
        d = np.geomspace(min_tokens, six_nd_tokens(max_flops, n), n_points)
        loss = law(n, d) * np.exp(noise * rng.standard_normal(n_points))
        rows.append(np.column_stack([np.full(n_points, n), d, six_nd(n, d), loss,
                                     np.full(n_points, i)]))
    out = np.concatenate(rows)
    return {"params": out[:, 0], "tokens": out[:, 1], "flops": out[:, 2], "loss": out[:, 3],
            "run": out[:, 4].astype(int)}
