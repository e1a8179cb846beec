"""Analysis of the Kaplan et al. (2020) experiments: read the store back, fit ``L(N)``,
``L(D)`` and ``L(N, D)`` with :mod:`scalingkit.fit`, and compare with the paper.

Units: ``N`` parameters (non-embedding unless named ``params_total``), ``D`` tokens,
losses nats/token.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scalingkit.fit.stats import percentile_ci
from scalingkit.studies.kaplan2020.plan import EXPERIMENTS, KAPLAN_2020, _manifest


def kaplan_frame(root: str | Path) -> pd.DataFrame:
    """One row per finished run of a Kaplan store.

    Columns: ``experiment``, ``id``, ``params`` (non-embedding ``N``), ``params_total``,
    ``d_model``, ``n_layer``, ``aspect``, ``subset`` (tokens of the training subset,
    the whole split when none), ``tokens`` (trained), ``D`` (distinct training tokens
    seen: ``min(subset, tokens)``), ``best_loss``, ``best_tokens``, ``final_loss``
    (nats/token), ``best_epochs`` (passes over the subset at the best point), ``epochs``,
    ``wall_time_s``. A run in several experiments appears once per experiment.
    """
    from scalingkit.runs.frames import run_frame

    root = Path(root)
    manifest = _manifest(root)
    runs = run_frame(root).set_index("id", drop=False)
    runs = runs[(runs["status"] == "done") & runs["best_loss"].notna()]
    rows = []
    for experiment, ids in manifest["experiments"].items():
        for run_id in ids:
            if run_id not in runs.index:
                continue
            run = runs.loc[run_id]
            trained = int(run["tokens_trained"])
            limit = run["train_tokens_limit"]
            subset = limit if pd.notna(limit) and limit else int(round(trained / run["epochs"]))
            rows.append({
                "experiment": experiment, "id": run_id,
                "params": int(run["params_non_embedding"]),
                "params_total": int(run["params_total"]),
                "d_model": int(run["d_model"]), "n_layer": int(run["n_layer"]),
                "aspect": run["d_model"] / run["n_layer"], "subset": int(subset),
                "tokens": trained, "D": int(min(subset, trained)),
                "best_loss": float(run["best_loss"]), "best_tokens": int(run["best_tokens"]),
                "final_loss": float(run["final_loss"]),
                "best_epochs": run["best_tokens"] / subset, "epochs": float(run["epochs"]),
                "wall_time_s": float(run["wall_time_s"]),
            })
    if not rows:
        raise ValueError(f"{root} holds no finished Kaplan runs")
    return pd.DataFrame(rows)


def _records(root: str | Path, experiment: str) -> list:
    from scalingkit.runs.store import RunStore

    store = RunStore(root)
    ids = _manifest(Path(root))["experiments"].get(experiment, [])
    return [store.get(i) for i in ids if i in store and store.get(i).status == "done"]


def noise_frame(root: str | Path) -> pd.DataFrame:
    """Noise-scale measurements of the ``L(N)`` runs: one row per (run, step).

    Columns: ``params`` (non-embedding), ``step``, ``tokens``, ``loss`` (nats/token on
    training windows), ``grad_sq``, ``trace_cov``, ``b_simple`` (sequences) and
    ``b_simple_tokens`` (tokens).
    """
    rows = []
    for rec in _records(root, "L(N)"):
        for p in rec.result.get("noise_scale") or []:
            rows.append({"params": rec.result["params_non_embedding"], **p})
    if not rows:
        raise ValueError(f"{root} holds no noise-scale measurements")
    return pd.DataFrame(rows)


def curves(root: str | Path, experiment: str = "L(N)", key: str = "params"
           ) -> dict[int, pd.DataFrame]:
    """Validation curves (``tokens``, ``flops``, ``loss``) of one experiment's runs.

    Keyed by non-embedding ``N`` (``key="params"``) or by training subset size in
    tokens (``key="subset"``; runs on the whole split are left out).
    """
    if key not in ("params", "subset"):
        raise ValueError(f"key must be 'params' or 'subset', got {key!r}")
    out = {}
    for r in _records(root, experiment):
        k = (r.result["params_non_embedding"] if key == "params"
             else r.config.get("train_tokens_limit"))
        if k is not None:
            out[int(k)] = pd.DataFrame(r.result["curve"])
    return out


def _interval(samples: np.ndarray | None, confidence: float) -> list[float] | None:
    if samples is None or len(samples) < 2:
        return None
    return percentile_ci(samples, confidence)


def overfit_threshold(joint: dict[str, float], penalty: float = 0.02) -> tuple[float, float]:
    """Kaplan's rule ``D >= k N^r`` implied by an ``L(N, D)`` fit (eq. 4.4).

    The overfitting penalty ``L(N, D) / L(N, inf) - 1 = (1 + (N/N_c)^r D_c/D)^alpha_D - 1``
    with ``r = alpha_N / alpha_D`` stays below ``penalty`` when ``D >= k N^r`` with
    ``k = D_c / (x N_c^r)`` and ``x = (1 + penalty)^(1/alpha_D) - 1``.

    Parameters
    ----------
    joint : dict
        ``alpha_N``, ``alpha_D``, ``N_c`` (parameters), ``D_c`` (tokens).
    penalty : float, default=0.02
        Tolerated relative loss excess (Kaplan used 2%).

    Returns
    -------
    (float, float)
        ``(k, r)``: tokens = ``k * N**r``.
    """
    if not penalty > 0:
        raise ValueError(f"penalty must be > 0, got {penalty!r}")
    r = joint["alpha_N"] / joint["alpha_D"]
    x = (1.0 + penalty) ** (1.0 / joint["alpha_D"]) - 1.0
    return float(joint["D_c"] / (x * joint["N_c"] ** r)), float(r)


def fit_kaplan_laws(
    frame: pd.DataFrame, *, n_bootstrap: int = 1000, joint_bootstrap: int = 0,
    confidence: float = 0.95, random_state: int = 0,
) -> dict[str, Any]:
    """Fit ``L(N)``, ``L(D)`` and ``L(N, D)`` to a :func:`kaplan_frame` with scalingkit.fit.

    ``L(N)`` uses the ``L(N)`` runs (best validation loss against non-embedding and
    against total ``N``); ``L(D)`` the ``L(D)`` runs (best loss against the subset
    size ``D``); ``L(N, D)`` every ``L(D)`` and grid run plus the ample-data runs
    trained for as many tokens (:func:`ample_data_runs`), against ``N`` and ``D``, so
    that only ``N`` and ``D`` differ between its points. ``overfit_exponent`` is
    ``alpha_N / alpha_D`` of the two one-variable fits, its interval from pairing
    their (independent) bootstrap samples.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`.
    n_bootstrap : int, default=1000
        Resamples for the one-variable fits (closed form, fast).
    joint_bootstrap : int, default=0
        Resamples for ``L(N, D)`` (an iterative fit from 81 starts: about a second or
        two each on a laptop CPU).
    confidence : float, default=0.95
    random_state : int, default=0

    Returns
    -------
    dict
        ``alpha_N``, ``N_c``, ``alpha_D``, ``D_c``, ``overfit_exponent`` (each a dict
        with ``value`` and ``interval``), ``joint_overfit_exponent`` (the same ratio
        from the ``L(N, D)`` fit), ``L(N)``, ``L(N) total``, ``L(D)``, ``L(N, D)``
        (each estimator's ``to_dict()``) and ``threshold`` (``coef`` and ``exponent``
        of ``D >= coef N^exponent`` from the joint fit).
    """
    from scalingkit.fit import KaplanDFit, KaplanNDFit, KaplanNFit

    opts = {"n_bootstrap": n_bootstrap, "confidence": confidence, "random_state": random_state}
    ln = frame[frame["experiment"] == "L(N)"]
    ld = frame[frame["experiment"] == "L(D)"]
    joint = frame["experiment"].isin(["L(D)", "grid"]) | frame.index.isin(
        ample_data_runs(frame).index)
    grid = frame[joint].drop_duplicates("id")
    fit_n = KaplanNFit(**opts).fit(ln["params"], ln["best_loss"])
    fit_total = KaplanNFit(**opts).fit(ln["params_total"], ln["best_loss"])
    fit_d = KaplanDFit(**opts).fit(ld["D"], ld["best_loss"])
    fit_nd = KaplanNDFit(**{**opts, "n_bootstrap": joint_bootstrap}).fit(
        grid["params"], grid["D"], grid["best_loss"])

    def entry(fit, name: str) -> dict:
        ci = (fit.ci_ or {}).get(name)
        return {"value": fit.coef_[name], "interval": None if ci is None else list(ci)}

    ratio = None
    if fit_n.bootstrap_ is not None and fit_d.bootstrap_ is not None:
        m = min(len(fit_n.bootstrap_["alpha_N"]), len(fit_d.bootstrap_["alpha_D"]))
        ratio = fit_n.bootstrap_["alpha_N"][:m] / fit_d.bootstrap_["alpha_D"][:m]
    coef, exponent = overfit_threshold(fit_nd.coef_)
    boot = fit_nd.bootstrap_
    joint_ratio = None if boot is None else boot["alpha_N"] / boot["alpha_D"]
    return {
        "alpha_N": entry(fit_n, "alpha_N"), "N_c": entry(fit_n, "N_c"),
        "alpha_D": entry(fit_d, "alpha_D"), "D_c": entry(fit_d, "D_c"),
        "overfit_exponent": {"value": fit_n.alpha_N_ / fit_d.alpha_D_,
                             "interval": _interval(ratio, confidence)},
        "L(N)": fit_n.to_dict(), "L(N) total": fit_total.to_dict(), "L(D)": fit_d.to_dict(),
        "L(N, D)": fit_nd.to_dict(),
        "joint_overfit_exponent": {"value": fit_nd.alpha_N_ / fit_nd.alpha_D_,
                                   "interval": _interval(joint_ratio, confidence)},
        "threshold": {"coef": coef, "exponent": exponent, "penalty": 0.02},
        "n_runs": {e: int((frame["experiment"] == e).sum()) for e in EXPERIMENTS},
        "confidence": confidence,
    }


def ample_data_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The whole-corpus runs trained for as long as the subset runs: ``L(N)`` at ample data.

    The subset runs (``L(D)`` and ``grid``) differ from a whole-corpus run of the
    same size only in ``D`` when both train for the same number of tokens. Of the
    ``horizon`` budgets, the one nearest (in log) the subset runs' median training
    tokens is chosen; without ``horizon`` runs, the ``L(N)`` runs stand in.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`.

    Returns
    -------
    DataFrame
        The chosen rows of ``frame``.
    """
    horizon = frame[frame["experiment"] == "horizon"]
    subsets = frame[frame["experiment"].isin(["L(D)", "grid"])]
    if horizon.empty or subsets.empty:
        return frame[frame["experiment"] == "L(N)"]
    target = math.log(float(subsets["tokens"].median()))
    budgets = horizon["tokens"].unique()
    best = min(budgets, key=lambda t: abs(math.log(float(t)) - target))
    return horizon[horizon["tokens"] == best]


def convergence(frame: pd.DataFrame) -> pd.DataFrame:
    """Best loss of each ``L(N)`` size at every training budget it was trained for.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`; uses the ``L(N)`` and ``horizon`` runs.

    Returns
    -------
    DataFrame
        Indexed by non-embedding ``params``, one column of best loss (nats/token) per
        training budget (tokens, ascending), then ``gain_pct``: how much lower the
        loss is at the longest budget than at the one before it (percent), and
        ``tokens_per_param`` at the longest budget.
    """
    runs = frame[frame["experiment"].isin(["L(N)", "horizon"])].drop_duplicates("id")
    if runs["tokens"].nunique() < 2:
        raise ValueError("convergence needs L(N) sizes trained for at least two budgets; "
                         "the spec's horizon_tokens is empty")
    table = runs.pivot_table(index="params", columns="tokens", values="best_loss")
    table = table[sorted(table.columns)]
    longest, before = table.columns[-1], table.columns[-2]
    table["gain_pct"] = 100 * (1 - table[longest] / table[before])
    table["tokens_per_param"] = longest / table.index.to_numpy(dtype=float)
    return table


def overfitting(frame: pd.DataFrame, threshold: tuple[float, float] | None = None) -> pd.DataFrame:
    """How much each subset run lost to overfitting, measured and as the rule predicts.

    A run on a subset is compared with the whole-corpus run of the same size trained
    for as many tokens (:func:`ample_data_runs`):
    ``penalty_pct = 100 * (best_loss / reference_loss - 1)``.

    Parameters
    ----------
    frame : DataFrame
        From :func:`kaplan_frame`.
    threshold : (float, float), optional
        ``(k, r)`` of ``D >= k N^r`` (:func:`overfit_threshold`); adds ``D_min`` (tokens)
        and ``below_threshold``.

    Returns
    -------
    DataFrame
        One row per ``L(D)`` or grid run whose size has an ample-data run: ``params``,
        ``subset``, ``D``, ``best_loss``, ``reference_loss`` (nats/token),
        ``penalty_pct``, ``best_epochs`` (passes over the subset at the best point).
    """
    ref = ample_data_runs(frame).set_index("params")["best_loss"]
    subs = frame[frame["experiment"].isin(["L(D)", "grid"]) & frame["params"].isin(ref.index)]
    out = subs[["params", "subset", "D", "best_loss", "best_epochs"]].copy()
    out.insert(4, "reference_loss", ref.loc[out["params"]].to_numpy())
    out.insert(5, "penalty_pct", 100 * (out["best_loss"] / out["reference_loss"] - 1))
    if threshold is not None:
        k, r = threshold
        out["D_min"] = k * out["params"].astype(float) ** r
        out["below_threshold"] = out["D"] < out["D_min"]
    return out.sort_values(["params", "D"], ignore_index=True)


def tokens_to_reach(curves: dict[int, pd.DataFrame], loss: float) -> pd.Series:
    """Training tokens each run needed to first reach a validation loss (nats/token).

    Interpolates linearly in log tokens between the two evaluations around the crossing;
    NaN for a run that never reaches ``loss``.
    """
    out = {}
    for key, curve in sorted(curves.items()):
        t = curve["tokens"].to_numpy(dtype=float)
        v = curve["loss"].to_numpy(dtype=float)
        hit = np.flatnonzero(v <= loss)
        if hit.size == 0:
            out[key] = np.nan
        elif hit[0] == 0:
            out[key] = t[0]
        else:
            i = hit[0]
            frac = (v[i - 1] - loss) / (v[i - 1] - v[i])
            out[key] = float(np.exp(np.log(t[i - 1]) + frac * (np.log(t[i]) - np.log(t[i - 1]))))
    return pd.Series(out, name="tokens", dtype=float)


def compare_with_kaplan(laws: dict[str, Any]) -> pd.DataFrame:
    """Our fitted constants beside Kaplan et al.'s (:data:`KAPLAN_2020`).

    Parameters
    ----------
    laws : dict
        Output of :func:`fit_kaplan_laws` (or ``kaplan_laws.json``).

    Returns
    -------
    DataFrame
        Index ``alpha_N``, ``alpha_D``, ``overfit_exponent``, ``N_c``, ``D_c``; columns
        ``ours``, ``low``, ``high`` (interval) and ``Kaplan 2020``.
    """
    rows = {}
    for key in ("alpha_N", "alpha_D", "overfit_exponent", "N_c", "D_c"):
        entry = laws[key]
        low, high = entry["interval"] if entry.get("interval") else (np.nan, np.nan)
        rows[key] = {"ours": entry["value"], "low": low, "high": high,
                     "Kaplan 2020": KAPLAN_2020[key]}
    return pd.DataFrame.from_dict(rows, orient="index")
