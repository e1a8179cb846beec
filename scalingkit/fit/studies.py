"""Small experiments on the fitters, used by the fitting chapters.

Each returns a :class:`pandas.DataFrame` so a chapter can show or plot it in
one line: comparisons of published laws, the sensitivity of Approach 3 to its
Huber threshold and start grid, and the bias of Approach 2 under different
sweep designs and per-budget rules (simulated from a known law).
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
    rule: str = "local",
) -> pd.DataFrame:
    """Approach 2's exponent ``a`` under different sweep designs, simulated.

    Each design uses one shared ladder of model sizes (spacing ``step``
    decades) and keeps, per budget, the rungs within ``half_width`` decades of
    the sweep's centre. The centre misses the true optimum by
    ``offset_slope * log10(C / C_min)`` decades, as when a sweep is centred
    on a prior law with the wrong exponent. ``rule`` is the per-budget rule
    of :class:`IsoFLOPFit` (``"all"``: a parabola through every run).

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
                        fit = IsoFLOPFit(rule=rule).fit(s["params"], s["tokens"], s["loss"],
                                                        flops=s["flops"])
                    except ValueError:  # fewer than 2 budgets with a usable optimum
                        continue
                est.append(fit.a_)
            est = np.array(est)
            rows.append({"half_width": hw, "step": step, "n_fits": est.size,
                         "a_mean": est.mean() if est.size else np.nan,
                         "a_std": est.std(ddof=1) if est.size > 1 else np.nan,
                         "bias": est.mean() - a_true if est.size else np.nan})
    return pd.DataFrame(rows)


#: Sweep designs of :func:`isoflop_rule_study`: name -> (offset, drift), both as
#: fractions of the half-width (see there).
RULE_STUDY_DESIGNS = {"centred": (0.0, 0.0), "off-centre above": (0.4, 0.2),
                      "off-centre below": (-0.4, -0.2)}


def isoflop_rule_study(
    coef: dict,
    flops,
    *,
    half_widths=(0.5, 1.0, 1.5),
    designs: dict | None = None,
    sizes_per_budget: int = 9,
    noise: float = 0.005,
    n_seeds: int = 100,
    rules=("all", "local"),
    seed: int = 0,
) -> pd.DataFrame:
    """Bias of Approach 2's ``a`` under each per-budget rule, in simulated noisy sweeps.

    Every sweep draws its losses from the law ``coef`` (:func:`isoflop_sweep`
    with one shared ladder of sizes): per budget, the rungs within
    ``half_width`` decades of a centre, ``sizes_per_budget`` of them (the
    ladder's spacing is ``2 half_width / (sizes_per_budget - 1)`` decades). A
    design ``(offset, drift)`` puts the centre
    ``half_width * (offset + drift * t)`` decades above the true optimum, with
    ``t`` running from -1 at the smallest budget to +1 at the largest: a
    window that misses the optimum and misses it by more as compute grows, as
    when a sweep is planned from a law with the wrong exponent. Each noisy
    sweep is fitted under every rule (:class:`IsoFLOPFit`).

    Parameters
    ----------
    coef : dict
        ``E, A, B, alpha, beta`` of the true law (loss in nats/token).
    flops : array_like
        Budgets (FLOP).
    half_widths : sequence of float, default=(0.5, 1.0, 1.5)
        Half-widths of the window of sizes (decades of N).
    designs : dict, optional
        Name -> ``(offset, drift)``; default :data:`RULE_STUDY_DESIGNS`.
    sizes_per_budget : int, default=9
    noise : float, default=0.005
        Standard deviation of the multiplicative log-normal noise on each loss.
    n_seeds : int, default=100
        Noisy sweeps per design and half-width (the same sweeps for every rule).
    rules : sequence of str, default=("all", "local")
        Per-budget rules (:data:`scalingkit.fit.optimum_rule.RULES`).
    seed : int, default=0

    Returns
    -------
    pandas.DataFrame
        One row per half-width, design and rule: ``half_width``, ``design``,
        ``rule``, ``n_fits`` (sweeps that could be fitted), ``budgets_used``
        (mean per fit), ``a_mean``, ``a_std`` (over sweeps), ``bias``
        (``a_mean - a_true``) and ``bias_se`` (its standard error).
    """
    designs = RULE_STUDY_DESIGNS if designs is None else designs
    c = np.asarray(flops, dtype=float)
    logc = np.log10(c)
    t = (logc - logc.mean()) / (np.ptp(logc) / 2 or 1.0)
    a_true = coef["beta"] / (coef["alpha"] + coef["beta"])
    rng = np.random.default_rng(seed)
    rows = []
    for hw in half_widths:
        step = 2 * hw / (sizes_per_budget - 1)
        for name, (offset, drift) in designs.items():
            est: dict[str, list[tuple[float, int]]] = {r: [] for r in rules}
            for _ in range(n_seeds):
                s = isoflop_sweep(coef, c, half_width=hw, step=step, ladder=True,
                                  offset=hw * (offset + drift * t), noise=noise,
                                  seed=int(rng.integers(2**31)))
                for rule in rules:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ScalingFitWarning)
                        try:
                            fit = IsoFLOPFit(rule=rule).fit(s["params"], s["tokens"],
                                                            s["loss"], flops=s["flops"])
                        except ValueError:  # fewer than 2 usable budgets
                            continue
                    est[rule].append((fit.a_, len(fit.budgets_used_)))
            for rule, pairs in est.items():
                a = np.array([p[0] for p in pairs])
                n = a.size
                rows.append({"half_width": hw, "design": name, "rule": rule, "n_fits": n,
                             "budgets_used": np.mean([p[1] for p in pairs]) if n else np.nan,
                             "a_mean": a.mean() if n else np.nan,
                             "a_std": a.std(ddof=1) if n > 1 else np.nan,
                             "bias": a.mean() - a_true if n else np.nan,
                             "bias_se": a.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan})
    return pd.DataFrame(rows)
