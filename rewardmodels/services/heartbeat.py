"""A job row's heartbeat, written from a thread while the job works.

Training runs and C3PO builds are long jobs whose row is the truth. A worker that dies stops
writing `heartbeat_at`, and beat's sweepers take a row silent for TRAINING_STALE_SECONDS for
dead. Writing it from a thread (not only between steps) keeps one long step (a big query, an
evaluation, a slow generator) from looking like a dead worker.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone


class Heartbeat:
    """`with Heartbeat(rows):` updates `heartbeat_at` on `rows` (the current attempt's row,
    filtered so a superseded attempt writes nothing) every TRAINING_HEARTBEAT_SECONDS."""

    def __init__(self, rows: QuerySet[Any]) -> None:
        self.rows = rows
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(float(settings.JOB_HEARTBEAT_SECONDS)):
                self.rows.update(heartbeat_at=timezone.now())
        finally:
            connection.close()  # the thread's own connection

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
