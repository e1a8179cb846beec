"""Approach 1 of Hoffmann et al. (2022): the lower envelope of training curves.

Each run contributes a training curve, loss against compute spent so far.
On a common log-spaced grid of FLOP values the run with the lowest loss marks
the best model size at that compute; power laws through those winners give
``N_opt = k C^a`` and ``D_opt = kd C^b``.

``rule="argmin"`` (the paper's)
    ``N_opt`` at each FLOP value is the size of the winning run. With a ladder of
    a few sizes per decade the winners form a staircase: one size wins over a
    whole range of compute, and the fitted slope depends on where the steps fall.
``rule="local"``
    At each FLOP value, the parabola in ``ln N`` through the winning size and its
    two neighbours (each size's lowest loss there) gives ``N_opt`` at its vertex
    (:func:`scalingkit.fit.optimum_rule.budget_optimum`, as Approach 2 does for a
    budget); FLOP values whose winner is the smallest or largest size present, or
    whose vertex falls outside the three sizes, are left out. ``D_opt`` is the tokens
    interpolated in ``ln N`` between those sizes' curves.
"""

from __future__ import annotations

import numpy as np

from scalingkit.fit._base import BaseFit
from scalingkit.fit._validation import (
    align_columns,
    as_positive_1d,
    check_bootstrap,
    check_data,
)
from scalingkit.fit.allocation import six_nd
from scalingkit.fit.optimum_rule import budget_optimum

#: Per-FLOP-value rules of :class:`EnvelopeFit` (see the module docstring).
ENVELOPE_RULES = ("argmin", "local")


