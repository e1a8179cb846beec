"""Figures for the book. Each function takes data, draws on ``ax`` (a new one
if omitted) and returns the Axes; captions and titles belong to the chapter.

One module per topic: ``flops``, ``training`` (runs, Kaplan's laws, the noise scale),
``hparams`` (the learning-rate grid and rule, recipe settings),
``sweeps`` (IsoFLOP profiles, optima, exponents), ``fits``, ``entropy``, ``inference``;
every ``plot_*`` is re-exported here, so ``plots.plot_x(...)`` works for all of them.
"""

from scalingkit.plots._common import (
    matplotlib_lognorm,
)
from scalingkit.plots.entropy import (
    plot_bits_per_byte_vs_compute,
    plot_known_entropy,
)
from scalingkit.plots.fits import (
    plot_allocations,
    plot_bootstrap_pair,
    plot_envelope_optima,
    plot_interval_panels,
    plot_log_residuals,
    plot_profile_E,
    plot_sensitivity,
    plot_start_objectives,
    plot_training_envelope,
)
from scalingkit.plots.flops import (
    flop_ratio_grid,
    plot_flop_ratio,
)
from scalingkit.plots.hparams import (
    plot_lr_grid,
    plot_lr_rule,
    plot_recipe_knob,
)
from scalingkit.plots.inference import (
    plot_inference_allocation,
)
from scalingkit.plots.sweeps import (
    plot_compute_optimal,
    plot_exponents,
    plot_head_share,
    plot_isoflop_profiles,
    plot_prediction_outcome,
)
from scalingkit.plots.training import (
    plot_loss_curves,
    plot_lr_schedules,
    plot_noise_scale,
    plot_overfit_map,
    plot_power_law,
    plot_shape,
    plot_validation_curves,
)

__all__ = [
    "flop_ratio_grid", "matplotlib_lognorm", "plot_allocations", "plot_bits_per_byte_vs_compute",
    "plot_bootstrap_pair", "plot_compute_optimal", "plot_envelope_optima", "plot_exponents",
    "plot_flop_ratio",
    "plot_head_share", "plot_inference_allocation", "plot_interval_panels",
    "plot_isoflop_profiles", "plot_known_entropy", "plot_log_residuals", "plot_loss_curves",
    "plot_lr_grid", "plot_lr_rule", "plot_lr_schedules", "plot_recipe_knob",
    "plot_noise_scale", "plot_overfit_map", "plot_power_law",
    "plot_prediction_outcome", "plot_profile_E", "plot_sensitivity", "plot_shape",
    "plot_start_objectives", "plot_training_envelope", "plot_validation_curves",
]
