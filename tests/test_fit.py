"""Fitters: the shared contract, input validation, recovery and Chinchilla."""

from __future__ import annotations

import hashlib
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
from scalingkit.fit.points import drop_highest_loss
from scalingkit.fit.published import (
    BESIROGLU_2024_CI,
    BESIROGLU_2024_OBJECTIVE,
    HOFFMANN_2022,
)
from scalingkit.fit.simulate import isoflop_sweep, random_runs, training_curves
from scalingkit.tolerances import FIT_OBJECTIVE_RTOL, FIT_PREDICTION_RTOL

DATA = Path(__file__).resolve().parents[1] / "book" / "data"
TRUE = {"E": 1.82, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3658}


def _runs(n=60, noise=0.002, seed=0):
    return random_runs(TRUE, n, noise=noise, seed=seed)


def _iso(noise=0.002, seed=0):
    return isoflop_sweep(TRUE, np.geomspace(1e18, 1e21, 5), half_width=0.75, step=0.25,
                         noise=noise, seed=seed)


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in JSON output")


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
    assert again.get_params() == est.get_params()
    json.loads(est.to_json(), parse_constant=_no_constant)  # strict JSON: no NaN, Infinity
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
        [1e8, 2e8, 3e8, 1e9, 2e9, 2e9], [1e9] * 6, [3.0, 2.9, 3.1, 2.5, 2.6, 2.7],
        budget=[0, 0, 0, 1, 1, 1]), "only 1 of 2 budgets .* 2 distinct model sizes"),
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
    # The fit is at least as good on its own data as the law that made the data.
    true_law = ParametricFit.from_coefficients(**coef)
    assert fit.objective_ <= true_law.objective(runs["params"], runs["tokens"], runs["loss"])


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


def test_envelope_local_rule_sees_between_the_rungs_of_a_coarse_ladder():
    """Four sizes per decade: the winners form a staircase, the local vertices do not."""
    curves = training_curves(TRUE, np.geomspace(1e6, 1e10, 17), 1e22, n_points=60, seed=0)
    true_a = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
    argmin = EnvelopeFit().fit(curves["params"], curves["tokens"], curves["loss"],
                               run=curves["run"])
    local = EnvelopeFit(rule="local").fit(curves["params"], curves["tokens"], curves["loss"],
                                          run=curves["run"])
    assert np.unique(argmin.n_env_).size < 17  # a staircase of whole sizes
    assert np.unique(local.n_env_).size > 10 * np.unique(argmin.n_env_).size
    assert abs(local.a_ - true_a) < abs(argmin.a_ - true_a)
    assert abs(local.a_ - true_a) < 0.005
    assert local.a_ + local.b_ == pytest.approx(1.0, abs=0.02)  # C = 6 N D along the envelope


def test_envelope_rule_is_checked():
    curves = training_curves(TRUE, np.geomspace(1e7, 3e9, 5), 1e21, n_points=20, seed=0)
    with pytest.raises(ValueError, match="rule must be one of 'argmin', 'local', got 'min'"):
        EnvelopeFit(rule="min").fit(curves["params"], curves["tokens"], curves["loss"],
                                    run=curves["run"])


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


#: SHA-256 of the committed points (the 245 runs digitised by Epoch AI); a change
#: to the file, by a byte, fails here rather than shifting every fit silently.
CHINCHILLA_POINTS_SHA256 = "f706a81f2eeae67d15c3fc28f0e6d25b987173ba3f46a4b653c181b4bd34215e"


