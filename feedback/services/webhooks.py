"""Webhooks: telling other systems what happened, as the Standard Webhooks specification says.

- Owners register endpoints (a URL and the event types it wants); each gets a signing secret
  (`whsec_…`), shown once and stored encrypted.
- The services that make events call `webhook_events_emit` in their own transaction: it adds
  one delivery row per endpoint and event, in one INSERT, and nothing at all (one cheap query)
  when no live endpoint of the project wants the event. After the commit one task wakes the
  dispatcher, which hands the due deliveries to workers. A failed try whose next try is near
  (RETRY_DELAYS' first, 5 s) wakes it again then; beat runs it once a minute for the later
  ones, so an idle platform is quiet.
- A delivery is a job (feedback.core.jobs). A worker sends it once: the JSON body, signed with
  the headers `webhook-id` (the same on every try), `webhook-timestamp` and `webhook-signature`.
  A 2xx reply ends it; anything else (another status, a timeout, a refused connection) puts it
  back in the queue for the next of RETRY_DELAYS, about a day in all, after which it fails.
  Replies are judged by their status only: their bodies are never read, kept or shown.
- An endpoint whose deliveries failed DISABLE_AFTER_FAILED_DELIVERIES times in a row (each
  after every retry) is disabled, with a notice on its page, until an owner enables it again.
"""

from __future__ import annotations

import base64
import functools
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks import Webhook

from config.celery_app import Queue
from config.celery_app import app as celery_app
from feedback.core import outbound
from feedback.core.errors import NON_FIELD, NotReady, ValidationFailed
from feedback.core.jobs import (
    ACTIVE_STATUSES,
    Attempt,
    Job,
    JobFailed,
    JobKind,
    JobStatus,
    job_enqueue,
    job_execute,
    job_kind_on_end,
)
from feedback.core.validators import bidi_problem
from feedback.models import Project, WebhookDelivery, WebhookEndpoint, WebhookEventType

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix the specification gives secrets)
TIMEOUT_SECONDS = 10.0
# The waits after the 1st, 2nd, ... failed try; a delivery is tried len + 1 times (≈ 27.6 h).
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER_FAILED_DELIVERIES = 5
MAX_ENDPOINTS_PER_PROJECT = 20
MAX_DESCRIPTION_LENGTH = 200
MAX_URL_LENGTH = 500
# A delivery handed to a worker counts as not due for this long: if its task is lost (the
# broker restarted), the dispatcher hands it out again after that.
DISPATCH_LEASE = timedelta(minutes=10)
DISPATCH_BATCH = 1000
DISPATCH_TASK = "feedback.tasks.webhook_deliveries_dispatch"
DISPATCH_EVERY = timedelta(minutes=1)  # beat's schedule for the dispatcher (settings)
USER_AGENT = "feedback-platform-webhooks/1"

WEBHOOK_DELIVERY_JOB = JobKind(
    name="webhook_delivery",
    model=WebhookDelivery,
    task="feedback.tasks.webhook_delivery_send",
    queue=Queue.DEFAULT,
    # One send takes at most TIMEOUT_SECONDS; silent for this long, its worker died.
    stale_after=lambda: timedelta(minutes=2),
    max_attempts=len(RETRY_DELAYS) + 1,
    gave_up="The worker sending this delivery stopped too often.",
    select_related=("endpoint",),
)


# --- endpoints ---------------------------------------------------------------------------------


def _url_errors(url: object) -> list[str]:
    if not isinstance(url, str) or not url.strip():
        return ["This field is required."]
    if len(url) > MAX_URL_LENGTH:
        return [f"Must be at most {MAX_URL_LENGTH} characters."]
    problem = outbound.destination_problem(url)
    if problem:
        return [problem]
    parts = urlsplit(url)
    local = outbound.normalise_host(parts.hostname or "") in outbound.allowed_hosts()
    if parts.scheme.lower() != "https" and not local:
        return ["Must be an https:// URL (http:// only for hosts in OUTBOUND_ALLOWED_HOSTS)."]
    return []


def _event_errors(events: object) -> list[str]:
    known = ", ".join(WebhookEventType.values)
    if not isinstance(events, list) or not events:
        return [f"Must be a non-empty list of event types: {known}."]
    unknown = [e for e in events if not isinstance(e, str) or e not in WebhookEventType.values]
    if unknown:
        return [f"Unknown event types {', '.join(map(str, unknown))}; use {known}."]
    return []


