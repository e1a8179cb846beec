"""The fit figures in :mod:`scalingkit.plots` draw what they are given and return the Axes."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from scalingkit import plots
from scalingkit.fit import EnvelopeFit, ParametricFit
from scalingkit.fit.published import BESIROGLU_2024, HOFFMANN_2022
from scalingkit.fit.simulate import random_runs, training_curves


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_residuals_one_series_per_law():
    runs = random_runs(BESIROGLU_2024, 30, seed=0)
    laws = {"a": ParametricFit.from_coefficients(**BESIROGLU_2024),
            "b": ParametricFit.from_coefficients(**HOFFMANN_2022)}
    ax = plots.plot_log_residuals(laws, runs["params"], runs["tokens"], runs["loss"])
    assert len(ax.lines) == 3  # two laws and the zero line
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 0.0, atol=1e-12)  # exact law


def test_interval_panels_one_axis_per_name():
    table = pd.DataFrame({"source": ["x", "y", "x"], "name": ["a", "a", "b"],
                          "estimate": [0.5, 0.52, 0.49], "low": [0.4, np.nan, 0.45],
                          "high": [0.6, np.nan, 0.55]})
    axes = plots.plot_interval_panels(table)
    assert len(axes) == 2 and axes[0].get_xlabel() == "a"


@pytest.mark.parametrize("draw", [
    lambda: plots.plot_bootstrap_pair([1, 2, 3], [2, 4, 6], (2, 4), "x", "y"),
    lambda: plots.plot_allocations({"law": ParametricFit.from_coefficients(**BESIROGLU_2024)},
                                   np.geomspace(1e18, 1e22, 5), markers={"m": ([1e19], [1e8])}),
    lambda: plots.plot_start_objectives([1.0, 1.0 + 1e-9, 2.0, np.nan], 1.0),
    lambda: plots.plot_sensitivity([1, 2, 3], {"e": [0.5, 0.51, 0.52]}, truth=0.5, logx=True),
])
def test_plots_return_axes(draw):
    ax = draw()
    assert isinstance(ax, matplotlib.axes.Axes) and ax.lines


def test_training_envelope_plot():
    c = training_curves(BESIROGLU_2024, np.geomspace(1e7, 1e9, 5), 1e20, n_points=10)
    env = EnvelopeFit(n_grid=100).fit(c["params"], c["tokens"], c["loss"], run=c["run"])
    ax = plots.plot_training_envelope(c, (env.flops_grid_, env.loss_env_))
    assert len(ax.lines) == 6  # five curves and the envelope