def test_chinchilla_points_are_the_committed_digitisation(chinchilla):
    path = DATA / "chinchilla_fig4_points.csv"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CHINCHILLA_POINTS_SHA256
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["params", "flops", "tokens", "loss"] and len(frame) == 245
    np.testing.assert_allclose(frame.tokens, frame.flops / (6 * frame.params), rtol=1e-9)
    assert len(chinchilla) == 240 and chinchilla.loss.max() < frame.loss.max()


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
    # What the fit identifies, to the spread measured across CPUs (scalingkit.tolerances):
    # its objective and its predictions (A and B moved by 3e-7 between CPUs).
    assert fit.objective_ == pytest.approx(committed["objective"], rel=FIT_OBJECTIVE_RTOL)
    law = ParametricFit.from_coefficients(**{k: committed[k]
                                             for k in ("E", "A", "B", "alpha", "beta")})
    args = (chinchilla["params"], chinchilla["tokens"])
    np.testing.assert_allclose(fit.predict(*args), law.predict(*args), rtol=FIT_PREDICTION_RTOL)


def test_bootstrap_drops_resamples_with_non_finite_solutions():
    """A resample whose solution is NaN or inf counts as failed, not as an interval end."""
    fit = IsoFLOPFit()
    samples = [{"a": 0.4, "k": 1.0}, {"a": np.nan, "k": 1.0}, {"a": 0.6, "k": np.inf},
               {"a": 0.5, "k": 2.0}]
    with pytest.warns(ScalingFitWarning, match="2 of 4 bootstrap resamples failed"):
        fit._store_bootstrap(samples, 4, 0.95)
    assert np.isfinite(fit.ci_["a"]).all() and np.isfinite(fit.ci_["k"]).all()
    assert fit.bootstrap_["a"].tolist() == [0.4, 0.5]


# ------------------------------------------------- no silent wrong answers
def test_tokens_proportional_to_params_are_refused():
    """On D = c N^k (k > 0) the two terms of L(N, D) swap freely: no law is identified."""
    n = np.geomspace(1e6, 1e9, 12)
    loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / (20 * n) ** TRUE["beta"]
    with pytest.raises(ValueError, match="tokens are a fixed power of params"):
        ParametricFit(grid="small").fit(n, 20 * n, loss)
    with pytest.raises(ValueError, match="fixed power of params"):
        ParametricFit(grid="small").fit(n, np.round(3 * n**1.2), loss)  # rounded tokens too


def test_one_compute_budget_is_not_refused_as_collinear():
    """Within one budget D falls with N: the terms stay distinguishable, the fit runs."""
    s = isoflop_sweep(TRUE, [1e20], half_width=1.0, step=0.1, noise=0.0)
    fit = ParametricFit(grid="small").fit(s["params"], s["tokens"], s["loss"])
    np.testing.assert_allclose(fit.predict(s["params"], s["tokens"]), s["loss"], rtol=1e-3)


@pytest.mark.parametrize("call", [
    lambda loss: ParametricFit(grid="small").fit(P, T, loss),
    lambda loss: KaplanNFit().fit(P, loss),
    lambda loss: KaplanNDFit().fit(P, T, loss),
    lambda loss: ComputeFit().fit(6 * P * T, loss),
], ids=["ParametricFit", "KaplanNFit", "KaplanNDFit", "ComputeFit"])
def test_constant_loss_is_a_clear_error(call):
    with pytest.raises(ValueError, match=r"loss is the same \(2\.5\) at all 12 points"):
        call(np.full(12, 2.5))


@pytest.mark.parametrize("cls,column", [(KaplanNFit, "params"), (KaplanDFit, "tokens")])
def test_kaplan_law_on_rising_loss_warns(cls, column):
    x = np.geomspace(1e6, 1e9, 8)
    with pytest.warns(ScalingFitWarning, match=f"rises with {column}"):
        fit = cls().fit(x, 2.0 * (x / 1e6) ** 0.03)
    assert fit.coef_[cls._names[1]] == pytest.approx(-0.03)


def test_kaplan_law_on_falling_loss_does_not_warn():
    x = np.geomspace(1e6, 1e9, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScalingFitWarning)
        KaplanNFit().fit(x, (8.8e13 / x) ** 0.076)