def webhook_endpoint_create(
    *,
    project: Project,
    url: object,
    events: object,
    description: object = "",
    created_by: str = "",
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it with its signing secret, which is not shown again.
    A URL the platform may not call (not https, credentials in it, an internal address) is
    refused, naming the field; the destination is checked again on every send."""
    errors: dict[str, list[str]] = {}
    if url_errors := _url_errors(url):
        errors["url"] = url_errors
    if event_errors := _event_errors(events):
        errors["events"] = event_errors
    if description is None:
        description = ""
    if not isinstance(description, str):
        errors["description"] = ["Must be a string."]
    elif len(description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = [f"Must be at most {MAX_DESCRIPTION_LENGTH} characters."]
    elif "\x00" in description:
        errors["description"] = ["Must not contain NUL characters."]
    elif problem := bidi_problem(description):
        errors["description"] = [problem]
    if errors:
        raise ValidationFailed(errors, "The webhook endpoint has invalid fields.")
    assert isinstance(url, str)
    assert isinstance(events, list)
    assert isinstance(description, str)
    secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    with transaction.atomic():
        # Counted under the project's row lock, so two requests can't both take the last place.
        list(Project.objects.select_for_update().filter(pk=project.pk).values_list("pk"))
        if WebhookEndpoint.objects.filter(project=project).count() >= MAX_ENDPOINTS_PER_PROJECT:
            raise ValidationFailed.of(
                NON_FIELD,
                f"A project has at most {MAX_ENDPOINTS_PER_PROJECT} webhook endpoints; "
                "delete one first.",
            )
        endpoint = WebhookEndpoint.objects.create(
            project=project,
            url=url,
            events=[e for e in WebhookEventType.values if e in events],
            description=description.strip(),
            secret=secret,
            created_by=created_by[:255],
        )
    return endpoint, secret


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint and its delivery log; deliveries not sent yet are dropped."""
    endpoint.delete()


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Send to a disabled endpoint again (new events; old deliveries can be sent again)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=None, disabled_reason="", failed_in_row=0
    )
    endpoint.refresh_from_db()
    return endpoint


# --- emitting ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def live_endpoints_statement(project_id: int) -> tuple[str, list[Any]]:
    """The query for the project's live endpoints and what each subscribes to, for a caller
    that sends it along with its own (`run_in_order`) and passes the rows to
    `webhook_events_emit` as `live_endpoints`: the hot path saves a round trip."""
    return (
        f"SELECT id, events FROM {WebhookEndpoint._meta.db_table} "  # noqa: S608 (no input)
        "WHERE project_id = %s AND disabled_at IS NULL",
        [project_id],
    )


def webhook_events_emit(
    *,
    project: Project | int,
    event_type: str,
    payloads: Sequence[Mapping[str, Any]],
    live_endpoints: Sequence[tuple[int, Any]] | None = None,
) -> int:
    """Queue one delivery of each event (`payloads`, the events' `data`) to every live endpoint
    of the project subscribed to `type`, in the caller's transaction; returns how many rows.

    One query when nothing listens (none when the caller has read `live_endpoints` already);
    otherwise one INSERT for all rows and, after the commit, one task that wakes the
    dispatcher, however many events there are."""
    if event_type not in WebhookEventType.values:
        raise ValueError(f"Unknown webhook event type {event_type!r}.")
    if not payloads:
        return 0
    project_id = project if isinstance(project, int) else project.pk
    if live_endpoints is None:
        live_endpoints = list(
            WebhookEndpoint.objects.filter(
                project_id=project_id, disabled_at__isnull=True
            ).values_list("pk", "events")
        )
    endpoints = [pk for pk, events in live_endpoints if event_type in _subscribed(events)]
    if not endpoints:
        return 0
    now = timezone.now()
    stamp = now.isoformat()
    rows: list[WebhookDelivery] = []
    for data in payloads:
        message_id = f"msg_{uuid.uuid4().hex}"
        body = {"type": event_type, "timestamp": stamp, "data": _plain(data)}
        rows.extend(
            WebhookDelivery(
                project_id=project_id,
                endpoint_id=endpoint_id,
                event_type=event_type,
                message_id=message_id,
                payload=body,
                next_attempt_at=now,
                message="Waiting to be sent…",
            )
            for endpoint_id in endpoints
        )
    WebhookDelivery.objects.bulk_create(rows, batch_size=DISPATCH_BATCH)
    _dispatch_after_commit()
    return len(rows)


