"""Summaries shared by the fitters and their callers: one home each.

* :func:`percentile_ci`: the equal-tailed bootstrap percentile interval;
* :func:`relative_error`: ``|estimate - reference| / reference``.
"""

from __future__ import annotations

import math

import numpy as np


def percentile_ci(values: np.ndarray, confidence: float) -> list[float]:
    """Equal-tailed percentile interval of ``values`` at level ``confidence``.

    The tails are rounded to 12 decimals, so that ``confidence=0.95`` asks for
    exactly the 2.5th and 97.5th percentiles (``100 * (1 - 0.95) / 2`` is
    ``2.500000000000002`` in floating point, which moves the interpolated ends).
    """
    tail = round(50 * (1 - confidence), 12)
    return [float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))]


def relative_error(estimate: float, reference: float) -> float:
    """``|estimate - reference| / reference`` (dimensionless).

    Raises
    ------
    ValueError
        Unless both are finite and ``reference > 0``.
    """
    if not (math.isfinite(reference) and reference > 0 and math.isfinite(estimate)):
        raise ValueError(f"relative_error needs finite values with reference > 0, got "
                         f"estimate={estimate!r}, reference={reference!r}")
    return abs(estimate - reference) / reference
