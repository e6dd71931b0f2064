"""Links to URLs that came from data (a retrieved document's `url`, anything a client sent).

Ingestion refuses URLs that are not plain http(s), but a page must stay safe for a row stored
before that check, or written by a path that skipped it: such a URL is shown as text, never as
something to click.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from feedback.core.validators import url_problem

register = template.Library()

# The linked page gets no window.opener to navigate this one with, no Referer (which would name
# the answer being read), and no ranking credit from the link.
EXTERNAL_REL = "noopener noreferrer nofollow"


@register.filter
def external_link(url: object, text: str = "") -> SafeString | str:
    """`url` as a link with `text` (the URL itself by default), or the URL as plain text when it
    is not an http(s) URL one may follow (`javascript:`, `data:`, credentials, control
    characters...). Nothing at all for an empty value."""
    if url is None or url == "":
        return ""
    value = str(url)
    problem = url_problem(value)
    if problem is not None:
        return format_html(
            '<span class="unlinked-url" title="Not linked: {}">{}</span>', problem, value
        )
    return format_html('<a href="{}" rel="{}">{}</a>', value, EXTERNAL_REL, text or value)
