"""URLs from data on pages: a followable http(s) URL becomes a link that opens without the
opener, the referrer or ranking credit; anything else stays text, even when it is already stored
in the database (validation at ingestion is the first line, this is the second)."""

from __future__ import annotations

from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client

from feedback.models import Project
from tests.factories import AnswerFactory, MembershipFactory, StageFactory, UserFactory

BAD_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
    "https://user:pw@bank.example/",
    "https://bank.example@evil.example/",
    "http://",
    "/relative/path",
]


def render(template: str, **context: Any) -> str:
    return Template("{% load links %}" + template).render(Context(context))


def test_an_http_url_becomes_a_link_with_a_safe_rel() -> None:
    html = render('{{ url|external_link:"source" }}', url="https://docs.example/a?b=1&c=2")

    assert html == (
        '<a href="https://docs.example/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">source</a>'
    )


def test_without_text_the_link_shows_the_url() -> None:
    html = render("{{ url|external_link }}", url="http://docs.example/")

    assert html == (
        '<a href="http://docs.example/" rel="noopener noreferrer nofollow">http://docs.example/</a>'
    )


@pytest.mark.parametrize("url", BAD_URLS)
def test_anything_else_is_shown_as_text_only(url: str) -> None:
    html = render('{{ url|external_link:"source" }}', url=url)

    assert "<a" not in html
    assert "href" not in html
    assert "<script" not in html
    assert html.startswith('<span class="unlinked-url" title="Not linked: ')


def test_an_empty_or_missing_url_renders_nothing() -> None:
    assert render("{{ url|external_link }}", url="") == ""
    assert render("{{ url|external_link }}", url=None) == ""


def test_a_url_that_is_not_a_string_is_text() -> None:
    assert "<a" not in render("{{ url|external_link }}", url={"href": "javascript:alert(1)"})


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<b>x</b>"])
def test_debug_mode_never_links_a_bad_url_already_in_the_database(
    client: Client, project: Project, url: str
) -> None:
    user = UserFactory.create()
    MembershipFactory.create(user=user, project=project, role="annotator")
    client.force_login(user)
    answer = AnswerFactory.create(project=project, external_id="a-1")
    documents = [
        {"id": "d1", "title": "Evil", "text": "Click the source.", "url": url},
        {"id": "d2", "title": "Fine", "text": "A real page.", "url": "https://docs.example/d2"},
    ]
    StageFactory.create(
        answer=answer, position=0, kind="retrieval", output={"documents": documents}
    )

    html = client.get("/projects/acme/answers/a-1/debug/").content.decode()

    assert 'href="javascript:' not in html
    assert 'href="data:' not in html
    assert '<a href="https://docs.example/d2" rel="noopener noreferrer nofollow">source</a>' in html
    assert '<span class="unlinked-url"' in html
