"""Re-runs through a project's pipeline: an annotator's corrected trace goes to the connector
through a real worker and comes back as a revision; a failing pipeline, a project without a
connector, the task's time limits, a request racing the end of the previous re-run, the
sweeper, and a connector refused at call time.

The pipeline is tests/feedback/pipeline_server.py's scripted server (the `pipeline_server`
fixture); each test scripts its replies and reads what it received.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any, cast

import orjson
import pytest
from django import forms
from django.db import connection
from django.test import Client
from django.utils import timezone
from django.utils.html import escape
from rest_framework.test import APIClient

from feedback.core.jobs import JobStatus, jobs_sweep
from feedback.forms import ConnectorForm
from feedback.models import Answer, Intervention, Project, Rerun, Role, Stage
from feedback.pipelines import http as http_pipeline
from feedback.pipelines.resolve import pipeline_for, rerun_unavailable_reason
from feedback.services.annotation import RERUN_JOB, RERUN_STALE, rerun_execute
from feedback.tasks import rerun_execute as rerun_execute_task
from tests.factories import AnswerFactory, StageFactory, UserFactory, member
from tests.feedback.pipeline_server import (
    DOCUMENTS,
    QUESTION,
    SECRET,
    Reply,
    ScriptedPipeline,
    connector_for,
    host_of,
    rerun_reply,
)

# Retries wait 0.01 s instead of the real backoff (the `fast_backoff` fixture).
pytestmark = pytest.mark.usefixtures("fast_backoff")


# The real backoff, read before any test shortens it.
REAL_BACKOFF_SECONDS = http_pipeline.BACKOFF_SECONDS
EXTERNAL_ID = "chat-42-turn-3"
TIMEOUT_FIELD = cast(forms.IntegerField, ConnectorForm.base_fields["timeout_seconds"])


def ingest_payload() -> dict[str, Any]:
    """An answer a team sends through the API, with a three-stage trace."""
    return {
        "external_id": EXTERNAL_ID,
        "prompt": [{"role": "user", "content": QUESTION}],
        "response": "About every 300 km, or after riding in rain [doc-7].",
        "model": "helpdesk-llm",
        "model_version": "2026-11",
        "user_ref": "u-93f1",
        "conversation": "chat-42",
        "trace": [
            {"kind": "decomposition", "output": {"subqueries": ["chain oil interval"]}},
            {"kind": "retrieval", "parent": 0, "output": {"documents": DOCUMENTS}},
            {"kind": "generation", "parent": 1, "output": {"text": "About every 300 km."}},
        ],
    }


# --- helpers: an answer ingested, corrected in debug mode and re-run ------------------------


class _FormFields(HTMLParser):
    """What a browser submits for one form of a page: its named controls in page order, radios
    and checkboxes only when checked."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.textarea: str | None = None
        self.text: list[str] = []
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.inside = named.get("id") == self.form_id
            return
        if not self.inside or not named.get("name") or "disabled" in named:
            return
        name = named["name"] or ""
        if tag == "input":
            kind = (named.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("radio", "checkbox") and "checked" not in named:
                return
            default = "on" if kind in ("radio", "checkbox") else ""
            self.fields.append((name, named.get("value") or default))
        elif tag == "textarea":
            self.textarea, self.text = name, []

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self.textarea is not None:
            self.fields.append((self.textarea, "".join(self.text)))
            self.textarea = None


def debug_url(answer: Answer) -> str:
    return f"/projects/{answer.project.slug}/answers/{answer.external_id}/debug/"


def rerun_url(answer: Answer) -> str:
    return f"/projects/{answer.project.slug}/answers/{answer.external_id}/-/debug/rerun/"


def save_correction(client: Client, answer: Answer, changed: dict[str, str]) -> None:
    """Load the debug page and submit its form as a browser would, with `changed` set."""
    page = client.get(debug_url(answer))
    assert page.status_code == 200
    parser = _FormFields("debug-form")
    parser.feed(page.content.decode())
    form: dict[str, list[str]] = {}
    for name, value in parser.fields:
        form.setdefault(name, []).append(value)
    assert form.get("version"), "the page carries the version of what it showed"
    form.update({name: [value] for name, value in changed.items()})
    response = client.post(
        f"/projects/{answer.project.slug}/answers/{answer.external_id}/-/debug/save/", form
    )
    assert response.status_code == 302, response.content.decode()


def ingest(api: APIClient) -> Answer:
    response = api.post(
        "/api/v1/answers", data=orjson.dumps(ingest_payload()), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return Answer.objects.get(external_id=EXTERNAL_ID)


def stages_of(answer: Answer) -> list[tuple[int, str, int | None, dict[str, Any], Any]]:
    return [
        (s.position, s.kind, s.parent_position, s.input, s.output)
        for s in Stage.objects.filter(answer=answer).order_by("position")
    ]


def wait_until_finished(rerun_id: int, *, seconds: float = 20.0) -> Rerun:
    """Wait for the worker (not a performance assertion: the deadline only bounds a hang)."""
    deadline = time.monotonic() + seconds
    while True:
        rerun = Rerun.objects.get(pk=rerun_id)
        if rerun.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return rerun
        if time.monotonic() > deadline:
            return rerun
        time.sleep(0.1)


def queued_rerun(project: Project) -> Rerun:
    """A re-run of answer a-1's retrieval stage, keeping its first document, not yet started."""
    answer = AnswerFactory.create(project=project, external_id="a-1")
    stage = StageFactory.create(
        answer=answer, position=0, kind="retrieval", output={"documents": DOCUMENTS}
    )
    return Rerun.objects.create(
        project=project,
        answer=answer,
        stage=stage,
        requested_by=UserFactory.create(username="anna"),
        corrected_output={"documents": DOCUMENTS[:1]},
    )


def correct_and_rerun(project: Project, api: APIClient) -> tuple[Answer, Client, Any]:
    """An answer ingested through the API, its retrieval corrected in debug mode (doc-9 judged
    irrelevant), and the re-run from that stage requested."""
    original = ingest(api)
    annotator = member(project, Role.ANNOTATOR, "anna")
    save_correction(annotator, original, {"s1-rel-doc-9": "irrelevant"})
    assert Intervention.objects.filter(answer=original, action="doc_relevance").count() == 1
    response = annotator.post(rerun_url(original), {"stage": "1"})
    return original, annotator, response


# --- 1. Re-runs through a real worker -------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_rerun_sends_the_corrected_trace_and_stores_a_revision(
    project: Project, api: APIClient, pipeline_server: ScriptedPipeline, celery_worker: None
) -> None:
    # given a project with a connector that re-runs, and an answer ingested through the API
    connector_for(project, pipeline_server.url, secret=SECRET)
    pipeline_server.script(Reply(body=rerun_reply))

    # when an annotator corrects its retrieval and re-runs from there
    original, annotator, response = correct_and_rerun(project, api)
    [rerun] = Rerun.objects.filter(answer=original)
    rerun = wait_until_finished(rerun.pk)

    # then the pipeline got the corrected trace: doc-9 is dropped from the retrieval output
    assert response.status_code == 302
    assert rerun.status == JobStatus.SUCCEEDED, rerun.error
    [request] = pipeline_server.requests
    assert request.path == "/rerun"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.body["question"] == QUESTION
    assert request.body["from_position"] == 1
    trace = request.body["trace"]
    assert [s["position"] for s in trace] == [0, 1, 2]
    assert trace[0]["output"] == {"subqueries": ["chain oil interval"]}
    [kept] = trace[1]["output"]["documents"]
    assert kept.items() >= DOCUMENTS[0].items()
    # and a revision of the original answer is stored, listed by the API
    revision = Answer.objects.get(revision_of=original)
    assert rerun.revision_id == revision.pk
    assert revision.response == "Revised from doc-7."
    assert revision.metadata["rerun"] == {"of": EXTERNAL_ID, "from_position": 1}
    assert (revision.user_ref, revision.conversation) == ("u-93f1", "chat-42")
    assert [s[4] for s in stages_of(revision)][1:] == [
        {"documents": [kept]},
        {"text": "Revised from doc-7."},
    ]
    read = api.get(f"/api/v1/answers/{EXTERNAL_ID}")
    assert read.json()["revisions"] == [revision.external_id]
    assert api.get(f"/api/v1/answers/{revision.external_id}").json()["revision_of"] == EXTERNAL_ID
    # and the original answer is untouched: its response and stages are as ingested
    original.refresh_from_db()
    sent = ingest_payload()
    assert original.response == sent["response"]
    assert original.revision_of_id is None
    assert [(s[0], s[1], s[4]) for s in stages_of(original)] == [
        (position, stage["kind"], stage["output"]) for position, stage in enumerate(sent["trace"])
    ]
    # and the debug page links to the revision
    assert revision.external_id in annotator.get(debug_url(original)).content.decode()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_rerun_whose_pipeline_keeps_failing_ends_failed_without_a_revision(
    project: Project, api: APIClient, pipeline_server: ScriptedPipeline, celery_worker: None
) -> None:
    # given a project whose connector always answers 500
    connector_for(project, pipeline_server.url)
    pipeline_server.script(Reply(status=500, body=b'{"error": "boom"}'))

    # when an annotator corrects an answer's retrieval and re-runs from there
    original, annotator, _ = correct_and_rerun(project, api)
    [rerun] = Rerun.objects.filter(answer=original)
    rerun = wait_until_finished(rerun.pk)

    # then the re-run failed after three attempts, with a message; no revision exists
    assert rerun.status == JobStatus.FAILED
    assert rerun.error == (
        f"The pipeline at {host_of(pipeline_server)} answered HTTP 500 (Internal Server Error) "
        "(3 attempts)."
    )
    assert rerun.revision_id is None
    assert rerun.finished_at is not None
    assert pipeline_server.paths() == ["/rerun"] * 3
    assert list(Answer.objects.values_list("external_id", flat=True)) == [EXTERNAL_ID]
    assert api.get(f"/api/v1/answers/{EXTERNAL_ID}").json()["revisions"] == []
    assert escape(rerun.error) in annotator.get(debug_url(original)).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
def test_without_a_connector_an_ingested_answer_cannot_be_rerun(
    project: Project, api: APIClient, htmx: bool
) -> None:
    # given an API-ingested answer in a project without a connector, with a saved correction
    original = ingest(api)
    annotator = member(project, Role.ANNOTATOR, "anna")
    save_correction(annotator, original, {"s1-rel-doc-9": "irrelevant"})
    reason = rerun_unavailable_reason(original, pipeline_for(project))
    headers = {"HX-Request": "true"} if htmx else {}

    # when the annotator asks for a re-run
    response = annotator.post(rerun_url(original), {"stage": "1"}, headers=headers)

    # then the reason is given (409 for htmx; otherwise a redirect to a page showing it)
    assert "no pipeline connector" in reason
    if htmx:
        assert response.status_code == 409
        assert escape(reason) in response.content.decode()
    else:
        assert response.status_code == 302
        assert response["Location"] == debug_url(original)
        assert escape(reason) in annotator.get(response["Location"]).content.decode()
    assert not Rerun.objects.exists()


@pytest.mark.parametrize(
    "timeout",
    [
        TIMEOUT_FIELD.min_value,  # the range an owner may choose from
        10,
        TIMEOUT_FIELD.max_value,
    ],
)
def test_a_rerun_may_wait_for_every_attempt_its_connector_allows(timeout: int) -> None:
    # given the longest a re-run can legitimately wait on a connector with this timeout
    # (every attempt times out, with the backoff between them)
    attempts = http_pipeline.RETRIES + 1
    backoff = sum(REAL_BACKOFF_SECONDS * 2**i for i in range(http_pipeline.RETRIES))
    longest = timeout * attempts + backoff

    # when the task's soft time limit and the sweeper's patience are compared with it
    soft_limit = rerun_execute_task.soft_time_limit

    # then neither cuts the re-run short: the annotator gets the pipeline's own message
    # ("did not answer within N s"), not a killed task or "its worker stopped"
    assert soft_limit is not None
    assert longest < soft_limit
    assert longest < RERUN_STALE.total_seconds()


@pytest.mark.django_db(transaction=True)
def test_asking_again_just_as_the_previous_rerun_finishes_starts_a_new_one(
    project: Project, api: APIClient, pipeline_server: ScriptedPipeline
) -> None:
    from django.db import IntegrityError

    # given a re-run of a stage waiting for a worker
    connector_for(project, pipeline_server.url, secret=SECRET)
    original, annotator, first = correct_and_rerun(project, api)
    assert first.status_code == 302
    [previous] = Rerun.objects.filter(answer=original)

    # when the annotator asks again, and the previous one finishes right after the database
    # refused a second active re-run (before the request could read which one is active)
    def finished_meanwhile(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        try:
            return execute(sql, params, many, context)
        except IntegrityError:
            if sql.startswith('INSERT INTO "feedback_rerun"'):

                def finish() -> None:
                    try:
                        Rerun.objects.filter(pk=previous.pk).update(status=JobStatus.SUCCEEDED)
                    finally:
                        connection.close()

                worker = threading.Thread(target=finish)
                worker.start()
                worker.join()
            raise

    with connection.execute_wrapper(finished_meanwhile):
        again = annotator.post(rerun_url(original), {"stage": "1"})

    # then the request starts a new re-run (no error page)
    assert again.status_code == 302
    assert again["Location"] == debug_url(original)
    statuses = list(Rerun.objects.filter(answer=original).order_by("id").values_list("status"))
    assert statuses == [(JobStatus.SUCCEEDED,), (JobStatus.QUEUED,)]


# --- 2. The sweeper -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "age", "expected"),
    [
        (JobStatus.RUNNING, RERUN_STALE + timedelta(minutes=1), JobStatus.FAILED),
        (JobStatus.RUNNING, timedelta(seconds=30), JobStatus.RUNNING),
        (JobStatus.QUEUED, 2 * RERUN_STALE + timedelta(minutes=1), JobStatus.FAILED),
        (JobStatus.QUEUED, RERUN_STALE, JobStatus.QUEUED),
        (JobStatus.SUCCEEDED, timedelta(hours=2), JobStatus.SUCCEEDED),
    ],
    ids=["stale-running", "fresh-running", "stale-queued", "fresh-queued", "finished"],
)
def test_the_sweeper_fails_only_reruns_whose_worker_is_gone(
    project: Project, status: str, age: timedelta, expected: str
) -> None:
    # given a re-run in some state since `age` ago, and a fresh running one
    now = timezone.now()
    answer = AnswerFactory.create(project=project)
    stage = StageFactory.create(answer=answer, position=0, kind="retrieval")
    user, other = UserFactory.create(username="anna"), UserFactory.create(username="bob")
    swept = Rerun.objects.create(
        project=project, answer=answer, stage=stage, requested_by=user, corrected_output={}
    )
    fresh = Rerun.objects.create(
        project=project,
        answer=answer,
        stage=stage,
        requested_by=other,
        corrected_output={},
        status=JobStatus.RUNNING,
        attempts=1,
        started_at=now - timedelta(seconds=5),
    )
    Rerun.objects.filter(pk=swept.pk).update(
        status=status,
        attempts=0 if status == JobStatus.QUEUED else 1,  # a worker started all but a queued one
        created_at=now - age,
        started_at=now - age,
    )

    # when the sweeper runs
    jobs_sweep(kind=RERUN_JOB, now=now)

    # then only a stale one failed, with a message saying to start it again
    swept.refresh_from_db()
    fresh.refresh_from_db()
    assert swept.status == expected
    if expected == JobStatus.FAILED:
        assert "start it again" in swept.error
        assert swept.finished_at == now
    else:
        assert (swept.error, swept.finished_at) == ("", None)
    assert fresh.status == JobStatus.RUNNING
    assert fresh.error == ""


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_rerun_was_swept_meanwhile_keeps_nothing(
    project: Project, pipeline_server: ScriptedPipeline
) -> None:
    # given a queued re-run, and a pipeline during whose reply the sweeper gives up on it
    def swept_then_answered(body: dict[str, Any]) -> dict[str, Any]:
        try:
            jobs_sweep(kind=RERUN_JOB, now=timezone.now() + timedelta(hours=1))
        finally:
            connection.close()  # this handler thread's own connection
        return rerun_reply(body)

    connector_for(project, pipeline_server.url)
    pipeline_server.script(Reply(body=swept_then_answered))
    rerun = queued_rerun(project)

    # when the worker runs it and the pipeline answers after the sweep
    rerun_execute(rerun_id=rerun.pk)

    # then the re-run stays failed as the sweeper left it, and no revision is kept
    rerun.refresh_from_db()
    assert pipeline_server.paths() == ["/rerun"]
    assert rerun.status == JobStatus.FAILED
    assert "start it again" in rerun.error
    assert rerun.revision_id is None
    assert list(Answer.objects.values_list("external_id", flat=True)) == ["a-1"]


# --- 3. A connector refused at call time ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("nothing_allowed")
def test_a_rerun_through_a_refused_connector_fails_with_the_reason(
    project: Project, pipeline_server: ScriptedPipeline
) -> None:
    # given a queued re-run, and a connector to a local address
    connector_for(project, pipeline_server.url, secret=SECRET)
    pipeline_server.script(Reply(body=rerun_reply))
    rerun = queued_rerun(project)

    # when the worker runs it
    rerun_execute(rerun_id=rerun.pk)

    # then it failed at once with the reason, and nothing was sent
    rerun.refresh_from_db()
    assert rerun.status == JobStatus.FAILED
    assert rerun.error.startswith("Requests to 127.0.0.1 are not allowed")
    assert pipeline_server.requests == []
