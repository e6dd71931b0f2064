"""Background jobs: one lifecycle for exports, training runs, C3PO builds and re-runs.

A job is a row, and the row is the truth about it; the broker only carries its id.

    queued → running → succeeded / failed / cancelled

- `job_enqueue` sends the kind's Celery task **by name** once the row is committed, so a service
  never imports a tasks module, and a worker never looks for a row that isn't there yet.
- `job_execute` claims the row (a queued job, or a running one whose worker went silent), which
  starts an *attempt*: the attempt's number is a fencing token, and every write the attempt makes
  goes through `Attempt.mine`, the row only while that attempt is still the current one. A worker
  presumed dead that wakes up later can't overwrite a retry, a failure or a cancellation.
- While the work runs, a thread writes `heartbeat_at` every JOB_HEARTBEAT_SECONDS, on a
  connection of its own, so one long step (a big query, hashing a file, a slow remote model) does
  not look like a dead worker. It outlives database errors: it logs, drops the broken connection
  and tries again at its next beat.
- Progress reports go through `Attempt.progress`, which writes at most once per the kind's
  `progress_every` (a forced report, and the finish, always write). A written report is also
  where a cancel request is noticed, so the work stops within that interval of being asked to.
- `jobs_sweep` applies one rule, configured per kind: a running job silent for longer than its
  kind's `stale_after` lost its worker. If a cancel was asked for, it ends `cancelled`; if it has
  attempts left, it is queued again; otherwise it fails with the kind's message. Beat names the
  kind, and `job_kind` finds it by that name.

Each kind (`JobKind`) is declared next to the service that does its work, and registers itself
by its name there. The app's tasks module imports that service (its task calls it), so a worker,
which imports every app's tasks module, knows every kind.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType, TracebackType
from typing import Any, Generic, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce
from django.db.models.lookups import LessThan
from django.utils import timezone

from config.celery_app import app as celery_app

logger = logging.getLogger(__name__)

# The clock progress reports are throttled by (a name of its own, so tests can move it).
clock = time.monotonic


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """The columns every job has. A kind adds its own (what to build, what it made)."""

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    # Claims so far. The current attempt's number is its fencing token: a write lands only while
    # the row still carries it.
    attempts = models.PositiveSmallIntegerField(default=0)
    # `attempts` when a person last resumed the job: the sweeper's retries count from there, and
    # the numbers keep growing, so an attempt from before the resume can't pass the fence.
    resumed_after_attempt = models.PositiveSmallIntegerField(default=0)
    # Written by the running attempt; a stale one means its worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def finished(self) -> bool:
        """No worker will touch it again (unless a person resumes it)."""
        return self.status not in ACTIVE_STATUSES


def job_constraints(prefix: str, statuses: list[str]) -> list[models.BaseConstraint]:
    """The status vocabulary and the progress range as database checks, named after `prefix`."""
    return [
        models.CheckConstraint(condition=Q(status__in=statuses), name=f"{prefix}_status_valid"),
        models.CheckConstraint(
            condition=Q(progress__gte=0.0, progress__lte=1.0), name=f"{prefix}_progress_range"
        ),
    ]


J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class JobKind(Generic[J]):
    """How one kind of job runs and when its worker counts as dead.

    `task` is the Celery task's name: services enqueue by name and never import the tasks module.
    `stale_after` is read at each sweep, so it may depend on settings.
    """

    name: str
    model: type[J]
    task: str
    queue: str
    stale_after: Callable[[], timedelta]
    # A dead worker's job is queued again until this many attempts were made, then it fails.
    max_attempts: int
    gave_up: str
    requeued: str = "Its worker stopped; queued again…"
    time_limit_error: str = "It ran longer than its worker allows."
    # A job still queued with no sign of life for this long lost its task: it fails. None: a
    # queued job waits for as long as the queue is long.
    queued_lost_after: Callable[[], timedelta] | None = None
    # Set on the row when an attempt starts (a first progress and message, say).
    on_claim: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    select_related: tuple[str, ...] = ()
    # Progress reports closer together than this are skipped (see Attempt.progress): the page
    # polling the row needs no more, and a cancel is still noticed this soon.
    progress_every: timedelta = timedelta(seconds=1)

    def __post_init__(self) -> None:
        if self.name in _KINDS:
            raise ValueError(f"A job kind named {self.name!r} is declared already.")
        _KINDS[self.name] = self

    @property
    def rows(self) -> QuerySet[J]:
        return self.model._default_manager.all()


_KINDS: dict[str, JobKind[Any]] = {}
_ON_END: dict[str, Callable[[Sequence[int]], None]] = {}


def job_kind_on_end(kind: JobKind[Any], tell: Callable[[Sequence[int]], None]) -> None:
    """Have `tell(job_ids)` run whenever jobs of `kind` end (succeeded, failed or cancelled:
    by their worker, by a cancel of a queued job, or by the sweeper), inside the transaction
    that ends them: what it writes commits with the end, or not at all."""
    _ON_END[kind.name] = tell


def _ended(kind: JobKind[Any], job_ids: Sequence[int]) -> None:
    tell = _ON_END.get(kind.name)
    if tell is not None and job_ids:
        tell(job_ids)


def job_kind(name: str) -> JobKind[Any]:
    """The kind declared with `name`; LookupError naming the known kinds when there is none."""
    try:
        return _KINDS[name]
    except KeyError:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise LookupError(f"No job kind is named {name!r} (known: {known}).") from None


def seconds_setting(name: str) -> Callable[[], timedelta]:
    """A `stale_after` read from the setting `name` (seconds) each time it is used."""
    return lambda: timedelta(seconds=float(getattr(settings, name)))


class JobFailed(Exception):
    """The work can't be done, for a reason a person can act on; the job fails with `message`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobCancelled(Exception):
    """A cancel was asked for; the job ends `cancelled`."""


