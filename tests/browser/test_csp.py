"""The Content-Security-Policy in a real browser: a script that got into a page does not run
and is reported; the pages that bring their own scripts (Swagger UI, the admin) still work."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from feedback.models import Project
from tests.browser.conftest import PASSWORD, log_in
from tests.factories import AnswerFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_script_injected_into_a_page_is_refused_and_reported(
    rater_page: Page, live_server: Any, project: Project, csp_violations: list[str]
) -> None:
    AnswerFactory.create(project=project, external_id="a-1")
    rater_page.goto(f"{live_server.url}/projects/acme/answers/a-1/")

    # What a hole in escaping would put on the page: an inline script, an event handler and a
    # javascript: link, added to the live document.
    rater_page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__xss = 'inline'";
          document.body.append(script);
          const img = document.createElement("img");
          img.setAttribute("onerror", "window.__xss = 'handler'");
          img.src = "/no-such-image.png";
          document.body.append(img);
          const link = document.createElement("a");
          link.href = "javascript:void(window.__xss = 'link')";
          link.textContent = "injected";
          document.body.append(link);
        }"""
    )
    rater_page.wait_for_timeout(300)  # the image fails to load, its handler would run
    ran_inline = rater_page.evaluate("window.__xss")
    rater_page.get_by_role("link", name="injected").click()
    rater_page.wait_for_timeout(300)

    assert ran_inline is None
    assert rater_page.evaluate("window.__xss") is None
    refused = [v for v in csp_violations if "CSP violation: script-src" in v]
    assert len(refused) >= 3, csp_violations
    csp_violations.clear()  # seen and expected: the teardown check is for unexpected ones


def test_the_api_docs_render_under_the_policy(
    rater_page: Page, live_server: Any, project: Project
) -> None:
    rater_page.goto(f"{live_server.url}/api/docs/")

    expect(rater_page.get_by_text("Feedback platform API").first).to_be_visible()
    answers = rater_page.locator(".opblock-summary-path", has_text="/api/v1/answers").first
    expect(answers).to_be_visible()
    answers.click()
    expect(rater_page.get_by_role("button", name="Try it out").first).to_be_visible()


def test_the_admin_works_under_the_policy(page: Page, live_server: Any, db: Any) -> None:
    UserFactory.create(username="root", is_staff=True, is_superuser=True)
    UserFactory.create(username="zed")
    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("link", name="Users").first.click()
    page.get_by_role("link", name="zed").click()
    expect(page.get_by_role("heading", name="zed")).to_be_visible()
    page.get_by_label("Staff status").check()
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text(re.compile("was changed successfully"))).to_be_visible()


def test_htmx_polls_and_swaps_under_the_policy(
    page: Page, live_server: Any, project: Project
) -> None:
    """The answer list's filter is an htmx form: changing a select swaps the list in place and
    pushes the URL, with no reload and no eval."""
    AnswerFactory.create(project=project, external_id="a-1", model="small")
    AnswerFactory.create(project=project, external_id="a-2", model="large")
    log_in(page, live_server, project, "rita", "rater")
    page.goto(f"{live_server.url}/projects/acme/")
    page.evaluate("window.__samePage = true")

    page.get_by_label("Model").select_option("large")

    expect(page.locator("#answer-list tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"model=large"))
    assert page.evaluate("window.__samePage") is True
