"""Approach 3's objective: the parametric law in logs and its Huber loss, and the start grid.

``log L`` is computed by log-sum-exp from the unconstrained parameters
``theta = (a, b, e, alpha, beta)`` with ``A = exp(a)``, ``B = exp(b)``,
``E = exp(e)``; :func:`huber_objective` sums the Huber losses of its residuals
against observed ``log L`` (nats/token) with the analytic gradient, for a batch of
``theta`` at once (:class:`~scalingkit.fit.parametric.ParametricFit` advances every
start of :func:`initial_grid` together).
"""

from __future__ import annotations

import itertools

import numpy as np

#: Order of the unconstrained parameters in every ``theta`` array.
THETA_NAMES = ("a", "b", "e", "alpha", "beta")


def initial_grid(size: str = "full") -> np.ndarray:
    """Initial values ``(a, b, e, alpha, beta)`` for the multi-start fit.

    Parameters
    ----------
    size : {"full", "small"}, default="full"
        ``"full"`` is the 4500-start grid of Hoffmann et al. (2022) as used by
        Besiroglu et al. (2024): alpha, beta in 0..2 (step 0.5), e in -1..1
        (step 0.5), a, b in 0..25 (step 5). ``"small"`` keeps every other value
        of each axis (alpha, beta in {0, 1, 2}; e in {-1, 0, 1}; a, b in
        {0, 10, 20}): 243 starts.

    Returns
    -------
    numpy.ndarray, shape (n_starts, 5)
    """
    if size == "full":
        ab, e, ex = np.arange(0, 30, 5.0), np.arange(-1, 1.5, 0.5), np.arange(0, 2.5, 0.5)
    elif size == "small":
        ab, e, ex = np.array([0.0, 10, 20]), np.array([-1.0, 0, 1]), np.array([0.0, 1, 2])
    else:
        raise ValueError(f"grid size must be 'full' or 'small', got {size!r}")
    return np.array(list(itertools.product(ab, ab, e, ex, ex)), dtype=float)


def theta_to_coef(theta: np.ndarray) -> dict[str, float]:
    """Map ``(a, b, e, alpha, beta)`` to ``E, A, B, alpha, beta``."""
    a, b, e, alpha, beta = (float(v) for v in theta)
    return {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}


def coef_to_theta(E: float, A: float, B: float, alpha: float, beta: float) -> np.ndarray:
    """Map ``E, A, B, alpha, beta`` (E, A, B > 0) to ``(a, b, e, alpha, beta)``."""
    for name, v in (("E", E), ("A", A), ("B", B)):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be positive and finite, got {v}")
    return np.array([np.log(A), np.log(B), np.log(E), alpha, beta], dtype=float)


def log_loss_model(
    theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Batched ``log L`` by log-sum-exp, with the softmax weights for the gradient.

    Parameters
    ----------
    theta : numpy.ndarray, shape (k, 5)
    log_n, log_d : numpy.ndarray, shape (m,)
        Natural logs of parameters and tokens.

    Returns
    -------
    log_l : numpy.ndarray, shape (k, m)
        Predicted log loss (log nats/token).
    weights : tuple of three (k, m) arrays
        Softmax weights of the A, B and E terms (their shares of L).
    """
    a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
    t1 = a - alpha * log_n  # (k, m)
    t2 = b - beta * log_d  # (k, m)
    t3 = np.broadcast_to(e, t1.shape)  # (k, m)
    top = np.maximum(np.maximum(t1, t2), t3)
    x1, x2, x3 = np.exp(t1 - top), np.exp(t2 - top), np.exp(t3 - top)
    total = x1 + x2 + x3
    return top + np.log(total), (x1 / total, x2 / total, x3 / total)


def huber_objective(
    theta: np.ndarray,
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_l: np.ndarray,
    delta: float,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of Huber losses of log-loss residuals, and its gradient, for many thetas.

    Parameters
    ----------
    theta : numpy.ndarray, shape (k, 5)
        Rows of ``(a, b, e, alpha, beta)``.
    log_n, log_d, log_l : numpy.ndarray, shape (m,)
        Logs of parameters, tokens and observed loss (nats/token).
    delta : float
        Huber threshold on the log residual (``inf`` for least squares).
    weights : numpy.ndarray, shape (k, m) or (m,), optional
        Per-point multiplicities (bootstrap counts); default all ones.

    Returns
    -------
    f : numpy.ndarray, shape (k,)
    grad : numpy.ndarray, shape (k, 5)
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _huber_objective(theta, log_n, log_d, log_l, delta, weights)


def _huber_objective(theta, log_n, log_d, log_l, delta, weights):
    a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
    # No max-shift here (unlike log_loss_model): an overflow gives a non-finite
    # value, which the line search rejects, and this saves a third of the passes.
    x1 = np.exp(a - alpha * log_n)  # A / N^alpha, (k, m)
    x2 = np.exp(b - beta * log_d)  # B / D^beta, (k, m)
    x3 = np.exp(e)  # E, (k, 1)
    total = x1 + x2 + x3  # L, (k, m)
    r = np.log(total) - log_l  # (k, m)
    if np.isinf(delta):
        up = r
        loss = 0.5 * r * r
    else:
        up = np.clip(r, -delta, delta)  # derivative of the Huber loss
        loss = up * (r - 0.5 * up)  # Huber loss, equal to huber(r, delta)
    if weights is not None:
        loss = loss * weights
        up = up * weights
    up = up / total
    u1, u2 = up * x1, up * x2
    grad = np.stack(
        [u1.sum(1), u2.sum(1), up.sum(1) * x3[:, 0], -(u1 @ log_n), -(u2 @ log_d)], axis=1
    )
    return loss.sum(1), grad
