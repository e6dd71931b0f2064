"""The project bar: the sections of a project, which role opens each, and which one a page
belongs to.

Each section names the least role its page asks of a member (the same role its view gives
`membership_or_404`), so the bar never offers a page that would answer 403. A section whose
URL is not served (yet) is left out rather than breaking every page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from feedback.models import Membership, Role, role_includes


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    url_name: str  # takes the project's slug and nothing else
    min_role: str
    # The views (namespace:name, matched by prefix) whose pages belong to this section.
    views: tuple[str, ...]


SECTIONS: tuple[Section, ...] = (
    Section(
        "answers",
        "Answers",
        "feedback:project_detail",
        Role.RATER,
        ("feedback:project_detail", "feedback:answer_", "feedback:rerun_status"),
    ),
    Section("compare", "Compare", "feedback:compare", Role.RATER, ("feedback:compare",)),
    Section("ask", "Ask", "feedback:ask", Role.RATER, ("feedback:ask",)),
    Section("queues", "Queues", "feedback:queue_list", Role.ANNOTATOR, ("feedback:queue_",)),
    Section(
        "reviews", "Reviews", "rewardmodels:review_list", Role.ANNOTATOR, ("rewardmodels:review",)
    ),
    Section(
        "dashboard", "Dashboard", "feedback:dashboard", Role.RESEARCHER, ("feedback:dashboard",)
    ),
    Section("exports", "Exports", "feedback:export_list", Role.RESEARCHER, ("feedback:export_",)),
    Section("models", "Models", "rewardmodels:model_list", Role.RESEARCHER, ("rewardmodels:",)),
    Section(
        "settings",
        "Settings",
        "feedback:project_settings",
        Role.OWNER,
        ("feedback:project_settings", "feedback:connector_save", "feedback:webhook"),
    ),
    Section("members", "Members", "feedback:members", Role.OWNER, ("feedback:member",)),
    Section("api_keys", "API keys", "feedback:api_keys", Role.OWNER, ("feedback:api_key",)),
)


@dataclass(frozen=True)
class NavLink:
    key: str
    label: str
    url: str
    current: bool


def sections_for(role: str) -> list[Section]:
    """The sections a member with `role` may open, in the bar's order."""
    return [s for s in SECTIONS if role_includes(role, s.min_role)]


def section_of(view_name: str) -> str | None:
    """The key of the section a page belongs to (the first that claims its view), if any."""
    for section in SECTIONS:
        if any(view_name.startswith(prefix) for prefix in section.views):
            return section.key
    return None


def project_links(membership: Membership, view_name: str) -> list[NavLink]:
    """The bar's links for `membership`, marking the section of the page `view_name`."""
    current = section_of(view_name)
    links = []
    for section in sections_for(membership.role):
        try:
            url = reverse(section.url_name, kwargs={"slug": membership.project.slug})
        except NoReverseMatch:
            continue
        links.append(NavLink(section.key, section.label, url, section.key == current))
    return links
