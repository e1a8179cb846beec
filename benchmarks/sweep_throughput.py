"""Throughput of the quick IsoFLOP sweep: sequential (one process, all threads) vs pool.

Runs the same plan twice in one invocation, into two fresh temporary run
stores: first with the sequential executor (one process using every core as
torch threads), then with the process pool (one worker per core, one thread
each). Prints both wall times, the training FLOP per second of each, and as
its last line ``pool_speedup=<sequential seconds / pool seconds>``.

Usage::

    python benchmarks/sweep_throughput.py [--preset quick] [--workers W] [--budgets C ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from scalingkit.executors import available_cores, plan_workers
from scalingkit.sweep import plan_sweep, preset, provenance, run_sweep


def timed_sweep(plan, executor: str, workers: int | None) -> float:
    """Wall time (seconds) of training every run of ``plan`` into a fresh store."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        store = run_sweep(plan, out, executor=executor, workers=workers, progress=False)
        elapsed = time.perf_counter() - start
        counts = store.counts()
    if counts["done"] + counts["diverged"] != len(plan.runs):
        raise RuntimeError(f"{executor} sweep did not finish: {counts}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--budgets", type=float, nargs="+", default=None,
                        help="replace the preset's budgets (FLOP) for a shorter smoke run")
    args = parser.parse_args()
    overrides = {"budgets": tuple(args.budgets)} if args.budgets else {}
    plan = plan_sweep(preset(args.preset, **overrides))
    cores = available_cores()
    workers, threads = plan_workers(len(plan.runs), workers=args.workers)
    print(f"{provenance()['cpu']}, {cores} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{len(plan.runs)} runs, {plan.total_flops:.3g} training FLOP")
    seq = timed_sweep(plan, "sequential", None)
    print(f"sequential (1 process x {cores} threads): {seq:.1f} s, "
          f"{plan.total_flops / seq / 1e9:.2f} GFLOP/s")
    pool = timed_sweep(plan, "pool", args.workers)
    print(f"pool ({workers} processes x {threads} threads): {pool:.1f} s, "
          f"{plan.total_flops / pool / 1e9:.2f} GFLOP/s")
    print(f"pool_speedup={seq / pool:.3f}")


if __name__ == "__main__":
    main()
