"""Who is asking: on a page, the caller's membership of the project in the URL; and the
viewer id a signed-in person's feedback is recorded under (pages and API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from feedback import selectors
from feedback.models import Answer, Membership, Role, role_includes

if TYPE_CHECKING:
    from rest_framework.request import Request


def membership_or_404(request: HttpRequest, slug: str, min_role: str = Role.RATER) -> Membership:
    """The caller's membership; another project answers 404, a too-small role 403."""
    membership = selectors.membership_get(user=request.user, slug=slug)
    if membership is None:
        raise Http404("No such project.")
    if not role_includes(membership.role, min_role):
        raise PermissionDenied(f"This page needs the {min_role} role.")
    return membership


def answer_or_404(membership: Membership, external_id: str) -> Answer:
    """An answer of the caller's project; any other (or one since deleted) answers 404."""
    answer = selectors.answer_for_page(project=membership.project, external_id=external_id)
    if answer is None:
        raise Http404("This answer does not exist (any more).")
    return answer


def viewer_of(request: HttpRequest | Request) -> str:
    """The viewer a signed-in person's feedback is recorded as: themselves, whatever a form or
    a body says."""
    return f"user:{request.user.pk}"
