"""Scaling-law fitters: Chinchilla's three approaches and Kaplan's laws.

Estimators (scikit-learn habit: keyword-only settings, ``fit`` returns
``self``, fitted attributes end in ``_``, ``predict``, ``summary()``,
``to_json()`` / ``from_json()``):

=====================  ====================================================
:class:`ParametricFit`  Approach 3, ``L(N, D) = E + A/N^alpha + B/D^beta``
:class:`IsoFLOPFit`     Approach 2, IsoFLOP parabolas then ``N_opt = k C^a``
                        (per-budget rule: :func:`isoflop_optima`)
:class:`EnvelopeFit`    Approach 1, lower envelope of training curves
:class:`KaplanNFit`     ``L(N) = (N_c/N)^alpha_N``
:class:`KaplanDFit`     ``L(D) = (D_c/D)^alpha_D``
:class:`KaplanNDFit`    ``L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D``
:class:`ComputeFit`     ``L(C) = a C^b + c``
=====================  ====================================================

Units: N in parameters, D in tokens, C in FLOP, L in nats/token.
"""

from scalingkit.fit._validation import NotFittedError, ScalingFitWarning
from scalingkit.fit.allocation import allocation_exponents, compute_optimal_allocation
from scalingkit.fit.envelope import EnvelopeFit
from scalingkit.fit.isoflop import IsoFLOPFit, fit_isoflop
from scalingkit.fit.objective import huber_objective, initial_grid
from scalingkit.fit.optim import batched_lbfgs, huber
from scalingkit.fit.optimum_rule import group_budgets, isoflop_optima
from scalingkit.fit.parametric import ParametricFit, fit_parametric
from scalingkit.fit.power_laws import ComputeFit, KaplanDFit, KaplanNDFit, KaplanNFit
from scalingkit.fit.stats import percentile_ci, relative_error

#: Every estimator, for the shared contract test and the CLI.
ESTIMATORS = (
    ParametricFit, IsoFLOPFit, EnvelopeFit, KaplanNFit, KaplanDFit, KaplanNDFit, ComputeFit,
)

__all__ = [
    "ESTIMATORS", "ComputeFit", "EnvelopeFit", "IsoFLOPFit", "KaplanDFit", "KaplanNDFit",
    "KaplanNFit", "NotFittedError", "ParametricFit", "ScalingFitWarning",
    "allocation_exponents", "batched_lbfgs", "compute_optimal_allocation",
    "fit_isoflop", "fit_parametric", "group_budgets", "huber", "huber_objective",
    "initial_grid", "isoflop_optima", "percentile_ci", "relative_error",
]
