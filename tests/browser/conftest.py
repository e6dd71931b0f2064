"""Playwright driving Debian's Chromium against pytest-django's live server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

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


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """Another browser (its own cookies) for a second person. Closed at the end, so the live
    server's request threads let go of their database connections."""
    context = browser.new_context()
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
