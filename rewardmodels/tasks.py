"""Celery tasks of the reward models: thin wrappers that call one service."""

from __future__ import annotations

from celery import shared_task

from rewardmodels import services

TRAINING_TIME_LIMIT = 2 * 60 * 60  # seconds; a run longer than this is cut and marked failed


# Sent by name to Queue.TRAINING (services.TRAINING_RUN_JOB).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=TRAINING_TIME_LIMIT,
    time_limit=TRAINING_TIME_LIMIT + 300,
    ignore_result=True,
)
def training_run_execute(run_id: int) -> None:
    """Train a run; the service claims only a queued run, so a redelivery does nothing."""
    services.training_run_execute(run_id=run_id)


# Sent by name to Queue.C3PO (services.c3po_build.C3PO_BUILD_JOB).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=6 * 60 * 60,
    time_limit=6 * 60 * 60 + 300,
    ignore_result=True,
)
def c3po_build_execute(build_id: int) -> None:
    """Run or resume a C3PO build; the service claims only a queued build."""
    services.c3po_build.build_execute(build_id=build_id)


# Sent by name to Queue.TRAINING (services.shadow.SHADOW_RUN_JOB).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=TRAINING_TIME_LIMIT,
    time_limit=TRAINING_TIME_LIMIT + 300,
    ignore_result=True,
)
def shadow_run_execute(run_id: int) -> None:
    """Run a shadow over the unrated exposures; the service claims only a queued run."""
    services.shadow.shadow_run_execute(run_id=run_id)


# Sent by name to Queue.C3PO (services.judges.JUDGE_RUN_JOB): it waits on a remote model.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=6 * 60 * 60,
    time_limit=6 * 60 * 60 + 300,
    ignore_result=True,
)
def judge_run_execute(run_id: int) -> None:
    """Run a judge over its answers; the service claims only a queued run."""
    services.judges.judge_run_execute(run_id=run_id)
