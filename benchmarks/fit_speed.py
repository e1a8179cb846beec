"""Batched versus sequential multi-start fitting of Chinchilla's Approach 3.

On the 240 points of Besiroglu et al. (2024) (Hoffmann et al.'s Figure 4 runs,
the 5 highest-loss runs dropped), one grid of initial values (by default the
4500-start grid of Hoffmann et al.) is fitted in the same process by

* batched: :class:`scalingkit.fit.ParametricFit` (all starts in one batched
  L-BFGS, then the best five polished), one process;
* sequential: one ``scipy.optimize.minimize(method="L-BFGS-B")`` call per start
  with the analytic gradient and scipy's default tolerances, in the paper's
  parametrisation ``(a, b, e, alpha, beta)``, as a Python loop, one process;
* the ``chinchilla`` package (Takano, PyPI ``chinchilla``), when it is
  importable: its ``Chinchilla.fit`` on the same points and the same grid, with
  the paper's loss (Huber, delta 1e-3, on log loss), in its own settings
  (scipy BFGS with numerical gradients, extended precision, a process pool
  over every core); its plotting after the fit is switched off and not timed.

Every objective printed is the same one, the sum of Huber losses of the log-loss
residuals (:func:`scalingkit.fit.huber_objective`) at each method's estimate,
so lower is better whichever code found it.

By default every start of the sequential loop is run. ``--sequential-starts K``
times a random subset of K starts instead; the loop's time is then scaled to
the whole grid, its objective is the best of those K starts only, and the last
line says so with ``sequential_extrapolated_from=K``. The last line is
``speedup=<x> objective_batched=<f> objective_sequential=<f>`` followed by
``vs_chinchilla_pkg=<x> objective_chinchilla_pkg=<f>`` when the package is there
(``<x>``: the other method's seconds over the batched fit's).

Run: ``python benchmarks/fit_speed.py`` (minutes: the sequential loop takes
about 4500 times one scipy fit). ``--grid small`` (243 starts) is a quick smoke run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalingkit.fit import ParametricFit, huber_objective, initial_grid
from scalingkit.fit.objective import coef_to_theta
from scalingkit.fit.points import drop_highest_loss

DATA = Path(__file__).resolve().parents[1] / "book" / "data" / "chinchilla_fig4_points.csv"
DELTA = 1e-3
THETA_KEYS = ("a", "b", "e", "alpha", "beta")  # the column order of initial_grid


def objective(coef: dict[str, float], logs: tuple[np.ndarray, ...]) -> float:
    """Sum of Huber losses (delta 1e-3) of log-loss residuals of ``E + A/N^alpha + B/D^beta``."""
    theta = coef_to_theta(*(float(coef[k]) for k in ("E", "A", "B", "alpha", "beta")))
    return float(huber_objective(theta[None, :], *logs, DELTA)[0][0])


def sequential(grid: np.ndarray, logs: tuple[np.ndarray, ...]) -> tuple[float, float]:
    """Best objective over a Python loop of scipy L-BFGS-B calls, and the seconds taken."""

    def single(x: np.ndarray):
        f, g = huber_objective(x[None, :], *logs, DELTA)
        return float(f[0]), g[0]

    start = time.perf_counter()
    best = np.inf
    for x0 in grid:
        res = minimize(single, x0, jac=True, method="L-BFGS-B")
        if np.isfinite(res.fun):
            best = min(best, float(res.fun))
    return best, time.perf_counter() - start


def chinchilla_package(frame: pd.DataFrame, grid: np.ndarray) -> tuple[dict, float] | None:
    """Fit with the ``chinchilla`` package on the same points and grid; None if absent.

    Returns its estimate (``E, A, B, alpha, beta``) and the seconds ``fit`` took.
    """
    try:
        from chinchilla import Chinchilla
        from chinchilla._metrics import log_huber
    except ImportError:
        return None

    def paper_loss(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return log_huber(y_true, y_pred, delta=DELTA)

    # Our grid is a product of per-axis values; give the package the same axes.
    axes = {k: tuple(np.unique(grid[:, i]).tolist()) for i, k in enumerate(THETA_KEYS)}
    param_grid = {k: axes[k] for k in ("e", "a", "b", "alpha", "beta")}
    with tempfile.TemporaryDirectory() as project:
        cc = Chinchilla(project_dir=project, param_grid=param_grid, loss_fn=paper_loss,
                        log_level=40)  # no model search: only its fit is used here
        cc.database.df = pd.DataFrame({"C": 6 * frame.params * frame.tokens, "N": frame.params,
                                       "D": frame.tokens, "loss": frame.loss})
        cc.visualizer.optim = lambda *args, **kwargs: None  # its plot is not part of the fit
        start = time.perf_counter()
        cc.fit(parallel=True)
        seconds = time.perf_counter() - start
    return cc.get_params(), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", choices=["full", "small"], default="full",
                        help="initial values: 4500 starts (default) or 243 (smoke run)")
    parser.add_argument("--sequential-starts", type=int, default=None, metavar="K",
                        help="time only K random starts of the sequential loop and scale its "
                             "time to the grid (default: every start)")
    parser.add_argument("--no-chinchilla", action="store_true",
                        help="skip the chinchilla package even if it is installed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    frame = drop_highest_loss(pd.read_csv(DATA), 5)
    cols = [frame[c].to_numpy(float) for c in ("params", "tokens", "loss")]
    logs = tuple(np.log(c) for c in cols)
    grid = initial_grid(args.grid)
    n_seq = len(grid) if args.sequential_starts is None else min(max(args.sequential_starts, 1),
                                                                  len(grid))
    rng = np.random.default_rng(args.seed)
    subset = grid if n_seq == len(grid) else grid[rng.choice(len(grid), n_seq, replace=False)]
    print(f"{len(frame)} points, {len(grid)} starts; {os.cpu_count()} logical CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")

    start = time.perf_counter()
    fit = ParametricFit(grid=grid).fit(*cols)
    t_batched = time.perf_counter() - start
    obj_batched = objective(fit.coef_, logs)
    print(f"batched (1 process): {t_batched:.2f} s, objective {obj_batched:.10e}, "
          f"{fit.n_converged_} of {len(grid)} starts converged")

    obj_seq, t_seq = sequential(subset, logs)
    t_seq_full = t_seq * len(grid) / n_seq
    scaled = "" if n_seq == len(grid) else (
        f" (extrapolated from {n_seq} random starts timed, {t_seq:.1f} s; the objective is "
        f"the best of those {n_seq} only)")
    print(f"sequential scipy L-BFGS-B loop (1 process): {t_seq_full:.1f} s, "
          f"best objective {obj_seq:.10e}{scaled}")
    summary = (f"speedup={t_seq_full / t_batched:.1f} objective_batched={obj_batched:.12e} "
               f"objective_sequential={obj_seq:.12e}")
    if n_seq != len(grid):
        summary += f" sequential_extrapolated_from={n_seq}"

    pkg = None if args.no_chinchilla else chinchilla_package(frame, grid)
    if pkg is None:
        print("chinchilla package: not timed (not installed, or --no-chinchilla)")
    else:
        coef, t_pkg = pkg
        obj_pkg = objective(coef, logs)
        print(f"chinchilla package (BFGS, pool of {os.cpu_count()} processes): {t_pkg:.1f} s, "
              f"objective {obj_pkg:.10e}, E={coef['E']:.4g} A={coef['A']:.4g} "
              f"B={coef['B']:.4g} alpha={coef['alpha']:.4g} beta={coef['beta']:.4g}")
        summary += (f" vs_chinchilla_pkg={t_pkg / t_batched:.1f}"
                    f" objective_chinchilla_pkg={obj_pkg:.12e}")
    print(summary)


if __name__ == "__main__":
    main()
