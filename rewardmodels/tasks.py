"""Celery tasks of the reward models: thin wrappers that call one service."""

from __future__ import annotations

from celery import shared_task

from rewardmodels import services

TRAINING_TIME_LIMIT = 2 * 60 * 60  # seconds; a run longer than this is cut and marked failed


# Routed to Queue.TRAINING in config/celery_app.py.
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


# Routed to Queue.DEFAULT in config/celery_app.py; scheduled by beat.
@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def training_runs_sweep() -> None:
    """Queue again (once) or fail runs whose worker died, so none stays "running"."""
    services.training_runs_sweep()
