"""The gradient noise scale ``B_simple = tr(Sigma) / |G|^2`` (McCandlish et al. 2018).

``G`` is the true (full-data) gradient of the loss and ``Sigma`` the covariance of the
per-example gradient. A mini-batch of ``B`` independent examples gives a gradient
``G_B`` whose squared norm has expectation

    E |G_B|^2 = |G|^2 + tr(Sigma) / B,

so squared norms measured at two batch sizes ``b_small < b_big`` give unbiased
estimates of both unknowns (McCandlish et al. 2018, Appendix A.1):

    |G|^2     ~ (b_big |G_big|^2 - b_small |G_small|^2) / (b_big - b_small)
    tr(Sigma) ~ (|G_small|^2 - |G_big|^2) / (1 / b_small - 1 / b_big)

Both are averaged over repeats before their ratio is taken, because the ratio of two
noisy estimates is biased (the paper averages numerator and denominator separately).
Here the big-batch gradient is the mean of ``b_big / b_small`` small-batch gradients on
disjoint examples, so one pass over ``b_big`` examples yields both norms.

``B_simple`` is the batch size (examples) at which the gradient noise equals the
signal; training near it balances steps against examples (the critical batch size).
For a language model an example is one window of ``n_ctx`` tokens, and
``B_simple * n_ctx`` is the noise scale in tokens, the unit Kaplan et al. (2020) use.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

__all__ = [
    "NoiseScale", "noise_scale_from_norms", "estimate_noise_scale", "gpt_noise_scale",
    "fit_critical_batch",
]


@dataclass(frozen=True)
class NoiseScale:
    """An estimate of the gradient noise scale.

    Attributes
    ----------
    grad_sq : float
        Estimate of ``|G|^2``, the squared norm of the true gradient.
    trace_cov : float
        Estimate of ``tr(Sigma)``, the summed per-example gradient variance.
    b_small, b_big : int
        The two batch sizes (examples).
    repeats : int
        Big batches averaged.
    loss : float
        Mean loss over every example used (the loss's own unit, e.g. nats/token).
    """

    grad_sq: float
    trace_cov: float
    b_small: int
    b_big: int
    repeats: int
    loss: float = math.nan

    @property
    def b_simple(self) -> float:
        """``tr(Sigma) / |G|^2`` (examples); NaN when ``|G|^2`` is not estimated positive."""
        return self.trace_cov / self.grad_sq if self.grad_sq > 0 else math.nan

    def to_dict(self) -> dict[str, float]:
        """Plain dict with ``b_simple`` included."""
        return {**asdict(self), "b_simple": self.b_simple}


def noise_scale_from_norms(
    sq_small: float, sq_big: float, b_small: int, b_big: int
) -> tuple[float, float]:
    """Unbiased ``|G|^2`` and ``tr(Sigma)`` from mean squared gradient norms.

    Parameters
    ----------
    sq_small, sq_big : float
        Mean of ``|G_B|^2`` over batches of ``b_small`` and ``b_big`` examples.
    b_small, b_big : int
        Batch sizes (examples), ``1 <= b_small < b_big``.

    Returns
    -------
    (float, float)
        ``(|G|^2, tr(Sigma))``.

    References
    ----------
    McCandlish, Kaplan, Amodei et al. (2018), An Empirical Model of Large-Batch
    Training, Appendix A.1.
    """
    _check_batches(b_small, b_big)
    for name, value in (("sq_small", sq_small), ("sq_big", sq_big)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite, non-negative squared norm, got {value!r}")
    grad_sq = (b_big * sq_big - b_small * sq_small) / (b_big - b_small)
    trace_cov = (sq_small - sq_big) / (1.0 / b_small - 1.0 / b_big)
    return float(grad_sq), float(trace_cov)


def _check_batches(b_small: object, b_big: object) -> None:
    for name, value in (("b_small", b_small), ("b_big", b_big)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not b_small < b_big:
        raise ValueError(f"b_small must be smaller than b_big, got {b_small} and {b_big}")


def estimate_noise_scale(
    small_batch_grad: Callable[[], tuple[torch.Tensor, float]],
    *,
    b_small: int,
    b_big: int,
    repeats: int = 4,
) -> NoiseScale:
    """Estimate ``B_simple`` from gradients on independent small batches.

    Parameters
    ----------
    small_batch_grad : callable
        Each call draws ``b_small`` fresh examples and returns ``(gradient, loss)``:
        the flattened gradient of their mean loss and that mean loss.
    b_small, b_big : int
        Batch sizes (examples); ``b_big`` must be a multiple of ``b_small``.
    repeats : int, default=4
        Big batches to average over (``repeats * b_big`` examples in all).

    Returns
    -------
    NoiseScale
    """
    _check_batches(b_small, b_big)
    if b_big % b_small:
        raise ValueError(f"b_big={b_big} must be a multiple of b_small={b_small}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    k = b_big // b_small
    sq_small, sq_big, losses = [], [], []
    for _ in range(repeats):
        total = None
        for _ in range(k):
            grad, loss = small_batch_grad()
            grad = grad.detach().double()
            sq_small.append(float(grad.square().sum()))
            losses.append(float(loss))
            total = grad if total is None else total + grad
        sq_big.append(float((total / k).square().sum()))
    grad_sq, trace_cov = noise_scale_from_norms(
        float(np.mean(sq_small)), float(np.mean(sq_big)), b_small, b_big
    )
    return NoiseScale(grad_sq, trace_cov, b_small, b_big, repeats, float(np.mean(losses)))


def gpt_noise_scale(
    model: torch.nn.Module,
    tokens: np.ndarray,
    *,
    n_ctx: int,
    b_small: int = 4,
    b_big: int = 64,
    repeats: int = 4,
    seed: int = 0,
) -> NoiseScale:
    """``B_simple`` of a language model at its current weights (examples = windows).

    Parameters
    ----------
    model : torch.nn.Module
        Has ``loss(inputs, targets)`` returning the mean cross-entropy (nats/token),
        like :class:`scalingkit.core.models.GPT`. Its weights and mode are left unchanged;
        its ``.grad`` fields are cleared.
    tokens : np.ndarray
        Training tokens to draw windows from.
    n_ctx : int
        Window length (tokens).
    b_small, b_big, repeats : int, default=4, 64, 4
        See :func:`estimate_noise_scale` (in windows).
    seed : int, default=0
        Seed of the window sampler (the global torch RNG is not touched).

    Returns
    -------
    NoiseScale
        In windows; multiply ``b_simple`` by ``n_ctx`` for tokens.
    """
    from scalingkit.core.data import BatchSampler

    sampler = BatchSampler(tokens, b_small, n_ctx, seed=seed)
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device

    def small_batch_grad() -> tuple[torch.Tensor, float]:
        x, y = sampler.sample()  # (b_small, n_ctx) each
        model.zero_grad(set_to_none=True)
        loss = model.loss(x.to(device), y.to(device))
        loss.backward()
        grad = torch.cat([p.grad.reshape(-1) for p in params if p.grad is not None])
        return grad, float(loss.detach())

    try:
        return estimate_noise_scale(small_batch_grad, b_small=b_small, b_big=b_big,
                                    repeats=repeats)
    finally:
        model.zero_grad(set_to_none=True)


def fit_critical_batch(loss: object, b_simple: object) -> tuple[float, float]:
    """Fit Kaplan et al.'s ``B_crit(L) = B_* / L^(1 / alpha_B)`` to noise-scale measurements.

    The law is a power law in the loss, ``B = (L_B / L)^(1 / alpha_B)`` with
    ``L_B = B_*^alpha_B``, fitted by least squares on logs with
    :class:`scalingkit.fit.KaplanNFit` (the same one-variable power-law form).

    Parameters
    ----------
    loss : array-like
        Loss at each measurement (nats/token), positive.
    b_simple : array-like
        Noise scale at each measurement (tokens), positive.

    Returns
    -------
    (float, float)
        ``(B_star, alpha_B)``: tokens, and the exponent (Kaplan et al. 2020 report
        ``B_* ~ 2e8`` tokens and ``alpha_B ~ 0.21`` for WebText2).
    """
    from scalingkit.fit import KaplanNFit, ScalingFitWarning

    with warnings.catch_warnings():
        # KaplanNFit warns when its "loss" rises with its "size"; here the roles are
        # swapped (B_crit against L), so the sign is checked below, in our own words.
        warnings.simplefilter("ignore", ScalingFitWarning)
        fit = KaplanNFit().fit(loss, b_simple)
    if not fit.alpha_N_ > 0:
        raise ValueError("the noise scale does not grow as the loss falls; "
                         f"the fitted slope is {-fit.alpha_N_:.3g}")
    alpha_b = 1.0 / fit.alpha_N_
    return float(fit.N_c_ ** fit.alpha_N_), float(alpha_b)
