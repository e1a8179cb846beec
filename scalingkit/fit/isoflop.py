"""Approach 2 of Hoffmann et al. (2022): IsoFLOP profiles.

For each compute budget C (FLOP) the final loss of runs of different sizes is
fitted by a parabola in ``log N``; its vertex is the compute-optimal size
``N_opt(C)``. A straight line through ``(log C, log N_opt)`` then gives the
power law ``N_opt = k C^a``, and ``D_opt = C / (6 N_opt)`` gives ``b = 1 - a``.
"""

from __future__ import annotations

import warnings

import numpy as np

from scalingkit.fit._base import BaseFit
from scalingkit.fit._validation import (
    ScalingFitWarning,
    as_positive_1d,
    check_bootstrap,
    check_data,
)


def group_budgets(flops: np.ndarray, tol: float = 0.05) -> np.ndarray:
    """Label runs by compute budget, merging budgets within ``tol`` decades.

    Read-off or rounded budgets are rarely exactly equal, so runs are sorted by
    ``log10(flops)`` and a new budget starts wherever the gap to the previous
    run exceeds ``tol``.

    Returns
    -------
    numpy.ndarray of int
        Budget label (0, 1, ...) of each run, increasing with FLOP.
    """
    logc = np.log10(flops)
    order = np.argsort(logc)
    labels = np.empty(flops.size, dtype=int)
    labels[order] = np.concatenate([[0], np.cumsum(np.diff(logc[order]) > tol)])
    return labels


def parabola_minimum(log_n: np.ndarray, loss: np.ndarray) -> tuple[float, float, float]:
    """Fit ``loss = c0 + c1 x + c2 x^2`` with ``x = log N``; return (x_min, loss_min, c2).

    Raises
    ------
    ValueError
        If the parabola opens downwards (no minimum).
    """
    centre = log_n.mean()
    c2, c1, c0 = np.polyfit(log_n - centre, loss, 2)
    if not c2 > 0:
        raise ValueError("loss is not convex in log N for this budget (no minimum)")
    x = -c1 / (2 * c2)
    return x + centre, c0 - c1 * c1 / (4 * c2), c2


