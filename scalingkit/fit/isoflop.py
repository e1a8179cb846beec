"""Approach 2 of Hoffmann et al. (2022): IsoFLOP profiles.

For each compute budget C (FLOP) the final loss of runs of different sizes is
fitted by a parabola in ``ln N``; its vertex is the compute-optimal size
``N_opt(C)``. A straight line through ``(ln C, ln N_opt)`` then gives the
power law ``N_opt = k C^a``, and ``D_opt = C / (6 N_opt)`` gives ``b = 1 - a``.

The per-budget rule, ``rule="local"`` or ``"all"``, lives in
:mod:`scalingkit.fit.optimum_rule`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from scalingkit.fit._base import BaseFit
from scalingkit.fit._validation import (
    ScalingFitWarning,
    as_positive_1d,
    check_bootstrap,
    check_data,
)
from scalingkit.fit.allocation import six_nd, six_nd_tokens
from scalingkit.fit.optimum_rule import (
    BudgetOptimum,
    _check_rule,
    _dropped_text,
    _each_budget,
    _table,
    group_budgets,
)


class IsoFLOPFit(BaseFit):
    """Approach 2: a parabola per FLOP budget, then ``N_opt = k C^a``.

    Each budget's optimum comes from :func:`budget_optimum` under ``rule``;
    budgets without a usable optimum are left out of the line through
    ``(ln C, ln N_opt)`` and reported in ``budgets_dropped_``.

    Parameters
    ----------
    rule : {"local", "all"}, default="local"
        ``"local"``: a parabola through the runs at the ``n_local`` sizes
        centred on the lowest loss, used only where the budget brackets its
        minimum (the vertex does not depend on how wide or lopsided the
        window of sizes is). ``"all"``: a parabola through every run, its
        vertex used even outside the sampled sizes (the textbook rule, kept
        for comparison). See :mod:`scalingkit.fit.optimum_rule`.
    n_local : int, default=5
        Distinct sizes in the local window (odd, at least 3); ``rule="local"`` only.
    budget_tol : float, default=0.05
        Budgets closer than this many decades of FLOP are merged (see
        :func:`group_budgets`); ignored when ``budget`` labels are passed.
    n_bootstrap : int, default=0
        Bootstrap resamples for ``ci_``: runs resampled within each budget,
        and every budget's optimum found again under the same rule.
    confidence : float, default=0.95
    random_state : int or None, default=None

    Attributes
    ----------
    a_, k_ : float
        ``N_opt = k C^a`` (C in FLOP).
    b_, kd_ : float
        ``D_opt = kd C^b`` with ``D_opt = C / (6 N_opt)``, so ``b = 1 - a``.
    budget_table_ : pandas.DataFrame
        One row per budget, used or not (:func:`isoflop_optima`'s columns:
        ``budget``, ``n_runs``, ``n_sizes``, ``n_fit``, ``n_opt``, ``bracketed``,
        ``used``, ``reason``...).
    budgets_used_ : numpy.ndarray
        Budgets (FLOP) in the exponent fit.
    budgets_dropped_ : dict
        Budget (FLOP) -> why it was left out.
    budgets_ : numpy.ndarray
        Same as ``budgets_used_`` (geometric mean of each budget's runs' FLOP).
    n_opt_, d_opt_, loss_opt_ : numpy.ndarray
        Vertex of each used budget: size, tokens, loss (nats/token).
    curvature_ : numpy.ndarray
        Second-order coefficient of each used parabola (nats/token per (ln N)^2).
    log_n_range_ : numpy.ndarray, shape (n_used, 2)
        Smallest and largest ``ln N`` each used parabola was fitted to.
    a_stderr_ : float or None
        Ordinary least-squares standard error of ``a`` (None for 2 budgets).
    ci_ : dict or None
        Bootstrap percentile intervals of ``a``, ``b``, ``k``, ``kd``.

    References
    ----------
    Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models",
    Approach 2.

    Examples
    --------
    >>> from scalingkit.fit.simulate import isoflop_sweep
    >>> law = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    >>> s = isoflop_sweep(law, [1e18, 1e19, 1e20], half_width=1.0)
    >>> fit = IsoFLOPFit().fit(s["params"], s["tokens"], s["loss"], flops=s["flops"])
    >>> round(fit.a_, 3), len(fit.budgets_used_)
    (0.452, 3)
    """

    _extra_attrs = ("a_stderr_", "success_", "message_", "n_points_")
    _title = "N_opt = k C^a from IsoFLOP parabolas (Approach 2)"

    def __init__(
        self,
        *,
        rule: str = "local",
        n_local: int = 5,
        budget_tol: float = 0.05,
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        random_state: int | None = None,
    ) -> None:
        self.rule = rule
        self.n_local = n_local
        self.budget_tol = budget_tol
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state

    def _profiles(self, data: dict[str, np.ndarray]) -> list[tuple[object, float, BudgetOptimum]]:
        return list(_each_budget(data["budget"], np.log(data["params"]), data["loss"],
                                 data["flops"], self.rule, self.n_local))

    @staticmethod
    def _exponent(profiles: list[tuple[object, float, BudgetOptimum]]) -> dict[str, float]:
        used = [(c, opt.log_n_opt) for _, c, opt in profiles if opt.used]
        if len(used) < 2:
            dropped = {c: opt.reason for _, c, opt in profiles if not opt.used}
            raise ValueError(
                f"only {len(used)} of {len(profiles)} budgets have a usable optimum; "
                f"need 2 to fit N_opt = k C^a (dropped: {_dropped_text(dropped)})"
            )
        logc, logn = np.log([c for c, _ in used]), np.array([x for _, x in used])
        a, logk = np.polyfit(logc, logn, 1)
        return {"a": a, "k": np.exp(logk), "b": 1 - a, "kd": six_nd_tokens(1, np.exp(logk))}

    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        return self._exponent(self._profiles(data))

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

        Raises
        ------
        ValueError
            If fewer than 2 budgets have a usable optimum (the message lists
            each dropped budget and its reason).
        """
        check_bootstrap(self.n_bootstrap, self.confidence)
        _check_rule(self.rule, self.n_local)
        if not self.budget_tol > 0:
            raise ValueError(f"budget_tol must be positive, got {self.budget_tol}")
        data = check_data(2, params=params, tokens=tokens, loss=loss)
        if flops is None:
            data["flops"] = six_nd(data["params"], data["tokens"])
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
        profiles = self._profiles(data)
        self._set_coef(self._exponent(profiles))
        self._budget_rows = profiles
        used = [(c, opt) for _, c, opt in profiles if opt.used]
        self.budgets_ = np.array([c for c, _ in used])
        self.budgets_used_ = self.budgets_.copy()
        self.budgets_dropped_ = {c: opt.reason for _, c, opt in profiles if not opt.used}
        self.n_opt_ = np.exp([opt.log_n_opt for _, opt in used])
        self.loss_opt_ = np.array([opt.loss_opt for _, opt in used])
        self.curvature_ = np.array([opt.curvature for _, opt in used])
        self.d_opt_ = six_nd_tokens(self.budgets_, self.n_opt_)
        self.log_n_range_ = np.array([[opt.log_n_lo, opt.log_n_hi] for _, opt in used])
        self._warn_and_describe(profiles)
        m = len(used)
        if m > 2:
            logc = np.log(self.budgets_)
            resid = np.log(self.n_opt_) - (np.log(self.k_) + self.a_ * logc)
            sxx = np.sum((logc - logc.mean()) ** 2)
            self.a_stderr_ = float(np.sqrt(resid @ resid / (m - 2) / sxx))
        else:
            self.a_stderr_ = None
        self.success_ = True
        self.n_points_ = int(data["loss"].size)
        self._bootstrap(data)
        return self

    def _warn_and_describe(self, profiles: list[tuple[object, float, BudgetOptimum]]) -> None:
        """Set ``message_``; warn about dropped budgets and extrapolated vertices."""
        n_used = len(self.budgets_used_)
        extrapolated = sum(opt.used and not opt.bracketed for _, _, opt in profiles)
        self.message_ = (f"{n_used} of {len(profiles)} budgets used (rule {self.rule!r}), "
                         f"{len(self.budgets_dropped_)} dropped")
        if self.rule == "all":
            self.message_ += f", {extrapolated} extrapolated minima"
        if self.budgets_dropped_:
            warnings.warn(
                f"{len(self.budgets_dropped_)} of {len(profiles)} budgets left out of the "
                f"exponent fit: {_dropped_text(self.budgets_dropped_)}",
                ScalingFitWarning, stacklevel=3,
            )
        if extrapolated:
            warnings.warn(
                f"{extrapolated} parabola minimum(s) lie outside the sampled sizes "
                "(extrapolated)", ScalingFitWarning, stacklevel=3,
            )

    # ------------------------------------------------------------- reporting
    @property
    def budget_table_(self) -> pd.DataFrame:
        """One row per budget, used or not (the columns of :func:`isoflop_optima`)."""
        self._check_fitted()
        if not hasattr(self, "_budget_rows"):
            raise ValueError("the budget table is not stored in a fit restored from JSON; refit")
        return _table(self._budget_rows).reset_index(drop=True)

    def budget_records(self) -> list[dict[str, object]]:
        """``budget_table_`` as plain JSON-ready dicts (NaN written as None)."""
        cols = ["budget", "n_runs", "n_sizes", "n_fit", "n_opt", "loss_opt", "bracketed",
                "used", "reason"]
        out = []
        for row in self.budget_table_[cols].to_dict(orient="records"):
            out.append({k: (None if isinstance(v, float) and not np.isfinite(v)
                            else v.item() if isinstance(v, np.generic) else v)
                        for k, v in row.items()})
        return out

    def to_dict(self) -> dict[str, object]:
        """As :meth:`BaseFit.to_dict`, plus the budgets used and dropped (with reasons)."""
        out = super().to_dict()
        out["budgets_used"] = [float(c) for c in self.budgets_used_]
        out["budgets_dropped"] = [{"budget": float(c), "reason": why}
                                  for c, why in self.budgets_dropped_.items()]
        return out

    @classmethod
    def from_json(cls, text: str) -> IsoFLOPFit:
        """Rebuild a fitted estimator written by :meth:`to_json`."""
        import json

        obj = super().from_json(text)
        data = json.loads(text)
        obj.budgets_used_ = np.array(data.get("budgets_used") or [], dtype=float)
        obj.budgets_dropped_ = {float(d["budget"]): d["reason"]
                                for d in data.get("budgets_dropped") or []}
        return obj

    def summary(self) -> str:
        """The coefficient table, then how many budgets were used and why others were not."""
        lines = [super().summary()]
        n = len(self.budgets_used_) + len(self.budgets_dropped_)
        lines.append(f"{'budgets':>10}  {len(self.budgets_used_)} of {n} used "
                     f"(rule {self.rule!r})")
        lines += [f"{'dropped':>10}  {c:.3g} FLOP: {why}"
                  for c, why in self.budgets_dropped_.items()]
        return "\n".join(lines)

    def parabolas(self, n_points: int = 50) -> dict[float, tuple[np.ndarray, np.ndarray]]:
        """Each used budget's fitted parabola over the sizes it was fitted to, for plotting.

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
        return n, six_nd_tokens(as_positive_1d("flops", flops), n)


def fit_isoflop(params: object, tokens: object, loss: object, **kwargs: object) -> IsoFLOPFit:
    """One-call form: ``IsoFLOPFit().fit(params, tokens, loss, **kwargs)``."""
    return IsoFLOPFit().fit(params, tokens, loss, **kwargs)  # type: ignore[arg-type]
