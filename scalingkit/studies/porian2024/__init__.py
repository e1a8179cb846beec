"""Porian et al. (2024): the Kaplan/Chinchilla discrepancy, one rung at a time.

=============  ==============================================================
``plan``       the ladder (:data:`RUNGS`, :class:`PorianRung`), :func:`plan_rung`,
               :func:`tuned_hyperparameters`: each rung an IsoFLOP sweep
``analysis``   :func:`rung_frame`, :func:`optimum_table`, :func:`fit_exponent`,
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
    rung_frame,
)
from scalingkit.studies.porian2024.plan import (
    BUDGETS,
    CONVENTIONS,
    KAPLAN_WARMUP_TOKENS,
    RUNGS,
    SIZES_PER_BUDGET,
    PorianRung,
    get_rung,
    plan_rung,
    rung_command,
    rung_spec,
    tuned_hyperparameters,
)
from scalingkit.studies.porian2024.throughput import (
    estimate_seconds,
    measure_throughput,
)

__all__ = [
    "BUDGETS", "CONVENTIONS", "KAPLAN_WARMUP_TOKENS", "METHODS", "PorianRung", "SIZES_PER_BUDGET",
    "RUNGS", "counting_experiment", "estimate_seconds", "exponent_table", "fit_exponent",
    "get_rung", "head_share", "measure_throughput", "optimum_table", "plan_rung", "rung_command",
    "rung_frame", "rung_spec", "tuned_hyperparameters",
]