def _subscribed(events: Any) -> list[str]:
    """An endpoint's `events` as a list: raw rows carry the JSON text (the model parses it)."""
    return orjson.loads(events) if isinstance(events, str | bytes) else events


def _dispatch_after_commit(*, countdown: float = 0) -> None:
    """Wake the dispatcher once the rows are committed (`countdown` seconds after). Best effort
    (`robust`: a broker that is down is logged, not raised into a request whose writes are
    already committed): beat runs the dispatcher every minute anyway."""
    transaction.on_commit(
        lambda: celery_app.send_task(DISPATCH_TASK, queue=Queue.DEFAULT, countdown=countdown),
        robust=True,
    )


_ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class JobEvents(Generic[J]):
    """What a job kind tells its project's webhooks when a job of it ends (succeeded, failed or
    cancelled: by its worker, by a cancel while queued, or by the sweeper that found its worker
    dead): `event_type`, with `payload(job)` as its data. Declared once per kind, beside the
    kind. The deliveries are written in the transaction that ends the job, so a job is told of
    exactly once: never lost between the two commits, never told twice."""

    kind: JobKind[J]
    event_type: str
    payload: Callable[[J], Mapping[str, Any]]

    def __post_init__(self) -> None:
        job_kind_on_end(self.kind, self._tell)

    def _tell(self, job_ids: Sequence[int]) -> None:
        # Only the ends: an attempt may also finish with a state that waits for people (a
        # C3PO build's "review"), whose end is told by what ends it.
        ended = self.kind.rows.filter(pk__in=job_ids, status__in=_ENDED)
        for job in ended.order_by("pk"):
            project_id: int = job.project_id  # type: ignore[attr-defined]
            webhook_events_emit(
                project=project_id, event_type=self.event_type, payloads=[self.payload(job)]
            )


# --- sending -----------------------------------------------------------------------------------


def webhook_deliveries_dispatch(*, now: datetime | None = None) -> int:
    """Hand the due deliveries (queued, their time come) to workers, one task each; returns how
    many. Beat runs it every minute for the retries, each emit wakes it, and so does a failed
    try whose next one is due within a minute. Each one
    handed out is leased (not due for DISPATCH_LEASE), so two dispatchers don't both send it."""
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.filter(status=JobStatus.QUEUED, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:DISPATCH_BATCH]
        )
        WebhookDelivery.objects.filter(pk__in=due).update(next_attempt_at=now + DISPATCH_LEASE)
        for delivery_id in due:
            job_enqueue(kind=WEBHOOK_DELIVERY_JOB, job_id=delivery_id)
        if len(due) == DISPATCH_BATCH:  # more are waiting: another round
            _dispatch_after_commit()
    return len(due)


def webhook_delivery_send(*, delivery_id: int) -> None:
    """Try one delivery once. Only a queued delivery (or one whose worker died) is claimed, so a
    second task for it does nothing."""
    job_execute(kind=WEBHOOK_DELIVERY_JOB, job_id=delivery_id, work=_send)


@functools.cache
def _client() -> httpx.Client:
    """One client per worker process, made on first use (after a fork), so its connections
    (and TLS set-up) are reused from one delivery to the next. The outbound rules are applied
    on every connection it opens."""
    return outbound.client(timeout=TIMEOUT_SECONDS)


