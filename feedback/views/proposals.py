"""Accepting or rejecting a judge's proposed correction in debug mode. With htmx the stage's
proposals are swapped in place; without, the page comes back to debug mode."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from feedback.core.access import answer_or_404, found_or_404, membership_or_404
from feedback.core.forms import ServiceForm
from feedback.core.pages import is_htmx
from feedback.models import Role
from feedback.selectors.proposals import proposal_get, proposals_for_stage
from feedback.services.proposals import proposal_decide


class DecisionForm(ServiceForm):
    """No fields: the decision is the URL; the form shows why the service refused it."""


def _decide(
    request: HttpRequest, slug: str, external_id: str, proposal_id: int, *, accept: bool
) -> HttpResponse:
    membership = membership_or_404(request, slug, Role.ANNOTATOR)
    answer = answer_or_404(membership, external_id)
    proposal = found_or_404(
        proposal_get(project=membership.project, answer=answer, proposal_id=proposal_id),
        "No such proposal.",
    )
    form = DecisionForm({})
    decided = form.submit(
        lambda _: proposal_decide(proposal=proposal, annotator=membership.user, accept=accept)
    )
    status = 200
    if decided is None:
        status = 400
        for text in form.error_texts():
            messages.error(request, text)
    else:
        messages.success(request, "Accepted as your correction." if accept else "Rejected.")
    if is_htmx(request) and proposal.stage is not None:
        context = {
            "project": membership.project,
            "answer": answer,
            "stage": proposal.stage,
            "proposals": list(proposals_for_stage(stage=proposal.stage)),
        }
        return render(request, "feedback/_stage_proposals.html", context, status=status)
    # Back to the stage the proposal was for (numbered from 1 on the page).
    stage = f"#stage-{proposal.stage.position + 1}" if proposal.stage is not None else ""
    return redirect(reverse("feedback:answer_debug", args=[slug, answer.external_id]) + stage)


@require_POST
@login_required
def proposal_accept(
    request: HttpRequest, slug: str, external_id: str, proposal_id: int
) -> HttpResponse:
    return _decide(request, slug, external_id, proposal_id, accept=True)


@require_POST
@login_required
def proposal_reject(
    request: HttpRequest, slug: str, external_id: str, proposal_id: int
) -> HttpResponse:
    return _decide(request, slug, external_id, proposal_id, accept=False)
