"""The dashboard, the answers list's search and the compare page in a real browser, on a laptop
and on a 390 px phone."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.utils import timezone
from playwright.sync_api import Page, ViewportSize, expect

from feedback.datasets import DATASETS, Filters, jsonl_chunks
from feedback.models import Comparison, Critique, Exposure, FollowUp, Project, Reaction
from feedback.selectors.dashboard import day_bounds
from tests.browser.conftest import log_in
from tests.factories import AnswerFactory
from tests.feedback.dashboard_data import seed_feedback

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = ViewportSize(width=390, height=844)
LAPTOP = ViewportSize(width=1280, height=800)


def no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]  # type: ignore[index]


def test_dashboard_shows_the_love_rate_the_p_love_dataset_gives(
    page: Page, live_server: Any, project: Project
) -> None:
    now = timezone.now()
    seed_feedback(project, now=now)
    # The datasets still count simulated feedback by default; compare on real feedback only.
    for signal in (Exposure, Reaction, Critique, Comparison, FollowUp):
        signal.objects.filter(source="simulated").delete()
    log_in(page, live_server, project, "rhea", "researcher")
    since = (now - timedelta(days=13)).date()
    page.goto(f"{live_server.url}/projects/acme/dashboard/")

    page.get_by_label("From", exact=True).fill(since.isoformat())
    page.get_by_label("To", exact=True).fill(now.date().isoformat())
    page.get_by_label("Group by").select_option("week")
    page.get_by_role("button", name="Show").click()

    page.wait_for_url(re.compile(r"period=week"))
    start, end = day_bounds(since, now.date())
    rows = DATASETS["p_love"].rows(project, Filters(since=start, until=end), "text", timezone.now())
    p_love = [orjson.loads(line) for line in b"".join(jsonl_chunks(rows)).splitlines()]
    for label, (model, version) in {
        "demo-small v1": ("demo-small", "1"),
        "demo-small v2": ("demo-small", "2"),
        "demo-large": ("demo-large", ""),
    }.items():
        mine = [r for r in p_love if (r["model"], r["model_version"]) == (model, version)]
        loved = sum(1 for r in mine if r["label"])
        cell = page.locator(
            f'#dashboard-totals tr[data-model-version="{label}"] [data-figure="love"]'
        )
        expect(cell).to_contain_text(f"({loved} of {len(mine)})")
        expect(cell).to_contain_text(f"{loved / len(mine) * 100:.1f} %")
    chart = page.get_by_role("img", name="Love rate per exposure, with its 95 % interval")
    expect(chart).to_be_visible()
    assert chart.locator("circle").count() > 0

    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)


def test_search_the_answers_list_and_open_a_rerun_under_its_original(
    page: Page, live_server: Any, project: Project
) -> None:
    now = timezone.now()
    chain = AnswerFactory.create(
        project=project,
        external_id="chain",
        response="Wipe the chain, then oil each link.",
        created_at=now - timedelta(hours=3),
    )
    AnswerFactory.create(
        project=project,
        external_id="chain-rerun",
        revision_of=chain,
        response="Degrease the chain, then oil each link.",
        created_at=now - timedelta(hours=1),
    )
    AnswerFactory.create(
        project=project,
        external_id="tyres",
        prompt=[{"role": "user", "content": "What pressure for road tyres?"}],
        response="About 4 bar.",
        created_at=now - timedelta(hours=2),
    )
    log_in(page, live_server, project, "rita", "rater")
    page.goto(f"{live_server.url}/projects/acme/")
    page.evaluate("window.__samePage = true")
    expect(page.locator("#answer-list tbody tr")).to_have_count(3)

    page.get_by_label("Search", exact=True).fill("oiling")
    page.get_by_label("Search", exact=True).press("Enter")

    expect(page.locator("#answer-list tbody tr")).to_have_count(2)
    page.wait_for_url(re.compile(r"q=oiling"))
    assert page.evaluate("window.__samePage") is True  # only the list was swapped
    rerun = page.locator('tr[data-answer="chain-rerun"]')
    expect(rerun).to_have_attribute("data-revision-of", "chain")
    expect(rerun).to_contain_text("Revision")
    page.set_viewport_size(PHONE)
    no_sideways_scroll(page)

    rerun.get_by_role("link").click()
    expect(page.get_by_role("link", name="See the original answer")).to_be_visible()
    expect(page.locator("#revision-diff ins")).to_have_text("Degrease ")


def test_compare_stacks_a_over_b_on_a_phone(page: Page, live_server: Any, project: Project) -> None:
    long_word = "x" * 300  # an unbreakable word must not widen the page
    AnswerFactory.create(project=project, external_id="a-1", response=f"First answer {long_word}")
    AnswerFactory.create(project=project, external_id="a-2", response="Second answer.")
    log_in(page, live_server, project, "rita", "rater")
    page.set_viewport_size(PHONE)

    page.goto(f"{live_server.url}/projects/acme/compare/")

    first = page.get_by_role("article", name="Answer A").bounding_box()
    second = page.get_by_role("article", name="Answer B").bounding_box()
    assert first is not None
    assert second is not None
    assert second["y"] >= first["y"] + first["height"]  # B below A
    assert abs(second["x"] - first["x"]) < 1
    no_sideways_scroll(page)

    page.set_viewport_size(LAPTOP)
    first = page.get_by_role("article", name="Answer A").bounding_box()
    second = page.get_by_role("article", name="Answer B").bounding_box()
    assert first is not None
    assert second is not None
    assert second["x"] > first["x"] + first["width"] - 1  # side by side on a laptop
