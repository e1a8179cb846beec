"""Kaplan et al. (2020) on our own models: the experiments, how to run them, and the fits.

=============  ==============================================================
``plan``       :class:`KaplanSpec`, the presets, :func:`plan_kaplan` (five experiments
               in one run store: ``L(N)``, ``horizon``, ``L(D)``, ``grid``, ``shape``)
``run``        :func:`run_kaplan`, :func:`train_with_noise_scale`, :func:`export_store`
``analysis``   :func:`kaplan_frame`, :func:`fit_kaplan_laws`, convergence, overfitting,
               :func:`compare_with_kaplan`
=============  ==============================================================
"""

from scalingkit.studies.kaplan2020.analysis import (
    ample_data_runs,
    compare_with_kaplan,
    convergence,
    curves,
    fit_kaplan_laws,
    kaplan_frame,
    noise_frame,
    overfit_threshold,
    overfitting,
    tokens_to_reach,
)
from scalingkit.studies.kaplan2020.plan import (
    EXPERIMENTS,
    KAPLAN_2020,
    PRESETS,
    KaplanRun,
    KaplanSpec,
    plan_kaplan,
    preset,
    shape_config,
)
from scalingkit.studies.kaplan2020.run import export_store, run_kaplan, train_with_noise_scale

__all__ = [
    "EXPERIMENTS", "KAPLAN_2020", "KaplanSpec", "KaplanRun", "preset", "PRESETS",
    "plan_kaplan", "run_kaplan", "train_with_noise_scale", "kaplan_frame", "noise_frame",
    "curves", "fit_kaplan_laws", "overfit_threshold", "shape_config", "overfitting",
    "tokens_to_reach", "compare_with_kaplan", "export_store", "ample_data_runs", "convergence",
]
