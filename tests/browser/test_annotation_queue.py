"""An annotator works through a queue in a real browser: where they are ("item N of M"), back
and forth among their own items, Save against Save and next, and the questions asked before
unsaved corrections could be lost; and debug mode showing what end users said."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Dialog, Page, expect

from feedback.models import AnnotationQueue, AssignmentStatus, Intervention, Project
from feedback.models import QueueAssignment as Assignment
from tests.factories import AnswerFactory, StageFactory
from tests.feedback.end_user_data import critique, followup, reaction
from tests.feedback.queue_data import at, make_queue

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(project: Project) -> AnnotationQueue:
    """Three answers, each with one retrieval stage holding one document "Doc i"."""
    for i in range(3):
        answer = AnswerFactory.create(
            project=project, external_id=f"q-{i}", created_at=at(1, 12, i)
        )
        StageFactory.create(
            answer=answer,
            position=0,
            kind="retrieval",
            output={"documents": [{"id": "d1", "title": f"Doc {i}", "text": "Some text."}]},
        )
    return make_queue(project, name="Relevance pass")


def statuses(queue: AnnotationQueue) -> dict[str, str]:
    return dict(
        Assignment.objects.filter(item__queue=queue).values_list(
            "item__answer__external_id", "status"
        )
    )


def relevance(page: Page, doc: str, label: str) -> Any:
    group = page.get_by_role("radiogroup", name=f"Relevance of {doc}")
    return group.get_by_label(label, exact=True)


def serious_accessibility_problems(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    violations = Axe().run(page).response["violations"]
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])} elements)"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def start(page: Page, live_server: Any, queue: AnnotationQueue) -> None:
    page.goto(f"{live_server.url}/projects/acme/queues/{queue.pk}/")
    page.get_by_role("button", name="Next item").click()
    expect(page.get_by_text("Item 1 of 3")).to_be_visible()


def test_item_n_of_m_save_save_and_next_skip_previous_and_next(
    annotator_page: Page, live_server: Any, queue: AnnotationQueue
) -> None:
    page = annotator_page
    start(page, live_server, queue)

    assert serious_accessibility_problems(page) == []

    # Save keeps the annotator on this item and says so above it
    relevance(page, "Doc 0", "Relevant").check()
    page.get_by_role("button", name="Save corrections").click()
    expect(page.get_by_role("status").filter(has_text="Saved 1 correction(s).")).to_be_visible()
    expect(page.get_by_text("Item 1 of 3")).to_be_visible()
    expect(relevance(page, "Doc 0", "Relevant")).to_be_checked()
    assert statuses(queue) == {"q-0": "assigned"}

    # Save and next finishes it and opens the next one
    page.get_by_role("button", name="Save and next").click()
    expect(page.get_by_text("Item 2 of 3")).to_be_visible()
    expect(page.get_by_role("radiogroup", name="Relevance of Doc 1")).to_be_visible()

    # Skip passes on it
    page.get_by_role("button", name="Skip").click()
    expect(page.get_by_text("Item 3 of 3")).to_be_visible()
    assert statuses(queue) == {"q-0": "done", "q-1": "skipped", "q-2": "assigned"}

    # Back through their own items, and forward again to the one they hold
    page.get_by_role("link", name="Previous item").click()
    expect(page.get_by_text("Item 2 of 3")).to_be_visible()
    expect(page.get_by_text("You skipped this item")).to_be_visible()
    page.get_by_role("link", name="Previous item").click()
    expect(page.get_by_text("Item 1 of 3")).to_be_visible()
    expect(page.get_by_text("You finished this item")).to_be_visible()
    expect(relevance(page, "Doc 0", "Relevant")).to_be_checked()
    page.get_by_role("link", name="Next item").click()
    page.get_by_role("link", name="Next item").click()
    expect(page.get_by_text("Item 3 of 3")).to_be_visible()
    expect(page.get_by_role("button", name="Skip")).to_be_visible()


def test_unsaved_marks_are_not_lost_by_leaving(
    annotator_page: Page, live_server: Any, queue: AnnotationQueue
) -> None:
    page = annotator_page
    start(page, live_server, queue)
    page.get_by_role("button", name="Save and next").click()
    expect(page.get_by_text("Item 2 of 3")).to_be_visible()
    relevance(page, "Doc 1", "Irrelevant").check()

    # A link away asks first; dismissing the question keeps the mark on the page
    asked: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        asked.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.get_by_role("link", name="Previous item").click()
    expect(page.get_by_text("Item 2 of 3")).to_be_visible()
    expect(relevance(page, "Doc 1", "Irrelevant")).to_be_checked()
    assert asked == [
        "confirm: You have unsaved corrections on this item. Leave without saving them?"
    ]

    # Closing the tab (or reloading) asks too
    with page.expect_event("dialog") as closing:
        page.close(run_before_unload=True)
    assert closing.value.type == "beforeunload"
    assert not page.is_closed()

    # Accepting leaves without saving
    page.remove_listener("dialog", dismiss)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="Previous item").click()
    expect(page.get_by_text("Item 1 of 3")).to_be_visible()
    assert not Intervention.objects.exists()


def test_done_with_nothing_to_correct_asks_when_marks_are_unsaved(
    annotator_page: Page, live_server: Any, queue: AnnotationQueue
) -> None:
    page = annotator_page
    start(page, live_server, queue)
    relevance(page, "Doc 0", "Partly relevant").check()

    # Dismissing the question keeps the item and the mark
    asked: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Done, nothing (more) to correct").click()
    expect(relevance(page, "Doc 0", "Partly relevant")).to_be_checked()
    assert asked == [
        "You have unsaved corrections on this item. "
        "Finish it as having nothing to correct and discard them?"
    ]
    assert statuses(queue) == {"q-0": "assigned"}

    # Accepting finishes the item without the mark
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Done, nothing (more) to correct").click()
    expect(page.get_by_text("Item 2 of 3")).to_be_visible()
    assert statuses(queue)["q-0"] == AssignmentStatus.DONE
    assert not Intervention.objects.exists()

    # With nothing changed, Done asks nothing
    page.on("dialog", lambda dialog: pytest.fail(f"unexpected question: {dialog.message}"))
    page.get_by_role("button", name="Done, nothing (more) to correct").click()
    expect(page.get_by_text("Item 3 of 3")).to_be_visible()


RESPONSE = "Simmer the rice for eighteen minutes, covered."


def test_debug_mode_shows_the_trace_the_answer_once_and_what_end_users_said(
    annotator_page: Page, live_server: Any, project: Project
) -> None:
    answer = AnswerFactory.create(project=project, external_id="a-1", response=RESPONSE)
    StageFactory.create(
        answer=answer,
        position=0,
        kind="decomposition",
        input={"question": "How long for rice?"},
        output={"subqueries": ["rice time"]},
    )
    StageFactory.create(answer=answer, position=1, kind="generation", output={"text": RESPONSE})
    reaction(answer, "love")
    reaction(answer, "love")
    reaction(answer, "sad", source="simulated")
    critique(answer, "Which rice?", quote="eighteen minutes")
    followup(answer, "partly", "Brown rice took longer.")
    page = annotator_page
    page.goto(f"{live_server.url}/projects/acme/answers/a-1/debug/")

    # The trace numbers its stages from 1; the first is shown, its input as indented JSON
    trace = page.get_by_role("navigation", name="Trace")
    expect(trace.get_by_role("listitem")).to_have_text(["1. Decomposition", "2. Generation"])
    expect(page.get_by_role("heading", name="Stage 1: Decomposition")).to_be_visible()
    expect(page.get_by_role("heading", name="Stage 2: Generation")).to_be_hidden()
    first = page.locator("#stage-1")
    first.get_by_text("Input", exact=True).click()
    expect(first.locator("details.json pre").first).to_have_text(
        '{\n  "question": "How long for rice?"\n}'
    )
    assert "{'" not in page.locator("main").inner_text()

    # The generation stage shows the answer once; the diff only on demand
    trace.get_by_role("link", name="Generation").click()
    expect(page.get_by_role("heading", name="Stage 2: Generation")).to_be_visible()
    assert page.locator("main").inner_text().count(RESPONSE) == 1
    expect(page.get_by_label("Changes against the original answer")).to_be_hidden()

    # What end users said is beside it, without the simulated reaction
    said = page.get_by_role("complementary", name="What end users said")
    expect(said).to_contain_text("Love 2")
    expect(said).not_to_contain_text("Sad")
    expect(said.locator("blockquote")).to_have_text("eighteen minutes")
    expect(said).to_contain_text("Which rice?")
    expect(said).to_contain_text("Partly")
    expect(said).to_contain_text("Brown rice took longer.")
    assert serious_accessibility_problems(page) == []

    # On a phone the columns stack, nothing scrolls sideways, and Save stays within reach
    # while a stage is edited
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    trace.get_by_role("link", name="Decomposition").click()
    expect(page.get_by_label("Sub-query 1", exact=True)).to_be_in_viewport()
    expect(page.get_by_role("button", name="Save corrections")).to_be_in_viewport()
    page.mouse.wheel(0, 400)
    expect(page.get_by_role("button", name="Save corrections")).to_be_in_viewport()
