"""The contract every fitter follows (scikit-learn habit).

* ``__init__`` takes keyword-only settings and only stores them;
* ``fit(...)`` validates its data, fits, and returns ``self``;
* fitted results are attributes ending in ``_`` (``coef_`` holds them all, and
  each coefficient is also an attribute, e.g. ``alpha_``);
* ``summary()`` gives a readable table, ``to_json()`` / ``from_json()`` round-trip;
* using an unfitted estimator raises :class:`NotFittedError`;
* ``n_bootstrap > 0`` adds percentile intervals ``ci_`` from refits on
  resampled runs (a warning is issued when resamples fail).
"""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np

from scalingkit.fit._validation import NotFittedError, ScalingFitWarning, check_bootstrap
from scalingkit.fit.stats import percentile_ci


def plain_json(value: object, non_finite: str = "null") -> object:
    """Copy ``value`` as plain Python types that strict JSON can hold.

    numpy arrays and scalars become lists and numbers. JSON has no NaN or
    infinity: a non-finite float becomes ``None`` (``non_finite="null"``, for
    results: "no value") or the string ``"inf"``, ``"-inf"``, ``"nan"``
    (``non_finite="string"``, for settings such as ``huber_delta=inf``, which
    ``float()`` reads back).
    """
    if isinstance(value, np.ndarray):
        return [plain_json(v, non_finite) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None if non_finite == "null" else str(value)
    if isinstance(value, dict):
        return {str(k): plain_json(v, non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v, non_finite) for v in value]
    return value


def _float_setting(value: object) -> object:
    """Read back a setting written by ``plain_json(..., "string")``."""
    return float(value) if value in ("inf", "-inf", "nan") else value


class BaseFit:
    """Shared machinery; subclasses implement ``_solve`` and ``fit``."""

    #: Names of fitted scalars (besides the coefficients) saved by ``to_json``.
    _extra_attrs: tuple[str, ...] = ("success_", "message_", "n_points_")
    #: One-line description used by ``summary``.
    _title: str = ""

    # ------------------------------------------------------------------ params
    def get_params(self) -> dict[str, object]:
        """Return the constructor settings as a dict (scikit-learn style)."""
        names = [
            p.name
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]
        return {name: getattr(self, name) for name in names}

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params().items() if not isinstance(v, np.ndarray)
        )
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ state
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(...) first"
            )

    def _set_coef(self, coef: dict[str, float]) -> None:
        self.coef_ = {k: float(v) for k, v in coef.items()}
        for name, value in self.coef_.items():
            setattr(self, f"{name}_", value)

    # -------------------------------------------------------------- bootstrap
    def _solve(self, data: dict[str, np.ndarray]) -> dict[str, float]:
        """Fit ``data`` and return the coefficients (sets no attributes)."""
        raise NotImplementedError

    def _resample(self, data: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Row indices of one bootstrap resample (default: rows with replacement)."""
        n = next(iter(data.values())).size
        return rng.integers(0, n, size=n)

    def _bootstrap(self, data: dict[str, np.ndarray]) -> None:
        n_boot, confidence = check_bootstrap(self.n_bootstrap, self.confidence)
        self.ci_ = None
        self.bootstrap_ = None
        if n_boot == 0:
            return
        rng = np.random.default_rng(self.random_state)
        samples = []
        for _ in range(n_boot):
            idx = self._resample(data, rng)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    samples.append(self._solve({k: v[idx] for k, v in data.items()}))
                except (ValueError, RuntimeError, np.linalg.LinAlgError):
                    continue
        self._store_bootstrap(samples, n_boot, confidence)

    def _store_bootstrap(
        self, samples: list[dict[str, float]], n_boot: int, confidence: float
    ) -> None:
        # A resample whose solution is not finite (e.g. a vertex at infinity) failed too.
        samples = [s for s in samples if all(np.isfinite(v) for v in s.values())]
        n_failed = n_boot - len(samples)
        if len(samples) < 2:
            warnings.warn(
                f"bootstrap intervals cannot be estimated: {n_failed} of {n_boot} "
                f"resamples failed to fit, leaving {len(samples)} (at least 2 are needed)",
                ScalingFitWarning,
                stacklevel=3,
            )
            self.ci_ = None
            self.bootstrap_ = None
            return
        if n_failed:
            warnings.warn(
                f"{n_failed} of {n_boot} bootstrap resamples failed to fit and were dropped",
                ScalingFitWarning,
                stacklevel=3,
            )
        names = list(samples[0])
        self.bootstrap_ = {k: np.array([s[k] for s in samples]) for k in names}
        self.ci_ = {k: percentile_ci(v, confidence) for k, v in self.bootstrap_.items()}

    # ------------------------------------------------------------- reporting
    def summary(self) -> str:
        """Return a plain-text table of the fitted coefficients and intervals."""
        self._check_fitted()
        lines = [f"{type(self).__name__}: {self._title}"]
        ci = getattr(self, "ci_", None)
        if ci:
            level = round(100 * self.confidence)
            lines.append(f"{'':>10}  {'estimate':>12}  {f'{level}% interval':>27}")
        for name, value in self.coef_.items():
            row = f"{name:>10}  {value:12.5g}"
            if ci and name in ci:
                row += f"  [{ci[name][0]:12.5g}, {ci[name][1]:12.5g}]"
            lines.append(row)
        for attr in self._extra_attrs:
            value = getattr(self, attr, None)
            if value is not None:
                shown = f"{value:.6g}" if isinstance(value, float) else str(value)
                lines.append(f"{attr[:-1]:>10}  {shown}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """Settings, coefficients, intervals and fit diagnostics as plain types."""
        self._check_fitted()
        extra = {a[:-1]: plain_json(getattr(self, a, None)) for a in self._extra_attrs}
        return {
            "estimator": type(self).__name__,
            "params": plain_json(self.get_params(), non_finite="string"),
            "coef": plain_json(self.coef_),
            "ci": plain_json(getattr(self, "ci_", None)),
            **extra,
        }

    def to_json(self, **kwargs: object) -> str:
        """Serialise the fitted estimator as strict JSON (see :meth:`from_json`).

        A coefficient that is not finite (an undefined allocation) is written
        as ``null``; an infinite setting (``huber_delta=inf``) as ``"inf"``.
        """
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_json(cls, text: str) -> BaseFit:
        """Rebuild a fitted estimator written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("estimator") != cls.__name__:
            found = data.get("estimator") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"JSON holds a {found!r}, not a {cls.__name__}")
        params = {k: _float_setting(v) for k, v in dict(data.get("params", {})).items()}
        obj = cls(**params)
        obj._set_coef({k: np.nan if v is None else v for k, v in data["coef"].items()})
        obj.ci_ = data.get("ci")
        for attr in cls._extra_attrs:
            value = data.get(attr[:-1])
            setattr(obj, attr, value)
        return obj
