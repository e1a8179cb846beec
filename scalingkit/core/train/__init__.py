"""The trainer: what defines a run, what it produced, the loop and its checkpoints.

=================  ===========================================================
``config``         :class:`TrainConfig`, the schedules (:func:`learning_rate`),
                   :func:`tokens_for_flop_budget`
``result``         :class:`TrainResult`, the run's record
``loop``           :func:`train`: set-up, resume, step, evaluate, save, result
``checkpoint``     exact-resume checkpoints, RNG states, :func:`load_model`
=================  ===========================================================
"""

from scalingkit.core.train.checkpoint import load_model
from scalingkit.core.train.config import (
    SCHEDULES,
    TrainConfig,
    learning_rate,
    tokens_for_flop_budget,
)
from scalingkit.core.train.loop import train
from scalingkit.core.train.result import TrainResult

__all__ = ["SCHEDULES", "TrainConfig", "TrainResult", "learning_rate", "load_model",
           "tokens_for_flop_budget", "train"]
