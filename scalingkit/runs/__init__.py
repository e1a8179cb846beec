"""Runs: the run store, sweeps and the executors that train them, and reading results.

Builds on :mod:`scalingkit.core` (and the estimators of :mod:`scalingkit.fit`);
nothing here imports a study, the figures or the CLI.
"""
