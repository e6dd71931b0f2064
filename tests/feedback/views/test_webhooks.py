"""The webhooks pages: an owner registers an endpoint (its secret shown once), reads its delivery
log, sends a delivery again, enables an endpoint that was disabled, deletes one. Who may see the
pages at all is the access matrix's (tests/config/test_urls.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from feedback.core.jobs import JobStatus
from feedback.models import Project, Role, WebhookDelivery, WebhookEndpoint
from feedback.services.webhooks import (
    DISABLE_AFTER_FAILED_DELIVERIES,
    RETRY_DELAYS,
    webhook_delivery_send,
    webhook_endpoint_create,
    webhook_events_emit,
)
from tests.factories import login
from tests.feedback.webhook_receiver import Receiver, webhook_receiver


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    with webhook_receiver() as running:
        yield running


@pytest.fixture
def owner(client: Client, project: Project) -> Client:
    login(client, project, Role.OWNER)
    return client


def test_the_settings_page_links_to_the_webhooks(owner: Client) -> None:
    assert b'href="/projects/acme/webhooks/"' in owner.get("/projects/acme/settings/").content


def test_an_owner_registers_an_endpoint_and_sees_its_secret_once(
    owner: Client, receiver: Receiver
) -> None:
    response = owner.post(
        "/projects/acme/webhooks/create/",
        {"url": receiver.url, "events": ["feedback.created", "export.succeeded"]},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    endpoint = WebhookEndpoint.objects.get()
    secret = str(endpoint.secret)
    assert endpoint.events == ["feedback.created", "export.succeeded"]
    assert secret.encode() in response.content

    again = owner.get("/projects/acme/webhooks/")
    assert receiver.url.encode() in again.content
    assert secret.encode() not in again.content


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"url": "https://user:hunter2@10.0.0.1/x", "events": ["answer.created"]}, b"user name"),
        ({"url": "https://10.0.0.1/x", "events": ["answer.created"]}, b"private address"),
        ({"url": "https://hooks.invalid/x"}, b"This field is required"),
    ],
)
def test_a_refused_endpoint_shows_why_and_hides_credentials(
    owner: Client, settings: Any, form: dict[str, Any], message: bytes
) -> None:
    settings.OUTBOUND_ALLOWED_HOSTS = []
    response = owner.post("/projects/acme/webhooks/create/", form)
    assert response.status_code == 400
    assert message in response.content
    assert b"hunter2" not in response.content
    assert not WebhookEndpoint.objects.exists()


def test_the_delivery_log_shows_tries_and_status_codes_but_no_bodies(
    owner: Client, project: Project, receiver: Receiver
) -> None:
    endpoint, _ = webhook_endpoint_create(
        project=project, url=receiver.url, events=["answer.created"]
    )
    receiver.script(500, 200)
    webhook_events_emit(project=project, event_type="answer.created", payloads=[{"n": 1}])
    delivery = WebhookDelivery.objects.get()
    webhook_delivery_send(delivery_id=delivery.pk)

    page = owner.get(f"/projects/acme/webhooks/{endpoint.pk}/").content.decode()
    assert delivery.message_id in page
    assert "answered HTTP 500" in page
    assert "secret internal detail" not in page  # the receiver's body

    webhook_delivery_send(delivery_id=delivery.pk)
    log = owner.get(f"/projects/acme/webhooks/{endpoint.pk}/", headers={"HX-Request": "true"})
    assert log.content.decode().lstrip().startswith('<section id="delivery-log"')
    assert "Delivered" in log.content.decode()

    sent = owner.post(f"/projects/acme/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/")
    assert sent.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == JobStatus.QUEUED
    webhook_delivery_send(delivery_id=delivery.pk)
    assert receiver.ids() == [delivery.message_id] * 3


@pytest.mark.parametrize("rows", [10, 100])
def test_the_delivery_log_costs_the_same_queries_for_10_and_100_rows(
    owner: Client, project: Project, receiver: Receiver, django_assert_num_queries: Any, rows: int
) -> None:
    endpoint, _ = webhook_endpoint_create(
        project=project, url=receiver.url, events=["answer.created"]
    )
    webhook_events_emit(
        project=project, event_type="answer.created", payloads=[{"n": n} for n in range(rows)]
    )
    # Session, user, membership, the endpoint, the deliveries.
    with django_assert_num_queries(5):
        response = owner.get(f"/projects/acme/webhooks/{endpoint.pk}/")
    assert response.status_code == 200


def test_a_disabled_endpoint_says_so_and_can_be_enabled(
    owner: Client, project: Project, receiver: Receiver
) -> None:
    endpoint, _ = webhook_endpoint_create(
        project=project, url=receiver.url, events=["answer.created"]
    )
    receiver.script(500)
    for n in range(DISABLE_AFTER_FAILED_DELIVERIES):
        webhook_events_emit(project=project, event_type="answer.created", payloads=[{"n": n}])
        delivery = WebhookDelivery.objects.latest("pk")
        for _ in range(len(RETRY_DELAYS) + 1):
            webhook_delivery_send(delivery_id=delivery.pk)

    page = owner.get(f"/projects/acme/webhooks/{endpoint.pk}/").content.decode()
    assert 'id="webhook-disabled"' in page
    assert "Disabled after" in page
    assert "Disabled" in owner.get("/projects/acme/webhooks/").content.decode()

    enabled = owner.post(f"/projects/acme/webhooks/{endpoint.pk}/enable/")
    assert enabled.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None
    page = owner.get(f"/projects/acme/webhooks/{endpoint.pk}/").content.decode()
    assert 'id="webhook-disabled"' not in page


def test_an_owner_deletes_an_endpoint(owner: Client, project: Project, receiver: Receiver) -> None:
    endpoint, _ = webhook_endpoint_create(
        project=project, url=receiver.url, events=["answer.created"]
    )
    response = owner.post(f"/projects/acme/webhooks/{endpoint.pk}/delete/")
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()


def test_a_researcher_does_not_get_the_page(client: Client, project: Project) -> None:
    login(client, project, Role.RESEARCHER)
    assert client.get("/projects/acme/webhooks/").status_code == 403