class EnvelopeFit(BaseFit):
    """Approach 1: lower envelope of loss-vs-FLOP curves, then power laws.

    Parameters
    ----------
    n_grid : int, default=1500
        Number of log-spaced FLOP values at which the envelope is read (the
        paper used 1500).
    min_runs : int, default=2
        Only FLOP values covered by at least this many runs enter the fit, so
        the winner is a real comparison rather than the only curve present.
    drop_edges : bool, default=True
        Leave out FLOP values won by the smallest or the largest model size:
        there the true optimum may lie outside the sizes that were run, and the
        envelope would report the edge size instead (censoring), which
        flattens the fitted slope.
    rule : {"argmin", "local"}, default="argmin"
        ``"argmin"``: ``N_opt`` is the winning run's size (the paper's envelope).
        ``"local"``: the vertex of the parabola in ``ln N`` through the winner and
        its two neighbouring sizes (see the module docstring); ``drop_edges`` is
        then implied.
    n_bootstrap : int, default=0
        Bootstrap resamples of whole runs (curves) for ``ci_``.
    confidence : float, default=0.95
    random_state : int or None, default=None

    Attributes
    ----------
    a_, k_ : float
        ``N_opt = k C^a`` (C in FLOP).
    b_, kd_ : float
        ``D_opt = kd C^b`` from the tokens the winning run had seen.
    flops_grid_, n_env_, d_env_, loss_env_ : numpy.ndarray
        The envelope: FLOP, winning size, its tokens, its loss (nats/token).
    """

    _title = "N_opt, D_opt from the lower envelope of training curves (Approach 1)"

    def __init__(
        self,
        *,
        n_grid: int = 1500,
        min_runs: int = 2,
        drop_edges: bool = True,
        rule: str = "argmin",
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        random_state: int | None = None,
    ) -> None:
        self.n_grid = n_grid
        self.min_runs = min_runs
        self.drop_edges = drop_edges
        self.rule = rule
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.random_state = random_state

    def _envelope(self, data: dict[str, np.ndarray]):
        """The envelope on the FLOP grid: (FLOP, N_opt, tokens, loss) at the points kept."""
        grid, log_loss, log_tok, sizes = _curves_on_grid(data, int(self.n_grid))
        covered = np.isfinite(log_loss).sum(axis=0) >= int(self.min_runs)
        if covered.sum() < 2:
            raise ValueError(
                f"fewer than 2 FLOP values are covered by {self.min_runs} or more runs"
            )
        if self.rule == "local":
            return _local_envelope(grid, log_loss, log_tok, sizes, np.flatnonzero(covered))
        win = np.argmin(log_loss[:, covered], axis=0)
        cols = np.flatnonzero(covered)
        if self.drop_edges:
            inner = (sizes[win] > sizes.min()) & (sizes[win] < sizes.max())
            if inner.sum() < 2:
                raise ValueError("fewer than 2 FLOP values are won by a size inside the range "
                                 "of sizes run; use more sizes or drop_edges=False")
            win, cols = win[inner], cols[inner]
        return (np.exp(grid[cols]), sizes[win], np.exp(log_tok[win, cols]),
                np.exp(log_loss[win, cols]))

    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        c, n, d, _ = self._envelope(data)
        if np.unique(n).size < 2:
            raise ValueError("the envelope is won by a single model size; N_opt(C) is undefined")
        a, logk = np.polyfit(np.log(c), np.log(n), 1)
        b, logkd = np.polyfit(np.log(c), np.log(d), 1)
        return {"a": a, "k": np.exp(logk), "b": b, "kd": np.exp(logkd)}

    def _resample(self, data: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        runs = np.unique(data["run"])
        picked = rng.choice(runs, size=runs.size)
        return np.concatenate([np.flatnonzero(data["run"] == r) for r in picked])

    def fit(
        self,
        params: object,
        tokens: object,
        loss: object,
        *,
        flops: object = None,
        run: object = None,
    ) -> EnvelopeFit:
        """Fit from training-curve points.

        Parameters
        ----------
        params : array_like
            Model size N (parameters) of the run each point belongs to.
        tokens : array_like
            Tokens seen so far at each point.
        loss : array_like
            Loss at each point (nats/token).
        flops : array_like, optional
            Compute spent so far (FLOP); default ``6 N D``.
        run : array_like, optional
            Run label of each point; default one run per distinct size.

        Returns
        -------
        self
        """
        check_bootstrap(self.n_bootstrap, self.confidence)
        if int(self.n_grid) < 2:
            raise ValueError(f"n_grid must be at least 2, got {self.n_grid}")
        if self.rule not in ENVELOPE_RULES:
            raise ValueError(f"rule must be one of {', '.join(map(repr, ENVELOPE_RULES))}, "
                             f"got {self.rule!r}")
        if int(self.min_runs) < 1:
            raise ValueError(f"min_runs must be at least 1, got {self.min_runs}")
        given = {k: v for k, v in dict(params=params, tokens=tokens, loss=loss, flops=flops,
                                       run=run).items() if v is not None}
        given = align_columns(**given)  # pandas Series: pair values by index label
        flops, run = given.pop("flops", None), given.pop("run", None)
        data = check_data(2, **given)
        m = data["loss"].size
        if flops is None:
            data["flops"] = six_nd(data["params"], data["tokens"])
        else:
            data["flops"] = as_positive_1d("flops", flops)
            if data["flops"].size != m:
                raise ValueError(f"mismatched lengths: flops={data['flops'].size}, loss={m}")
        labels = data["params"] if run is None else np.asarray(run)
        if labels.shape != (m,):
            raise ValueError(f"mismatched lengths: run={labels.size}, loss={m}")
        data["run"] = np.unique(labels, return_inverse=True)[1]
        counts = np.bincount(data["run"])
        if counts.size < 2:
            raise ValueError("need at least 2 runs (training curves), got 1")
        if counts.min() < 2:
            raise ValueError("every run needs at least 2 points on its training curve")
        for r in range(counts.size):
            if np.unique(data["params"][data["run"] == r]).size > 1:
                raise ValueError(f"run {r} mixes several model sizes")
        self._set_coef(self._solve(data))
        self.flops_grid_, self.n_env_, self.d_env_, self.loss_env_ = self._envelope(data)
        self.success_ = True
        self.message_ = f"{counts.size} runs, {self.flops_grid_.size} envelope points"
        self.n_points_ = m
        self._bootstrap(data)
        return self

    def predict(self, flops: object) -> np.ndarray:
        """Compute-optimal size N_opt (parameters) for budgets ``flops`` (FLOP)."""
        self._check_fitted()
        return self.k_ * as_positive_1d("flops", flops) ** self.a_

    def optimal_allocation(self, flops: object) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal ``(N_opt, D_opt)`` for budgets ``flops`` (FLOP)."""
        self._check_fitted()
        c = as_positive_1d("flops", flops)
        return self.k_ * c**self.a_, self.kd_ * c**self.b_


def _curves_on_grid(data: dict[str, np.ndarray], n_grid: int):
    """Every run's curve read on one log-spaced FLOP grid.

    Returns ``(grid, log_loss, log_tokens, sizes)``: ``ln C`` of the grid, ``ln``
    loss and ``ln`` tokens of each run (rows) at each grid value (columns; loss
    ``inf`` where the run's curve does not reach), and each run's size.
    """
    runs = np.unique(data["run"])
    logc_all = np.log(data["flops"])
    grid = np.linspace(logc_all.min(), logc_all.max(), n_grid)
    log_loss = np.full((runs.size, grid.size), np.inf)
    log_tok = np.zeros((runs.size, grid.size))
    sizes = np.zeros(runs.size)
    for i, run in enumerate(runs):
        sel = data["run"] == run
        order = np.argsort(logc_all[sel])
        c = logc_all[sel][order]
        inside = (grid >= c[0]) & (grid <= c[-1])
        log_loss[i, inside] = np.interp(grid[inside], c, np.log(data["loss"][sel][order]))
        log_tok[i, inside] = np.interp(grid[inside], c, np.log(data["tokens"][sel][order]))
        sizes[i] = np.exp(np.log(data["params"][sel]).mean())
    return grid, log_loss, log_tok, sizes


def _local_envelope(grid: np.ndarray, log_loss: np.ndarray, log_tok: np.ndarray,
                    sizes: np.ndarray, cols: np.ndarray):
    """``rule="local"``: a 3-size parabola in ``ln N`` at each FLOP value of ``cols``.

    Each size's lowest loss at that FLOP value (over its runs) enters the
    parabola of :func:`~scalingkit.fit.optimum_rule.budget_optimum`; the tokens at
    the vertex are interpolated in ``ln N`` between those sizes' best runs.
    """
    log_n = np.log(sizes)
    distinct, group = np.unique(log_n, return_inverse=True)
    kept = []
    for j in cols:
        present = np.isfinite(log_loss[:, j])
        best_loss = np.full(distinct.size, np.inf)
        np.minimum.at(best_loss, group[present], log_loss[present, j])
        have = np.isfinite(best_loss)
        opt = budget_optimum(distinct[have], np.exp(best_loss[have]), rule="local", n_local=3)
        if not opt.bracketed:
            continue
        best_run = [np.flatnonzero(present & (group == g))[np.argmin(
            log_loss[present & (group == g), j])] for g in np.flatnonzero(have)]
        tok = np.interp(opt.log_n_opt, distinct[have], log_tok[best_run, j])
        kept.append((grid[j], opt.log_n_opt, tok, np.log(opt.loss_opt)))
    if len(kept) < 2:
        raise ValueError("fewer than 2 FLOP values have their optimum bracketed by the sizes "
                         "present there; use more sizes or rule='argmin'")
    return tuple(np.exp(col) for col in np.array(kept).T)
