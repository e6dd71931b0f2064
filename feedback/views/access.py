from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from feedback import selectors
from feedback.models import Membership, Role, role_includes


def membership_or_404(request: HttpRequest, slug: str, min_role: str = Role.RATER) -> Membership:
    """The caller's membership; another project answers 404, a too-small role 403."""
    membership = selectors.membership_get(user=request.user, slug=slug)
    if membership is None:
        raise Http404("No such project.")
    if not role_includes(membership.role, min_role):
        raise PermissionDenied(f"This page needs the {min_role} role.")
    return membership
