"""An annotator in a real browser: ask the demo pipeline, correct its stages in debug mode,
re-run from a correction through a real worker, and work through a queue."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from feedback.models import (
    AnnotationQueue,
    Answer,
    Intervention,
    Project,
    QueueAssignment,
    Reaction,
    Rerun,
)
from tests.browser.conftest import log_in
from tests.factories import AnswerFactory, StageFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "How do I cook rice on the stove and how long do I boil eggs?"


def test_ask_correct_and_rerun_with_the_demo_pipeline(
    annotator_page: Page, live_server: Any, project: Project, celery_worker: None
) -> None:
    page = annotator_page
    # Ask: the answer opens ready to be rated
    page.goto(f"{live_server.url}/projects/acme/ask/")
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Ask").click()
    page.wait_for_url(re.compile(r"/answers/ask-[0-9a-f]+/$"))
    page.get_by_role("button", name="Love", exact=True).click()
    expect(page.get_by_role("button", name="Love", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    answer = Answer.objects.get(project=project)
    assert Reaction.objects.filter(answer=answer, kind="love").exists()

    # Debug mode shows every stage with its editor
    page.get_by_role("link", name="Debug mode").click()
    page.wait_for_url(re.compile(r"/debug/$"))
    subqueries = answer.stages.get(position=0).output["subqueries"]
    documents = answer.stages.get(position=1).output["documents"]
    egg_index = next(i for i, q in enumerate(subqueries) if "egg" in q.lower())

    # Decomposition: remove the eggs sub-query, add one, and move it up with the keyboard
    page.get_by_role("button", name=f"Remove sub-query {egg_index + 1}").click()
    page.get_by_role("button", name="Add sub-query").click()
    added_label = f"Sub-query {len(subqueries)}"
    page.get_by_label(added_label, exact=True).fill("rice to water ratio")
    page.get_by_label(added_label, exact=True).press("Alt+ArrowUp")
    expect(page.get_by_label(f"Sub-query {len(subqueries) - 1}", exact=True)).to_have_value(
        "rice to water ratio"
    )

    # Retrieval: pick its stage in the trace and judge a document
    trace = page.get_by_role("navigation", name="Trace")
    trace.get_by_role("link", name="Retrieval").first.click()
    expect(page.get_by_label("Sub-query 1", exact=True)).to_be_hidden()
    title = documents[-1]["title"]
    page.get_by_role("radiogroup", name=f"Relevance of {title}").get_by_label("Irrelevant").check()

    # Generation: edit the answer; the diff follows, on demand
    trace.get_by_role("link", name="Generation").click()
    page.get_by_text("Correct the answer").click()
    corrected = page.get_by_label("Corrected answer")
    corrected.fill("Rinse the rice, then simmer it covered in one and a half parts water.")
    page.get_by_text("Show changes against the original").click()
    expect(page.locator(".diff ins").first).to_be_visible()

    page.get_by_label("Rationale (why these corrections; optional)").fill("eggs are off topic")
    page.get_by_role("button", name="Save corrections").click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()

    saved = Intervention.objects.filter(answer=answer)
    assert set(saved.values_list("action", flat=True)) >= {
        "subquery_remove",
        "subquery_add",
        "doc_relevance",
        "answer_edit",
    }
    assert set(saved.values_list("rationale", flat=True)) == {"eggs are off topic"}

    # Re-run from the corrected decomposition: the page stays, shows progress, then the revision
    page.get_by_role("navigation", name="Trace").get_by_role("link", name="Decomposition").click()
    page.evaluate("window.__samePage = true")
    page.get_by_role("button", name="Re-run from here").first.click()
    done = page.get_by_text("Re-run done")
    expect(done).to_be_visible(timeout=30_000)
    assert page.evaluate("window.__samePage") is True
    rerun = Rerun.objects.get(answer=answer)
    assert rerun.revision is not None
    corrected_subqueries = [q for i, q in enumerate(subqueries) if i != egg_index]
    corrected_subqueries.insert(len(corrected_subqueries) - 1, "rice to water ratio")
    assert rerun.revision.stages.get(position=0).output == {"subqueries": corrected_subqueries}
    page.get_by_role("link", name="revised answer").click()
    page.wait_for_url(re.compile(re.escape(rerun.revision.external_id) + "/$"))
    expect(page.get_by_role("article", name="Answer")).to_contain_text(
        rerun.revision.response.split("[")[0].strip()
    )


def test_a_stale_tab_is_told_to_reload(
    annotator_page: Page, live_server: Any, project: Project
) -> None:
    answer = AnswerFactory.create(project=project, external_id="a-1", response="Old text.")
    url = f"{live_server.url}/projects/acme/answers/a-1/debug/"
    annotator_page.goto(url)
    other = annotator_page.context.new_page()
    other.goto(url)
    other.get_by_text("Correct the answer").click()
    other.get_by_label("Corrected answer").fill("From the other tab.")
    other.get_by_role("button", name="Save corrections").click()
    expect(other.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    other.close()

    annotator_page.get_by_text("Correct the answer").click()
    annotator_page.get_by_label("Corrected answer").fill("From this tab.")
    annotator_page.get_by_role("button", name="Save corrections").click()

    expect(annotator_page.get_by_role("alert")).to_contain_text("Reload the page")
    assert list(Intervention.objects.filter(answer=answer).values_list("after", flat=True)) == [
        {"text": "From the other tab."}
    ]


def test_a_researcher_makes_a_queue_and_an_annotator_works_through_it(
    page: Page, second_page: Page, live_server: Any, project: Project
) -> None:
    for i in range(2):
        answer = AnswerFactory.create(project=project, external_id=f"q-{i}", model="m1")
        StageFactory.create(
            answer=answer,
            position=0,
            kind="retrieval",
            output={"documents": [{"id": "d1", "title": f"Doc {i}", "text": "Some text."}]},
        )
    AnswerFactory.create(project=project, external_id="other-model", model="m2")

    # The researcher creates a queue from a filter
    log_in(page, live_server, project, "rosa", "researcher")
    page.goto(f"{live_server.url}/projects/acme/queues/")
    page.get_by_label("Name").fill("Relevance pass")
    page.get_by_label("Guidelines for annotators").fill("Judge every document.")
    page.get_by_label("Model", exact=True).select_option("m1")
    page.get_by_role("button", name="Create queue").click()
    expect(page.get_by_text("2 answers")).to_be_visible()
    queue = AnnotationQueue.objects.get(name="Relevance pass")

    # The annotator presses Next, reads the guidelines, judges and saves; then skips the next
    annotator = second_page
    log_in(annotator, live_server, project, "anna", "annotator")
    annotator.goto(f"{live_server.url}/projects/acme/queues/{queue.pk}/")
    annotator.get_by_role("button", name="Next").click()
    expect(annotator.get_by_role("complementary", name="Guidelines")).to_contain_text(
        "Judge every document."
    )
    annotator.get_by_role("radiogroup", name="Relevance of Doc 0").get_by_label(
        "Relevant", exact=True
    ).check()
    annotator.get_by_role("button", name="Save and next").click()
    expect(annotator.get_by_role("radiogroup", name="Relevance of Doc 1")).to_be_visible()
    annotator.get_by_role("button", name="Skip").click()
    expect(annotator.get_by_text("Nothing left for you in this queue")).to_be_visible()
    statuses = dict(
        QueueAssignment.objects.filter(item__queue=queue).values_list(
            "item__answer__external_id", "status"
        )
    )
    assert statuses == {"q-0": "done", "q-1": "skipped"}

    # The researcher sees the progress
    page.reload()
    page.goto(f"{live_server.url}/projects/acme/queues/{queue.pk}/")
    expect(page.get_by_text("1 of 2 items complete")).to_be_visible()
    expect(page.get_by_role("cell", name="anna")).to_be_visible()
