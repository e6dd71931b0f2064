"""Operations: what the site knows about its own workers."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """Last time each Celery worker ran the periodic heartbeat task; /healthz reports it."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname
