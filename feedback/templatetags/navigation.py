"""The project bar of the site's layout (base.html)."""

from __future__ import annotations

from typing import Any

from django import template

from feedback.core.access import membership_of
from feedback.core.navigation import project_links

register = template.Library()


@register.inclusion_tag("includes/project_bar.html", takes_context=True)
def project_bar(context: template.Context) -> dict[str, Any]:
    """The sections of the page's project that the viewer's role may open, the current one
    marked; nothing outside a project, or for someone who is not a member of it. Pages rendered
    without a request (500, 503) get no bar."""
    request = context.get("request")
    membership = membership_of(request) if request is not None else None
    if membership is None:
        return {"membership": None, "links": []}
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match is not None else ""
    return {"membership": membership, "links": project_links(membership, view_name)}
