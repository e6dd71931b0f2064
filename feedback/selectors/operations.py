"""Reads of operations: the workers' heartbeats."""

from __future__ import annotations

from feedback.models import (
    WorkerHeartbeat,
)


def worker_heartbeat_latest() -> WorkerHeartbeat | None:
    """The newest heartbeat of any worker: the health check's one read, so of no project."""
    return WorkerHeartbeat.objects.order_by("-seen_at").first()
