"""Markdown answers to safe HTML: markdown-it-py renders (raw HTML off), nh3 sanitises.

Two layers on purpose: markdown-it already escapes raw HTML and refuses `javascript:` links,
and nh3 then keeps only an allow-list of tags, attributes and URL schemes, so a bug or a
setting in one layer can't put a script, an event handler or a hostile link on the page.
An http(s) address must also pass the check every stored URL passes (no credentials that
disguise the real host, no control characters); a link that fails it keeps its text only.
Every link opens with rel="noopener noreferrer nofollow".
"""

from __future__ import annotations

from functools import cache

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from feedback.core.validators import url_problem

_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "code": {"class"}}


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _followable(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: drop an http(s) href or src that is not a followable URL."""
    if attribute in ("href", "src") and value.lower().startswith(("http:", "https:")):
        return value if url_problem(value) is None else None
    return value


def render_markdown(text: str, *, allow_images: bool) -> SafeString:
    html = _markdown().render(text)
    tags, attributes = set(_TAGS), dict(_ATTRIBUTES)
    if allow_images:
        tags.add("img")
        attributes["img"] = {"src", "alt", "title"}
    clean = nh3.clean(
        html,
        tags=tags,
        attributes=attributes,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=_followable,
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 (sanitised by nh3 just above)
