"""Approach 3 of Hoffmann et al. (2022): the parametric loss L(N, D).

.. math:: L(N, D) = E + A / N^\\alpha + B / D^\\beta

with ``N`` the parameter count, ``D`` the training tokens and ``L`` in
nats/token. As in the paper (and its replication by Besiroglu et al. 2024) the
fit minimises the sum of Huber losses (``delta = 1e-3``) of the residuals of
``log L``, where ``log L`` is computed by log-sum-exp from the unconstrained
parameters ``theta = (a, b, e, alpha, beta)`` with ``A = exp(a)``,
``B = exp(b)``, ``E = exp(e)``, starting L-BFGS from a grid of initial values.
Here every start is advanced at once by :func:`~scalingkit.fit.optim.batched_lbfgs`
with the analytic gradient, and the best few are polished by scipy's L-BFGS-B.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize

from scalingkit.fit._base import BaseFit
from scalingkit.fit._validation import (
    NotFittedError,
    ScalingFitWarning,
    as_positive_1d,
    check_bootstrap,
    check_data,
    check_delta,
    check_distinct,
    positive_columns,
)
from scalingkit.fit.allocation import allocate, allocation_exponents
from scalingkit.fit.objective import (
    coef_to_theta,
    huber_objective,
    initial_grid,
    theta_to_coef,
)
from scalingkit.fit.optim import batched_lbfgs

#: Relative-reduction tolerance of the batched grid search (scipy L-BFGS-B's
#: default ``ftol``); the best starts are then polished to 1e-15.
GRID_FTOL = 2.2e-9

class ParametricFit(BaseFit):
    """Approach 3: fit ``L(N, D) = E + A/N^alpha + B/D^beta`` (nats/token).

    Parameters
    ----------
    huber_delta : float, default=1e-3
        Huber threshold on residuals of log loss (``inf``: least squares).
    grid : {"full", "small"} or array of shape (n, 5), default="full"
        Initial values ``(a, b, e, alpha, beta)``; see :func:`initial_grid`.
    n_polish : int, default=5
        The best ``n_polish`` distinct grid results are refined by scipy's
        L-BFGS-B to tight tolerances; the best of those is reported.
    n_bootstrap : int, default=0
        Bootstrap resamples of the runs for intervals (0: none).
    bootstrap_starts : int, default=8
        Starts per resample: the full-data estimate and the next best distinct
        local minima of the grid search.
    confidence : float, default=0.95
        Level of the percentile intervals ``ci_``.
    random_state : int or None, default=None
        Seed of the bootstrap.
    max_iter : int, default=500
        Iteration cap per start of the batched search (polishing is separate).

    Attributes
    ----------
    E_, A_, B_, alpha_, beta_ : float
        Fitted law; ``E_`` in nats/token.
    a_, b_, G_ : float
        Compute-optimal allocation (see :func:`allocation_exponents`).
    coef_ : dict
        All of the above.
    objective_ : float
        Sum of Huber losses at the estimate.
    success_ : bool
        Whether the reported optimum met a convergence test.
    message_ : str
        The solver's message for the reported optimum.
    start_objectives_ : numpy.ndarray
        Final objective of every start of the grid (``nan`` where not finite).
    n_converged_ : int
        Number of grid starts that met a convergence test.
    ci_ : dict or None
        ``{name: [low, high]}`` bootstrap percentile intervals.
    bootstrap_ : dict of arrays or None
        The bootstrap estimates.

    References
    ----------
    Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models".
    Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt".

    Examples
    --------
    >>> fit = ParametricFit(grid="small").fit(params, tokens, loss)  # doctest: +SKIP
    >>> fit.optimal_allocation(1e21)  # (N_opt, D_opt)                 # doctest: +SKIP
    """

    _extra_attrs = ("objective_", "success_", "message_", "n_points_", "n_converged_")
    _title = "L(N, D) = E + A/N^alpha + B/D^beta (Approach 3)"

    def __init__(
        self,
        *,
        huber_delta: float = 1e-3,
        grid: str | np.ndarray = "full",
        n_polish: int = 5,
        n_bootstrap: int = 0,
        bootstrap_starts: int = 8,
        confidence: float = 0.95,
        random_state: int | None = None,
        max_iter: int = 500,
    ) -> None:
        self.huber_delta = huber_delta
        self.grid = grid
        self.n_polish = n_polish
        self.n_bootstrap = n_bootstrap
        self.bootstrap_starts = bootstrap_starts
        self.confidence = confidence
        self.random_state = random_state
        self.max_iter = max_iter

    # ---------------------------------------------------------------- helpers
    def _grid_array(self) -> np.ndarray:
        if isinstance(self.grid, str):
            return initial_grid(self.grid)
        grid = np.array(self.grid, dtype=float)
        if grid.ndim != 2 or grid.shape[1] != 5 or grid.shape[0] == 0:
            raise ValueError(f"grid must have shape (n_starts, 5), got {grid.shape}")
        if not np.all(np.isfinite(grid)):
            raise ValueError("grid contains NaN or inf")
        return grid

    @staticmethod
    def _check_inputs(params: object, tokens: object, loss: object) -> dict[str, np.ndarray]:
        data = check_data(5, params=params, tokens=tokens, loss=loss)
        check_distinct("params", data["params"])
        check_distinct("tokens", data["tokens"])
        check_tokens_not_a_power_of_params(data["params"], data["tokens"])
        return data

    def _objective(self, logs: tuple[np.ndarray, ...], weights: np.ndarray | None = None):
        delta = float(self.huber_delta)

        def fun(theta: np.ndarray, rows: np.ndarray):
            w = None if weights is None else weights[rows]
            return huber_objective(theta, *logs, delta, w)

        return fun

    def _lbfgs(self, theta0: np.ndarray, data: dict[str, np.ndarray], weights=None):
        """Batched L-BFGS from ``theta0`` (rows of (a, b, e, alpha, beta)).

        The search runs in centred coordinates: with ``mu`` the mean of log N,
        ``a - alpha log N = (a - alpha mu) - alpha (log N - mu)``. This linear
        change of variables leaves the objective unchanged but removes most of
        the correlation between ``a`` and ``alpha`` (and ``b`` and ``beta``),
        so L-BFGS needs fewer iterations. Results are mapped back.
        """
        ln, ld, ll = (np.log(data[c]) for c in ("params", "tokens", "loss"))
        mu_n, mu_d = ln.mean(), ld.mean()
        shift = np.zeros_like(theta0)
        shift[:, 0] = theta0[:, 3] * mu_n
        shift[:, 1] = theta0[:, 4] * mu_d
        res = batched_lbfgs(
            self._objective((ln - mu_n, ld - mu_d, ll), weights), theta0 - shift,
            max_iter=self.max_iter, ftol=GRID_FTOL,
        )
        res.x[:, 0] += res.x[:, 3] * mu_n
        res.x[:, 1] += res.x[:, 4] * mu_d
        return res

    def _polish(self, theta: np.ndarray, data: dict[str, np.ndarray]):
        """Refine one start with scipy's L-BFGS-B at tight tolerances (centred too)."""
        delta = float(self.huber_delta)
        ln, ld, ll = (np.log(data[c]) for c in ("params", "tokens", "loss"))
        mu_n, mu_d = ln.mean(), ld.mean()
        shift = np.array([theta[3] * mu_n, theta[4] * mu_d, 0, 0, 0])

        def single(x: np.ndarray):
            f, g = huber_objective(x[None, :], ln - mu_n, ld - mu_d, ll, delta)
            return float(f[0]), g[0]

        res = minimize(
            single, theta - shift, jac=True, method="L-BFGS-B",
            options={"maxiter": 15000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20},
        )
        x = res.x.copy()
        x[0] += x[3] * mu_n
        x[1] += x[4] * mu_d
        return x, float(res.fun), bool(res.success), str(res.message)

    def _search(self, data: dict[str, np.ndarray]):
        """Grid search plus polish; returns (theta, f, success, message, batched result)."""
        res = self._lbfgs(self._grid_array(), data)
        finite = np.isfinite(res.fun)
        if not finite.any():
            raise RuntimeError(f"no start gave a finite objective: {res.message[0]}")
        order = np.flatnonzero(finite)[np.argsort(res.fun[finite])]
        k0 = order[0]
        best: tuple = (float(res.fun[k0]), res.x[k0], bool(res.success[k0]), res.message[k0])
        for i in _distinct_rows(res.x[order], int(self.n_polish)):
            k = order[i]
            px, pf, pok, pmsg = self._polish(res.x[k], data)
            if not pok:  # tight tolerances: a stalled polish still improves a converged start
                pok, pmsg = bool(res.success[k]), f"{res.message[k]}; polish stopped: {pmsg}"
            candidates = [
                (px, pf, pok, pmsg),
                (res.x[k], float(res.fun[k]), bool(res.success[k]), res.message[k]),
            ]
            for x, f, ok, msg in candidates:
                if np.isfinite(f) and (f < best[0] or (ok and not best[2] and f <= best[0])):
                    best = (f, x, ok, msg)
        if not best[2] and not res.success.any():
            raise RuntimeError(f"no start converged; best start stopped with: {best[3]}")
        return best[1], best[0], best[2], best[3], res

    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        theta = self._search(data)[0]
        return _full_coef(theta)

    # -------------------------------------------------------------------- API
    def fit(self, params: object, tokens: object, loss: object) -> ParametricFit:
        """Fit the law to runs.

        Parameters
        ----------
        params : array_like
            Model sizes N (parameters), positive.
        tokens : array_like
            Training tokens D, positive.
        loss : array_like
            Final validation loss (nats/token), positive.

        Returns
        -------
        self
        """
        check_delta(self.huber_delta)
        check_bootstrap(self.n_bootstrap, self.confidence)
        for name in ("n_polish", "max_iter", "bootstrap_starts"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < (name != "n_polish"):
                raise ValueError(f"{name} must be an integer >= {int(name != 'n_polish')}, "
                                 f"got {value!r}")
        data = self._check_inputs(params, tokens, loss)
        theta, f, ok, msg, res = self._search(data)
        self._set_coef(_full_coef(theta))
        self.theta_ = np.asarray(theta, dtype=float)
        self.objective_ = float(f)
        problem = degenerate_law(self.coef_)
        if problem:
            warnings.warn(f"the fitted law is degenerate: {problem}", ScalingFitWarning,
                          stacklevel=2)
            ok, msg = False, f"degenerate law: {problem} (solver: {msg})"
        self.success_ = bool(ok)
        self.message_ = msg
        self.n_points_ = int(data["loss"].size)
        self.start_objectives_ = res.fun.copy()
        self.start_solutions_ = res.x.copy()
        self.n_converged_ = int(res.success.sum())
        self._bootstrap_batched(data, res)
        return self

    def _bootstrap_batched(self, data: dict[str, np.ndarray], res) -> None:
        n_boot, confidence = check_bootstrap(self.n_bootstrap, self.confidence)
        self.ci_ = None
        self.bootstrap_ = None
        if n_boot == 0:
            return
        rng = np.random.default_rng(self.random_state)
        m = data["loss"].size
        finite = np.isfinite(res.fun)
        order = np.flatnonzero(finite)[np.argsort(res.fun[finite])]
        others = [res.x[order[i]] for i in _distinct_rows(res.x[order], self.bootstrap_starts)]
        starts = np.array([self.theta_, *others])[: max(1, int(self.bootstrap_starts))]
        k = starts.shape[0]
        samples: list[dict[str, float]] = []
        chunk = max(1, 4000 // k)
        for lo in range(0, n_boot, chunk):
            n = min(chunk, n_boot - lo)
            counts = np.stack([np.bincount(rng.integers(0, m, m), minlength=m)
                               for _ in range(n)]).astype(float)
            weights = np.repeat(counts, k, axis=0)  # (n * k, m)
            x0 = np.tile(starts, (n, 1))
            out = self._lbfgs(x0, data, weights)
            fun = np.where(np.isfinite(out.fun), out.fun, np.inf).reshape(n, k)
            ok = out.success.reshape(n, k)
            for i in range(n):
                j = int(np.argmin(fun[i]))
                if np.isfinite(fun[i, j]) and ok[i].any():
                    samples.append(_full_coef(out.x[i * k + j]))
        self._store_bootstrap(samples, n_boot, confidence)

    def predict(self, params: object, tokens: object) -> np.ndarray:
        """Predicted loss (nats/token) for sizes ``params`` trained on ``tokens``."""
        self._check_fitted()
        n, d = positive_columns(params=params, tokens=tokens).values()
        return self.E_ + self.A_ / n**self.alpha_ + self.B_ / d**self.beta_

    def optimal_allocation(self, flops: object) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal ``(N_opt, D_opt)`` for budgets ``flops`` (FLOP), C = 6ND."""
        self._check_fitted()
        c = as_positive_1d("flops", flops)
        return allocate(c, a=self.a_, b=self.b_, G=self.G_)

    def objective(self, params: object, tokens: object, loss: object) -> float:
        """Sum of Huber losses (this estimator's delta) of the fitted law on data."""
        self._check_fitted()
        check_delta(self.huber_delta)
        data = self._check_inputs(params, tokens, loss)
        theta = coef_to_theta(self.E_, self.A_, self.B_, self.alpha_, self.beta_)
        logs = tuple(np.log(data[c]) for c in ("params", "tokens", "loss"))
        return float(huber_objective(theta[None, :], *logs, float(self.huber_delta))[0][0])

    def hessian(self, params: object, tokens: object, loss: object) -> np.ndarray:
        """Hessian of the objective at the estimate, in ``(a, b, e, alpha, beta)``.

        Computed by central differences of the analytic gradient (step 1e-5).
        Its eigenvectors with small eigenvalues are the flat directions of the
        fit: combinations of parameters the data barely constrain.
        """
        self._check_fitted()
        data = self._check_inputs(params, tokens, loss)
        logs = tuple(np.log(data[c]) for c in ("params", "tokens", "loss"))
        theta = coef_to_theta(self.E_, self.A_, self.B_, self.alpha_, self.beta_)
        h = 1e-5
        steps = np.concatenate([theta + h * np.eye(5), theta - h * np.eye(5)])
        _, g = huber_objective(steps, *logs, float(self.huber_delta))
        hess = (g[:5] - g[5:]) / (2 * h)
        return 0.5 * (hess + hess.T)

    @classmethod
    def from_coefficients(
        cls, *, E: float, A: float, B: float, alpha: float, beta: float, **settings: object
    ) -> ParametricFit:
        """A 'fitted' estimator holding given coefficients (e.g. a published law)."""
        obj = cls(**settings)  # type: ignore[arg-type]
        obj._set_coef(_full_coef(coef_to_theta(E, A, B, alpha, beta)))
        obj.objective_ = None
        obj.success_ = None
        obj.message_ = "coefficients given, not fitted"
        obj.n_points_ = None
        obj.n_converged_ = None
        obj.ci_ = None
        return obj


def check_tokens_not_a_power_of_params(
    params: np.ndarray, tokens: np.ndarray, tol: float = 1e-3
) -> None:
    """Refuse runs whose tokens grow as a fixed power of their size, ``D = c N^k``, ``k > 0``.

    On such runs ``A/N^alpha + B/D^beta`` is a sum of two falling powers of
    ``N`` alone, and swapping the two terms fits exactly as well: the data
    cannot tell which exponent belongs to ``N`` and which to ``D``, so
    ``alpha``, ``beta`` and the allocation are not identified. (Tokens that
    fall with size, as within one compute budget, leave the terms distinguishable.)

    Parameters
    ----------
    params, tokens : numpy.ndarray
        Sizes N (parameters) and tokens D, validated and positive.
    tol : float, default=1e-3
        Largest deviation of ``log D`` from the straight line in ``log N``
        (natural log: 1e-3 is 0.1% in D) that still counts as on the line.

    Raises
    ------
    ValueError
        If every ``log D`` lies within ``tol`` of ``k log N + c`` with ``k > 0``.
    """
    log_n, log_d = np.log(params), np.log(tokens)
    k, c = np.polyfit(log_n, log_d, 1)
    if k > 0 and np.max(np.abs(log_d - (k * log_n + c))) <= tol:
        raise ValueError(
            f"tokens are a fixed power of params (D = {np.exp(c):.4g} N^{k:.4g} at every "
            "point): Approach 3 cannot tell A/N^alpha from B/D^beta on such runs; add "
            "runs that vary D at a fixed N (for example a second compute budget)"
        )


def degenerate_law(coef: dict[str, float]) -> str:
    """Why a fitted ``E + A/N^alpha + B/D^beta`` is no usable scaling law ('' if it is).

    Degenerate: loss that does not fall with ``N`` or ``D`` (``alpha <= 0`` or
    ``beta <= 0``, for which the allocation is undefined), or a non-finite
    coefficient (an allocation ``G`` at 0 or infinity, when an exponent or a
    coefficient collapsed to zero).
    """
    if not (coef["alpha"] > 0 and coef["beta"] > 0):
        return (f"alpha = {coef['alpha']:.4g}, beta = {coef['beta']:.4g}: loss must fall with "
                "both N and D for the compute-optimal allocation to exist")
    if all(np.isfinite(v) and v > 0 for v in coef.values()):
        return ""
    shown = ", ".join(f"{k} = {v:.4g}" for k, v in coef.items())
    return f"{shown}: a coefficient collapsed to 0 or infinity"


def _full_coef(theta: np.ndarray) -> dict[str, float]:
    coef = theta_to_coef(theta)
    try:
        coef.update(allocation_exponents(coef["alpha"], coef["beta"], coef["A"], coef["B"]))
    except ValueError:
        coef.update({"a": np.nan, "b": np.nan, "G": np.nan})
    return coef


def _distinct_rows(x: np.ndarray, k: int, tol: float = 1e-4) -> list[int]:
    """Indices of the first ``k`` rows of ``x`` that differ from earlier picks by > tol."""
    picks: list[int] = []
    for i in range(x.shape[0]):
        if len(picks) >= k:
            break
        if all(np.max(np.abs(x[i] - x[j])) > tol for j in picks):
            picks.append(i)
    return picks


def fit_parametric(params: object, tokens: object, loss: object, **settings: object):
    """One-call form of :class:`ParametricFit`: ``ParametricFit(**settings).fit(...)``."""
    return ParametricFit(**settings).fit(params, tokens, loss)  # type: ignore[arg-type]


__all__ = ["NotFittedError", "ParametricFit", "fit_parametric"]
