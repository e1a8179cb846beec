"""Kaplan et al. (2020) power laws, and the compute law ``L(C) = a C^b + c``.

* :class:`KaplanNFit`: ``L(N) = (N_c / N)^alpha_N`` (data-rich limit);
* :class:`KaplanDFit`: ``L(D) = (D_c / D)^alpha_D`` (large-model limit);
* :class:`KaplanNDFit`: ``L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D``;
* :class:`ComputeFit`: ``L(C) = a C^b + c`` (a power law plus an irreducible
  loss, the form OpenAI (2023) used to predict GPT-4's final loss).

All are fitted on ``log L`` (nats/token): the one-variable laws are straight
lines in log-log space (ordinary least squares); the others minimise the sum of
Huber losses (least squares by default, ``huber_delta=inf``) of log residuals
from a grid of starts with :func:`~scalingkit.fit.optim.batched_lbfgs`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from scalingkit.fit._base import BaseFit
from scalingkit.fit._validation import (
    ScalingFitWarning,
    as_positive_1d,
    check_bootstrap,
    check_data,
    check_delta,
    check_distinct,
    positive_columns,
)
from scalingkit.fit.optim import batched_lbfgs, huber, huber_grad

#: ``theta (k, p) -> (log prediction (k, m), Jacobian (k, m, p))``.
LogModel = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def fit_log_model(
    model: LogModel, log_y: np.ndarray, starts: np.ndarray, delta: float
) -> tuple[np.ndarray, float, bool, str]:
    """Minimise the summed Huber loss of ``model(theta) - log_y`` from many starts.

    All starts run together in :func:`batched_lbfgs`; the best is polished by
    scipy's L-BFGS-B. Returns ``(theta, objective, success, message)``.

    Raises
    ------
    RuntimeError
        If no start converges (with the solver's message).
    """

    def fun(theta: np.ndarray, rows: np.ndarray):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred, jac = model(theta)
            r = pred - log_y
            return huber(r, delta).sum(1), np.einsum("km,kmp->kp", huber_grad(r, delta), jac)

    res = batched_lbfgs(fun, starts, max_iter=300, ftol=2.2e-9)  # then polished below
    finite = np.isfinite(res.fun)
    if not finite.any():
        raise RuntimeError(f"no start gave a finite objective: {res.message[0]}")
    k = int(np.flatnonzero(finite)[np.argmin(res.fun[finite])])

    def single(x: np.ndarray):
        f, g = fun(x[None, :], np.zeros(1, dtype=int))
        return float(f[0]), g[0]

    pol = minimize(single, res.x[k], jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12})
    if np.isfinite(pol.fun) and pol.fun <= res.fun[k]:
        if pol.success:
            return pol.x, float(pol.fun), True, str(pol.message)
        msg = f"{res.message[k]}; polish by L-BFGS-B stopped early: {pol.message}"
        return pol.x, float(pol.fun), bool(res.success[k]), msg
    if not res.success.any():
        raise RuntimeError(f"no start converged: {res.message[k]}")
    return res.x[k], float(res.fun[k]), bool(res.success[k]), res.message[k]


def warn_if_rising(name: str, exponent: float, column: str, stacklevel: int = 3) -> None:
    """Warn (:class:`ScalingFitWarning`) when a fitted law has loss rising with ``column``.

    ``exponent`` is the law's decay exponent (``alpha_N``, ``alpha_D``, ``-b``),
    positive when loss falls as ``column`` grows.
    """
    if exponent < 0:
        warnings.warn(
            f"the fitted loss rises with {column} ({name} = {exponent:.4g} < 0); the data "
            "do not follow a falling scaling law",
            ScalingFitWarning,
            stacklevel=stacklevel,
        )


class _PowerLaw1D(BaseFit):
    """``L(x) = (x_c / x)^alpha``: a straight line in log-log space."""

    _column = ""
    _names = ("", "")

    def __init__(
        self, *, n_bootstrap: int = 0, confidence: float = 0.95, random_state: int | None = None
    ) -> None:
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state

    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        slope, intercept = np.polyfit(np.log(data[self._column]), np.log(data["loss"]), 1)
        alpha = -slope
        if alpha == 0:
            raise ValueError("loss does not change with " + self._column)
        return {self._names[0]: float(np.exp(intercept / alpha)), self._names[1]: alpha}

    def _fit(self, x: object, loss: object):
        check_bootstrap(self.n_bootstrap, self.confidence)
        data = check_data(2, **{self._column: x, "loss": loss})
        check_distinct(self._column, data[self._column])
        self._set_coef(self._solve(data))
        warn_if_rising(self._names[1], self.coef_[self._names[1]], self._column, 4)
        pred = self._predict(data[self._column])
        self.objective_ = float(0.5 * np.sum((np.log(pred) - np.log(data["loss"])) ** 2))
        self.success_ = True
        self.message_ = "closed-form least squares on log L"
        self.n_points_ = int(data["loss"].size)
        self._bootstrap(data)
        return self

    def _predict(self, x: np.ndarray) -> np.ndarray:
        xc, alpha = (self.coef_[k] for k in self._names)
        return (xc / x) ** alpha

    def predict(self, x: object) -> np.ndarray:
        """Predicted loss (nats/token)."""
        self._check_fitted()
        return self._predict(as_positive_1d(self._column, x))


class KaplanNFit(_PowerLaw1D):
    """``L(N) = (N_c / N)^alpha_N`` (Kaplan et al. 2020, eq. 1.1).

    Parameters
    ----------
    n_bootstrap : int, default=0
    confidence : float, default=0.95
    random_state : int or None, default=None

    Attributes
    ----------
    N_c_ : float
        Parameters.
    alpha_N_ : float
    """

    _column = "params"
    _names = ("N_c", "alpha_N")
    _extra_attrs = ("objective_", "success_", "message_", "n_points_")
    _title = "L(N) = (N_c / N)^alpha_N"

    def fit(self, params: object, loss: object) -> KaplanNFit:
        """Fit sizes ``params`` (parameters) and loss (nats/token); returns self."""
        return self._fit(params, loss)


class KaplanDFit(_PowerLaw1D):
    """``L(D) = (D_c / D)^alpha_D`` (Kaplan et al. 2020, eq. 1.2).

    Parameters
    ----------
    n_bootstrap : int, default=0
    confidence : float, default=0.95
    random_state : int or None, default=None

    Attributes
    ----------
    D_c_ : float
        Tokens.
    alpha_D_ : float
    """

    _column = "tokens"
    _names = ("D_c", "alpha_D")
    _extra_attrs = ("objective_", "success_", "message_", "n_points_")
    _title = "L(D) = (D_c / D)^alpha_D"

    def fit(self, tokens: object, loss: object) -> KaplanDFit:
        """Fit tokens and loss (nats/token); returns self."""
        return self._fit(tokens, loss)


class KaplanNDFit(BaseFit):
    """``L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D`` (Kaplan et al. 2020, eq. 1.5).

    Parameters
    ----------
    huber_delta : float, default=inf
        Huber threshold on log residuals; ``inf`` is least squares.
    n_bootstrap : int, default=0
    confidence : float, default=0.95
    random_state : int or None, default=None

    Attributes
    ----------
    N_c_, D_c_ : float
        Parameters and tokens.
    alpha_N_, alpha_D_ : float
    objective_ : float
        Summed Huber loss of log residuals at the estimate.
    """

    _extra_attrs = ("objective_", "success_", "message_", "n_points_")
    _title = "L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"

    def __init__(
        self,
        *,
        huber_delta: float = np.inf,
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        random_state: int | None = None,
    ) -> None:
        self.huber_delta = huber_delta
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state

    @staticmethod
    def _model(log_n: np.ndarray, log_d: np.ndarray) -> LogModel:
        def model(theta: np.ndarray):
            lnc, ldc, ratio, ad = (theta[:, i : i + 1] for i in range(4))
            u = ratio * (lnc - log_n)  # (k, m)
            v = ldc - log_d  # (k, m)
            s = np.logaddexp(u, v)
            wu, wv = np.exp(u - s), np.exp(v - s)
            jac = np.stack([ad * wu * ratio, ad * wv, ad * wu * (lnc - log_n),
                            np.broadcast_to(s, u.shape)], axis=2)
            return ad * s, jac

        return model

    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        starts = np.array(list(itertools.product(
            [20.0, 30, 40], [20.0, 30, 40], [0.5, 1.0, 1.5], [0.05, 0.1, 0.3]
        )))
        model = self._model(np.log(data["params"]), np.log(data["tokens"]))
        theta, f, ok, msg = fit_log_model(model, np.log(data["loss"]), starts,
                                          float(self.huber_delta))
        self._last = (f, ok, msg)
        lnc, ldc, ratio, ad = theta
        return {"N_c": np.exp(lnc), "D_c": np.exp(ldc), "alpha_N": ratio * ad, "alpha_D": ad}

    def fit(self, params: object, tokens: object, loss: object) -> KaplanNDFit:
        """Fit sizes (parameters), tokens and loss (nats/token); returns self."""
        check_delta(self.huber_delta)
        check_bootstrap(self.n_bootstrap, self.confidence)
        data = check_data(4, params=params, tokens=tokens, loss=loss)
        check_distinct("params", data["params"])
        check_distinct("tokens", data["tokens"])
        self._set_coef(self._solve(data))
        self.objective_, self.success_, self.message_ = self._last
        self.n_points_ = int(data["loss"].size)
        self._bootstrap(data)
        return self

    def predict(self, params: object, tokens: object) -> np.ndarray:
        """Predicted loss (nats/token)."""
        self._check_fitted()
        n, d = positive_columns(params=params, tokens=tokens).values()
        ratio = self.alpha_N_ / self.alpha_D_
        return ((self.N_c_ / n) ** ratio + self.D_c_ / d) ** self.alpha_D_


class ComputeFit(BaseFit):
    """``L(C) = a C^b + c``: power law in compute (FLOP) plus an irreducible loss.

    Parameters
    ----------
    huber_delta : float, default=inf
        Huber threshold on log residuals; ``inf`` is least squares.
    n_bootstrap : int, default=0
    confidence : float, default=0.95
    random_state : int or None, default=None

    Attributes
    ----------
    a_ : float
        Scale (nats/token at C = 1 FLOP).
    b_ : float
        Exponent (negative when loss falls with compute).
    c_ : float
        Irreducible loss (nats/token).
    """

    _extra_attrs = ("objective_", "success_", "message_", "n_points_")
    _title = "L(C) = a C^b + c"

    def __init__(
        self,
        *,
        huber_delta: float = np.inf,
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        random_state: int | None = None,
    ) -> None:
        self.huber_delta = huber_delta
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state

    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        log_c = np.log(data["flops"])
        mu = log_c.mean()
        x = log_c - mu  # centred, so the scale and the exponent decouple

        def model(theta: np.ndarray):
            la, b, lc = (theta[:, i : i + 1] for i in range(3))
            t = la + b * x
            s = np.logaddexp(t, lc)
            wt, wc = np.exp(t - s), np.exp(lc - s)
            jac = np.stack([wt, wt * x, np.broadcast_to(wc, t.shape)], axis=2)
            return s, jac

        log_l = np.log(data["loss"])
        top = float(log_l.max())
        starts = np.array(list(itertools.product(
            [top - 3, top - 1, top], [-0.5, -0.2, -0.1, -0.05, -0.01], [top - 3, top - 1, top - 0.3]
        )))
        theta, f, ok, msg = fit_log_model(model, log_l, starts, float(self.huber_delta))
        self._last = (f, ok, msg)
        la, b, lc = theta
        return {"a": np.exp(la - b * mu), "b": b, "c": np.exp(lc)}

    def fit(self, flops: object, loss: object) -> ComputeFit:
        """Fit compute (FLOP) and loss (nats/token); returns self."""
        check_delta(self.huber_delta)
        check_bootstrap(self.n_bootstrap, self.confidence)
        data = check_data(3, flops=flops, loss=loss)
        check_distinct("flops", data["flops"], minimum=3)
        self._set_coef(self._solve(data))
        warn_if_rising("-b", -self.b_, "flops")
        self.objective_, self.success_, self.message_ = self._last
        self.n_points_ = int(data["loss"].size)
        self._bootstrap(data)
        return self

    def predict(self, flops: object) -> np.ndarray:
        """Predicted loss (nats/token) at compute ``flops`` (FLOP)."""
        self._check_fitted()
        return self.a_ * as_positive_1d("flops", flops) ** self.b_ + self.c_
