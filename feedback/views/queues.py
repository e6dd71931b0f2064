"""Annotation queues: researchers create them from a filter and watch progress and agreement;
annotators press "Next", work on the answer in debug mode, skip, or finish it, and may go back
to the items they had before."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from feedback import selectors, services
from feedback.core.access import found_or_404, membership_or_404
from feedback.core.pages import submit_form
from feedback.forms import QueueForm
from feedback.models import AnnotationQueue, Membership, QueueAssignment, Role, role_includes
from feedback.selectors import REACTION_STATES


def _queue_or_404(membership: Membership, queue_id: int) -> AnnotationQueue:
    queue = selectors.queue_get(project=membership.project, queue_id=queue_id)
    return found_or_404(queue, "No such queue.")


def _list_context(membership: Membership, **extra: object) -> dict[str, object]:
    project = membership.project
    return {
        "membership": membership,
        "project": project,
        "queues": selectors.queues_with_progress(project=project),
        "can_create": role_includes(membership.role, Role.RESEARCHER),
        "reaction_states": REACTION_STATES.items(),
        "models": selectors.project_models(project=project),
        "form": QueueForm(),
        **extra,
    }


@require_GET
@login_required
def queue_list(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    return render(request, "feedback/queues.html", _list_context(membership))


@require_POST
@login_required
def queue_create(request: HttpRequest, slug: str) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.RESEARCHER)
    form = QueueForm(request.POST)
    return submit_form(
        request,
        form,
        lambda data: services.annotation.queue_create(
            project=membership.project,
            created_by=membership.user,
            name=data["name"],
            guidelines=data["guidelines"],
            overlap=data["overlap"],
            spec=form.spec(),
        ),
        template="feedback/queues.html",
        context=lambda form: _list_context(membership, form=form),
        message=lambda queue: (
            f"Queue “{queue.name}” created with {selectors.queue_item_count(queue=queue)} answers."
        ),
        done=lambda queue: redirect("feedback:queue_detail", slug, queue.pk),
    )


@require_GET
@login_required
def queue_detail(request: HttpRequest, slug: str, queue_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    queue = _queue_or_404(membership, queue_id)
    researcher = role_includes(membership.role, Role.RESEARCHER)
    context = {
        "membership": membership,
        "project": membership.project,
        "queue": queue,
        "progress": selectors.queue_progress(queue=queue),
        "mine": selectors.queue_progress_for(queue=queue, annotator=membership.user),
        "last": selectors.queue_assignment_last(queue=queue, annotator=membership.user),
        "researcher": researcher,
        "agreement": selectors.queue_agreement(queue=queue) if researcher else None,
    }
    return render(request, "feedback/queue_detail.html", context)


def to_next_item(
    request: HttpRequest, membership: Membership, queue: AnnotationQueue
) -> HttpResponse:
    """Hand the annotator their next item (in debug mode), or tell them the queue is done."""
    assignment = services.annotation.queue_item_next_for(queue=queue, annotator=membership.user)
    if assignment is None:
        messages.info(request, "Nothing left for you in this queue. Thank you!")
        return redirect("feedback:queue_detail", membership.project.slug, queue.pk)
    return to_item(request, membership, assignment)


def to_item(
    request: HttpRequest, membership: Membership, assignment: QueueAssignment
) -> HttpResponse:
    """Debug mode on one of the annotator's queue items."""
    answer = assignment.item.answer
    url = reverse("feedback:answer_debug", args=[membership.project.slug, answer.external_id])
    return redirect(f"{url}?{urlencode({'assignment': assignment.pk})}")


def to_following_item(
    request: HttpRequest, membership: Membership, assignment: QueueAssignment
) -> HttpResponse:
    """From one of the annotator's items to the one after it: an item they had later (when
    they went back), else the one they hold or a new one, else the queue's page."""
    following = services.annotation.queue_item_following(assignment=assignment)
    if following is None:
        messages.info(request, "Nothing left for you in this queue. Thank you!")
        return redirect("feedback:queue_detail", membership.project.slug, assignment.item.queue_id)
    return to_item(request, membership, following)


@require_POST
@login_required
def queue_next(request: HttpRequest, slug: str, queue_id: int) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    return to_next_item(request, membership, _queue_or_404(membership, queue_id))
