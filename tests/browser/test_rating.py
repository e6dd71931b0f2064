"""A rater in a real browser: react, critique, compare with the keyboard, and stay safe from
script payloads in answers."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect

from feedback.models import Comparison, Critique, Project, Reaction
from tests.factories import AnswerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_love_updates_the_bar_without_a_reload_and_persists(
    rater_page: Page, live_server: Any, project: Project
) -> None:
    AnswerFactory.create(project=project, external_id="a-1")
    rater_page.goto(f"{live_server.url}/projects/acme/answers/a-1/")
    rater_page.evaluate("window.__samePage = true")
    love = rater_page.get_by_role("button", name="Love", exact=True)
    expect(love).to_have_attribute("aria-pressed", "false")

    love.click()

    expect(rater_page.get_by_role("button", name="Love", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(rater_page.locator('[data-reaction-count="love"]')).to_have_text("1")
    assert rater_page.evaluate("window.__samePage") is True  # no navigation happened
    rater_page.reload()
    expect(rater_page.get_by_role("button", name="Love", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    assert Reaction.objects.filter(kind="love", removed_at__isnull=True).count() == 1


def test_send_a_critique_with_a_quote_from_a_selection(
    rater_page: Page, live_server: Any, project: Project
) -> None:
    AnswerFactory.create(project=project, external_id="a-1", response="Use one drop per link.")
    rater_page.goto(f"{live_server.url}/projects/acme/answers/a-1/")

    rater_page.locator("#answer-body p").select_text()
    rater_page.locator("#answer-body").dispatch_event("mouseup")
    rater_page.get_by_label("Critique").fill("Which oil, though?")
    rater_page.get_by_role("button", name="Send critique").click()

    expect(rater_page.get_by_text("Thanks: your critique was sent.")).to_be_visible()
    critique = Critique.objects.get()
    assert critique.text == "Which oil, though?"
    assert critique.quote == "Use one drop per link."


def test_compare_two_answers_with_the_keyboard(
    rater_page: Page, live_server: Any, project: Project
) -> None:
    first = AnswerFactory.create(project=project, external_id="a-1", response="Answer one.")
    AnswerFactory.create(project=project, external_id="a-2", prompt=first.prompt, response="Two.")
    rater_page.goto(f"{live_server.url}/projects/acme/compare/")
    shown_b = rater_page.locator('input[name="answer_b"]').input_value()

    rater_page.keyboard.press("2")

    expect(rater_page.get_by_text("Thanks: recorded.")).to_be_visible()
    comparison = Comparison.objects.get()
    assert comparison.winner == "b"
    assert comparison.answer_b.external_id == shown_b


def test_an_answer_full_of_script_payloads_runs_none_of_them(
    rater_page: Page, live_server: Any, project: Project
) -> None:
    payloads = "\n\n".join(
        [
            "<script>window.__xss = 'script'</script>",
            "<img src=x onerror=\"window.__xss = 'img'\">",
            "<svg onload=\"window.__xss = 'svg'\"></svg>",
            "[click me](javascript:window.__xss='link')",
            "<a href=\"javascript:window.__xss='raw-link'\">raw link</a>",
            "<iframe src=\"javascript:parent.__xss='iframe'\"></iframe>",
            "![x](x onerror=window.__xss='md-img')",
        ]
    )
    AnswerFactory.create(project=project, external_id="evil", response=payloads)
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    rater_page.on("dialog", record)

    rater_page.goto(f"{live_server.url}/projects/acme/answers/evil/")
    for link in rater_page.locator("#answer-body a").all():
        link.click()
    rater_page.wait_for_timeout(300)

    assert rater_page.evaluate("window.__xss") is None
    assert dialogs == []
    assert (
        rater_page.locator("#answer-body script, #answer-body iframe, #answer-body img").count()
        == 0
    )