class IsoFLOPFit(BaseFit):
    """Approach 2: parabolas per FLOP budget, then ``N_opt = k C^a``.

    Parameters
    ----------
    budget_tol : float, default=0.05
        Budgets closer than this many decades of FLOP are merged (see
        :func:`group_budgets`); ignored when ``budget`` labels are passed.
    n_bootstrap : int, default=0
        Bootstrap resamples (runs resampled within each budget) for ``ci_``.
    confidence : float, default=0.95
    random_state : int or None, default=None

    Attributes
    ----------
    a_, k_ : float
        ``N_opt = k C^a`` (C in FLOP).
    b_, kd_ : float
        ``D_opt = kd C^b`` with ``D_opt = C / (6 N_opt)``, so ``b = 1 - a``.
    budgets_ : numpy.ndarray
        Budget of each profile (geometric mean of its runs' FLOP).
    n_opt_, d_opt_, loss_opt_ : numpy.ndarray
        Vertex of each profile: size, tokens, loss (nats/token).
    curvature_ : numpy.ndarray
        Second-order coefficient of each parabola (nats/token per (ln N)^2).
    log_n_range_ : numpy.ndarray, shape (n_budgets, 2)
        Smallest and largest ``ln N`` sampled at each budget.
    a_stderr_ : float or None
        Ordinary least-squares standard error of ``a`` (None for 2 budgets).
    ci_ : dict or None
        Bootstrap percentile intervals of ``a``, ``b``, ``k``, ``kd``.
    """

    _extra_attrs = ("a_stderr_", "success_", "message_", "n_points_")
    _title = "N_opt = k C^a from IsoFLOP parabolas (Approach 2)"

    def __init__(
        self,
        *,
        budget_tol: float = 0.05,
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        random_state: int | None = None,
    ) -> None:
        self.budget_tol = budget_tol
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state

    def _profiles(self, data: dict[str, np.ndarray]):
        labels = data["budget"].astype(int)
        rows = []
        for lab in np.unique(labels):
            sel = labels == lab
            n, loss, c = data["params"][sel], data["loss"][sel], data["flops"][sel]
            budget = float(np.exp(np.log(c).mean()))
            if np.unique(n).size < 3:
                raise ValueError(
                    f"budget {budget:.3g} FLOP has {np.unique(n).size} distinct model size(s);"
                    " Approach 2 needs at least 3 per budget"
                )
            x, lmin, c2 = parabola_minimum(np.log(n), loss)
            rows.append((budget, np.exp(x), lmin, c2, np.log(n).min(), np.log(n).max()))
        return np.array(rows)

    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        prof = self._profiles(data)
        logc, logn = np.log(prof[:, 0]), np.log(prof[:, 1])
        a, logk = np.polyfit(logc, logn, 1)
        return {"a": a, "k": np.exp(logk), "b": 1 - a, "kd": 1 / (6 * np.exp(logk))}

    def _resample(self, data: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        labels = data["budget"]
        idx = [rng.choice(np.flatnonzero(labels == lab), size=int((labels == lab).sum()))
               for lab in np.unique(labels)]
        return np.concatenate(idx)

    def fit(
        self,
        params: object,
        tokens: object,
        loss: object,
        *,
        flops: object = None,
        budget: object = None,
    ) -> IsoFLOPFit:
        """Fit IsoFLOP profiles.

        Parameters
        ----------
        params, tokens : array_like
            Model size N (parameters) and training tokens D of each run.
        loss : array_like
            Final loss (nats/token).
        flops : array_like, optional
            Training compute (FLOP); default ``6 N D``.
        budget : array_like, optional
            Budget label of each run (any hashable); default from ``flops``.

        Returns
        -------
        self
        """
        check_bootstrap(self.n_bootstrap, self.confidence)
        if not self.budget_tol > 0:
            raise ValueError(f"budget_tol must be positive, got {self.budget_tol}")
        data = check_data(2, params=params, tokens=tokens, loss=loss)
        if flops is None:
            data["flops"] = 6 * data["params"] * data["tokens"]
        else:
            data["flops"] = as_positive_1d("flops", flops)
            if data["flops"].size != data["loss"].size:
                raise ValueError(
                    f"mismatched lengths: flops={data['flops'].size}, loss={data['loss'].size}"
                )
        if budget is None:
            data["budget"] = group_budgets(data["flops"], self.budget_tol)
        else:
            lab = np.asarray(budget)
            if lab.shape != data["loss"].shape:
                raise ValueError(f"mismatched lengths: budget={lab.size}, loss={data['loss'].size}")
            data["budget"] = np.unique(lab, return_inverse=True)[1]
        if np.unique(data["budget"]).size < 2:
            raise ValueError("need at least 2 compute budgets to fit N_opt = k C^a, got 1")
        prof = self._profiles(data)
        self._set_coef(self._solve(data))
        self.budgets_, self.n_opt_, self.loss_opt_, self.curvature_ = prof[:, :4].T
        self.d_opt_ = self.budgets_ / (6 * self.n_opt_)
        self.log_n_range_ = prof[:, 4:6].copy()
        outside = (np.log(self.n_opt_) < prof[:, 4]) | (np.log(self.n_opt_) > prof[:, 5])
        if outside.any():
            warnings.warn(
                f"{int(outside.sum())} parabola minimum(s) lie outside the sampled sizes "
                "(extrapolated)", ScalingFitWarning, stacklevel=2,
            )
        m = prof.shape[0]
        if m > 2:
            logc = np.log(self.budgets_)
            resid = np.log(self.n_opt_) - (np.log(self.k_) + self.a_ * logc)
            sxx = np.sum((logc - logc.mean()) ** 2)
            self.a_stderr_ = float(np.sqrt(resid @ resid / (m - 2) / sxx))
        else:
            self.a_stderr_ = None
        self.success_ = True
        self.message_ = f"{m} budgets, {int(outside.sum())} extrapolated minima"
        self.n_points_ = int(data["loss"].size)
        self._bootstrap(data)
        return self

    def parabolas(self, n_points: int = 50) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Each budget's fitted parabola over its sampled sizes, for plotting.

        Returns
        -------
        dict
            Budget (FLOP) -> ``(params_grid, loss_grid)`` (parameters, nats/token).
        """
        self._check_fitted()
        if not hasattr(self, "log_n_range_"):
            raise ValueError("parabolas are not stored in a fit restored from JSON; refit")
        out = {}
        for c, n_opt, l_opt, c2, (lo, hi) in zip(
            self.budgets_, self.n_opt_, self.loss_opt_, self.curvature_, self.log_n_range_,
            strict=True,
        ):
            x = np.linspace(lo, hi, n_points)
            out[float(c)] = (np.exp(x), l_opt + c2 * (x - np.log(n_opt)) ** 2)
        return out

    def predict(self, flops: object) -> np.ndarray:
        """Compute-optimal size N_opt (parameters) for budgets ``flops`` (FLOP)."""
        self._check_fitted()
        return self.k_ * as_positive_1d("flops", flops) ** self.a_

    def optimal_allocation(self, flops: object) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal ``(N_opt, D_opt)`` for budgets ``flops`` (FLOP)."""
        n = self.predict(flops)
        return n, as_positive_1d("flops", flops) / (6 * n)


def fit_isoflop(params: object, tokens: object, loss: object, **kwargs: object) -> IsoFLOPFit:
    """One-call form: ``IsoFLOPFit().fit(params, tokens, loss, **kwargs)``."""
    return IsoFLOPFit().fit(params, tokens, loss, **kwargs)  # type: ignore[arg-type]
