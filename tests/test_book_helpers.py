"""Package functions the chapters call instead of inline code."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from scalingkit import plots
from scalingkit.runs.optimum import allocation_fit


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_allocation_fit_recovers_exact_power_laws():
    c = np.geomspace(1e12, 1e15, 5)
    table = pd.DataFrame({"budget": c, "n_opt": 3.0 * c**0.6, "d_opt": 0.05 * c**0.4})
    law = allocation_fit(table)
    np.testing.assert_allclose([law.a, law.k, law.b, law.kd], [0.6, 3.0, 0.4, 0.05], rtol=1e-9)
    assert law.budgets == 5


def test_allocation_fit_reads_the_named_compute_column():
    c = np.geomspace(1e12, 1e15, 4)
    table = pd.DataFrame({"budget": [1.0, 2.0, 3.0, 4.0], "compute": c,
                          "n_opt": c**0.5, "d_opt": c**0.5 / 6})
    assert allocation_fit(table, flops="compute").a == pytest.approx(0.5)
    assert allocation_fit(table).a != pytest.approx(0.5)


@pytest.mark.parametrize("table, match", [
    (pd.DataFrame({"budget": [1e12, 1e12], "n_opt": [1e5, 2e5], "d_opt": [1e6, 2e6]}),
     "2 distinct budgets"),
    (pd.DataFrame({"budget": [1e12, 1e13], "n_opt": [1e5, 0.0], "d_opt": [1e6, 2e6]}),
     "finite and > 0"),
    (pd.DataFrame({"budget": [1e12, 1e13], "n_opt": [1e5, 2e5]}), "d_opt"),
])
def test_allocation_fit_rejects_bad_tables(table, match):
    with pytest.raises(ValueError, match=match):
        allocation_fit(table)


def test_prediction_outcome_draws_sweep_fits_and_outcome():
    runs = pd.DataFrame({"budget": [1e12, 1e12, 1e13, 1e13], "loss": [2.0, 2.1, 1.8, 1.9]})
    best = pd.DataFrame({"budget": [1e12, 1e13], "loss": [2.0, 1.8]})
    grid = np.geomspace(1e12, 1e14, 5)
    outcome = {"budget": 4e13, "max_fitted_budget": 1e13, "predicted_loss": 1.6,
               "predicted_loss_envelope": 1.7, "actual_loss": 1.72}
    ax = plots.plot_prediction_outcome(runs, best, grid, grid * 0 + 1.5, grid * 0 + 1.65,
                                       outcome, ax=plt.figure().gca())
    assert len(ax.collections) == 1  # the sweep's runs
    assert ax.collections[0].get_offsets().shape == (4, 2)
    # best per budget, two curves, three markers at the predicted budget, the fitted edge
    assert len(ax.lines) == 7
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 1.5)  # Approach 3 frontier
    np.testing.assert_allclose(ax.lines[2].get_ydata(), 1.65)  # L(C)
    np.testing.assert_allclose(ax.lines[5].get_xydata(), [[4e13, 1.72]])
    assert ax.lines[6].get_xdata()[0] == 1e13
    assert ax.get_xscale() == "log"
    assert len(ax.get_legend().get_texts()) == 7  # all but the fitted edge
