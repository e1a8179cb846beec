"""Building blocks of :class:`~scalingkit.core.data.hmm.HMMSource`: checked parameters,
random sparse rows, row-stochastic matrices and the irreducibility test.

Units: probabilities; exponents are dimensionless.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

__all__ = ["ROW_TOL", "check_exponent", "check_int", "check_irreducible_aperiodic",
           "distinct_rows", "padded_cdf", "stochastic", "weighted_rows", "zipf_weights"]

#: Rows must sum to 1 within this tolerance before they are renormalised.
ROW_TOL = 1e-9


def check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    """``value`` as an int if it is one in ``[lo, hi]``; else a ``ValueError`` naming it."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def check_exponent(name: str, value) -> float:
    """``value`` as a float if it is a finite number >= 0; else a ``ValueError`` naming it."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Probabilities proportional to ``rank^-exponent`` for ranks 1..n."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def distinct_rows(rng: np.random.Generator, n_rows: int, k: int, high: int) -> np.ndarray:
    """``(n_rows, k)`` integers in ``[0, high)``, distinct within each row."""
    out = rng.integers(0, high, size=(n_rows, k))
    while True:
        s = np.sort(out, axis=1)
        bad = (s[:, 1:] == s[:, :-1]).any(axis=1)
        if not bad.any():
            return out
        out[bad] = rng.integers(0, high, size=(int(bad.sum()), k))


def weighted_rows(rng: np.random.Generator, n_rows: int, k: int,
                   weights: np.ndarray) -> np.ndarray:
    """``(n_rows, k)`` indices of ``weights``, distinct within each row, each row a
    draw without replacement with probabilities proportional to ``weights``, in random
    order within the row (Gumbel top-``k``)."""
    keys = np.log(weights)[None, :] + rng.gumbel(size=(n_rows, weights.size))
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]  # the k largest keys
    return rng.permuted(top, axis=1)


def stochastic(name: str, matrix) -> sparse.csr_array:
    """``matrix`` as a CSR array with exact unit row sums; ``ValueError`` if it is not
    a finite, nonnegative, row-stochastic 2-D matrix."""
    if not sparse.issparse(matrix):
        matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or min(matrix.shape) < 1:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {matrix.shape}")
    m = sparse.csr_array(matrix, dtype=np.float64)
    if not np.isfinite(m.data).all():
        raise ValueError(f"{name} has non-finite entries")
    if (m.data < 0).any():
        raise ValueError(f"{name} has negative entries")
    m.eliminate_zeros()
    sums = m.sum(axis=1)
    if np.abs(sums - 1).max() > ROW_TOL:
        row = int(np.argmax(np.abs(sums - 1)))
        raise ValueError(f"{name} rows must sum to 1; row {row} sums to {sums[row]!r}")
    m.data /= np.repeat(sums, np.diff(m.indptr))
    return m


def check_irreducible_aperiodic(transition: sparse.csr_array) -> None:
    """``ValueError`` unless the chain's graph is strongly connected with period 1.

    The period is the gcd over edges ``u -> v`` of ``d(u) + 1 - d(v)``, with ``d`` the
    breadth-first distance from state 0.
    """
    n_comp, _ = csgraph.connected_components(transition, directed=True, connection="strong")
    if n_comp > 1:
        raise ValueError(f"transition: the chain is reducible ({n_comp} strongly connected "
                         "components); every state must reach every other")
    dist = csgraph.shortest_path(transition, indices=0, unweighted=True).astype(np.int64)
    coo = transition.tocoo()
    period = int(np.gcd.reduce(np.abs(dist[coo.row] + 1 - dist[coo.col])))
    if period != 1:
        raise ValueError(f"transition: the chain is periodic with period {period}; "
                         "it must be aperiodic")


def padded_cdf(m: sparse.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """Each row's cumulative probabilities and columns, padded to the longest row.

    Every row's last real entry is set to exactly 1 and the padding repeats it, so
    ``(cdf[r] < u).sum()`` for ``u`` in [0, 1) is always a real entry of row ``r``.
    """
    counts = np.diff(m.indptr)
    width = int(counts.max())
    pos = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)  # position within the row
    rows = np.repeat(np.arange(m.shape[0]), counts)
    probs = np.zeros((m.shape[0], width))
    probs[rows, pos] = m.data
    cdf = np.cumsum(probs, axis=1)
    cdf[np.arange(width) >= counts[:, None] - 1] = 1.0
    cols = np.zeros((m.shape[0], width), dtype=np.int64)
    cols[rows, pos] = m.indices
    last = cols[np.arange(m.shape[0]), counts - 1]
    cols = np.where(np.arange(width) < counts[:, None], cols, last[:, None])
    return cdf, cols