class JobSuperseded(Exception):
    """This attempt is no longer the job's current one (it was swept, or another took over)."""


def job_enqueue(*, kind: JobKind[Any], job_id: int) -> None:
    """Send the kind's task for the job once the current transaction commits (at once outside
    one)."""
    transaction.on_commit(lambda: celery_app.send_task(kind.task, args=[job_id], queue=kind.queue))


def job_cancel(*, job: J) -> J:
    """A queued job is cancelled at once; a running one stops at its next progress report
    written (within its kind's `progress_every` while it reports)."""
    rows = type(job)._default_manager.filter(pk=job.pk)
    with transaction.atomic():
        if rows.filter(status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, message="Cancelled.", finished_at=timezone.now()
        ):
            for kind in _KINDS.values():
                if kind.model is type(job):
                    _ended(kind, [job.pk])
    rows.filter(status=JobStatus.RUNNING).update(cancel_requested=True, message="Cancelling…")
    job.refresh_from_db()
    return job


def job_resume(*, kind: JobKind[J], job: J, message: str = "Resuming…") -> J:
    """Queue a failed job again; it gets the kind's attempts afresh. Anything else is left as
    it is."""
    with transaction.atomic():
        resumed = kind.rows.filter(pk=job.pk, status=JobStatus.FAILED).update(
            status=JobStatus.QUEUED,
            error="",
            message=message,
            resumed_after_attempt=F("attempts"),
            cancel_requested=False,
        )
        if resumed:
            job_enqueue(kind=kind, job_id=job.pk)
    job.refresh_from_db()
    return job


def _silent_before(cutoff: datetime) -> LessThan:
    """No sign of life since `cutoff`: no heartbeat (or start, or creation) after it."""
    return LessThan(Coalesce("heartbeat_at", "started_at", "created_at"), cutoff)


def _attempts_spent(kind: JobKind[Any]) -> Q:
    return Q(attempts__gte=F("resumed_after_attempt") + kind.max_attempts)


