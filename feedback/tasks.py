"""Celery tasks of the feedback app: thin wrappers that call one service."""

from __future__ import annotations

import socket

from celery import shared_task

from feedback import services


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
