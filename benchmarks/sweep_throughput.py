"""Throughput of an IsoFLOP sweep: sequential (one process, all threads) vs the process pool.

Trains the same plan with the sequential executor (one process using every
core as torch threads) and with the process pool (one worker per core, one
thread each), each into a fresh temporary run store, ``--repeats`` times. The
repeats are interleaved (sequential, pool, then pool, sequential, ...) so that
a change in the machine's load during the run hits both alike. Prints the best
and the median wall time of each, their training FLOP per second, and as its
last line ``pool_speedup=<x> pool_speedup_best=<x>``: the ratio of the
sequential executor's seconds to the pool's, of the medians and of the bests.

Usage::

    python benchmarks/sweep_throughput.py [--preset quick] [--workers W] [--budgets C ...]
                                          [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from scalingkit.runs.executors import available_cores, plan_workers
from scalingkit.runs.sweep import plan_sweep, preset, provenance, run_sweep


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
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed sweeps per executor, interleaved (default 3)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    overrides = {"budgets": tuple(args.budgets)} if args.budgets else {}
    plan = plan_sweep(preset(args.preset, **overrides))
    cores = available_cores()
    workers, threads = plan_workers(len(plan.runs), workers=args.workers)
    print(f"{provenance()['cpu']}, {cores} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{len(plan.runs)} runs, {plan.total_flops:.3g} training FLOP, "
          f"{args.repeats} interleaved repeats")
    times: dict[str, list[float]] = {"sequential": [], "pool": []}
    for r in range(args.repeats):
        order = ("sequential", "pool") if r % 2 == 0 else ("pool", "sequential")
        for executor in order:
            times[executor].append(
                timed_sweep(plan, executor, args.workers if executor == "pool" else None))
    labels = {"sequential": f"sequential (1 process x {cores} threads)",
              "pool": f"pool ({workers} processes x {threads} threads)"}
    for executor, label in labels.items():
        best, median = min(times[executor]), statistics.median(times[executor])
        print(f"{label}: best {best:.1f} s, median {median:.1f} s "
              f"({plan.total_flops / median / 1e9:.2f} GFLOP/s at the median); "
              f"all: {', '.join(f'{t:.1f}' for t in times[executor])} s")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    seq, pool = times["sequential"], times["pool"]
    print(f"pool_speedup={statistics.median(seq) / statistics.median(pool):.3f} "
          f"pool_speedup_best={min(seq) / min(pool):.3f}")


if __name__ == "__main__":
    main()
