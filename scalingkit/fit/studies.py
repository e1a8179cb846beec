"""Small experiments on the fitters, used by the fitting chapters.

Each returns a :class:`pandas.DataFrame` so a chapter can show or plot it in
one line: comparisons of published laws, the sensitivity of Approach 3 to its
Huber threshold and start grid, and the bias of Approach 2 under different
sweep designs (simulated from a known law).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from scalingkit.fit._validation import ScalingFitWarning
from scalingkit.fit.isoflop import IsoFLOPFit
from scalingkit.fit.parametric import ParametricFit
from scalingkit.fit.simulate import isoflop_sweep

COEF_NAMES = ("E", "A", "B", "alpha", "beta")


def compare_laws(laws: dict, params, tokens, loss, flops: float) -> pd.DataFrame:
    """Coefficients, objective on data and allocation at ``flops`` for several laws.

    Parameters
    ----------
    laws : dict
        Label -> :class:`ParametricFit` (fitted or from published coefficients).
    params, tokens, loss : array_like
        Runs on which the objective (sum of Huber losses of log residuals) is
        evaluated with each law's own ``huber_delta``.
    flops : float
        Budget (FLOP) for ``N_opt``, ``D_opt`` and tokens per parameter.

    Returns
    -------
    pandas.DataFrame
        One row per law.
    """
    rows = []
    for label, law in laws.items():
        n_opt, d_opt = law.optimal_allocation([flops])
        rows.append({"law": label, **{k: law.coef_[k] for k in COEF_NAMES},
                     "objective": law.objective(params, tokens, loss),
                     "a": law.a_, "b": law.b_, "N_opt": n_opt[0], "D_opt": d_opt[0],
                     "tokens_per_param": d_opt[0] / n_opt[0]})
    return pd.DataFrame(rows).set_index("law")


def interval_table(sources: dict) -> pd.DataFrame:
    """Long table ``source, name, estimate, low, high`` for :func:`plot_interval_panels`.

    Parameters
    ----------
    sources : dict
        Label -> ``(coef, ci)``: dicts of estimates and of ``[low, high]``
        (``ci`` may be None or lack a name).
    """
    rows = []
    for source, (coef, ci) in sources.items():
        for name, value in coef.items():
            low, high = (ci or {}).get(name, (np.nan, np.nan))
            rows.append({"source": source, "name": name, "estimate": value,
                         "low": low, "high": high})
    return pd.DataFrame(rows)


def huber_delta_study(params, tokens, loss, deltas, *, grid="small") -> pd.DataFrame:
    """Approach 3 estimates as the Huber threshold varies (``inf``: least squares)."""
    rows = []
    for delta in deltas:
        fit = ParametricFit(huber_delta=delta, grid=grid).fit(params, tokens, loss)
        rows.append({"delta": delta, **fit.coef_, "objective": fit.objective_})
    return pd.DataFrame(rows)


def grid_study(params, tokens, loss, grids: dict) -> pd.DataFrame:
    """Approach 3 estimates from different start grids, and how the starts ended.

    Parameters
    ----------
    grids : dict
        Label -> ``grid`` argument of :class:`ParametricFit` (``"small"``,
        ``"full"`` or an array of starts), or a :class:`ParametricFit` already
        fitted to the same data (reused as is).

    Returns
    -------
    pandas.DataFrame
        One row per grid: coefficients, best objective, number of starts and the
        fraction of starts whose own optimum is within 0.1% of the best objective.
    """
    rows = []
    for label, grid in grids.items():
        if isinstance(grid, ParametricFit):
            fit = grid
        else:
            fit = ParametricFit(grid=grid).fit(params, tokens, loss)
        obj = fit.start_objectives_
        rows.append({"grid": label, "n_starts": obj.size, **fit.coef_,
                     "objective": fit.objective_,
                     "frac_at_best": float(np.mean(obj - fit.objective_ <= 1e-3 * fit.objective_))})
    return pd.DataFrame(rows).set_index("grid")


def isoflop_bias_study(
    coef: dict,
    flops,
    *,
    half_widths,
    steps,
    offset_slope: float = 0.0,
    noise: float = 0.0,
    n_repeats: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """Approach 2's exponent ``a`` under different sweep designs, simulated.

    Each design uses one shared ladder of model sizes (spacing ``step``
    decades) and keeps, per budget, the rungs within ``half_width`` decades of
    the sweep's centre. The centre misses the true optimum by
    ``offset_slope * log10(C / C_min)`` decades, as when a sweep is centred
    on a prior law with the wrong exponent.

    Returns
    -------
    pandas.DataFrame
        ``half_width, step, a_mean, a_std, bias`` (``bias = a_mean - a_true``),
        one row per design; ``a_std`` is over ``n_repeats`` noisy replicates.
    """
    c = np.asarray(flops, dtype=float)
    offset = offset_slope * np.log10(c / c.min())
    a_true = coef["beta"] / (coef["alpha"] + coef["beta"])
    rng = np.random.default_rng(seed)
    rows = []
    for hw in half_widths:
        for step in steps:
            est = []
            for _ in range(n_repeats):
                s = isoflop_sweep(coef, c, half_width=hw, step=step, offset=offset,
                                  ladder=True, noise=noise, seed=int(rng.integers(2**31)))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ScalingFitWarning)
                    try:
                        fit = IsoFLOPFit().fit(s["params"], s["tokens"], s["loss"],
                                               flops=s["flops"])
                    except ValueError:  # a budget kept fewer than 3 rungs
                        continue
                est.append(fit.a_)
            est = np.array(est)
            rows.append({"half_width": hw, "step": step, "n_fits": est.size,
                         "a_mean": est.mean() if est.size else np.nan,
                         "a_std": est.std(ddof=1) if est.size > 1 else np.nan,
                         "bias": est.mean() - a_true if est.size else np.nan})
    return pd.DataFrame(rows)