class Attempt(Generic[J]):
    """One claim of a job by a worker: the row as it was claimed, and the fenced writes."""

    def __init__(self, kind: JobKind[J], job: J) -> None:
        self.kind = kind
        self.job = job
        self.ended = False
        self.reported_at: float | None = None  # clock() of the last report written

    @property
    def number(self) -> int:
        return self.job.attempts

    @property
    def mine(self) -> QuerySet[J]:
        """The row, only while this attempt is the current one."""
        return self.kind.rows.filter(
            pk=self.job.pk, status=JobStatus.RUNNING, attempts=self.job.attempts
        )

    def write(self, **fields: Any) -> None:
        """Write to the row; JobSuperseded when this attempt is no longer the current one."""
        if not self.mine.update(**fields):
            raise JobSuperseded

    def _write_unless_cancelled(self, fields: dict[str, Any]) -> None:
        if not self.mine.filter(cancel_requested=False).update(**fields):
            if self.mine.filter(cancel_requested=True).exists():
                raise JobCancelled
            raise JobSuperseded

    def progress(
        self,
        fraction: float | None = None,
        message: str | None = None,
        *,
        force: bool = False,
        **fields: Any,
    ) -> None:
        """Record progress (and a heartbeat). JobCancelled when a cancel was asked for,
        JobSuperseded when another attempt took over: either way the work should stop.

        A report sooner than the kind's `progress_every` after the last one written is skipped,
        fields and all, unless `force` (a step the row must keep, such as a finished stage).
        The first report is always written, and the work may report as often as it likes: a
        cancel is noticed at the first report written after it."""
        now = clock()
        if (
            not force
            and self.reported_at is not None
            and now - self.reported_at < self.kind.progress_every.total_seconds()
        ):
            return
        self.reported_at = now
        fields["heartbeat_at"] = timezone.now()
        if fraction is not None:
            fields["progress"] = min(max(fraction, 0.0), 1.0)
        if message is not None:
            fields["message"] = message
        self._write_unless_cancelled(fields)

    def lock(self) -> J:
        """Lock the row until the transaction ends (call inside `transaction.atomic`), so the
        final writes and whatever decided them happen as one step."""
        current = self.mine.select_for_update().first()
        if current is None:
            raise JobSuperseded
        if current.cancel_requested:
            raise JobCancelled
        return current

    def finish(
        self, *, status: str = JobStatus.SUCCEEDED, message: str = "Done.", **fields: Any
    ) -> None:
        """End the attempt's work with `status` (succeeded unless told otherwise)."""
        with transaction.atomic():
            self._write_unless_cancelled(
                {
                    "status": status,
                    "progress": 1.0,
                    "message": message,
                    "finished_at": timezone.now(),
                    **fields,
                }
            )
            _ended(self.kind, [self.job.pk])
        self.ended = True

    def fail(self, error: str) -> None:
        self.ended = True
        with transaction.atomic():
            if self.mine.update(
                status=JobStatus.FAILED, error=error[:2000], message="", finished_at=timezone.now()
            ):
                _ended(self.kind, [self.job.pk])
                return
        logger.info(
            "%s %s: attempt %s failed after it was superseded",
            self.kind.name,
            self.job.pk,
            self.number,
        )

    def cancel(self) -> None:
        self.ended = True
        with transaction.atomic():
            if self.mine.update(
                status=JobStatus.CANCELLED, message="Cancelled.", finished_at=timezone.now()
            ):
                _ended(self.kind, [self.job.pk])


def job_claim(*, kind: JobKind[J], job_id: int) -> Attempt[J] | None:
    """Start an attempt at a queued job, or take over a running one whose worker went silent
    (a redelivered task). None when there is nothing to do: the job is done, cancelled, or a
    live worker has it, so a second delivery of the task is harmless."""
    now = timezone.now()
    taken_over = (
        Q(status=JobStatus.RUNNING, cancel_requested=False)
        & Q(_silent_before(now - kind.stale_after()))
        & ~_attempts_spent(kind)
    )
    claimed = (
        kind.rows.filter(pk=job_id)
        .filter(Q(status=JobStatus.QUEUED) | taken_over)
        .update(
            status=JobStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            attempts=F("attempts") + 1,
            error="",
            **kind.on_claim,
        )
    )
    if not claimed:
        return None
    job = kind.rows.select_related(*kind.select_related).get(pk=job_id)
    return Attempt(kind, job)


