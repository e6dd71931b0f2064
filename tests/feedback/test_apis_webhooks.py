"""The webhooks API: register, list, show, delete endpoints; their delivery log and sending a
delivery again; bad input named by field; other projects' endpoints answer 404; and, through a
real worker, an event recorded through the API arriving signed at a local receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from feedback.core.jobs import JobStatus
from feedback.models import Project, Role, WebhookDelivery, WebhookEndpoint
from feedback.services.webhooks import (
    RETRY_DELAYS,
    webhook_endpoint_create,
    webhook_events_emit,
)
from tests.conftest import bearer_client
from tests.factories import AnswerFactory, api_key_for, member
from tests.feedback.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with webhook_receiver() as running:
        yield running


def register(api: APIClient, url: str, events: Any = ("feedback.created",)) -> Any:
    return api.post("/api/v1/webhooks", {"url": url, "events": list(events)}, format="json")


def test_register_list_show_and_delete_an_endpoint(
    project: Project, api: APIClient, receiver: Receiver
) -> None:
    created = register(api, receiver.url, ["answer.created", "feedback.created"])
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert created["Cache-Control"] == "no-store"
    assert body["events"] == ["feedback.created", "answer.created"]
    assert body["disabled_at"] is None

    listed = api.get("/api/v1/webhooks").json()
    assert [e["id"] for e in listed] == [body["id"]]
    shown = api.get(f"/api/v1/webhooks/{body['id']}").json()
    # The secret is shown once, when the endpoint is made.
    assert "secret" not in listed[0]
    assert "secret" not in shown
    assert body["secret"] not in str(listed) + str(shown)

    assert api.delete(f"/api/v1/webhooks/{body['id']}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{body['id']}").status_code == 404
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://hooks.example.com/x", "events": ["answer.created"]}, "url"),
        ({"url": "https://10.0.0.7/x", "events": ["answer.created"]}, "url"),
        ({"url": "javascript:alert(1)", "events": ["answer.created"]}, "url"),
        ({"events": ["answer.created"]}, "url"),
        ({"url": 7, "events": ["answer.created"]}, "url"),
        ({"url": "https://hooks.example.com/x", "events": []}, "events"),
        ({"url": "https://hooks.example.com/x", "events": ["feedback.deleted"]}, "events"),
        ({"url": "https://hooks.example.com/x", "events": [{"x": 1}]}, "events"),
        ({"url": "https://hooks.example.com/x"}, "events"),
        (
            {"url": "https://hooks.example.com/x", "events": ["answer.created"], "description": 5},
            "description",
        ),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    project: Project, api: APIClient, settings: Any, dns: Any, body: dict[str, Any], field: str
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    dns("hooks.example.com", [["93.184.216.34"]])
    response = api.post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert not WebhookEndpoint.objects.exists()


def test_a_body_that_is_not_an_object_is_refused(project: Project, api: APIClient) -> None:
    response = api.post("/api/v1/webhooks", ["https://hooks.example.com"], format="json")
    assert response.status_code == 400


def test_another_projects_endpoints_and_deliveries_answer_404(
    project: Project, other_project: Project, api: APIClient, receiver: Receiver
) -> None:
    theirs, _ = webhook_endpoint_create(
        project=other_project, url=receiver.url, events=["answer.created"]
    )
    webhook_events_emit(project=other_project, event_type="answer.created", payloads=[{}])
    delivery = WebhookDelivery.objects.get()
    mine, _ = webhook_endpoint_create(project=project, url=receiver.url, events=["answer.created"])
    base = f"/api/v1/webhooks/{theirs.pk}"
    assert api.get(base).status_code == 404
    assert api.delete(base).status_code == 404
    assert api.get(f"{base}/deliveries").status_code == 404
    assert api.post(f"{base}/enable").status_code == 404
    assert api.post(f"{base}/deliveries/{delivery.pk}/resend").status_code == 404
    # Nor through one's own endpoint.
    resend = f"/api/v1/webhooks/{mine.pk}/deliveries/{delivery.pk}/resend"
    assert api.post(resend).status_code == 404
    assert [e["id"] for e in api.get("/api/v1/webhooks").json()] == [mine.pk]
    assert WebhookEndpoint.objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize(("role", "status"), [(Role.OWNER, 201), (Role.RESEARCHER, 403)])
def test_signed_in_members_need_the_owner_role(
    project: Project, receiver: Receiver, role: str, status: int
) -> None:
    client = member(project, role, "someone")
    response = client.post(
        "/api/v1/webhooks?project=acme",
        {"url": receiver.url, "events": ["answer.created"]},
        content_type="application/json",
    )
    assert response.status_code == status


def test_a_key_without_the_feedback_scope_is_refused(project: Project, receiver: Receiver) -> None:
    api = bearer_client(api_key_for(project, "export"))
    assert register(api, receiver.url).status_code == 403


@pytest.mark.parametrize("rows", [10, 100])
def test_the_delivery_log_costs_the_same_queries_for_10_and_100_rows(
    project: Project,
    api: APIClient,
    receiver: Receiver,
    django_assert_num_queries: Any,
    rows: int,
) -> None:
    endpoint_id = register(api, receiver.url).json()["id"]
    webhook_events_emit(
        project=project, event_type="feedback.created", payloads=[{"n": n} for n in range(rows)]
    )
    # The endpoint, the deliveries (the key, looked up when it registered the endpoint, is
    # remembered by this process for API_KEY_CACHE_SECONDS).
    with django_assert_num_queries(2):
        log = api.get(f"/api/v1/webhooks/{endpoint_id}/deliveries").json()
    assert len(log) == min(rows, 50)
    assert {d["status"] for d in log} == {"queued"}
    assert log[0]["next_attempt_at"] is not None


def test_send_again_is_refused_while_a_delivery_is_being_sent(
    project: Project, api: APIClient, receiver: Receiver
) -> None:
    endpoint_id = register(api, receiver.url).json()["id"]
    webhook_events_emit(project=project, event_type="feedback.created", payloads=[{}])
    delivery = WebhookDelivery.objects.get()
    resend = f"/api/v1/webhooks/{endpoint_id}/deliveries/{delivery.pk}/resend"
    assert api.post(resend).status_code == 409
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=JobStatus.FAILED, attempts=8)
    again = api.post(resend)
    assert again.status_code == 202
    assert again.json()["status"] == "queued"
    assert again.json()["webhook_id"] == delivery.message_id


@pytest.mark.django_db(transaction=True)
def test_feedback_through_the_api_arrives_signed_through_a_real_worker(
    project: Project, api: APIClient, receiver: Receiver, celery_worker: None
) -> None:
    # Given an endpoint that fails once, then accepts
    receiver.script(503, 200)
    created = register(api, receiver.url).json()
    AnswerFactory.create(project=project, external_id="a-1")

    # When a reaction is recorded through the API
    event = {
        "event_id": "e-1",
        "type": "reaction",
        "answer": "a-1",
        "user_ref": "u-9",
        "reaction": "love",
    }
    assert api.post("/api/v1/feedback", {"events": [event]}, format="json").status_code == 201

    # Then the worker sends it at once; after the failure it waits for its retry
    [first] = receiver.wait_for(1)
    delivery = WebhookDelivery.objects.get()
    assert first.headers["webhook-id"] == delivery.message_id
    delivery = settled(delivery, JobStatus.QUEUED)
    assert (delivery.attempts, delivery.response_status) == (1, 503)

    # When its time comes (5 s later; no beat runs here), the failed try's own wake-up sends
    # it again, with the same id, and it arrives signed
    first, second = receiver.wait_for(2)
    assert second.at - first.at >= RETRY_DELAYS[0].total_seconds() - 0.5
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    verified = Webhook(created["secret"]).verify(second.body, second.headers)
    assert verified["data"]["event_id"] == "e-1"
    assert verified["data"]["user_ref"] == "u-9"
    settled(delivery, JobStatus.SUCCEEDED)
    [logged] = api.get(f"/api/v1/webhooks/{created['id']}/deliveries").json()
    assert (logged["status"], logged["attempts"], logged["response_status"]) == (
        "succeeded",
        2,
        200,
    )
    assert len(receiver.received) == 2


def settled(delivery: WebhookDelivery, status: str, seconds: float = 60) -> WebhookDelivery:
    """The delivery once the worker has left it in `status`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.status == status:
            return delivery
        time.sleep(0.05)
    raise AssertionError(f"delivery still {delivery.status}")