def test_compute_law_on_rising_loss_warns():
    c = np.geomspace(1e15, 1e22, 12)
    with pytest.warns(ScalingFitWarning, match="rises with flops"):
        ComputeFit().fit(c, 1.0 + 1e-3 * c**0.05)


def test_parametric_law_running_the_wrong_way_is_not_a_success():
    n = np.repeat(np.geomspace(1e6, 1e8, 4), 3)
    d = np.tile([1e7, 3e7, 1e8], 4)
    with pytest.warns(ScalingFitWarning, match="degenerate"):
        fit = ParametricFit(grid="small").fit(n, d, 1 + 1e-3 * n**0.3 + 0.1 * np.log(d))
    assert fit.success_ is False and "loss must fall with both N and D" in fit.message_
    text = fit.to_json()
    saved = json.loads(text, parse_constant=_no_constant)  # strict JSON
    assert saved["coef"]["G"] is None and saved["success"] is False
    assert np.isnan(ParametricFit.from_json(text).G_)


def test_allocation_overflow_is_inf_without_a_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = allocation_exponents(1e-3, 1e-3, 1e300, 1e-300)
    assert out["G"] == np.inf and out["a"] == 0.5


def test_infinite_setting_round_trips_through_strict_json():
    fit = KaplanNDFit(huber_delta=np.inf).fit(P, T, L)
    assert json.loads(fit.to_json(), parse_constant=_no_constant)["params"]["huber_delta"] == "inf"
    assert KaplanNDFit.from_json(fit.to_json()).huber_delta == np.inf


def test_series_in_another_order_give_the_same_fit():
    """Values are paired by index label, as pandas pairs them, not by position."""
    n = pd.Series(P, index=[f"run{i}" for i in range(P.size)])
    loss = pd.Series(L, index=n.index)
    shuffled = loss.sample(frac=1.0, random_state=0)
    assert not shuffled.index.equals(n.index)
    direct = KaplanNFit().fit(n, loss)
    assert KaplanNFit().fit(n, shuffled).alpha_N_ == pytest.approx(direct.alpha_N_, rel=1e-12)
    par = ParametricFit(grid="small").fit(n, pd.Series(T, index=n.index), shuffled)
    assert par.objective_ == pytest.approx(
        ParametricFit(grid="small").fit(P, T, L).objective_, rel=1e-9)


def test_series_with_different_labels_are_refused():
    n = pd.Series(P)
    loss = pd.Series(L, index=np.arange(P.size) + 100)
    with pytest.raises(ValueError, match="params and loss have different index labels"):
        KaplanNFit().fit(n, loss)
    # plain arrays pair by position, as before
    assert KaplanNFit().fit(n, L).alpha_N_ == KaplanNFit().fit(P, L).alpha_N_


def test_envelope_aligns_a_shuffled_run_series():
    curves = pd.DataFrame(training_curves(TRUE, np.geomspace(1e7, 3e9, 8), 1e21, n_points=20,
                                          seed=0))
    fit = EnvelopeFit(n_grid=200).fit(curves.params, curves.tokens, curves.loss, run=curves.run)
    run = curves.run.sample(frac=1.0, random_state=1)
    again = EnvelopeFit(n_grid=200).fit(curves.params, curves.tokens, curves.loss, run=run)
    assert again.a_ == pytest.approx(fit.a_, rel=1e-12)


def test_one_bootstrap_resample_is_refused():
    with pytest.raises(ValueError, match="n_bootstrap=1 cannot give an interval"):
        KaplanNFit(n_bootstrap=1).fit(P, L)


def test_size_overhead_is_zero_at_the_optimum_and_grows_either_side():
    from scalingkit.fit.allocation import size_overhead

    law = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    extra = size_overhead(law, 1e23, [0.5, 1.0, 2.0])
    assert extra[1] == pytest.approx(0.0, abs=1e-12)
    assert extra[0] > 0 and extra[2] > 0
    tiny = size_overhead(law, 1e23, [1e-6])  # too small to ever reach the optimal loss
    assert np.isinf(tiny[0])
