"""Debug mode's page: who may see it, saving corrections, refusing stale or invalid ones, the
ask page, and re-running with the demo pipeline through a real worker."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.test import Client

from feedback.models import Answer, Intervention, Project, Rerun
from tests.factories import AnswerFactory, MembershipFactory, UserFactory, answer_payload

QUESTION = "How do I cook rice on the stove and how long do I boil eggs?"


def _member(project: Project, role: str, username: str = "ann") -> Client:
    user = UserFactory.create(username=username)
    MembershipFactory.create(user=user, project=project, role=role)
    client = Client()
    client.force_login(user)
    return client


def _ask(client: Client, project: Project, question: str = QUESTION) -> Answer:
    response = client.post(f"/projects/{project.slug}/ask/", {"question": question})
    assert response.status_code == 302
    return Answer.objects.get(project=project, external_id=response["Location"].split("/")[-2])


def _debug_url(answer: Answer) -> str:
    return f"/projects/{answer.project.slug}/answers/{answer.external_id}/debug/"


def _save_url(answer: Answer) -> str:
    return f"/projects/{answer.project.slug}/answers/{answer.external_id}/-/debug/save/"


def _editors(answer: Answer) -> dict[str, str]:
    """The hidden markers the page puts in every stage's editor."""
    stages = list(answer.stages.values_list("position", flat=True)) or None
    if stages is None:
        return {"answer-editor": "1"}
    return {f"s{position}-editor": "1" for position in stages}


def _version(client: Client, answer: Answer) -> str:
    html = client.get(_debug_url(answer)).content.decode()
    match = re.search(r'name="version" value="([^"]+)"', html)
    assert match
    return match.group(1)


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "status"), [("rater", 403), ("annotator", 200), ("owner", 200)])
def test_debug_mode_is_for_annotators_and_up(project: Project, role: str, status: int) -> None:
    answer = AnswerFactory.create(project=project)
    assert _member(project, role).get(_debug_url(answer)).status_code == status


@pytest.mark.django_db
def test_another_projects_answer_is_invisible(project: Project, other_project: Project) -> None:
    theirs = AnswerFactory.create(project=other_project)
    client = _member(project, "owner")
    url = f"/projects/{other_project.slug}/answers/{theirs.external_id}/debug/"
    assert client.get(url).status_code == 404
    url = f"/projects/{project.slug}/answers/{theirs.external_id}/debug/"
    assert client.get(url).status_code == 404


@pytest.mark.django_db
def test_the_page_shows_an_editor_per_stage_with_accessible_names(project: Project) -> None:
    client = _member(project, "annotator")
    answer = _ask(client, project)
    html = client.get(_debug_url(answer)).content.decode()
    documents = answer.stages.get(kind="retrieval").output["documents"]
    assert ">Sub-query 1</label>" in html
    assert "Add sub-query" in html
    for doc in documents:
        assert f'aria-label="Relevance of {doc["title"]}"' in html
    assert "Partly relevant" in html
    assert ">Corrected answer</label>" in html
    assert "Re-run from here" in html
    assert "Re-run is unavailable" not in html


