"""Studies: one module or sub-package per paper or experiment the book reproduces.

Each builds on :mod:`scalingkit.core`, :mod:`scalingkit.runs` and
:mod:`scalingkit.fit`; only the CLI and the chapters import a study.
"""
