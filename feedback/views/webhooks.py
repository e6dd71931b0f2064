"""The webhooks pages of a project, for its owners: the endpoints, each one's delivery log, and
the actions on them (register, delete, enable again, send a delivery again)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from feedback import services
from feedback.core.access import found_or_404, membership_or_404
from feedback.core.errors import NotReady
from feedback.core.pages import render_page, submit_form
from feedback.forms import WebhookEndpointForm
from feedback.models import Membership, Role, WebhookEndpoint
from feedback.selectors import webhooks as webhook_selectors

LIST_PAGE = "feedback/webhooks.html"
DETAIL_PAGE = "feedback/webhook_detail.html"


def _list_context(membership: Membership, **extra: Any) -> dict[str, Any]:
    return {
        "membership": membership,
        "project": membership.project,
        "endpoints": webhook_selectors.webhook_endpoints_for_project(project=membership.project),
        "form": WebhookEndpointForm(),
        **extra,
    }


def _endpoint(membership: Membership, endpoint_id: int) -> WebhookEndpoint:
    return found_or_404(
        webhook_selectors.webhook_endpoint_get(project=membership.project, endpoint_id=endpoint_id),
        "No such webhook endpoint.",
    )


@require_GET
@login_required
def webhook_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    return render(request, LIST_PAGE, _list_context(membership))


@require_POST
@login_required
def webhook_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)

    def show_once(created: tuple[WebhookEndpoint, str]) -> HttpResponse:
        # The secret is rendered once, in this response, and never again.
        endpoint, secret = created
        response = render(
            request,
            LIST_PAGE,
            _list_context(membership, new_endpoint=endpoint, new_secret=secret),
        )
        response["Cache-Control"] = "no-store"
        return response

    form = WebhookEndpointForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: services.webhooks.webhook_endpoint_create(
            project=membership.project,
            url=data["url"],
            events=data["events"],
            description=data["description"],
            created_by=request.user.get_username(),
        ),
        template=LIST_PAGE,
        context=lambda form: _list_context(membership, form=form.redact()),
        done=show_once,
    )


@require_GET
@login_required
def webhook_detail(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    endpoint = _endpoint(membership, endpoint_id)
    context = {
        "membership": membership,
        "project": membership.project,
        "endpoint": endpoint,
        "deliveries": webhook_selectors.webhook_deliveries_for_endpoint(endpoint=endpoint),
    }
    return render_page(request, DETAIL_PAGE, context, partial="delivery-log")


@require_POST
@login_required
def webhook_delete(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    endpoint = _endpoint(membership, endpoint_id)
    services.webhooks.webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, "Webhook endpoint deleted.")
    return redirect("feedback:webhook_list", slug=slug)


@require_POST
@login_required
def webhook_enable(request: HttpRequest, slug: str, endpoint_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    endpoint = services.webhooks.webhook_endpoint_enable(
        endpoint=_endpoint(membership, endpoint_id)
    )
    messages.success(request, "Endpoint enabled: new events are sent to it again.")
    return redirect("feedback:webhook_detail", slug=slug, endpoint_id=endpoint.pk)


@require_POST
@login_required
def webhook_delivery_resend(
    request: HttpRequest, slug: str, endpoint_id: int, delivery_id: int
) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.OWNER)
    endpoint = _endpoint(membership, endpoint_id)
    delivery = found_or_404(
        webhook_selectors.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id),
        "No such delivery.",
    )
    try:
        services.webhooks.webhook_delivery_resend(delivery=delivery)
    except NotReady as not_ready:
        messages.error(request, not_ready.message)
    else:
        messages.success(request, f"Delivery {delivery.message_id} queued to be sent again.")
    return redirect("feedback:webhook_detail", slug=slug, endpoint_id=endpoint.pk)
