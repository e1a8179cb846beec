"""Batched versus sequential multi-start fitting of Chinchilla's Approach 3.

On the 240 points of Besiroglu et al. (2024) (Hoffmann et al.'s Figure 4 runs,
the 5 highest-loss runs dropped), the 4500-start grid of initial values is
fitted two ways in the same process:

* sequential: one ``scipy.optimize.minimize(method="L-BFGS-B")`` call per start
  with the analytic gradient and scipy's default tolerances, in the paper's
  parametrisation ``(a, b, e, alpha, beta)``, as a Python loop;
* batched: :class:`scalingkit.fit.ParametricFit` (all starts in one batched
  L-BFGS, then the best five polished).

By default the sequential loop is timed on a random subset of starts and its
time scaled to the full grid (said so in the output); ``--sequential-starts
4500`` runs all of them. The last line is
``speedup=<x> objective_batched=<f> objective_sequential=<f>``.

Run: ``python benchmarks/fit_speed.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalingkit.fit import ParametricFit, huber_objective, initial_grid
from scalingkit.fit.data import drop_highest_loss

DATA = Path(__file__).resolve().parents[1] / "book" / "data" / "chinchilla_fig4_points.csv"


def sequential(grid: np.ndarray, logs: tuple[np.ndarray, ...], delta: float = 1e-3):
    """Best objective over a Python loop of scipy L-BFGS-B calls, and the seconds taken."""

    def single(x: np.ndarray):
        f, g = huber_objective(x[None, :], *logs, delta)
        return float(f[0]), g[0]

    start = time.perf_counter()
    best = np.inf
    for x0 in grid:
        res = minimize(single, x0, jac=True, method="L-BFGS-B")
        if np.isfinite(res.fun):
            best = min(best, float(res.fun))
    return best, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequential-starts", type=int, default=500,
                        help="starts timed in the sequential loop (default 500 of 4500)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    frame = drop_highest_loss(pd.read_csv(DATA), 5)
    cols = [frame[c].to_numpy(float) for c in ("params", "tokens", "loss")]
    grid = initial_grid("full")
    n_seq = min(max(args.sequential_starts, 1), len(grid))
    rng = np.random.default_rng(args.seed)
    subset = grid if n_seq == len(grid) else grid[rng.choice(len(grid), n_seq, replace=False)]

    start = time.perf_counter()
    fit = ParametricFit(grid="full").fit(*cols)
    t_batched = time.perf_counter() - start
    print(f"batched: {len(grid)} starts in {t_batched:.2f} s, objective {fit.objective_:.10e}, "
          f"{fit.n_converged_} starts converged")

    obj_seq, t_seq = sequential(subset, tuple(np.log(c) for c in cols))
    t_seq_full = t_seq * len(grid) / n_seq
    scaled = "" if n_seq == len(grid) else f" (timed on {n_seq} random starts, scaled)"
    print(f"sequential: {len(grid)} starts in {t_seq_full:.1f} s{scaled}, "
          f"best objective {obj_seq:.10e}")
    print(f"speedup={t_seq_full / t_batched:.1f} objective_batched={fit.objective_:.12e} "
          f"objective_sequential={obj_seq:.12e}")


if __name__ == "__main__":
    main()
