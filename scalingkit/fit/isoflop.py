"""Approach 2 of Hoffmann et al. (2022): IsoFLOP profiles.

For each compute budget C (FLOP) the final loss of runs of different sizes is
fitted by a parabola in ``ln N``; its vertex is the compute-optimal size
``N_opt(C)``. A straight line through ``(ln C, ln N_opt)`` then gives the
power law ``N_opt = k C^a``, and ``D_opt = C / (6 N_opt)`` gives ``b = 1 - a``.

The per-budget rule (:func:`budget_optimum`) is the one home of "where is this
budget's optimum": the IsoFLOP fitter and :func:`scalingkit.runs.optimum.compute_optimal`
both call it.

``rule="local"`` (default)
    The parabola goes through the runs at the ``n_local`` distinct sizes
    (default 5) centred on the size with the lowest loss, fewer where that size
    is near an edge of the sampled sizes (as many on each side, at least one).
    The budget is *bracketed* when its lowest loss is at an interior size and
    the vertex lies inside the sizes the parabola was fitted to. An IsoFLOP
    profile is asymmetric in ``ln N`` (too small a model costs more than too
    large a one), so a parabola through a wide window puts its vertex on the
    flat side, by an amount that depends on how wide and how lopsided the
    window is; the local parabola sees only the valley floor, and its vertex
    does not depend on the window's width.
``rule="all"``
    The parabola goes through every run of the budget, and its vertex is used
    even when it lies outside the sampled sizes (an extrapolation). This is
    the textbook form of Approach 2, kept for comparison.

Budgets whose optimum cannot be used (fewer than 3 runs or 3 distinct sizes,
no minimum, or, under ``"local"``, a minimum that is not bracketed) are left out
of the exponent fit and reported with their reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd

from scalingkit.fit._base import BaseFit
from scalingkit.fit._validation import (
    ScalingFitWarning,
    as_positive_1d,
    check_bootstrap,
    check_data,
)

#: Per-budget rules of :func:`budget_optimum` (see the module docstring).
RULES = ("local", "all")


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
    """Fit ``loss = c0 + c1 x + c2 x^2`` with ``x = ln N``; return (x_min, loss_min, c2).

    Raises
    ------
    ValueError
        If the parabola opens downwards (no minimum).
    """
    centre = log_n.mean()
    c2, c1, c0 = np.polyfit(log_n - centre, loss, 2)
    if not c2 > 0:
        raise ValueError("loss is not convex in ln N for this budget (no minimum)")
    x = -c1 / (2 * c2)
    return x + centre, c0 - c1 * c1 / (4 * c2), c2


class BudgetOptimum(NamedTuple):
    """One budget's optimum under a rule of :func:`budget_optimum`.

    Attributes
    ----------
    n_runs, n_sizes : int
        Runs and distinct model sizes of the budget.
    n_fit : int
        Runs the parabola went through (0 when none was fitted).
    log_n_opt, loss_opt, curvature : float
        Vertex ``ln N_opt``, loss at the vertex (nats/token) and second-order
        coefficient (nats/token per (ln N)^2); NaN when there is no vertex.
    log_n_lo, log_n_hi : float
        Smallest and largest ``ln N`` the parabola was fitted to (NaN if none).
    bracketed : bool
        Lowest loss at an interior size and the vertex inside the fitted sizes.
    used : bool
        Whether the vertex enters the exponent fit under the rule.
    reason : str
        Why the budget is not bracketed ("" when it is).
    """

    n_runs: int
    n_sizes: int
    n_fit: int
    log_n_opt: float
    loss_opt: float
    curvature: float
    log_n_lo: float
    log_n_hi: float
    bracketed: bool
    used: bool
    reason: str


def _unusable(n_runs: int, sizes: np.ndarray) -> str:
    """Why a budget cannot give a parabola at all ("" if it can)."""
    if n_runs < 3:
        return f"{n_runs} run(s); at least 3 are needed"
    if sizes.size == 1:
        return "all runs at one size"
    if sizes.size < 3:
        return f"{sizes.size} distinct model sizes; at least 3 are needed"
    return ""


def budget_optimum(
    log_n: np.ndarray, loss: np.ndarray, *, rule: str = "local", n_local: int = 5
) -> BudgetOptimum:
    """The compute-optimal size of one IsoFLOP budget, or why it has none.

    Parameters
    ----------
    log_n : numpy.ndarray
        ``ln N`` of each run of the budget (N in parameters).
    loss : numpy.ndarray
        Final loss of each run (nats/token).
    rule : {"local", "all"}, default="local"
        ``"local"``: parabola through the runs at the ``n_local`` distinct sizes
        centred on the size with the lowest (mean) loss, fewer near an edge;
        used only when bracketed. ``"all"``: parabola through every run, its
        vertex used wherever it lies.
    n_local : int, default=5
        Distinct sizes in the local window (odd, at least 3).

    Returns
    -------
    BudgetOptimum
    """
    _check_rule(rule, n_local)
    sizes, inverse = np.unique(log_n, return_inverse=True)
    nan = float("nan")
    bad = _unusable(log_n.size, sizes)
    if bad:
        return BudgetOptimum(log_n.size, sizes.size, 0, nan, nan, nan, nan, nan,
                             False, False, bad)
    mean_loss = np.bincount(inverse, weights=loss) / np.bincount(inverse)
    best = int(np.argmin(mean_loss))
    edge = {0: "the smallest", sizes.size - 1: "the largest"}.get(best)
    if rule == "local":
        if edge:
            return BudgetOptimum(log_n.size, sizes.size, 0, nan, nan, nan, nan, nan,
                                 False, False, f"lowest loss at {edge} size")
        half = min(n_local // 2, best, sizes.size - 1 - best)
        keep = np.abs(inverse - best) <= half
    else:
        keep = np.ones(log_n.size, dtype=bool)
    x, y = log_n[keep], loss[keep]
    lo, hi = float(x.min()), float(x.max())
    try:
        x_opt, l_opt, c2 = parabola_minimum(x, y)
    except ValueError:
        where = "around its lowest loss" if rule == "local" else "across its sizes"
        return BudgetOptimum(log_n.size, sizes.size, int(keep.sum()), nan, nan, nan, lo, hi,
                             False, False, f"loss is not convex in ln N {where} (no minimum)")
    if edge:  # rule "all" only: the vertex is an extrapolation beyond that edge
        reason = f"lowest loss at {edge} size"
    elif not lo <= x_opt <= hi:
        reason = "parabola vertex outside the sizes it was fitted to"
    else:
        reason = ""
    return BudgetOptimum(log_n.size, sizes.size, int(keep.sum()), float(x_opt), float(l_opt),
                         float(c2), lo, hi, not reason, rule == "all" or not reason, reason)


def _check_rule(rule: str, n_local: int) -> None:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    if isinstance(n_local, bool) or int(n_local) != n_local or n_local < 3 or n_local % 2 == 0:
        raise ValueError(f"n_local must be an odd integer >= 3, got {n_local!r}")


def _each_budget(
    labels: np.ndarray, log_n: np.ndarray, loss: np.ndarray, flops: np.ndarray | None,
    rule: str, n_local: int,
) -> Iterator[tuple[object, float | None, BudgetOptimum]]:
    """Yield ``(label, budget FLOP or None, BudgetOptimum)`` for each budget label."""
    for lab in np.unique(labels):
        sel = labels == lab
        c = None if flops is None else float(np.exp(np.log(flops[sel]).mean()))
        yield lab, c, budget_optimum(log_n[sel], loss[sel], rule=rule, n_local=n_local)


#: Columns of :func:`isoflop_optima` and ``IsoFLOPFit.budget_table_``.
TABLE_COLUMNS = ("budget", "n_runs", "n_sizes", "n_fit", "n_opt", "loss_opt", "curvature",
                 "log_n_lo", "log_n_hi", "bracketed", "used", "reason")


def _table(rows: Iterable[tuple[object, float | None, BudgetOptimum]]) -> pd.DataFrame:
    """The rows of :func:`_each_budget` as :func:`isoflop_optima`'s table."""
    records, index = [], []
    for lab, c, opt in rows:
        row = opt._asdict()
        x = row.pop("log_n_opt")
        row["n_opt"] = float(np.exp(x)) if opt.used else float("nan")
        if not opt.used:
            row["loss_opt"] = float("nan")
        row["budget"] = c if c is not None else float(lab)
        records.append(row)
        index.append(lab)
    return pd.DataFrame(records, index=index, columns=list(TABLE_COLUMNS))


def isoflop_optima(
    params: object,
    loss: object,
    budget: object,
    *,
    flops: object = None,
    rule: str = "local",
    n_local: int = 5,
) -> pd.DataFrame:
    """Each budget's optimum under ``rule`` (:func:`budget_optimum`), as a table.

    Parameters
    ----------
    params : array_like
        Model size N of each run (parameters).
    loss : array_like
        Final loss of each run (nats/token).
    budget : array_like
        Budget label of each run (e.g. the planned FLOP; numbers unless
        ``flops`` is given).
    flops : array_like, optional
        Training compute of each run (FLOP); the ``budget`` column is then the
        geometric mean of a budget's runs, else the label itself.
    rule : {"local", "all"}, default="local"
    n_local : int, default=5

    Returns
    -------
    pandas.DataFrame
        Indexed by budget label, one row per budget: ``budget`` (FLOP),
        ``n_runs``, ``n_sizes``, ``n_fit``, ``n_opt`` (parameters), ``loss_opt``
        (nats/token), ``curvature``, ``log_n_lo``, ``log_n_hi``, ``bracketed``,
        ``used`` and ``reason`` (see :class:`BudgetOptimum`); ``n_opt`` and
        ``loss_opt`` are NaN where the budget is not used.
    """
    _check_rule(rule, n_local)
    n, y = as_positive_1d("params", params), as_positive_1d("loss", loss)
    labels = np.asarray(budget)
    c = None if flops is None else as_positive_1d("flops", flops)
    sizes = {"params": n.size, "loss": y.size, "budget": labels.size,
             **({} if c is None else {"flops": c.size})}
    if labels.ndim != 1 or len(set(sizes.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ValueError(f"mismatched lengths: {detail}")
    return _table(_each_budget(labels, np.log(n), y, c, rule, n_local))


def _dropped_text(dropped: dict[float, str]) -> str:
    return "; ".join(f"{c:.3g} FLOP: {why}" for c, why in dropped.items())


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
        for comparison). See the module docstring.
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
        return {"a": a, "k": np.exp(logk), "b": 1 - a, "kd": 1 / (6 * np.exp(logk))}

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
        self.d_opt_ = self.budgets_ / (6 * self.n_opt_)
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
        return n, as_positive_1d("flops", flops) / (6 * n)


def fit_isoflop(params: object, tokens: object, loss: object, **kwargs: object) -> IsoFLOPFit:
    """One-call form: ``IsoFLOPFit().fit(params, tokens, loss, **kwargs)``."""
    return IsoFLOPFit().fit(params, tokens, loss, **kwargs)  # type: ignore[arg-type]
