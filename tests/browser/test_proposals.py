"""A judge's proposals in debug mode: an annotator rejects one in place and accepts another,
which becomes their own correction."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from playwright.sync_api import Page, expect

from feedback.models import Intervention, Project, SimulatedFeedback
from rewardmodels import services
from rewardmodels.models import Generator
from tests.browser.conftest import log_in
from tests.rewardmodels.chat_server import ChatServer, completion
from tests.rewardmodels.services.test_judges import JUDGED, relevance_answer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_annotator_rejects_one_proposal_and_accepts_another(
    page: Page, live_server: Any, project: Project
) -> None:
    # given an answer whose four retrieved documents a relevance judge has labelled
    answer = relevance_answer(project)
    with ChatServer() as chat:
        labels = {"documents": [{"id": d, "relevance": r} for d, r in JUDGED.items()]}
        chat.responder = lambda body: (200, {}, completion(orjson.dumps(labels).decode()))
        generator = Generator.objects.create(
            project=project, name="local", base_url=chat.url, model="tiny"
        )
        judge = services.judges.judge_create(
            project=project,
            name="relevance",
            generator_id=generator.pk,
            rubric="Be fair.",
            target="document_relevance",
        )
        run = services.judges.judge_run_start(judge=judge)
        services.judges.judge_run_execute(run_id=run.pk)
    by_doc = {p.after["doc_id"]: p for p in SimulatedFeedback.objects.filter(answer=answer)}

    # when an annotator opens the retrieval stage in debug mode
    log_in(page, live_server, project, "anna", "annotator")
    page.goto(f"{live_server.url}/projects/acme/answers/a1/debug/")
    page.get_by_role("navigation", name="Trace").get_by_role("link", name="Retrieval").click()
    proposals = page.get_by_role("region", name="Proposals for stage 2")
    expect(proposals).to_contain_text("simulated")

    # and rejects the judge's label of d2: decided in place
    proposals.get_by_role("button", name=f"Reject proposal {by_doc['d2'].pk}").click()
    expect(proposals).to_contain_text("Rejected by anna")

    # and accepts its label of d0: the page comes back with it as anna's own correction
    proposals.get_by_role("button", name=f"Accept proposal {by_doc['d0'].pk}").click()
    expect(page.get_by_text("Accepted as your correction.")).to_be_visible()
    expect(page.get_by_role("region", name="Proposals for stage 2")).to_contain_text(
        "Accepted by anna"
    )

    statuses = dict(SimulatedFeedback.objects.values_list("after__doc_id", "status"))
    assert statuses == {"d0": "accepted", "d1": "pending", "d2": "rejected", "d3": "pending"}
    mine = Intervention.objects.get(answer=answer, annotator__username="anna")
    assert (mine.action, mine.after) == ("doc_relevance", {"doc_id": "d0", "relevance": "relevant"})
    assert mine.event_id.startswith(f"proposal:{by_doc['d0'].pk}:")