def signed_headers(*, secret: str, message_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers of `body`, sent at `at`."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }


def _send(attempt: Attempt[WebhookDelivery]) -> None:
    delivery = attempt.job
    endpoint = delivery.endpoint
    if endpoint.disabled_at is not None:
        attempt.finish(status=JobStatus.CANCELLED, message="The endpoint is disabled.")
        return
    secret = endpoint.secret
    if not secret:
        raise JobFailed(
            "The endpoint's signing secret can't be decrypted (the encryption key changed): "
            "register the endpoint again."
        )
    body = orjson.dumps(delivery.payload).decode()
    now = timezone.now()
    headers = {
        **signed_headers(secret=secret, message_id=delivery.message_id, at=now, body=body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    status: int | None = None
    problem = ""
    try:
        with _client().stream(
            "POST", endpoint.url, content=body.encode(), headers=headers
        ) as reply:
            # Judged by its status alone: the body is never read.
            status = reply.status_code
            if not 200 <= status < 300:
                problem = outbound.status_message(reply, service="The endpoint")
    except outbound.DestinationRefused as refused:
        problem = refused.message
    except httpx.TimeoutException:
        problem = (
            f"The endpoint at {outbound.host_of(endpoint.url)} did not answer within "
            f"{TIMEOUT_SECONDS:g} s."
        )
    except httpx.HTTPError as error:
        problem = (
            f"The endpoint at {outbound.host_of(endpoint.url)} could not be reached "
            f"({type(error).__name__})."
        )
    if not problem:
        _delivered(attempt, status=status, now=now)
    else:
        _failed(attempt, status=status, problem=problem, now=timezone.now())


def _delivered(attempt: Attempt[WebhookDelivery], *, status: int | None, now: datetime) -> None:
    with transaction.atomic():
        attempt.finish(message="Delivered.", response_status=status, delivered_at=now, error="")
        WebhookEndpoint.objects.filter(pk=attempt.job.endpoint_id).update(
            failed_in_row=0, last_success_at=now
        )


def _failed(
    attempt: Attempt[WebhookDelivery], *, status: int | None, problem: str, now: datetime
) -> None:
    delivery = attempt.job
    tries = attempt.number - delivery.resumed_after_attempt
    if tries <= len(RETRY_DELAYS):
        retry_at = now + RETRY_DELAYS[tries - 1]
        attempt.write(
            status=JobStatus.QUEUED,
            next_attempt_at=retry_at,
            response_status=status,
            error=problem[:2000],
            message=f"Try {tries} failed; next try at {retry_at:%Y-%m-%d %H:%M:%S} UTC.",
        )
        attempt.ended = True
        wait = RETRY_DELAYS[tries - 1]
        if wait < DISPATCH_EVERY:  # sooner than beat's next round would hand it out
            _dispatch_after_commit(countdown=wait.total_seconds())
        return
    with transaction.atomic():
        attempt.finish(
            status=JobStatus.FAILED,
            message=f"Gave up after {tries} tries.",
            response_status=status,
            error=problem[:2000],
        )
        endpoints = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)
        endpoints.update(failed_in_row=F("failed_in_row") + 1)
        disabled = endpoints.filter(
            disabled_at__isnull=True, failed_in_row__gte=DISABLE_AFTER_FAILED_DELIVERIES
        ).update(
            disabled_at=now,
            disabled_reason=(
                f"Disabled after {DISABLE_AFTER_FAILED_DELIVERIES} deliveries in a row failed "
                f"(each tried {tries} times over about a day). Last: {problem}"
            )[:300],
        )
        if disabled:
            WebhookDelivery.objects.filter(
                endpoint_id=delivery.endpoint_id, status=JobStatus.QUEUED
            ).update(
                status=JobStatus.CANCELLED,
                message="Not sent: the endpoint was disabled.",
                finished_at=now,
            )


def webhook_delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again, with the same `webhook-id`, and a new round of retries.
    NotReady when its endpoint is disabled or it is still being delivered."""
    if WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, disabled_at__isnull=False).exists():
        raise NotReady("The endpoint is disabled: enable it before sending again.")
    now = timezone.now()
    with transaction.atomic():
        queued = (
            WebhookDelivery.objects.filter(pk=delivery.pk)
            .exclude(status__in=ACTIVE_STATUSES)
            .update(
                status=JobStatus.QUEUED,
                next_attempt_at=now + DISPATCH_LEASE,
                resumed_after_attempt=F("attempts"),
                cancel_requested=False,
                progress=0.0,
                error="",
                message="Sending again…",
                finished_at=None,
            )
        )
        if not queued:
            raise NotReady("This delivery is still being sent.")
        job_enqueue(kind=WEBHOOK_DELIVERY_JOB, job_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


# Finished deliveries one expiry run deletes at most in one statement.
EXPIRE_BATCH = 5000


def webhook_deliveries_expire(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget finished deliveries made more than `older_than` ago (the log is for recent
    trouble, and every event adds a row per endpoint); returns how many. Deliveries still
    queued or running are kept whatever their age."""
    cutoff = (now or timezone.now()) - older_than
    deleted = 0
    while True:
        batch = list(
            WebhookDelivery.objects.filter(created_at__lt=cutoff)
            .exclude(status__in=ACTIVE_STATUSES)
            .values_list("pk", flat=True)[:EXPIRE_BATCH]
        )
        if not batch:
            return deleted
        deleted += WebhookDelivery.objects.filter(pk__in=batch).delete()[0]
