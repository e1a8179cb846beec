"""Porian et al. (2024): the Kaplan/Chinchilla discrepancy, one rung at a time.

=============  ==============================================================
``plan``       the ladders (:data:`RUNGS`, :data:`LAPTOP_RUNGS`, :class:`PorianRung`),
               :func:`plan_rung` (the first ladder), :func:`tuned_hyperparameters`
``laptop``     the laptop ladder: :func:`laptop_spec`, :func:`fixed_recipe`,
               :func:`stored_recipe`, :func:`plan_laptop_rung`, :func:`run_rung`
               (bracketed)
``analysis``   :func:`rung_frame`, :func:`optimum_table`, :func:`fit_exponent`,
               :func:`exponent_table`, :func:`summary`, :func:`counting_experiment`,
               :func:`head_share`, :func:`head_flop_share`
``factors``    :func:`factor_effects` (count and recipe effects with intervals under
               the noise floor), :func:`noisy_exponents`, :func:`seed_intervals`
``throughput`` :func:`measure_throughput`, :func:`estimate_seconds`
=============  ==============================================================
"""

from scalingkit.studies.porian2024.analysis import (
    METHODS,
    SUMMARY_CONVENTION,
    SUMMARY_METHOD,
    counting_experiment,
    exponent_table,
    fit_exponent,
    head_flop_share,
    head_share,
    optimum_table,
    rung_frame,
    rung_summary,
    summary,
)
from scalingkit.studies.porian2024.factors import (
    factor_effects,
    noisy_exponents,
    seed_intervals,
)
from scalingkit.studies.porian2024.laptop import (
    RungRecipe,
    byte_twin_params,
    fixed_recipe,
    laptop_spec,
    pilot_tokens_per_param,
    plan_laptop_rung,
    plan_metadata,
    run_rung,
    stored_recipe,
)
from scalingkit.studies.porian2024.plan import (
    BUDGETS,
    CONVENTIONS,
    KAPLAN_WARMUP_TOKENS,
    LADDERS,
    LAPTOP_RUNGS,
    LAPTOP_TOKENIZER,
    LAPTOP_WARMUP_TOKENS,
    RUNGS,
    SIZES_PER_BUDGET,
    PorianRung,
    get_rung,
    ladder_order,
    ladder_rungs,
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
    "BUDGETS", "CONVENTIONS", "KAPLAN_WARMUP_TOKENS", "LADDERS", "LAPTOP_RUNGS",
    "LAPTOP_TOKENIZER", "LAPTOP_WARMUP_TOKENS", "METHODS", "PorianRung", "RungRecipe",
    "SIZES_PER_BUDGET", "RUNGS", "SUMMARY_CONVENTION", "SUMMARY_METHOD", "byte_twin_params",
    "counting_experiment", "estimate_seconds", "exponent_table", "factor_effects",
    "fit_exponent", "fixed_recipe",
    "get_rung", "head_flop_share", "head_share", "ladder_order", "ladder_rungs", "laptop_spec",
    "measure_throughput", "noisy_exponents", "optimum_table", "pilot_tokens_per_param",
    "plan_laptop_rung",
    "plan_metadata", "plan_rung", "rung_command", "rung_frame", "rung_spec", "rung_summary",
    "run_rung", "seed_intervals", "stored_recipe", "summary", "tuned_hyperparameters",
]
