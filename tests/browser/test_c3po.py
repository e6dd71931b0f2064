"""C3PO in a real browser: a researcher registers a generator, writes one sentence of feedback,
builds its dataset and reads the samples; with no generator, an annotator reviews revisions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from feedback.models import Project
from feedback.services import answers_ingest
from rewardmodels.models import C3POBuild, Generator
from tests.browser.conftest import log_in
from tests.rewardmodels.chat_server import ChatServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def _start_build(page: Page, **counts: str) -> None:
    for label, value in counts.items():
        page.get_by_label(re.compile(label)).fill(value)
    page.get_by_role("button", name="Start build").click()
    page.wait_for_url(re.compile(r"/models/builds/\d+/$"))


def test_build_a_dataset_with_a_generator(
    page: Page, live_server: Any, project: Project, chat: ChatServer, celery_worker: None
) -> None:
    log_in(page, live_server, project, "rosa", "researcher")
    page.goto(f"{live_server.url}/projects/acme/models/feedback/")

    # A generator; its key is never shown again
    page.get_by_label("Generator name (saving an existing name changes it)").fill("local")
    page.get_by_label("Base URL").fill(chat.url)
    page.get_by_label("Model", exact=True).fill("tiny")
    page.get_by_label("API key (optional; blank keeps a stored one)").fill("sk-very-secret")
    page.get_by_role("button", name="Save generator").click()
    expect(page.get_by_role("cell", name="set (hidden)")).to_be_visible()
    assert "sk-very-secret" not in page.content()
    assert Generator.objects.get(name="local").api_key == "sk-very-secret"

    # One sentence of feedback, then a small build
    page.get_by_label("Feedback", exact=True).fill("Don't use emojis when I write to my boss.")
    page.get_by_label("Domain (optional, e.g. “writing emails”)").fill("writing emails")
    page.get_by_role("button", name="Save feedback").click()
    page.get_by_label("Generator", exact=True).select_option(label="local (tiny)")
    _start_build(
        page,
        **{
            r"^Categories": "2",
            r"^In-scope prompts": "2",
            r"^Near-scope prompts": "2",
            r"^Out-of-scope prompts": "3",
        },
    )

    # The page follows the stages to the end and shows samples of each part
    expect(page.get_by_role("heading", name="Dataset")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("status")).to_contain_text("Done")
    for part in ("dpo", "sft_near", "sft_out"):
        expect(page.get_by_role("heading", name=re.compile(f"^{part}"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"In-scope prompts\s+4"))).to_be_visible()
    assert C3POBuild.objects.get().status == "succeeded"


def test_with_no_generator_an_annotator_writes_the_revisions(
    page: Page,
    second_page: Page,
    live_server: Any,
    project: Project,
    celery_worker: None,
) -> None:
    answers_ingest(
        project=project,
        items=[
            {
                "external_id": f"mail-{i}",
                "prompt": [{"role": "user", "content": f"Draft a note to my boss about item {i}"}],
                "response": f"Hi boss! 😀 Item {i} is done 🎉",
                "model": "m",
            }
            for i in range(3)
        ],
    )
    log_in(page, live_server, project, "rosa", "researcher")
    page.goto(f"{live_server.url}/projects/acme/models/feedback/")
    page.get_by_label("Feedback", exact=True).fill("Don't use emojis when I write to my boss.")
    page.get_by_role("button", name="Save feedback").click()
    _start_build(page, **{r"^Categories": "1", r"^In-scope prompts": "2", r"^Out-of-scope": "1"})
    expect(page.get_by_role("link", name="Review the revised responses")).to_be_visible(
        timeout=30_000
    )

    annotator = log_in(second_page, live_server, project, "anna", "annotator")
    annotator.goto(f"{live_server.url}/projects/acme/")
    annotator.get_by_role("navigation", name=re.compile("^Project ")).get_by_role(
        "link", name="Reviews"
    ).click()
    annotator.get_by_role("link", name=re.compile("Review build")).click()
    revised = annotator.get_by_label("Revised response (follows the feedback)")
    expect(revised).to_have_value(re.compile("😀"))  # starts from the baseline
    revised.fill("Hello, item 0 is done.")
    annotator.get_by_role("button", name="Save edit").click()
    annotator.get_by_role("button", name="Reject").click()
    expect(annotator.get_by_role("status")).to_have_text("Nothing left to review.")

    page.reload()
    expect(page.get_by_role("heading", name="Dataset")).to_be_visible()
    expect(page.get_by_role("cell", name="Hello, item 0 is done.")).to_be_visible()
