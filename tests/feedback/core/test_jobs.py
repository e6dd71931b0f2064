"""The job framework on its own: the kinds' registry, sending a job's task by name after commit,
claiming with a fencing token, the heartbeat thread against a real database failure, the outcome
of a worker's work, the progress throttle, cancelling, resuming and the sweeper's one rule.

The jobs here are Export rows run by kinds derived in this file from the platform's export kind,
so each test controls the kind's limits; the kinds the platform declares are tested with their
services.
"""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.celery_app import Queue
from config.celery_app import app as celery_app
from feedback.core import jobs
from feedback.core.jobs import (
    Attempt,
    Heartbeat,
    JobFailed,
    JobStatus,
    JobSuperseded,
    Swept,
    job_cancel,
    job_claim,
    job_enqueue,
    job_execute,
    job_kind,
    job_resume,
    jobs_sweep,
)
from feedback.models import Export, Project
from feedback.services.datasets import EXPORT_JOB
from tests.conftest import empty_test_broker
from tests.tcp_proxy import TcpProxy

STALE = timedelta(minutes=1)
# Every progress report is written, so a test sees each one (the throttle has tests of its own).
KIND = replace(
    EXPORT_JOB,
    name="test_export",
    stale_after=lambda: STALE,
    max_attempts=2,
    gave_up="Its worker stopped twice.",
    progress_every=timedelta(0),
)
# A queued job whose task never arrived is given up after 2 * STALE.
LOST_KIND = replace(
    KIND,
    name="test_export_lost",
    max_attempts=1,
    gave_up="Start it again.",
    queued_lost_after=lambda: 2 * STALE,
)
THROTTLED = replace(KIND, name="test_export_throttled", progress_every=timedelta(seconds=1))


def job(project: Project, **fields: Any) -> Export:
    return Export.objects.create(project=project, dataset="kto", format="jsonl", **fields)


def sent() -> list[dict[str, Any]]:
    """The messages waiting on the exports queue of the test broker (Redis)."""
    with celery_app.connection_for_write() as conn:
        client = conn.default_channel.client  # type: ignore[attr-defined]
        return [orjson.loads(raw) for raw in client.lrange(Queue.EXPORTS.value, 0, -1)]


def args_of(message: dict[str, Any]) -> list[Any]:
    """The task's positional arguments (Celery's message body is [args, kwargs, embed])."""
    return list(orjson.loads(base64.b64decode(message["body"]))[0])


def wait_for(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- the kinds' registry -----------------------------------------------------------------------


def test_a_kind_is_found_by_the_name_it_was_declared_with() -> None:
    assert job_kind("export") is EXPORT_JOB
    assert job_kind(KIND.name) is KIND


def test_a_second_kind_with_a_taken_name_is_refused() -> None:
    with pytest.raises(ValueError, match="'test_export' is declared already"):
        replace(KIND, max_attempts=5)

    assert job_kind("test_export") is KIND


def test_an_unknown_kind_name_is_a_clear_error() -> None:
    with pytest.raises(LookupError) as raised:
        job_kind("exports")

    assert str(raised.value).startswith("No job kind is named 'exports' (known: ")
    assert "export, " in str(raised.value)


# --- sending the task ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_task_is_sent_by_name_once_the_row_is_committed(project: Project) -> None:
    empty_test_broker()

    # given a job created and enqueued inside a transaction
    with transaction.atomic():
        export = job(project)
        job_enqueue(kind=KIND, job_id=export.pk)
        before_commit = sent()

    # then nothing was sent before the commit, and after it one message naming the task
    [message] = sent()
    assert before_commit == []
    assert message["headers"]["task"] == "feedback.tasks.export_build"
    assert args_of(message) == [export.pk]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_job_sends_nothing(project: Project) -> None:
    empty_test_broker()

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            job_enqueue(kind=KIND, job_id=job(project).pk)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        enqueue_then_fail()

    assert sent() == []
    assert not Export.objects.exists()


# --- claiming ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "claimed"),
    [
        ({}, True),
        ({"status": "running", "attempts": 1, "heartbeat_at": "fresh"}, False),
        ({"status": "running", "attempts": 1, "heartbeat_at": "stale"}, True),
        ({"status": "running", "attempts": 2, "heartbeat_at": "stale"}, False),
        (
            {"status": "running", "attempts": 1, "heartbeat_at": "stale", "cancel_requested": True},
            False,
        ),
        ({"status": "succeeded", "attempts": 1}, False),
        ({"status": "cancelled"}, False),
    ],
    ids=[
        "queued",
        "live-worker",
        "dead-worker",
        "dead-worker-no-attempts-left",
        "dead-worker-cancel-asked",
        "done",
        "cancelled",
    ],
)
def test_a_job_is_claimed_only_when_nobody_alive_has_it(
    project: Project, fields: dict[str, Any], claimed: bool
) -> None:
    ages = {"fresh": timezone.now(), "stale": timezone.now() - STALE - timedelta(seconds=5)}
    if "heartbeat_at" in fields:
        fields["heartbeat_at"] = ages[fields["heartbeat_at"]]
    export = job(project, **fields)

    attempt = job_claim(kind=KIND, job_id=export.pk)

    export.refresh_from_db()
    if claimed:
        assert attempt is not None
        assert (export.status, export.attempts) == ("running", fields.get("attempts", 0) + 1)
        assert attempt.number == export.attempts
    else:
        assert attempt is None
        assert (export.status, export.attempts) == (
            fields.get("status", "queued"),
            fields.get("attempts", 0),
        )


