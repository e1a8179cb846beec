"""Porian et al. (2024): the Kaplan/Chinchilla discrepancy, one rung at a time.

=============  ==============================================================
``plan``       the ladder (:data:`STEPS`, :class:`PorianStep`), :func:`plan_step`,
               :func:`tuned_hyperparameters`: each rung an IsoFLOP sweep
``analysis``   :func:`step_frame`, :func:`optimum_table`, :func:`fit_exponent`,
               :func:`exponent_table`, :func:`counting_experiment`, :func:`head_share`
``throughput`` :func:`measure_throughput`, :func:`estimate_seconds`
=============  ==============================================================
"""

from scalingkit.studies.porian2024.analysis import (
    METHODS,
    counting_experiment,
    exponent_table,
    fit_exponent,
    head_share,
    optimum_table,
    step_frame,
)
from scalingkit.studies.porian2024.plan import (
    BUDGETS,
    CONVENTIONS,
    KAPLAN_WARMUP_TOKENS,
    SIZES_PER_BUDGET,
    STEPS,
    PorianStep,
    get_step,
    plan_step,
    step_command,
    step_spec,
    tuned_hyperparameters,
)
from scalingkit.studies.porian2024.throughput import (
    estimate_seconds,
    measure_throughput,
)

__all__ = [
    "BUDGETS", "CONVENTIONS", "KAPLAN_WARMUP_TOKENS", "METHODS", "PorianStep", "SIZES_PER_BUDGET",
    "STEPS", "counting_experiment", "estimate_seconds", "exponent_table", "fit_exponent",
    "get_step", "head_share", "measure_throughput", "optimum_table", "plan_step", "step_command",
    "step_frame", "step_spec", "tuned_hyperparameters",
]
