"""Two sweepers at once (two beats running by mistake, or one slow sweep overlapping the next):
they share the work through row locks, so no job is queued twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from feedback.core.jobs import Swept, jobs_sweep
from feedback.models import Project
from tests.conftest import empty_test_broker
from tests.feedback.core.test_jobs import KIND, STALE, args_of, job, sent


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_at_once_queue_each_dead_job_once(project: Project) -> None:
    # given three running jobs whose workers went silent
    empty_test_broker()
    silent = timezone.now() - STALE - timedelta(seconds=5)
    dead = {job(project, status="running", attempts=1, heartbeat_at=silent).pk for _ in range(3)}
    first_has_swept = threading.Event()
    second_is_done = threading.Event()
    swept: dict[str, Swept] = {}

    def first() -> None:
        # its sweep holds its locks until the second sweeper has run
        try:
            with transaction.atomic():
                swept["first"] = jobs_sweep(kind=KIND)
                first_has_swept.set()
                second_is_done.wait(timeout=30)
        finally:
            first_has_swept.set()
            connections.close_all()

    def second() -> None:
        try:
            first_has_swept.wait(timeout=30)
            swept["second"] = jobs_sweep(kind=KIND)
        finally:
            second_is_done.set()
            connections.close_all()

    # when two sweepers run at the same time, each on its own connection
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then the first queues every job, the second none of them, and each task is sent once
    assert swept == {
        "first": Swept(requeued=3, failed=0, cancelled=0),
        "second": Swept(requeued=0, failed=0, cancelled=0),
    }
    assert sorted(args_of(m)[0] for m in sent()) == sorted(dead)