@pytest.mark.django_db
def test_a_superseded_attempt_can_write_nothing(project: Project) -> None:
    # given an attempt whose worker went silent, and a second attempt that took over
    export = job(project)
    first = job_claim(kind=KIND, job_id=export.pk)
    assert first is not None
    Export.objects.filter(pk=export.pk).update(heartbeat_at=timezone.now() - 2 * STALE)
    second = job_claim(kind=KIND, job_id=export.pk)
    assert second is not None

    # when the first one wakes up and writes
    with pytest.raises(JobSuperseded):
        first.progress(0.5, rows=7)
    with pytest.raises(JobSuperseded):
        first.finish(rows=7)
    first.fail("late failure")

    # then the row is the second attempt's
    export.refresh_from_db()
    assert (export.status, export.attempts, export.rows, export.error) == ("running", 2, 0, "")
    second.finish(rows=3)
    export.refresh_from_db()
    assert (export.status, export.rows, export.progress) == ("succeeded", 3, 1.0)


# --- running the work --------------------------------------------------------------------------


def _fails_with_a_reason(attempt: Attempt[Export]) -> None:
    attempt.progress(0.2, "Reading…")
    raise JobFailed("Not enough rows to export.")


def _crashes(attempt: Attempt[Export]) -> None:
    raise KeyError("format")


def _returns(attempt: Attempt[Export]) -> None:
    attempt.progress(0.5, rows=2)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("work", "status", "error"),
    [
        (_fails_with_a_reason, "failed", "Not enough rows to export."),
        (_crashes, "failed", "KeyError: 'format'"),
        (_returns, "succeeded", ""),
    ],
    ids=["job-failed", "error", "returned"],
)
def test_the_works_outcome_ends_the_job(
    project: Project, work: Any, status: str, error: str
) -> None:
    export = job(project)

    job_execute(kind=KIND, job_id=export.pk, work=work)

    export.refresh_from_db()
    assert (export.status, export.error) == (status, error)
    assert export.finished_at is not None
    assert export.message == ("Done." if status == "succeeded" else "")


# --- the progress throttle -------------------------------------------------------------------


def progress_writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "feedback_export"') and '"progress" =' in q["sql"]
    ]


