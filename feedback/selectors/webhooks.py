"""Reads of webhooks: a project's endpoints and each endpoint's delivery log."""

from __future__ import annotations

from django.db.models import QuerySet

from feedback.models import Project, WebhookDelivery, WebhookEndpoint

DELIVERY_LOG_LENGTH = 50


def webhook_endpoints_for_project(*, project: Project) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(project=project).order_by("-created_at", "-pk")


def webhook_endpoint_get(*, project: Project, endpoint_id: int) -> WebhookEndpoint | None:
    """The project's endpoint, or None (another project's is not there)."""
    return WebhookEndpoint.objects.filter(project=project, pk=endpoint_id).first()


def webhook_deliveries_for_endpoint(
    *, endpoint: WebhookEndpoint, limit: int = DELIVERY_LOG_LENGTH
) -> list[WebhookDelivery]:
    """The newest deliveries first, without their payloads (a log, not an archive)."""
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint).defer("payload").order_by("-pk")[:limit]
    )


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id: int) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint, pk=delivery_id)
        .select_related("endpoint")
        .first()
    )
