"""Who is asking: on a page, the caller's membership of the project in the URL; and the
viewer id a signed-in person's feedback is recorded under (pages and API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from feedback import selectors
from feedback.models import Answer, Membership, Role, role_includes

if TYPE_CHECKING:
    from rest_framework.request import Request

T = TypeVar("T")


class RoleRequired(PermissionDenied):
    """A member asked for a page that needs a bigger role than theirs."""

    def __init__(self, role: str) -> None:
        super().__init__(f"This page needs the {role} role.")
        self.role = role


def found_or_404(found: T | None, message: str) -> T:
    """What a selector found, or a 404 saying `message` (selectors answer None for what isn't
    there or isn't the caller's project's, so another project's ids are indistinguishable from
    unknown ones)."""
    if found is None:
        raise Http404(message)
    return found


def membership_or_404(request: HttpRequest, slug: str, min_role: str = Role.RATER) -> Membership:
    """The caller's membership; another project answers 404, a too-small role 403."""
    membership = found_or_404(
        selectors.membership_get(user=request.user, slug=slug), "No such project."
    )
    # Kept for the layout's project bar, also when the role is too small (the 403 page still
    # shows the sections this member may open).
    request.project_membership = membership  # type: ignore[attr-defined]
    if not role_includes(membership.role, min_role):
        raise RoleRequired(min_role)
    return membership


def membership_of(request: HttpRequest) -> Membership | None:
    """The membership `membership_or_404` found for this request, if it ran."""
    found = getattr(request, "project_membership", None)
    return found if isinstance(found, Membership) else None


def answer_or_404(membership: Membership, external_id: str) -> Answer:
    """An answer of the caller's project; any other (or one since deleted) answers 404."""
    answer = selectors.answer_for_page(project=membership.project, external_id=external_id)
    return found_or_404(answer, "This answer does not exist (any more).")


def viewer_of(request: HttpRequest | Request) -> str:
    """The viewer a signed-in person's feedback is recorded as: themselves, whatever a form or
    a body says."""
    return f"user:{request.user.pk}"