class FakeClock:
    """The throttle's clock, moved by the test: no test depends on how fast the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(jobs, "clock", fake)
    return fake


@pytest.mark.django_db
def test_rapid_progress_reports_write_the_first_and_the_forced_last(
    project: Project, clock: FakeClock
) -> None:
    # given an attempt of a kind that writes progress at most once a second
    export = job(project)
    attempt = job_claim(kind=THROTTLED, job_id=export.pk)
    assert attempt is not None

    # when the work reports a thousand times within that second
    with CaptureQueriesContext(connection) as queries:
        for done in range(1000):
            clock.now += 0.0009
            attempt.progress(done / 1000, f"{done} of 1000", rows=done)
    export.refresh_from_db()

    # then only the first report was written
    assert len(progress_writes(queries)) == 1
    assert (export.message, export.rows) == ("0 of 1000", 0)

    # and once the second has passed, the next report is written
    clock.now += 0.2
    with CaptureQueriesContext(connection) as queries:
        attempt.progress(0.5, "500 of 1000", rows=500)
    export.refresh_from_db()
    assert len(progress_writes(queries)) == 1
    assert (export.message, export.rows) == ("500 of 1000", 500)

    # and the last one, forced, and the finish are written at once
    with CaptureQueriesContext(connection) as queries:
        attempt.progress(1.0, "1000 of 1000", force=True, rows=1000)
        export.refresh_from_db()
        assert (export.message, export.rows, export.progress) == ("1000 of 1000", 1000, 1.0)
        attempt.finish(message="Written.")
    export.refresh_from_db()
    assert len(progress_writes(queries)) == 2
    assert (export.status, export.message) == ("succeeded", "Written.")


@pytest.mark.django_db
def test_a_throttled_attempt_notices_a_cancel_within_the_interval(
    project: Project, clock: FakeClock
) -> None:
    export = job(project)
    reported_after_cancel: list[float] = []

    def work(attempt: Attempt[Export]) -> None:
        attempt.progress(0.1)
        # given a cancel asked for right after a report was written
        job_cancel(job=Export.objects.get(pk=export.pk))
        # when the work goes on reporting every eighth of a second
        for step in range(1, 100):
            clock.now += 0.125
            attempt.progress(0.5)
            reported_after_cancel.append(step * 0.125)

    job_execute(kind=THROTTLED, job_id=export.pk, work=work)

    # then the reports within the interval were skipped, and the first one after it stopped
    # the work: the job ends cancelled
    export.refresh_from_db()
    assert (export.status, export.message) == ("cancelled", "Cancelled.")
    assert reported_after_cancel == [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]


@pytest.mark.django_db
def test_a_cancel_stops_the_work_at_its_next_progress_report(project: Project) -> None:
    export = job(project)
    reported: list[float] = []

    def work(attempt: Attempt[Export]) -> None:
        for step in range(5):
            attempt.progress(step / 5)
            reported.append(step / 5)
            if step == 1:
                job_cancel(job=Export.objects.get(pk=export.pk))

    job_execute(kind=KIND, job_id=export.pk, work=work)

    export.refresh_from_db()
    assert reported == [0.0, 0.2]
    assert (export.status, export.message) == ("cancelled", "Cancelled.")


@pytest.mark.django_db
def test_a_queued_job_is_cancelled_at_once_and_never_claimed(project: Project) -> None:
    export = job_cancel(job=job(project))

    assert export.status == JobStatus.CANCELLED
    assert job_claim(kind=KIND, job_id=export.pk) is None


@pytest.mark.django_db
def test_a_resumed_job_gets_its_attempts_afresh_and_older_attempts_stay_fenced(
    project: Project,
) -> None:
    # given a job that failed after its second attempt, the first one still out there
    export = job(project)
    first = job_claim(kind=KIND, job_id=export.pk)
    assert first is not None
    Export.objects.filter(pk=export.pk).update(heartbeat_at=timezone.now() - 2 * STALE)
    second = job_claim(kind=KIND, job_id=export.pk)
    assert second is not None
    second.fail("broken")

    # when a person resumes it and a worker claims it
    job_resume(kind=KIND, job=export)
    third = job_claim(kind=KIND, job_id=export.pk)
    assert third is not None

    # then the new attempt has a number of its own and the sweeper may retry it once more
    assert third.number == 3
    with pytest.raises(JobSuperseded):
        first.progress(0.9)
    Export.objects.filter(pk=export.pk).update(heartbeat_at=timezone.now() - 2 * STALE)
    assert jobs_sweep(kind=KIND) == Swept(requeued=1, failed=0, cancelled=0)


# --- the sweeper -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "status", "error"),
    [
        ({"status": "running", "attempts": 1, "silent": True}, "queued", ""),
        (
            {"status": "running", "attempts": 2, "silent": True},
            "failed",
            "Its worker stopped twice.",
        ),
        (
            {"status": "running", "attempts": 2, "silent": True, "cancel_requested": True},
            "cancelled",
            "",
        ),
        (
            {"status": "running", "attempts": 1, "silent": True, "cancel_requested": True},
            "cancelled",
            "",
        ),
        ({"status": "running", "attempts": 2, "silent": False}, "running", ""),
        ({"status": "queued", "silent": True}, "queued", ""),
        ({"status": "succeeded", "attempts": 1, "silent": True}, "succeeded", ""),
    ],
    ids=[
        "dead-once",
        "dead-twice",
        "dead-cancel-asked",
        "dead-cancel-asked-attempts-left",
        "alive",
        "queued",
        "done",
    ],
)
def test_the_sweeper_rule(
    project: Project, fields: dict[str, Any], status: str, error: str
) -> None:
    silent = fields.pop("silent")
    beat = timezone.now() - (STALE + timedelta(seconds=5) if silent else timedelta(seconds=5))
    export = job(project, heartbeat_at=beat, **fields)

    jobs_sweep(kind=KIND)

    export.refresh_from_db()
    assert (export.status, export.error) == (status, error)
    assert (export.finished_at is not None) == (status in ("failed", "cancelled"))


@pytest.mark.django_db(transaction=True)
def test_a_requeued_job_is_sent_again_and_counted(project: Project) -> None:
    empty_test_broker()
    silent = timezone.now() - STALE - timedelta(seconds=5)
    dead = job(project, status="running", attempts=1, heartbeat_at=silent)
    job(project, status="running", attempts=2, heartbeat_at=silent)
    job(project, status="running", attempts=1, heartbeat_at=silent, cancel_requested=True)

    swept = jobs_sweep(kind=KIND)

    assert swept == Swept(requeued=1, failed=1, cancelled=1)
    assert [args_of(m) for m in sent()] == [[dead.pk]]
    dead.refresh_from_db()
    assert dead.message == KIND.requeued


@pytest.mark.django_db
def test_a_queued_job_whose_task_was_lost_fails_when_its_kind_says_so(project: Project) -> None:
    lost = job(project)
    waiting = job(project)
    Export.objects.filter(pk=lost.pk).update(created_at=timezone.now() - 3 * STALE)
    Export.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - STALE)

    assert jobs_sweep(kind=LOST_KIND) == Swept(requeued=0, failed=1, cancelled=0)
    assert jobs_sweep(kind=KIND) == Swept(requeued=0, failed=0, cancelled=0)
    assert dict(Export.objects.values_list("pk", "status")) == {
        lost.pk: "failed",
        waiting.pk: "queued",
    }


# --- the heartbeat ----------------------------------------------------------------------------


def beat_of(export: Export) -> Any:
    return Export.objects.values_list("heartbeat_at", flat=True).get(pk=export.pk)


def heartbeat_backends() -> list[int]:
    """The server processes whose last statement was a heartbeat write (not this connection)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query LIKE 'UPDATE %%SET \"heartbeat_at\" = %%'"
        )
        return [pid for (pid,) in cursor.fetchall()]


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_outlives_its_connection_being_killed(project: Project) -> None:
    # given a heartbeat that has written at least once
    export = job(project, status="running", attempts=1)
    with Heartbeat(Export.objects.filter(pk=export.pk), every=0.05):
        wait_for(lambda: beat_of(export) is not None)
        wait_for(heartbeat_backends)

        # when the server process behind its connection is terminated
        pids = heartbeat_backends()
        assert pids
        with connection.cursor() as cursor:
            for pid in pids:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
                assert cursor.fetchone() == (True,)
        killed_at = timezone.now()

        # then it connects again and goes on beating
        wait_for(lambda: beat_of(export) > killed_at)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_comes_back_after_the_database_was_gone(
    proxied_database: TcpProxy, project: Project
) -> None:
    # given a heartbeat that has written at least once, reaching PostgreSQL through a proxy
    export = job(project, status="running", attempts=1)
    with Heartbeat(Export.objects.filter(pk=export.pk), every=0.05):
        wait_for(lambda: beat_of(export) is not None)

        # when the database is gone for a while (connections cut, new ones refused), then back
        proxied_database.stop()
        time.sleep(0.5)  # about ten beats fail
        proxied_database.start()
        back_at = timezone.now()
        connection.close()  # this test's own connection was cut too

        # then the heartbeat resumes on a new connection
        wait_for(lambda: beat_of(export) > back_at)
