"""Webhooks: endpoints, the deliveries the services queue, and sending them to a real local
receiver, signed as the Standard Webhooks specification says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook

from feedback.core.errors import NotReady, ValidationFailed
from feedback.core.jobs import JobStatus, jobs_sweep
from feedback.models import Project, WebhookDelivery, WebhookEndpoint
from feedback.services import answers_ingest, feedback_record, reaction_toggle
from feedback.services.datasets import export_build, export_request
from feedback.services.webhooks import (
    DISABLE_AFTER_FAILED_DELIVERIES,
    DISPATCH_EVERY,
    MAX_ENDPOINTS_PER_PROJECT,
    RETRY_DELAYS,
    WEBHOOK_DELIVERY_JOB,
    webhook_deliveries_dispatch,
    webhook_deliveries_expire,
    webhook_delivery_resend,
    webhook_delivery_send,
    webhook_endpoint_create,
    webhook_endpoint_enable,
    webhook_events_emit,
)
from tests.factories import AnswerFactory, answer_payload
from tests.feedback.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1, which the outbound rules allow only because it is listed."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with webhook_receiver() as running:
        yield running


def endpoint_for(
    project: Project, receiver: Receiver, events: list[str] | None = None
) -> tuple[WebhookEndpoint, str]:
    return webhook_endpoint_create(
        project=project, url=receiver.url, events=events or ["feedback.created"]
    )


def react(project: Project, event_id: str = "e-1", viewer: str = "u-1") -> None:
    AnswerFactory.create(project=project, external_id="a-1")
    event = {
        "event_id": event_id,
        "type": "reaction",
        "answer": "a-1",
        "user_ref": viewer,
        "reaction": "love",
    }
    [result] = feedback_record(project=project, items=[event], source="api")
    assert result.status == "created"


def send_all() -> None:
    for pk in WebhookDelivery.objects.filter(status=JobStatus.QUEUED).values_list("pk", flat=True):
        webhook_delivery_send(delivery_id=pk)


def test_a_feedback_event_arrives_signed_with_the_endpoints_secret(
    project: Project, receiver: Receiver
) -> None:
    _, secret = endpoint_for(project, receiver)
    assert secret.startswith("whsec_")

    react(project)
    send_all()

    [delivered] = receiver.received
    event = Webhook(secret).verify(delivered.body, delivered.headers)
    assert event["type"] == "feedback.created"
    assert event["data"] | {"at": None} == {
        "event_id": "e-1",
        "type": "reaction",
        "answer": "a-1",
        "user_ref": "u-1",
        "source": "api",
        "reaction": "love",
        "at": None,
    }
    assert delivered.headers["webhook-signature"].startswith("v1,")
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == JobStatus.SUCCEEDED
    assert (delivery.response_status, delivery.attempts) == (200, 1)
    assert delivered.headers["webhook-id"] == delivery.message_id
    # Another secret does not verify it: the signature is the endpoint's own.
    _, other = endpoint_for(project, receiver)
    with pytest.raises(Exception, match="signature"):
        Webhook(other).verify(delivered.body, delivered.headers)


def test_the_secret_is_stored_encrypted(project: Project, receiver: Receiver) -> None:
    endpoint, secret = endpoint_for(project, receiver)
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM feedback_webhookendpoint WHERE id = %s", [endpoint.pk])
        [(stored,)] = cursor.fetchall()
    assert secret not in stored
    assert WebhookEndpoint.objects.get().secret == secret


def test_a_receiver_that_fails_twice_gets_the_event_once_more_with_the_same_id(
    project: Project, receiver: Receiver
) -> None:
    endpoint_for(project, receiver)
    receiver.script(500, 503, 200)
    react(project)
    delivery = WebhookDelivery.objects.get()

    for tries, delay in enumerate(RETRY_DELAYS[:2], start=1):
        before = timezone.now()
        webhook_delivery_send(delivery_id=delivery.pk)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (JobStatus.QUEUED, tries)
        assert before + delay <= delivery.next_attempt_at <= timezone.now() + delay
        assert "answered HTTP 5" in delivery.error
        assert "secret internal detail" not in delivery.error + delivery.message
        # Not due before its time; due once it has come.
        assert webhook_deliveries_dispatch(now=delivery.next_attempt_at - timedelta(seconds=1)) == 0
        assert webhook_deliveries_dispatch(now=delivery.next_attempt_at) == 1
        assert webhook_deliveries_dispatch(now=delivery.next_attempt_at) == 0  # leased

    webhook_delivery_send(delivery_id=delivery.pk)
    webhook_delivery_send(delivery_id=delivery.pk)  # a second task for it: nothing more

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        JobStatus.SUCCEEDED,
        3,
        200,
    )
    assert receiver.ids() == [delivery.message_id] * 3
    assert len({d.body for d in receiver.received}) == 1
    assert webhook_deliveries_dispatch(now=timezone.now() + timedelta(days=2)) == 0


def test_an_unreachable_receiver_is_retried_like_an_error_status(
    project: Project, receiver: Receiver
) -> None:
    endpoint, _ = endpoint_for(project, receiver)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://127.0.0.1:9/closed")
    react(project)
    send_all()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status) == (JobStatus.QUEUED, None)
    assert "could not be reached" in delivery.error


@pytest.mark.parametrize(
    "url",
    [
        "https://10.1.2.3/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "http://169.254.169.254/",
    ],
)
def test_a_private_destination_is_refused(project: Project, settings: Any, url: str) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(project=project, url=url, events=["answer.created"])
    assert list(refused.value.errors) == ["url"]
    assert not WebhookEndpoint.objects.exists()


def test_a_destination_that_became_private_is_not_called(
    project: Project, receiver: Receiver, settings: Any
) -> None:
    endpoint_for(project, receiver)
    react(project)
    settings.OUTBOUND_ALLOWED_HOSTS = []
    send_all()
    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == JobStatus.QUEUED
    assert "not allowed" in delivery.error


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("http://hooks.example.com/x", ["answer.created"], "url"),
        ("ftp://hooks.example.com/x", ["answer.created"], "url"),
        ("https://user:pw@hooks.example.com/x", ["answer.created"], "url"),
        ("https://hooks.example.com/x", [], "events"),
        ("https://hooks.example.com/x", ["answer.deleted"], "events"),
        ("https://hooks.example.com/x", "answer.created", "events"),
    ],
)
def test_bad_endpoints_name_the_field(
    project: Project, dns: Any, url: str, events: Any, field: str
) -> None:
    dns("hooks.example.com", [["93.184.216.34"]])
    with pytest.raises(ValidationFailed) as refused:
        webhook_endpoint_create(project=project, url=url, events=events)
    assert list(refused.value.errors) == [field]


def test_nothing_is_queued_and_one_query_made_when_no_endpoint_listens(
    project: Project, receiver: Receiver, django_assert_num_queries: Any
) -> None:
    endpoint_for(project, receiver, events=["answer.created"])  # another event
    with django_assert_num_queries(1):
        made = webhook_events_emit(
            project=project, event_type="feedback.created", payloads=[{"event_id": "x"}]
        )
    assert made == 0
    with django_assert_num_queries(0):
        webhook_events_emit(project=project, event_type="feedback.created", payloads=[])


def test_a_batch_is_queued_in_one_insert_per_endpoint_and_event(
    project: Project, receiver: Receiver, django_assert_num_queries: Any
) -> None:
    endpoint_for(project, receiver, events=["feedback.created"])
    endpoint_for(project, receiver, events=["feedback.created", "answer.created"])
    endpoint_for(project, receiver, events=["answer.created"])
    with django_assert_num_queries(2):
        made = webhook_events_emit(
            project=project,
            event_type="feedback.created",
            payloads=[{"event_id": f"e-{i}"} for i in range(50)],
        )
    assert made == 100
    # One webhook-id per event, shared by its endpoints.
    assert WebhookDelivery.objects.values("message_id").distinct().count() == 50


def test_ingested_answers_and_bulk_feedback_each_make_one_delivery(
    project: Project, receiver: Receiver
) -> None:
    endpoint_for(project, receiver, events=["answer.created", "feedback.created"])
    answers_ingest(project=project, items=[answer_payload("a-1"), answer_payload("a-2")])
    answers_ingest(project=project, items=[answer_payload("a-1")])  # a replay: nothing new
    events = [
        {"event_id": f"e-{i}", "type": "exposure", "answer": "a-1", "user_ref": f"u-{i}"}
        for i in range(3)
    ]
    feedback_record(project=project, items=events, source="api")
    feedback_record(project=project, items=events, source="api")  # replayed: duplicates
    kinds = sorted(WebhookDelivery.objects.values_list("event_type", flat=True))
    assert kinds == ["answer.created"] * 2 + ["feedback.created"] * 3


def test_a_click_on_a_reaction_is_told_too(project: Project, receiver: Receiver) -> None:
    endpoint_for(project, receiver)
    answer = AnswerFactory.create(project=project, external_id="a-1")
    reaction_toggle(project=project, answer=answer, viewer="user:1", kind="love", event_id="c-1")
    reaction_toggle(project=project, answer=answer, viewer="user:1", kind="love", event_id="c-2")
    send_all()
    types = [(d.event["data"]["type"], d.event["data"]["source"]) for d in receiver.received]
    assert types == [("reaction", "browser"), ("unreaction", "browser")]


def test_another_projects_events_are_not_sent(
    project: Project, other_project: Project, receiver: Receiver
) -> None:
    endpoint_for(other_project, receiver)
    react(project)
    assert not WebhookDelivery.objects.exists()


def fail_one_delivery(project: Project, event_id: str) -> WebhookDelivery:
    webhook_events_emit(project=project, event_type="feedback.created", payloads=[{"id": event_id}])
    delivery = WebhookDelivery.objects.latest("pk")
    for _ in range(len(RETRY_DELAYS) + 1):
        webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_an_endpoint_that_keeps_failing_is_disabled(project: Project, receiver: Receiver) -> None:
    endpoint, _ = endpoint_for(project, receiver)
    receiver.script(500)
    for n in range(DISABLE_AFTER_FAILED_DELIVERIES):
        delivery = fail_one_delivery(project, f"e-{n}")
        assert delivery.status == JobStatus.FAILED
        assert delivery.attempts == len(RETRY_DELAYS) + 1
        endpoint.refresh_from_db()
        assert (endpoint.disabled_at is None) == (n < DISABLE_AFTER_FAILED_DELIVERIES - 1)
    assert "Disabled after" in endpoint.disabled_reason

    # Disabled: new events queue nothing, and sending again is refused until it is enabled.
    assert webhook_events_emit(project=project, event_type="feedback.created", payloads=[{}]) == 0
    with pytest.raises(NotReady):
        webhook_delivery_resend(delivery=delivery)
    webhook_endpoint_enable(endpoint=endpoint)
    receiver.script(200)
    sent = len(receiver.received)
    webhook_delivery_resend(delivery=delivery)
    webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == JobStatus.SUCCEEDED
    assert receiver.ids()[sent:] == [delivery.message_id]


def test_a_success_between_failures_keeps_the_endpoint_enabled(
    project: Project, receiver: Receiver
) -> None:
    endpoint, _ = endpoint_for(project, receiver)
    receiver.script(500)
    for n in range(DISABLE_AFTER_FAILED_DELIVERIES - 1):
        fail_one_delivery(project, f"e-{n}")
    receiver.script(200)
    assert fail_one_delivery(project, "ok").status == JobStatus.SUCCEEDED
    receiver.script(500)
    fail_one_delivery(project, "e-last")
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None


def test_a_delivery_being_sent_is_not_sent_again(project: Project, receiver: Receiver) -> None:
    endpoint_for(project, receiver)
    react(project)
    delivery = WebhookDelivery.objects.get()
    with pytest.raises(NotReady):
        webhook_delivery_resend(delivery=delivery)


def test_an_export_that_succeeds_is_told(
    project: Project, receiver: Receiver, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    endpoint_for(project, receiver, events=["export.succeeded"])
    react(project)
    export = export_request(
        project=project, dataset="kto", fmt="jsonl", form=None, filters={}, requested_by="t"
    )
    export_build(export_id=export.pk)
    export_build(export_id=export.pk)  # a second delivery of its task
    [delivery] = WebhookDelivery.objects.all()
    export.refresh_from_db()
    assert delivery.payload["data"] | {"download": None} == {
        "id": export.pk,
        "dataset": "kto",
        "format": "jsonl",
        "rows": 1,
        "sha256": export.sha256,
        "download": None,
    }


def test_old_finished_deliveries_are_forgotten_and_pending_ones_kept(
    project: Project, receiver: Receiver
) -> None:
    endpoint_for(project, receiver)
    webhook_events_emit(
        project=project, event_type="feedback.created", payloads=[{"n": n} for n in range(4)]
    )
    old, old_pending, recent, _ = WebhookDelivery.objects.order_by("pk")
    month_ago = timezone.now() - timedelta(days=31)
    WebhookDelivery.objects.filter(pk__in=[old.pk, old_pending.pk]).update(created_at=month_ago)
    WebhookDelivery.objects.filter(pk__in=[old.pk, recent.pk]).update(status=JobStatus.SUCCEEDED)

    assert webhook_deliveries_expire(older_than=timedelta(days=30)) == 1

    assert not WebhookDelivery.objects.filter(pk=old.pk).exists()
    assert WebhookDelivery.objects.count() == 3


def test_a_project_has_a_bounded_number_of_endpoints(project: Project, receiver: Receiver) -> None:
    for _ in range(MAX_ENDPOINTS_PER_PROJECT):
        endpoint_for(project, receiver)
    with pytest.raises(ValidationFailed) as refused:
        endpoint_for(project, receiver)
    assert list(refused.value.errors) == ["non_field_errors"]
    assert WebhookEndpoint.objects.count() == MAX_ENDPOINTS_PER_PROJECT


def test_a_delivery_whose_worker_died_is_sent_again_with_the_same_id(
    project: Project, receiver: Receiver
) -> None:
    endpoint_for(project, receiver)
    react(project)
    delivery = WebhookDelivery.objects.get()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    # A worker claimed it an hour ago and was never heard of again.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=JobStatus.RUNNING, attempts=1, started_at=an_hour_ago, heartbeat_at=an_hour_ago
    )

    assert jobs_sweep(kind=WEBHOOK_DELIVERY_JOB).requeued == 1
    webhook_delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (JobStatus.SUCCEEDED, 2)
    assert receiver.ids() == [delivery.message_id]


def test_beat_runs_the_dispatcher_as_often_as_the_service_expects(settings: Any) -> None:
    # A failed try wakes the dispatcher itself only when its next try is sooner than beat's
    # next round; the two must agree, or a retry could wait longer than its delay says.
    schedule = settings.CELERY_BEAT_SCHEDULE["webhook-deliveries-dispatch"]["schedule"]
    assert schedule == DISPATCH_EVERY.total_seconds()
    assert RETRY_DELAYS[0] < DISPATCH_EVERY <= RETRY_DELAYS[1]
