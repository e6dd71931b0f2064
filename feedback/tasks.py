"""Celery tasks of the feedback app: thin wrappers that call one service."""

from __future__ import annotations

import socket
from datetime import timedelta

from celery import shared_task
from django.conf import settings

from feedback import services
from feedback.core import jobs
from feedback.services.annotation import RERUN_SOFT_TIME_LIMIT, RERUN_TIME_LIMIT
from feedback.services.datasets import EXPORT_TIME_LIMIT
from feedback.services.webhooks import TIMEOUT_SECONDS as WEBHOOK_TIMEOUT_SECONDS


# Routed to Queue.DEFAULT in config/celery_app.py.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=10,
    time_limit=20,
    ignore_result=True,
)
def worker_heartbeat() -> None:
    """Scheduled by beat; /healthz shows how long ago a worker last ran it."""
    services.worker_heartbeat_record(hostname=socket.gethostname())


# Routed to Queue.DEFAULT in config/celery_app.py; scheduled by beat.
@shared_task(acks_late=True, soft_time_limit=600, time_limit=660, ignore_result=True)
def otel_spans_expire() -> None:
    """Forget the OTLP spans of traces older than OTEL_SPAN_RETENTION_DAYS."""
    services.traces.otel_spans_expire(older_than=timedelta(days=settings.OTEL_SPAN_RETENTION_DAYS))


# Sent by name to Queue.EXPORTS (services.datasets.EXPORT_JOB).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=int(EXPORT_TIME_LIMIT.total_seconds()) - 60,
    time_limit=int(EXPORT_TIME_LIMIT.total_seconds()),
    ignore_result=True,
)
def export_build(export_id: int) -> None:
    """Write a dataset snapshot; the service guards on the export's status."""
    services.datasets.export_build(export_id=export_id)


# Routed to Queue.DEFAULT in config/celery_app.py; scheduled by beat, once per job kind, for
# the kinds of every app (each registers itself where it is declared: feedback.core.jobs).
@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def jobs_sweep(kind: str) -> None:
    """Queue again, fail or end the jobs of this kind whose worker died, so none stays
    "running" for ever."""
    jobs.jobs_sweep(kind=jobs.job_kind(kind))


# Sent by name to Queue.DEFAULT (services.annotation.RERUN_JOB).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=RERUN_SOFT_TIME_LIMIT,
    time_limit=RERUN_TIME_LIMIT,
    ignore_result=True,
)
def rerun_execute(rerun_id: int) -> None:
    """Re-run an answer's stages after a correction; the service claims only a queued run."""
    services.annotation.rerun_execute(rerun_id=rerun_id)


# Routed to Queue.DEFAULT in config/celery_app.py; scheduled by beat, and sent after each commit
# that queued deliveries (services.webhooks).
@shared_task(acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def webhook_deliveries_dispatch() -> None:
    """Hand the webhook deliveries that are due to workers, one task each."""
    services.webhooks.webhook_deliveries_dispatch()


# Sent by name to Queue.DEFAULT (services.webhooks.WEBHOOK_DELIVERY_JOB).
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=int(WEBHOOK_TIMEOUT_SECONDS) + 20,
    time_limit=int(WEBHOOK_TIMEOUT_SECONDS) + 30,
    ignore_result=True,
)
def webhook_delivery_send(delivery_id: int) -> None:
    """Try one webhook delivery once; the service claims only a queued delivery."""
    services.webhooks.webhook_delivery_send(delivery_id=delivery_id)


# Routed to Queue.DEFAULT in config/celery_app.py; scheduled by beat.
@shared_task(acks_late=True, soft_time_limit=600, time_limit=660, ignore_result=True)
def webhook_deliveries_expire() -> None:
    """Forget finished webhook deliveries older than WEBHOOK_DELIVERY_RETENTION_DAYS."""
    services.webhooks.webhook_deliveries_expire(
        older_than=timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    )