def job_execute(*, kind: JobKind[J], job_id: int, work: Callable[[Attempt[J]], None]) -> None:
    """Claim the job and run `work` on the attempt with a heartbeat. `work` ends the job with
    `attempt.finish(...)` (when it returns without doing so, the job succeeds); it raises
    JobFailed for a reason to show, and any other error fails the job with the error's text."""
    attempt = job_claim(kind=kind, job_id=job_id)
    if attempt is None:
        return
    try:
        with Heartbeat(attempt.mine, every=float(settings.JOB_HEARTBEAT_SECONDS)):
            work(attempt)
            if not attempt.ended:
                attempt.finish()
    except JobCancelled:
        attempt.cancel()
    except JobSuperseded:
        logger.info("%s %s: attempt %s superseded", kind.name, job_id, attempt.number)
    except JobFailed as failure:
        attempt.fail(failure.message)
    except SoftTimeLimitExceeded:
        attempt.fail(kind.time_limit_error)
    except Exception as error:  # recorded on the row; the task itself must not retry
        logger.exception("%s %s failed", kind.name, job_id)
        attempt.fail(f"{type(error).__name__}: {error}")


@dataclass(frozen=True)
class Swept:
    requeued: int
    failed: int
    cancelled: int


def jobs_sweep(*, kind: JobKind[Any], now: datetime | None = None) -> Swept:
    """Jobs of `kind` whose worker died (running, silent for longer than `stale_after`): a
    cancelled one ends `cancelled`, one with attempts left is queued again, the others fail.
    Beat runs this every minute or two.

    Every row it changes is locked first (skipping rows locked elsewhere), so a row whose
    worker wrote a heartbeat or finished meanwhile is re-checked and left alone, and two
    sweepers never end or queue one job twice."""
    now = now or timezone.now()
    stale = kind.rows.filter(_silent_before(now - kind.stale_after()), status=JobStatus.RUNNING)
    live = stale.filter(cancel_requested=False)
    with transaction.atomic():
        cancelled = _locked(stale.filter(cancel_requested=True))
        failed = _locked(live.filter(_attempts_spent(kind)))
        if kind.queued_lost_after is not None:
            lost = _silent_before(now - kind.queued_lost_after())
            failed += _locked(kind.rows.filter(lost, status=JobStatus.QUEUED))
        requeue = _locked(live.exclude(_attempts_spent(kind)))
        kind.rows.filter(pk__in=cancelled).update(
            status=JobStatus.CANCELLED, message="Cancelled.", finished_at=now
        )
        kind.rows.filter(pk__in=failed).update(
            status=JobStatus.FAILED, error=kind.gave_up, message="", finished_at=now
        )
        kind.rows.filter(pk__in=requeue).update(status=JobStatus.QUEUED, message=kind.requeued)
        for job_id in requeue:
            job_enqueue(kind=kind, job_id=job_id)
        _ended(kind, [*cancelled, *failed])
    return Swept(requeued=len(requeue), failed=len(failed), cancelled=len(cancelled))


def _locked(rows: QuerySet[Any]) -> list[int]:
    return list(rows.select_for_update(skip_locked=True).values_list("pk", flat=True))


class Heartbeat:
    """`with Heartbeat(rows, every=seconds):` writes `heartbeat_at` on `rows` (the current
    attempt's row, fenced, so a superseded attempt writes nothing) from a thread, on the
    thread's own database connection.

    A failed write is logged and the connection dropped; the next beat opens a new one. So a
    transient error, a restart of PostgreSQL or a cut connection costs a few beats, not the
    job: only a dead worker stops the heartbeat."""

    def __init__(self, rows: QuerySet[Any], *, every: float) -> None:
        self.rows = rows
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def _run(self) -> None:
        try:
            while not self.stopped.wait(self.every):
                self.beat()
        finally:
            with contextlib.suppress(DatabaseError):
                connection.close()  # the thread's own connection

    def beat(self) -> None:
        try:
            self.rows.update(heartbeat_at=timezone.now())
        except DatabaseError:
            logger.warning("job heartbeat failed; trying again in %s s", self.every, exc_info=True)
            with contextlib.suppress(DatabaseError):
                connection.close()  # broken; the next beat connects again

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
