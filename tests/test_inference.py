"""Inference-aware allocation (Sardana et al. 2023) against a brute-force search."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalingkit.fit import ParametricFit
from scalingkit.studies.inference import (
    allocation_table,
    compute_optimal_loss,
    inference_optimal,
    law_coefficients,
    tokens_for_loss,
)

LAW = {"E": 1.82, "A": 478.0, "B": 2143.0, "alpha": 0.347, "beta": 0.367}
LAW_SYMMETRIC = {"E": 1.5, "A": 300.0, "B": 300.0, "alpha": 0.3, "beta": 0.3}


def brute_force(law, loss, d_inf):
    """Least training + inference FLOP over a dense grid of N (parameters)."""
    n_min = (law["A"] / (loss - law["E"])) ** (1 / law["alpha"])
    n = n_min * np.exp(np.linspace(1e-7, 12, 400_001))
    gap = loss - law["E"] - law["A"] / n ** law["alpha"]
    d = (law["B"] / gap) ** (1 / law["beta"])
    total = 6 * n * d + 2 * n * d_inf
    i = int(np.argmin(total))
    return n[i], d[i], total[i]


@pytest.mark.parametrize("law", [LAW, LAW_SYMMETRIC])
@pytest.mark.parametrize("budget", [1e18, 1e22])
@pytest.mark.parametrize("inference_ratio", [0.0, 1.0, 30.0, 1000.0])
def test_matches_brute_force(law, budget, inference_ratio):
    loss = compute_optimal_loss(law, budget)
    base = inference_optimal(law, loss, 0.0)
    d_inf = inference_ratio * base.tokens
    got = inference_optimal(law, loss, d_inf)
    n, d, total = brute_force(law, loss, d_inf)
    assert got.total_flops == pytest.approx(total, rel=1e-7)
    assert got.total_flops <= total * (1 + 1e-12)
    assert got.params == pytest.approx(n, rel=2e-3)
    assert got.tokens == pytest.approx(d, rel=2e-3)
    assert tokens_for_loss(law, got.params, loss) == pytest.approx(got.tokens, rel=1e-12)


@pytest.mark.parametrize("budget", [1e19, 1e21, 5.76e23])
def test_no_inference_is_chinchilla_optimal(budget):
    fit = ParametricFit.from_coefficients(**LAW)
    n_opt, d_opt = fit.optimal_allocation([budget])
    got = inference_optimal(fit, compute_optimal_loss(fit, budget), 0.0)
    assert got.params == pytest.approx(n_opt[0], rel=1e-5)
    assert got.tokens == pytest.approx(d_opt[0], rel=1e-5)
    assert got.train_flops == pytest.approx(budget, rel=1e-9)


def test_more_inference_means_smaller_model_more_tokens():
    table = allocation_table(LAW, 1e21, [0, 1e10, 1e11, 1e12, 1e13])
    assert np.all(np.diff(table["params"]) < 0)
    assert np.all(np.diff(table["tokens_per_param"]) > 0)
    assert table["saving"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(table["saving"] >= -1e-12)
    assert np.allclose(table["loss"], table["loss"].iloc[0])


def test_too_small_model_never_reaches_loss():
    loss = compute_optimal_loss(LAW, 1e20)
    n_min = (LAW["A"] / (loss - LAW["E"])) ** (1 / LAW["alpha"])
    assert math.isinf(tokens_for_loss(LAW, 0.99 * n_min, loss))


@pytest.mark.parametrize(
    ("law", "loss", "d_inf", "match"),
    [
        (LAW, 1.8, 0.0, "irreducible"),
        (LAW, math.nan, 0.0, "irreducible"),
        (LAW, 2.5, -1.0, "inference_tokens"),
        (LAW, 2.5, math.inf, "inference_tokens"),
        ({"E": 1.0, "A": 1.0, "B": 1.0, "alpha": 0.3}, 2.5, 0.0, "beta"),
        ({**LAW, "A": -1.0}, 2.5, 0.0, "positive"),
    ],
)
def test_bad_input(law, loss, d_inf, match):
    with pytest.raises(ValueError, match=match):
        inference_optimal(law, loss, d_inf)


def test_coefficients_from_fitted_estimator():
    fit = ParametricFit.from_coefficients(**LAW)
    assert law_coefficients(fit) == pytest.approx(LAW)
    with pytest.raises(ValueError, match="flops"):
        compute_optimal_loss(LAW, -1.0)


def test_plot_draws():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scalingkit import plots

    base = inference_optimal(LAW, compute_optimal_loss(LAW, 1e21), 0.0)
    table = allocation_table(LAW, 1e21, [0.0, base.tokens, 10 * base.tokens])
    ax = plots.plot_inference_allocation(table)
    assert len(ax.lines) == 2  # the curve and the D/N = 20 line
    plt.close("all")
