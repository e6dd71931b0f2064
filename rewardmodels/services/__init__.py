"""Writes and business rules of the reward models and C3PO builds; views, APIs and tasks call
these. Each module covers one area and is re-exported here."""

from rewardmodels.services import c3po, c3po_build, judges, reward_models, shadow
from rewardmodels.services.reward_models import (
    TRAINING_RUN_JOB,
    config_clean,
    reward_model_activate,
    reward_model_create,
    reward_model_score,
    training_run_cancel,
    training_run_execute,
    training_run_start,
)

__all__ = [
    "TRAINING_RUN_JOB",
    "c3po",
    "c3po_build",
    "config_clean",
    "judges",
    "reward_model_activate",
    "reward_model_create",
    "reward_model_score",
    "reward_models",
    "shadow",
    "training_run_cancel",
    "training_run_execute",
    "training_run_start",
]