@pytest.mark.django_db
def test_saving_stores_typed_interventions_for_every_stage(project: Project) -> None:
    # Given an answer of the demo pipeline
    client = _member(project, "annotator")
    answer = _ask(client, project)
    subqueries = answer.stages.get(position=0).output["subqueries"]
    documents = answer.stages.get(position=1).output["documents"]
    assert len(subqueries) >= 2
    assert len(documents) >= 2

    # When the annotator corrects each stage and saves
    response = client.post(
        _save_url(answer),
        {
            "version": _version(client, answer),
            **_editors(answer),
            "s0-subquery": [subqueries[1], "rice to water ratio"],
            "s0-origin": ["1", "new"],
            "s1-doc-order": [
                documents[1]["id"],
                documents[0]["id"],
                *[d["id"] for d in documents[2:]],
            ],
            f"s1-rel-{documents[0]['id']}": "relevant",
            f"s1-rel-{documents[1]['id']}": "irrelevant",
            "s1-add-title": ["Rice cookers"],
            "s1-add-text": ["A rice cooker switches itself off when the water is gone."],
            "s1-add-url": [""],
            "s2-answer": "Use one and a half parts water per part of rice.",
            "s2-flag-span": [answer.response.split(".")[0]],
            "s2-flag-reason": ["not supported by the documents"],
            "rationale": "the eggs part was missing",
        },
    )

    # Then every change is stored as its own typed intervention, by this annotator
    assert response.status_code == 302
    saved = list(Intervention.objects.filter(answer=answer).order_by("id"))
    assert sorted(i.action for i in saved) == sorted(
        [
            "subquery_remove",
            "subquery_add",
            "doc_rerank",
            "doc_relevance",
            "doc_relevance",
            "doc_add",
            "answer_edit",
            "claim_flag",
        ]
    )
    assert {i.annotator.username for i in saved if i.annotator} == {"ann"}
    assert {i.rationale for i in saved} == {"the eggs part was missing"}
    assert {i.stage.position for i in saved if i.stage} == {0, 1, 2}
    removal = next(i for i in saved if i.action == "subquery_remove")
    assert removal.before == {"index": 0, "text": subqueries[0]}

    # And the page now shows the corrected state; saving it unchanged stores nothing more
    html = client.get(_debug_url(answer)).content.decode()
    assert 'value="rice to water ratio"' in html
    assert "Added by you: <strong>Rice cookers</strong>" in html
    version = _version(client, answer)
    again = client.post(
        _save_url(answer),
        {
            "version": version,
            "s0-editor": "1",
            "s2-editor": "1",
            "s0-subquery": [subqueries[1], "rice to water ratio"],
            "s0-origin": ["1", "new"],
            "s2-answer": "Use one and a half parts water per part of rice.",
        },
    )
    assert again.status_code == 302
    assert Intervention.objects.filter(answer=answer).count() == len(saved)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"s0-subquery": ["", "x y z"], "s0-origin": ["0", "1"]}, "non-empty sub-query"),
        ({"s1-add-title": ["Rice"], "s1-add-text": ["dup"]}, "already has a document"),
        ({"s2-answer": "   "}, "must not be blank"),
    ],
)
def test_invalid_corrections_save_nothing_and_keep_what_was_typed(
    project: Project, fields: dict[str, Any], message: str
) -> None:
    client = _member(project, "annotator")
    answer = _ask(client, project)
    doc_title = answer.stages.get(position=1).output["documents"][0]["title"]
    if fields.get("s1-add-title") == ["Rice"]:
        fields = {**fields, "s1-add-title": [doc_title]}
    valid_edit = {"s2-answer": "A different answer."} if "s2-answer" not in fields else {}
    response = client.post(
        _save_url(answer),
        {
            "version": _version(client, answer),
            **{f"{name.split('-')[0]}-editor": "1" for name in [*fields, "s2-answer"]},
            "rationale": "kept?",
            **valid_edit,
            **fields,
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "kept?" in html  # what the annotator typed is still there
    assert not Intervention.objects.filter(answer=answer).exists()


@pytest.mark.django_db
def test_a_stale_page_is_refused_with_a_reload_prompt(project: Project) -> None:
    # Given two tabs on the same answer
    client = _member(project, "annotator")
    answer = _ask(client, project)
    stale = _version(client, answer)
    first = client.post(
        _save_url(answer), {"version": stale, "s2-editor": "1", "s2-answer": "First tab's answer."}
    )
    assert first.status_code == 302

    # When the older tab saves
    second = client.post(
        _save_url(answer), {"version": stale, "s2-editor": "1", "s2-answer": "Second tab's."}
    )

    # Then it is refused, and nothing of it is stored
    assert second.status_code == 409
    assert "Reload the page" in second.content.decode()
    assert list(Intervention.objects.values_list("after", flat=True)) == [
        {"text": "First tab's answer."}
    ]


@pytest.mark.django_db
def test_an_api_answer_without_a_connector_is_debuggable_but_not_rerunnable(
    project: Project, api: Any
) -> None:
    api.post("/api/v1/answers", answer_payload("api-1"), format="json")
    answer = Answer.objects.get(external_id="api-1")
    client = _member(project, "annotator")
    html = client.get(_debug_url(answer)).content.decode()
    assert "Re-run is unavailable" in html
    assert re.search(r"<button[^>]*disabled[^>]*>Re-run from here", html)

    # Its corrections still save
    response = client.post(
        _save_url(answer),
        {"version": _version(client, answer), "s2-editor": "1", "s2-answer": "A corrected answer."},
    )
    assert response.status_code == 302
    assert Intervention.objects.get(answer=answer).action == "answer_edit"


@pytest.mark.django_db
def test_an_answer_without_a_trace_edits_its_text(project: Project) -> None:
    answer = AnswerFactory.create(project=project, response="The sky is green.")
    client = _member(project, "annotator")
    html = client.get(_debug_url(answer)).content.decode()
    assert "came without a trace" in html
    response = client.post(
        _save_url(answer),
        {
            "version": _version(client, answer),
            **_editors(answer),
            "answer-answer": "The sky is blue.",
            "answer-flag-span": ["green"],
            "answer-flag-reason": ["wrong colour"],
        },
    )
    assert response.status_code == 302
    saved = Intervention.objects.filter(answer=answer).order_by("action")
    assert [(i.action, i.stage_id) for i in saved] == [("answer_edit", None), ("claim_flag", None)]


@pytest.mark.django_db
def test_the_live_diff_marks_changes(project: Project) -> None:
    answer = AnswerFactory.create(project=project, response="Boil for ten minutes.")
    client = _member(project, "annotator")
    response = client.post(
        f"/projects/{project.slug}/answers/{answer.external_id}/-/debug/diff/",
        {"prefix": "answer-", "answer-answer": "Boil for twelve minutes."},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "<del>ten </del><ins>twelve </ins>" in response.content.decode()


# A digit that str.isdigit() accepts and int() refuses: read by hand, it was a 500.
NOT_AN_INT = "\u00b2"


@pytest.mark.django_db
def test_ids_the_page_posts_are_read_as_numbers_or_ignored(project: Project) -> None:
    # Given the debug page of a traced answer
    client = _member(project, "annotator")
    answer = _ask(client, project)
    base = f"/projects/{project.slug}/answers/{answer.external_id}"

    # When its ids (a queue assignment, a stage, an editor's prefix, a sub-query's origin)
    # arrive as something that is not a number
    page = client.get(f"{_debug_url(answer)}?assignment={NOT_AN_INT}")
    rerun = client.post(f"{base}/-/debug/rerun/", {"stage": NOT_AN_INT})
    diff = client.post(
        f"{base}/-/debug/diff/",
        {"prefix": f"s{NOT_AN_INT}-", f"s{NOT_AN_INT}-answer": "Boil rice."},
        headers={"HX-Request": "true"},
    )
    saved = client.post(
        _save_url(answer),
        {
            "version": _version(client, answer),
            "s0-editor": "1",
            "s0-subquery": ["rice to water ratio"],
            "s0-origin": [NOT_AN_INT],
        },
    )

    # Then each is answered as an id that matches nothing, never as a server error
    assert page.status_code == 200
    assert rerun.status_code == 404
    assert diff.status_code == 200
    assert saved.status_code == 302
    added = Intervention.objects.get(answer=answer, action="subquery_add")
    assert added.after["text"] == "rice to water ratio"  # an origin that is no index: new


@pytest.mark.django_db
def test_asking_stores_a_traced_answer_ready_to_rate(project: Project) -> None:
    client = _member(project, "rater")
    answer = _ask(client, project, "How do I cook rice on the stove?")
    assert answer.metadata["pipeline"] == "demo"
    assert [s.kind for s in answer.stages.order_by("position")] == [
        "decomposition",
        "retrieval",
        "generation",
    ]
    page = client.get(f"/projects/{project.slug}/answers/{answer.external_id}/")
    assert 'aria-label="Love"' in page.content.decode()
    empty = client.post(f"/projects/{project.slug}/ask/", {"question": "  "})
    assert empty.status_code == 400
    assert Answer.objects.count() == 1


@pytest.mark.django_db
def test_rerun_needs_a_saved_correction_of_the_stage(project: Project) -> None:
    client = _member(project, "annotator")
    answer = _ask(client, project)
    response = client.post(
        f"/projects/{project.slug}/answers/{answer.external_id}/-/debug/rerun/",
        {"stage": "0"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 409
    assert "Save a correction of this stage first" in response.content.decode()
    assert not Rerun.objects.exists()


def _wait_for(rerun: Rerun, seconds: float = 30) -> Rerun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rerun.refresh_from_db()
        if rerun.status in ("succeeded", "failed"):
            return rerun
        time.sleep(0.1)
    raise AssertionError(f"re-run still {rerun.status}")


@pytest.mark.django_db(transaction=True)
def test_rerun_from_a_corrected_decomposition_makes_a_revision(
    project: Project, api: Any, celery_worker: None
) -> None:
    # Given a demo answer whose decomposition the annotator corrected (the eggs part removed)
    client = _member(project, "annotator")
    answer = _ask(client, project)
    subqueries = answer.stages.get(position=0).output["subqueries"]
    rice_only = [q for q in subqueries if "egg" not in q.lower()]
    assert len(rice_only) < len(subqueries)
    original_stages = list(answer.stages.values_list("position", "output"))
    client.post(
        _save_url(answer),
        {
            "version": _version(client, answer),
            **_editors(answer),
            "s0-subquery": rice_only,
            "s0-origin": [str(subqueries.index(q)) for q in rice_only],
        },
    )

    # When they press "Re-run from here" on it
    response = client.post(
        f"/projects/{project.slug}/answers/{answer.external_id}/-/debug/rerun/",
        {"stage": "0"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert 'hx-trigger="every 1s"' in response.content.decode()  # the page polls progress
    rerun = _wait_for(Rerun.objects.get(answer=answer))

    # Then a revision exists, re-run from the corrected sub-queries; the original is untouched
    assert rerun.status == "succeeded", rerun.error
    assert rerun.corrected_output == {"subqueries": rice_only}
    assert rerun.stage.output == {"subqueries": subqueries}  # the stage-level pair
    revision = rerun.revision
    assert revision is not None
    assert revision.revision_of_id == answer.pk
    assert revision.stages.get(position=0).output == {"subqueries": rice_only}
    retrieved = revision.stages.get(position=1).output["documents"]
    assert all("egg" not in d["title"].lower() for d in retrieved)
    assert list(answer.stages.values_list("position", "output")) == original_stages
    detail = api.get(f"/api/v1/answers/{answer.external_id}").json()
    assert detail["revisions"] == [revision.external_id]

    # And the status partial links to the revised answer
    status = client.get(
        f"/projects/{project.slug}/reruns/{rerun.pk}/", headers={"HX-Request": "true"}
    )
    assert f"/answers/{revision.external_id}/" in status.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://user:secret@docs.example.org/",
        "https://",
        "https://docs.example.org:99999/rice",
    ],
)
def test_a_missing_document_with_a_link_that_is_not_plain_http_is_refused(
    project: Project, url: str
) -> None:
    # Given an annotator correcting an answer of the demo pipeline
    client = _member(project, "annotator")
    answer = _ask(client, project)

    # When they add a missing document whose link would run, leak or point nowhere
    response = client.post(
        _save_url(answer),
        {
            "version": _version(client, answer),
            "s1-editor": "1",
            "s1-add-title": ["Rice cookers"],
            "s1-add-text": ["A rice cooker switches itself off."],
            "s1-add-url": [url],
            "rationale": "kept?",
        },
    )

    # Then the form says what is wrong with the link, keeps what was typed, and saves nothing
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'class="error"[^>]*>Doc add: Must [^<]*(URL|user name)', html)
    assert "kept?" in html
    assert not Intervention.objects.filter(answer=answer).exists()


@pytest.mark.django_db
def test_a_missing_document_with_an_https_link_is_saved_with_it(project: Project) -> None:
    client = _member(project, "annotator")
    answer = _ask(client, project)

    response = client.post(
        _save_url(answer),
        {
            "version": _version(client, answer),
            "s1-editor": "1",
            "s1-add-title": ["Rice cookers"],
            "s1-add-text": ["A rice cooker switches itself off."],
            "s1-add-url": ["  https://docs.example.org/rice-cookers  "],
        },
    )

    assert response.status_code == 302
    added = Intervention.objects.get(answer=answer, action="doc_add")
    assert added.after["url"] == "https://docs.example.org/rice-cookers"
