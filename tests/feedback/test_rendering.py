"""Answers' markdown as HTML: links open safely, and only to addresses one may follow."""

from __future__ import annotations

import pytest

from feedback.rendering import render_markdown


def test_a_link_opens_without_opener_referrer_or_ranking_credit() -> None:
    html = render_markdown("[Guide](https://example.org/oil)", allow_images=False)

    assert html == (
        '<p><a href="https://example.org/oil" rel="noopener noreferrer nofollow">Guide</a></p>\n'
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://bank.example@evil.example/login",
        "https://user:secret@docs.example/",
        "http:///no-host",
    ],
)
def test_a_link_to_an_address_that_is_not_followable_keeps_only_its_text(url: str) -> None:
    html = render_markdown(f"[Your bank]({url}) and ![chart]({url})", allow_images=True)

    assert "href" not in html
    assert "src" not in html
    assert "Your bank" in html


def test_relative_and_mail_links_stay() -> None:
    html = render_markdown("[docs](/help/) [mail](mailto:help@example.org)", allow_images=False)

    assert 'href="/help/"' in html
    assert 'href="mailto:help@example.org"' in html
