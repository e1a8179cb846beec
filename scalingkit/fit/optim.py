"""Batched optimisation: many independent L-BFGS problems advanced in lock-step.

Fitting a scaling law from a grid of thousands of initial values is a set of
independent minimisations of the same objective. Rather than looping over
``scipy.optimize.minimize`` calls in Python, :func:`batched_lbfgs` keeps every
start as one row of an ``(n_starts, n_params)`` array and runs the two-loop
L-BFGS recursion and a backtracking line search on all rows at once; each row
keeps its own step length, curvature history and stopping test, so rows are
exactly as independent as separate solver calls would be.

:func:`huber` and :func:`huber_grad` are the robust loss used by Hoffmann et al.
(2022) on residuals of log loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Signature of a batched objective: ``(X (k, p), rows (k,)) -> (f (k,), grad (k, p))``,
#: where ``rows`` are the indices of the ``k`` rows of ``X`` among all starts (so a
#: per-start objective, e.g. bootstrap weights, knows which problem each row is).
BatchedObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of residuals ``r``: ``r**2 / 2`` inside ``|r| <= delta``, linear outside.

    ``delta = inf`` gives plain least squares (``r**2 / 2``).
    """
    a = np.abs(r)
    if np.isinf(delta):
        return 0.5 * r * r
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_grad(r: np.ndarray, delta: float) -> np.ndarray:
    """Derivative of :func:`huber` with respect to ``r`` (``r`` clipped to ``[-delta, delta]``)."""
    if np.isinf(delta):
        return r
    return np.clip(r, -delta, delta)


@dataclass
class BatchedResult:
    """Outcome of :func:`batched_lbfgs`, one entry per row (start).

    Attributes
    ----------
    x : numpy.ndarray, shape (n, p)
        Final parameters.
    fun : numpy.ndarray, shape (n,)
        Final objective values.
    success : numpy.ndarray of bool, shape (n,)
        Whether the row met a convergence test (gradient or relative reduction).
    nit : numpy.ndarray of int, shape (n,)
        Iterations used by each row.
    message : list of str
        Why each row stopped.
    nfev : int
        Number of batched objective calls (each call evaluates many rows).
    """

    x: np.ndarray
    fun: np.ndarray
    success: np.ndarray
    nit: np.ndarray
    message: list[str]
    nfev: int


_MESSAGES = {
    0: "maximum number of iterations reached",
    1: "converged: projected gradient below gtol",
    2: "converged: relative reduction of the objective below ftol",
    3: "line search failed to decrease the objective",
    4: "objective is not finite at the initial value",
}


