"""Playwright driving Debian's Chromium against pytest-django's live server.

Every page a test opens is watched for Content-Security-Policy violations: a test that made the
browser refuse a script, a style or an eval (an htmx feature that needs one, a template that
gained an inline script) fails, even if what it asserted still held.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

from feedback.models import Project
from tests.factories import MembershipFactory, UserFactory

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


# Runs in every document and frame before the page's own scripts: the browser fires
# `securitypolicyviolation` for each refused script, style, eval, frame or connection; it is
# reported to the console, where the context's listener below collects it.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.effectiveDirective + " refused "
    + (event.blockedURI || "an inline resource") + " in " + event.sourceFile + ":"
    + event.lineNumber + " (" + event.sample + ")");
}, true);
"""

# What marks a console message as a refusal by the policy: our report above, Chromium's own
# "Refused to ... because it violates the following Content Security Policy directive", and
# htmx's error when an attribute needed eval (which the base template turns off).
VIOLATION_MARKERS = ("CSP violation:", "Content Security Policy", "htmx:evalDisallowedError")


@pytest.fixture
def csp_violations() -> Iterator[list[str]]:
    """The policy violations reported by every browser context of the test so far; the test
    fails at teardown unless the list is empty."""
    violations: list[str] = []
    yield violations
    if violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(violations))


def watched_context(browser: Browser, violations: list[str]) -> BrowserContext:
    context = browser.new_context()
    context.add_init_script(REPORT_VIOLATIONS)

    def collect(message: ConsoleMessage) -> None:
        if any(marker in message.text for marker in VIOLATION_MARKERS):
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    context.on("console", collect)
    return context


@pytest.fixture
def page(browser: Browser, csp_violations: list[str]) -> Iterator[Page]:
    context = watched_context(browser, csp_violations)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def second_page(browser: Browser, csp_violations: list[str]) -> Iterator[Page]:
    """Another browser (its own cookies) for a second person. Closed at the end, so the live
    server's request threads let go of their database connections."""
    context = watched_context(browser, csp_violations)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def log_in(page: Page, live_server: Any, project: Project, username: str, role: str) -> Page:
    """Make a member of `project` and log them in through the login form."""
    user = UserFactory.create(username=username)
    MembershipFactory.create(user=user, project=project, role=role)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/projects/")
    return page


@pytest.fixture
def rater_page(page: Page, live_server: Any, project: Project) -> Page:
    """A page logged in, through the login form, as a rater of `project`."""
    return log_in(page, live_server, project, "rita", "rater")


@pytest.fixture
def annotator_page(page: Page, live_server: Any, project: Project) -> Page:
    return log_in(page, live_server, project, "anna", "annotator")
