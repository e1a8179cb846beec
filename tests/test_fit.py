"""Fitters: the shared contract, input validation, recovery and Chinchilla."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from scalingkit.fit import (
    ESTIMATORS,
    ComputeFit,
    EnvelopeFit,
    IsoFLOPFit,
    KaplanDFit,
    KaplanNDFit,
    KaplanNFit,
    NotFittedError,
    ParametricFit,
    ScalingFitWarning,
    allocation_exponents,
)
from scalingkit.fit.data import drop_highest_loss
from scalingkit.fit.published import (
    BESIROGLU_2024_CI,
    BESIROGLU_2024_OBJECTIVE,
    HOFFMANN_2022,
)
from scalingkit.fit.simulate import isoflop_sweep, random_runs, training_curves

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
TRUE = {"E": 1.82, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3658}


def _runs(n=60, noise=0.002, seed=0):
    return random_runs(TRUE, n, noise=noise, seed=seed)


def _iso(noise=0.002, seed=0):
    return isoflop_sweep(TRUE, np.geomspace(1e18, 1e21, 5), half_width=0.75, step=0.25,
                         noise=noise, seed=seed)


# Each case: estimator, fit arguments, predict arguments.
def _cases():
    r, iso = _runs(), _iso()
    curves = training_curves(TRUE, np.geomspace(1e7, 3e9, 8), 1e21, n_points=20, seed=0)
    c = np.geomspace(1e15, 1e22, 12)
    return {
        "ParametricFit": (ParametricFit(grid="small"), (r["params"], r["tokens"], r["loss"]), {},
                          ([1e9], [2e10])),
        "IsoFLOPFit": (IsoFLOPFit(), (iso["params"], iso["tokens"], iso["loss"]),
                       {"flops": iso["flops"]}, ([1e20],)),
        "EnvelopeFit": (EnvelopeFit(n_grid=200),
                        (curves["params"], curves["tokens"], curves["loss"]),
                        {"run": curves["run"]}, ([1e20],)),
        "KaplanNFit": (KaplanNFit(), (r["params"], r["loss"]), {}, ([1e9],)),
        "KaplanDFit": (KaplanDFit(), (r["tokens"], r["loss"]), {}, ([1e10],)),
        "KaplanNDFit": (KaplanNDFit(), (r["params"], r["tokens"], r["loss"]), {},
                        ([1e9], [2e10])),
        "ComputeFit": (ComputeFit(), (c, 3 * c**-0.07 + 1.7), {}, ([1e20],)),
    }


CASES = _cases()


def test_every_estimator_is_covered():
    assert sorted(CASES) == sorted(e.__name__ for e in ESTIMATORS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_estimator_contract(name):
    est, args, kwargs, pred_args = CASES[name]
    est = type(est)(**est.get_params())  # fresh, unfitted
    assert not [a for a in vars(est) if a.endswith("_")], "__init__ must only store settings"
    for call in (lambda: est.predict(*pred_args), est.summary, est.to_json):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert est.fit(*args, **kwargs) is est
    assert est.coef_ and all(np.isfinite(v) for v in est.coef_.values())
    assert all(getattr(est, f"{k}_") == v for k, v in est.coef_.items())
    assert isinstance(est.success_, bool) and isinstance(est.message_, str)
    assert name in est.summary()
    again = type(est).from_json(est.to_json())
    np.testing.assert_allclose(again.predict(*pred_args), est.predict(*pred_args), rtol=1e-12)
    assert again.get_params() == json.loads(est.to_json())["params"]
    other = next(e for e in ESTIMATORS if e is not type(est))
    with pytest.raises(ValueError, match=f"not a {other.__name__}"):
        other.from_json(est.to_json())
    bad = [np.array(a, dtype=float, copy=True) for a in args]
    bad[-1][0] = np.nan
    with pytest.raises(ValueError, match="contains NaN or inf"):
        type(est)(**est.get_params()).fit(*bad, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bootstrap_interval_contains_estimate(name):
    est, args, kwargs, _ = CASES[name]
    est = type(est)(**{**est.get_params(), "n_bootstrap": 20, "random_state": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        est.fit(*args, **kwargs)
    assert est.ci_ is not None
    for k, (lo, hi) in est.ci_.items():
        spread = max(hi - lo, 1e-12)
        assert lo - spread <= est.coef_[k] <= hi + spread, k


r0 = _runs(n=12)
P, T, L = r0["params"], r0["tokens"], r0["loss"]


def _with(arr, i, value):
    out = np.array(arr, dtype=float, copy=True)
    out[i] = value
    return out


BAD_INPUTS = [
    ("nan loss", lambda: ParametricFit(grid="small").fit(P, T, _with(L, 0, np.nan)),
     "loss contains NaN or inf"),
    ("inf params", lambda: ParametricFit(grid="small").fit(_with(P, 1, np.inf), T, L),
     "params contains NaN or inf"),
    ("zero params", lambda: ParametricFit(grid="small").fit(_with(P, 0, 0.0), T, L),
     "params must be positive"),
    ("negative tokens", lambda: ParametricFit(grid="small").fit(P, _with(T, 2, -1.0), L),
     "tokens must be positive"),
    ("negative loss", lambda: KaplanNFit().fit(P, _with(L, 0, -2.0)), "loss must be positive"),
    ("zero flops", lambda: ComputeFit().fit(_with(P, 0, 0.0), L), "flops must be positive"),
    ("mismatched", lambda: ParametricFit(grid="small").fit(P, T[:-1], L),
     "mismatched lengths"),
    ("too few points", lambda: ParametricFit(grid="small").fit(P[:5], T[:5], L[:5]),
     "need at least 6 points"),
    ("too few kaplan", lambda: KaplanNDFit().fit(P[:4], T[:4], L[:4]), "need at least 5"),
    ("single N", lambda: ParametricFit(grid="small").fit(np.full(12, 1e9), T, L),
     "params has 1 distinct value"),
    ("single D", lambda: KaplanNDFit().fit(P, np.full(12, 1e10), L),
     "tokens has 1 distinct value"),
    ("single N kaplan", lambda: KaplanNFit().fit(np.full(12, 1e9), L),
     "params has 1 distinct value"),
    ("budget with 2 sizes", lambda: IsoFLOPFit().fit(
        [1e8, 2e8, 3e8, 1e9, 2e9], [1e9] * 5, [3.0, 2.9, 3.1, 2.5, 2.6],
        budget=[0, 0, 0, 1, 1]), "has 2 distinct model size"),
    ("one budget", lambda: IsoFLOPFit().fit([1e8, 2e8, 3e8], [1e9] * 3, [3.0, 2.9, 3.1],
                                            budget=[0, 0, 0]), "at least 2 compute budgets"),
    ("one run", lambda: EnvelopeFit().fit([1e8] * 4, [1e9, 2e9, 3e9, 4e9], [3, 2.9, 2.8, 2.7]),
     "at least 2 runs"),
    ("strings", lambda: KaplanNFit().fit(["a", "b", "c"], [1.0, 2.0, 3.0]),
     "params must be numeric"),
    ("2-D input", lambda: KaplanDFit().fit(np.ones((3, 2)), np.ones(3)),
     "one-dimensional"),
    ("empty", lambda: KaplanDFit().fit([], []), "tokens is empty"),
    ("huber delta", lambda: ParametricFit(huber_delta=0.0, grid="small").fit(P, T, L),
     "huber_delta must be positive"),
    ("bootstrap", lambda: ParametricFit(n_bootstrap=-1, grid="small").fit(P, T, L),
     "n_bootstrap must be a non-negative integer"),
    ("confidence", lambda: KaplanNFit(confidence=1.5).fit(P, L), "confidence must lie"),
    ("grid", lambda: ParametricFit(grid="tiny").fit(P, T, L), "grid size must be"),
    ("max_iter", lambda: ParametricFit(grid="small", max_iter=0).fit(P, T, L),
     "max_iter must be an integer >= 1"),
    ("allocation C", lambda: ParametricFit.from_coefficients(**TRUE).optimal_allocation(
        [1e20, -1.0]), "flops must be positive"),
    ("allocation exponents", lambda: allocation_exponents(-0.1, 0.3, 1.0, 1.0),
     "alpha > 0 and beta > 0"),
    ("json", lambda: ParametricFit.from_json("{not json"), "not valid JSON"),
    ("drop", lambda: drop_highest_loss(pd.DataFrame({"loss": [1.0, 2.0]}), 2),
     "cannot drop 2 of 2"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_value_error(case):
    _, call, message = case
    with pytest.raises(ValueError, match=message):
        call()


def test_no_converged_start_raises_runtime_error_with_solver_message():
    with pytest.raises(RuntimeError, match="maximum number of iterations"):
        ParametricFit(grid="small", max_iter=1, n_polish=0).fit(P, T, L)


def test_unfitted_error_is_a_value_error_and_attribute_error():
    with pytest.raises(AttributeError):
        ParametricFit().optimal_allocation(1e20)
    with pytest.raises(ValueError, match="call fit"):
        IsoFLOPFit().predict([1e20])


law_params = st.fixed_dictionaries({
    "E": st.floats(1.0, 3.0), "A": st.floats(100.0, 1000.0), "B": st.floats(300.0, 3000.0),
    "alpha": st.floats(0.25, 0.45), "beta": st.floats(0.25, 0.45),
})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coef=law_params, seed=st.integers(0, 2**16))
def test_parametric_fit_recovers_known_law(coef, seed):
    """Small noise (0.1% on L): loss, E and the allocation exponent come back."""
    runs = random_runs(coef, 80, params_range=(1e7, 1e11), tokens_range=(1e8, 1e12),
                       noise=0.001, seed=seed)
    fit = ParametricFit(grid="small").fit(runs["params"], runs["tokens"], runs["loss"])
    truth = allocation_exponents(coef["alpha"], coef["beta"], coef["A"], coef["B"])
    held = random_runs(coef, 50, params_range=(1e7, 1e11), tokens_range=(1e8, 1e12),
                       seed=seed + 1)
    clean = held["loss"]
    np.testing.assert_allclose(fit.predict(held["params"], held["tokens"]), clean, rtol=0.005)
    assert abs(fit.E_ - coef["E"]) < 0.1 * coef["E"]
    assert abs(fit.a_ - truth["a"]) < 0.05
    assert fit.objective_ <= fit.objective(runs["params"], runs["tokens"], runs["loss"]) + 1e-15


@settings(max_examples=30, deadline=None)
@given(coef=law_params, log10_c=st.floats(17.0, 26.0))
def test_closed_form_allocation_matches_numerical_minimum(coef, log10_c):
    c = 10.0**log10_c
    fit = ParametricFit.from_coefficients(**coef)

    def loss_at(log_n):
        n = np.exp(log_n)
        return coef["A"] / n ** coef["alpha"] + coef["B"] / (c / (6 * n)) ** coef["beta"]

    res = minimize_scalar(loss_at, bounds=(np.log(1.0), np.log(c)), method="bounded",
                          options={"xatol": 1e-10})
    n_opt, d_opt = fit.optimal_allocation([c])
    np.testing.assert_allclose(n_opt[0], np.exp(res.x), rtol=1e-4)
    np.testing.assert_allclose(6 * n_opt[0] * d_opt[0], c, rtol=1e-12)


@pytest.mark.parametrize("noise", [0.0, 0.003])
def test_isoflop_recovers_exponent_from_symmetric_sweep(noise):
    s = isoflop_sweep(TRUE, np.geomspace(1e18, 1e22, 7), noise=noise, seed=3)
    fit = IsoFLOPFit().fit(s["params"], s["tokens"], s["loss"], flops=s["flops"])
    a = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
    assert abs(fit.a_ - a) < (1e-6 if noise == 0 else 0.03)
    assert fit.b_ == pytest.approx(1 - fit.a_)


def test_envelope_tracks_true_optimum():
    curves = training_curves(TRUE, np.geomspace(1e6, 1e10, 25), 1e22, n_points=60, seed=0)
    fit = EnvelopeFit().fit(curves["params"], curves["tokens"], curves["loss"],
                            run=curves["run"])
    assert abs(fit.a_ - TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])) < 0.06


@pytest.mark.parametrize("cls,column,names", [
    (KaplanNFit, "params", ("N_c", "alpha_N")), (KaplanDFit, "tokens", ("D_c", "alpha_D")),
])
def test_kaplan_power_laws_exact(cls, column, names):
    x = np.geomspace(1e6, 1e11, 9)
    loss = (8.8e13 / x) ** 0.076
    fit = cls().fit(x, loss)
    assert getattr(fit, f"{names[0]}_") == pytest.approx(8.8e13, rel=1e-8)
    assert getattr(fit, f"{names[1]}_") == pytest.approx(0.076, rel=1e-10)


def test_kaplan_nd_and_compute_recover():
    rng = np.random.default_rng(0)
    n, d = np.geomspace(1e6, 1e10, 40), np.exp(rng.uniform(np.log(1e8), np.log(1e11), 40))
    loss = ((8.8e13 / n) ** (0.076 / 0.095) + 5.4e13 / d) ** 0.095
    fit = KaplanNDFit().fit(n, d, loss)
    assert fit.alpha_N_ == pytest.approx(0.076, rel=1e-3)
    assert fit.alpha_D_ == pytest.approx(0.095, rel=1e-3)
    c = np.geomspace(1e15, 1e22, 15)
    comp = ComputeFit().fit(c, 2.5 * c**-0.06 + 1.6)
    assert (comp.a_, comp.b_, comp.c_) == pytest.approx((2.5, -0.06, 1.6), rel=1e-4)


# ----------------------------------------------------------------- Chinchilla
@pytest.fixture(scope="module")
def chinchilla():
    frame = pd.read_csv(DATA / "chinchilla_fig4_points.csv")
    return drop_highest_loss(frame, 5)


def test_chinchilla_points_match_shared_copy(chinchilla):
    assert len(chinchilla) == 240
    shared = Path("/work/shared/data/chinchilla_fig4_points.csv")
    if shared.exists():
        assert (DATA / "chinchilla_fig4_points.csv").read_bytes() == shared.read_bytes()


def test_chinchilla_replication_inside_besiroglu_intervals(chinchilla):
    fit = ParametricFit(grid="small").fit(chinchilla["params"], chinchilla["tokens"],
                                          chinchilla["loss"])
    assert fit.success_
    assert fit.objective_ <= BESIROGLU_2024_OBJECTIVE
    for name, (lo, hi) in BESIROGLU_2024_CI.items():
        assert lo <= fit.coef_[name] <= hi, name
    # Hoffmann's published parameters fit these points much worse.
    hoffmann = ParametricFit.from_coefficients(**HOFFMANN_2022)
    args = (chinchilla["params"], chinchilla["tokens"], chinchilla["loss"])
    assert hoffmann.objective(*args) > 3 * fit.objective_


def test_committed_chinchilla_fit_is_reproduced(chinchilla):
    path = DATA / "chinchilla_fit_240.json"
    committed = json.loads(path.read_text())
    meta = json.loads(path.with_name("chinchilla_fit_240.meta.json").read_text())
    assert "--drop-highest 5" in meta["command"] and meta["git_commit"]
    fit = ParametricFit(grid="small").fit(chinchilla["params"], chinchilla["tokens"],
                                          chinchilla["loss"])
    for k in ("E", "A", "B", "alpha", "beta"):
        assert fit.coef_[k] == pytest.approx(committed[k], rel=1e-5), k
    assert fit.objective_ == pytest.approx(committed["objective"], rel=1e-9)


def test_bootstrap_drops_resamples_with_non_finite_solutions():
    """A resample whose solution is NaN or inf counts as failed, not as an interval end."""
    fit = IsoFLOPFit()
    samples = [{"a": 0.4, "k": 1.0}, {"a": np.nan, "k": 1.0}, {"a": 0.6, "k": np.inf},
               {"a": 0.5, "k": 2.0}]
    with pytest.warns(ScalingFitWarning, match="2 of 4 bootstrap resamples failed"):
        fit._store_bootstrap(samples, 4, 0.95)
    assert np.isfinite(fit.ci_["a"]).all() and np.isfinite(fit.ci_["k"]).all()
    assert fit.bootstrap_["a"].tolist() == [0.4, 0.5]