def batched_lbfgs(
    fun: BatchedObjective,
    x0: np.ndarray,
    *,
    memory: int = 10,
    max_iter: int = 1000,
    gtol: float = 1e-10,
    ftol: float = 1e-13,
    max_linesearch: int = 40,
) -> BatchedResult:
    """Minimise ``n`` independent problems with L-BFGS, all rows advanced together.

    Parameters
    ----------
    fun : callable
        ``fun(X, rows) -> (f, G)`` for any subset of rows ``X`` of shape
        ``(k, p)`` (``rows`` holds their indices among the ``n`` starts),
        returning values ``(k,)`` and gradients ``(k, p)``. Rows must be
        independent (row ``i`` of the output depends only on row ``i`` of ``X``).
    x0 : array_like, shape (n, p)
        Initial values, one row per start.
    memory : int, default=10
        Number of curvature pairs kept per row.
    max_iter : int, default=1000
        Iteration cap per row.
    gtol : float, default=1e-10
        A row stops when the largest absolute gradient entry falls below this.
    ftol : float, default=1e-13
        A row stops when ``(f_old - f_new) <= ftol * max(|f_old|, |f_new|, 1)``
        (the same test as scipy's L-BFGS-B ``ftol``).
    max_linesearch : int, default=40
        Maximum step halvings in the backtracking (Armijo) line search.

    Returns
    -------
    BatchedResult
    """
    x = np.array(x0, dtype=float, copy=True)
    if x.ndim != 2:
        raise ValueError(f"x0 must have shape (n_starts, n_params), got {x.shape}")
    n, p = x.shape
    f, g = fun(x, np.arange(n))
    nfev = 1
    S = np.zeros((memory, n, p))
    Y = np.zeros((memory, n, p))
    rho = np.zeros((memory, n))
    gamma = np.ones(n)
    gnorm = np.linalg.norm(g, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(gnorm > 0, np.minimum(1.0, 1.0 / gnorm), 1.0)
    status = np.full(n, -1)
    status[~(np.isfinite(f) & np.all(np.isfinite(g), axis=1))] = 4
    status[(status == -1) & (np.max(np.abs(g), axis=1) < gtol)] = 1
    nit = np.zeros(n, dtype=int)
    slot = 0
    for _ in range(max_iter):
        act = np.flatnonzero(status == -1)
        if act.size == 0:
            break
        ga = g[act]
        # Two-loop recursion, vectorised over the active rows.
        q = ga.copy()
        alphas = np.zeros((memory, act.size))
        order = [(slot - 1 - j) % memory for j in range(memory)]  # newest first
        for i in order:
            alphas[i] = rho[i, act] * np.einsum("kp,kp->k", S[i, act], q)
            q -= alphas[i][:, None] * Y[i, act]
        r = gamma[act][:, None] * q
        for i in reversed(order):
            beta = rho[i, act] * np.einsum("kp,kp->k", Y[i, act], r)
            r += S[i, act] * (alphas[i] - beta)[:, None]
        d = -r
        gd = np.einsum("kp,kp->k", ga, d)
        bad = ~(gd < 0)
        if np.any(bad):  # not a descent direction: restart those rows from steepest descent
            rows = act[bad]
            rho[:, rows] = 0.0
            gn = np.linalg.norm(ga[bad], axis=1)
            gamma[rows] = np.minimum(1.0, 1.0 / np.maximum(gn, 1e-300))
            d[bad] = -gamma[rows][:, None] * ga[bad]
            gd[bad] = np.einsum("kp,kp->k", ga[bad], d[bad])
        # Backtracking line search with the Armijo condition, per row.
        step = np.ones(act.size)
        f_new = np.empty(act.size)
        g_new = np.empty_like(ga)
        pending = np.arange(act.size)
        for _ls in range(max_linesearch):
            xt = x[act[pending]] + step[pending, None] * d[pending]
            ft, gt = fun(xt, act[pending])
            nfev += 1
            ok = np.isfinite(ft) & (ft <= f[act[pending]] + 1e-4 * step[pending] * gd[pending])
            ok &= np.all(np.isfinite(gt), axis=1)
            f_new[pending[ok]] = ft[ok]
            g_new[pending[ok]] = gt[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
            step[pending] *= 0.5
        failed = np.zeros(act.size, dtype=bool)
        failed[pending] = True
        status[act[failed]] = 3
        moved = ~failed
        rows = act[moved]
        s = step[moved, None] * d[moved]
        y = g_new[moved] - g[rows]
        sy = np.einsum("kp,kp->k", s, y)
        yy = np.einsum("kp,kp->k", y, y)
        # Keep a pair only if its curvature is positive and representable
        # (1/sy and sy/yy must not overflow).
        keep = (yy > 1e-300) & (sy > 1e-300) & (sy > 1e-12 * yy)
        S[slot, rows] = s
        Y[slot, rows] = y
        rho[slot, rows] = np.where(keep, 1.0 / np.where(keep, sy, 1.0), 0.0)
        gamma[rows] = np.where(keep, sy / np.where(keep, yy, 1.0), gamma[rows])
        slot = (slot + 1) % memory
        f_old = f[rows]
        x[rows] += s
        f[rows] = f_new[moved]
        g[rows] = g_new[moved]
        nit[rows] += 1
        small_g = np.max(np.abs(g[rows]), axis=1) < gtol
        scale = np.maximum(np.maximum(np.abs(f_old), np.abs(f[rows])), 1.0)
        small_f = (f_old - f[rows]) <= ftol * scale
        status[rows[small_g]] = 1
        status[rows[~small_g & small_f]] = 2
    status[status == -1] = 0
    return BatchedResult(
        x=x,
        fun=f,
        success=np.isin(status, (1, 2)),
        nit=nit,
        message=[_MESSAGES[int(s)] for s in status],
        nfev=nfev,
    )
