"""Input checks shared by every fitter.

Bad input raises a :class:`ValueError` that names the offending argument, so a
user sees "loss contains NaN or inf" rather than a traceback from deep inside
scipy. Nothing here uses ``assert``.
"""

from __future__ import annotations

import numpy as np


class NotFittedError(ValueError, AttributeError):
    """Raised when a fitted attribute or method is used before ``fit``."""


class ScalingFitWarning(UserWarning):
    """Warning category of the fitters (as scipy has ``OptimizeWarning``).

    Raised for results a caller should know about but that do not stop a fit:
    failed bootstrap resamples, budgets left out of an IsoFLOP fit, a fitted law
    that runs the wrong way. Filter exactly this category, for example
    ``warnings.simplefilter("ignore", ScalingFitWarning)``, instead of silencing
    every ``RuntimeWarning``.
    """


def as_positive_1d(name: str, values: object) -> np.ndarray:
    """Return ``values`` as a 1-D float array, checking it is finite and > 0.

    Parameters
    ----------
    name : str
        Argument name used in error messages (``"params"``, ``"tokens"``, ...).
    values : array_like
        The data.

    Returns
    -------
    numpy.ndarray
        1-D float64 copy of ``values``.

    Raises
    ------
    ValueError
        If the values are not numeric, not one-dimensional, empty, contain NaN
        or inf, or are zero or negative.
    """
    if values is None:
        raise ValueError(f"{name} is required")
    try:
        arr = np.array(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be positive (found zero or negative values)")
    return arr


def align_columns(**columns: object) -> dict[str, object]:
    """Put labelled columns (pandas Series) in the order of the first one's index.

    Arrays and lists are positional and pass through unchanged. Series whose
    indexes hold the same labels in another order are reordered to match the
    first Series, so that ``fit(n.sort_index(), loss)`` and ``fit(n, loss)``
    pair the same values; Series whose labels differ are refused rather than
    paired by position.

    Raises
    ------
    ValueError
        ``params and loss have different index labels``, or an index with
        repeated labels that is not identical to the first one.
    """
    labelled = [(k, v) for k, v in columns.items() if _is_series(v)]
    if len(labelled) < 2:
        return dict(columns)
    first_name, first = labelled[0]
    out = dict(columns)
    for name, series in labelled[1:]:
        if series.index.equals(first.index):
            continue
        same_labels = (series.index.is_unique and first.index.is_unique
                       and len(series.index) == len(first.index)
                       and series.index.isin(first.index).all())
        if not same_labels:
            raise ValueError(
                f"{first_name} and {name} have different index labels; align them "
                "(or pass plain arrays, which pair values by position)"
            )
        out[name] = series.reindex(first.index)
    return out


def _is_series(values: object) -> bool:
    """Whether ``values`` is one-dimensional and labelled (a pandas Series or Index-like)."""
    return hasattr(values, "index") and hasattr(values, "reindex") and getattr(
        values, "ndim", 0) == 1


def positive_columns(**columns: object) -> dict[str, np.ndarray]:
    """Validate named positive columns (:func:`as_positive_1d`) of one length.

    pandas Series are first aligned on their index (:func:`align_columns`).

    Raises
    ------
    ValueError
        As :func:`as_positive_1d` and :func:`align_columns`, or
        ``mismatched lengths: a=3, b=2``.
    """
    columns = align_columns(**columns)
    out = {name: as_positive_1d(name, values) for name, values in columns.items()}
    lengths = {name: arr.size for name, arr in out.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise ValueError(f"mismatched lengths: {detail}")
    return out


def check_data(n_params: int, **columns: object) -> dict[str, np.ndarray]:
    """Validate several equally long positive columns for a fit.

    Parameters
    ----------
    n_params : int
        Number of free parameters of the model; at least ``n_params + 1``
        points are required.
    **columns : array_like
        Named data columns, e.g. ``params=..., tokens=..., loss=...``.

    Returns
    -------
    dict of str to numpy.ndarray
        The validated columns, in the order given.
    """
    out = positive_columns(**columns)
    n = next(iter(out.values())).size
    if n < n_params + 1:
        raise ValueError(
            f"need at least {n_params + 1} points to fit {n_params} parameters, got {n}"
        )
    if "loss" in out:
        check_loss_varies(out["loss"])
    return out


def check_loss_varies(loss: np.ndarray, rtol: float = 1e-12) -> None:
    """Raise ValueError if ``loss`` (nats/token) is the same at every point.

    A scaling law describes how loss changes; from a constant loss every fitter
    would return meaningless exponents (0, NaN or infinite allocations).
    """
    if np.ptp(loss) <= rtol * np.max(np.abs(loss)):
        raise ValueError(
            f"loss is the same ({loss[0]:.6g}) at all {loss.size} points; a scaling law "
            "needs runs whose loss differs"
        )


def check_distinct(name: str, arr: np.ndarray, minimum: int = 2) -> None:
    """Raise ValueError if ``arr`` has fewer than ``minimum`` distinct values."""
    n_distinct = np.unique(arr).size
    if n_distinct < minimum:
        raise ValueError(
            f"{name} has {n_distinct} distinct value(s); at least {minimum} are needed "
            f"to identify its exponent"
        )


def check_delta(delta: float) -> float:
    """Validate a Huber threshold (positive, possibly ``inf`` for least squares)."""
    try:
        delta = float(delta)
    except (TypeError, ValueError):
        raise ValueError(f"huber_delta must be a number, got {delta!r}") from None
    if not delta > 0:
        raise ValueError(f"huber_delta must be positive, got {delta}")
    return delta


def check_bootstrap(n_bootstrap: int, confidence: float) -> tuple[int, float]:
    """Validate the bootstrap settings shared by the fitters."""
    if isinstance(n_bootstrap, bool) or int(n_bootstrap) != n_bootstrap or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    if n_bootstrap == 1:
        raise ValueError("n_bootstrap=1 cannot give an interval; use 0 (none) or at least 2")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return int(n_bootstrap), float(confidence)
