"""A project's own pipeline over HTTP: the protocol client (timeouts, retries, the messages users
see), the ask page and the connector settings, re-runs through a real worker, and the sweeper.

The pipeline is a real HTTP server on 127.0.0.1 in a thread, speaking the documented protocol
(feedback/pipelines/protocol.py); each test scripts its replies and reads what it received.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from feedback.models import (
    Answer,
    Intervention,
    PipelineConnector,
    Project,
    Rerun,
    Role,
    Stage,
)
from feedback.pipelines import http as http_pipeline
from feedback.pipelines.http import HttpPipeline
from feedback.pipelines.protocol import PipelineError, checked_reply
from feedback.pipelines.resolve import pipeline_for, rerun_unavailable_reason
from feedback.services.reruns import RERUN_JOB, RERUN_STALE, rerun_execute
from feedback.tasks import rerun_execute as rerun_execute_task
from tests.conftest import Dns
from tests.factories import AnswerFactory, MembershipFactory, StageFactory, UserFactory
from tests.rewardmodels.chat_server import ChatServer

# The real backoff, read before any test shortens it.
REAL_BACKOFF_SECONDS = http_pipeline.BACKOFF_SECONDS
QUESTION = "How often should I oil my bike chain?"
SECRET = "s3cret-token-7f1c9a"
EXTERNAL_ID = "chat-42-turn-3"
TIMEOUT_FIELD = cast(forms.IntegerField, ConnectorForm.base_fields["timeout_seconds"])
DOCUMENTS = [
    {"id": "doc-7", "title": "Chain care", "text": "Oil the chain every 300 km.", "score": 0.82},
    {"id": "doc-9", "title": "Tyre pressure", "text": "Pump tyres to 4 bar.", "score": 0.31},
]


# --- the scripted pipeline server -----------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass(frozen=True)
class Reply:
    """One scripted reply: `body` is bytes as they are, a callable of the request body, or any
    other value sent as JSON; `delay` seconds pass before the reply is written."""

    status: int = 200
    body: Any = b""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ScriptedPipeline:
    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply) -> None:
        """Reply with these in order; the last one repeats."""
        with self.lock:
            self.replies = list(replies)

    def take(self, received: Received) -> Reply:
        with self.lock:
            self.requests.append(received)
            if len(self.replies) > 1:
                return self.replies.pop(0)
            return self.replies[0] if self.replies else Reply(status=500, body=b"unscripted")

    def paths(self) -> list[str]:
        with self.lock:
            return [r.path for r in self.requests]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    scripted: ScriptedPipeline


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        scripted = cast(_Server, self.server).scripted
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = Received(
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=orjson.loads(raw) if raw else None,
        )
        reply = scripted.take(received)
        if reply.delay:
            scripted.stopping.wait(reply.delay)
        if isinstance(reply.body, bytes):
            content = reply.body
        elif callable(reply.body):
            content = orjson.dumps(reply.body(received.body))
        else:
            content = orjson.dumps(reply.body)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(content)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(content)
        except OSError:  # the client gave up waiting (a timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass


@pytest.fixture
def pipeline_server() -> Iterator[ScriptedPipeline]:
    scripted = ScriptedPipeline()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.scripted = scripted
    scripted.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield scripted
    scripted.stopping.set()  # wakes handlers still sleeping in a timeout test
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_pipeline, "BACKOFF_SECONDS", 0.01)


def host_of(server: ScriptedPipeline) -> str:
    """How messages name the pipeline's host."""
    return server.url.removeprefix("http://")


def closed_port_url() -> str:
    """A URL on which nothing listens."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


# --- protocol replies -----------------------------------------------------------------------


def answer_reply(question: str = QUESTION, **overrides: Any) -> dict[str, Any]:
    """A valid traced answer in the ingestion shape, as a pipeline's /ask returns it."""
    reply: dict[str, Any] = {
        "prompt": [{"role": "user", "content": question}],
        "response": "About every 300 km [doc-7].",
        "model": "acme-rag",
        "model_version": "7",
        "metadata": {"pipeline": "acme-rag"},
        "trace": [
            {"kind": "decomposition", "position": 0, "output": {"subqueries": ["chain oil"]}},
            {
                "kind": "retrieval",
                "position": 1,
                "parent": 0,
                "name": "bm25",
                "input": {"queries": ["chain oil"]},
                "output": {"documents": DOCUMENTS},
            },
            {
                "kind": "generation",
                "position": 2,
                "parent": 1,
                "output": {"text": "About every 300 km [doc-7]."},
            },
        ],
    }
    reply.update(overrides)
    return reply


def without(reply: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k != key}


def with_document_url(url: str) -> dict[str, Any]:
    """A valid reply except that its retrieval stage links a document to `url`."""
    reply = answer_reply()
    reply["trace"][1]["output"] = {"documents": [{**DOCUMENTS[0], "url": url}]}
    return reply


def rerun_reply(body: dict[str, Any]) -> dict[str, Any]:
    """What a pipeline's /rerun answers: the stages up to `from_position` as given, then a
    generation from the documents it was handed."""
    kept = [s for s in body["trace"] if s["position"] <= body["from_position"]]
    retrieval = next(s for s in reversed(kept) if s["kind"] == "retrieval")
    text = "Revised from " + ", ".join(d["id"] for d in retrieval["output"]["documents"]) + "."
    generation = {
        "kind": "generation",
        "position": kept[-1]["position"] + 1,
        "parent": kept[-1]["position"],
        "output": {"text": text},
    }
    return {
        "prompt": [{"role": "user", "content": body["question"]}],
        "response": text,
        "model": "acme-rag",
        "model_version": "8",
        "trace": [*kept, generation],
    }


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


# --- pages ----------------------------------------------------------------------------------


def member(project: Project, role: str, username: str) -> Client:
    user = UserFactory.create(username=username)
    MembershipFactory.create(user=user, project=project, role=role)
    client = Client()
    client.force_login(user)
    return client


def connector_for(project: Project, url: str, *, secret: str = "", timeout: int = 5) -> None:
    PipelineConnector.objects.create(
        project=project, url=url, secret=secret, timeout_seconds=timeout
    )


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


# --- 1. HttpPipeline against the real server ------------------------------------------------


def test_ask_posts_the_question_as_json_and_returns_the_reply(
    pipeline_server: ScriptedPipeline,
) -> None:
    # given a pipeline that answers
    pipeline_server.script(Reply(body=answer_reply()))

    # when it is asked
    reply = HttpPipeline(pipeline_server.url, timeout=5).ask(QUESTION)

    # then one POST to <url>/ask carried the question, and its answer came back
    assert reply == answer_reply()
    [request] = pipeline_server.requests
    assert request.path == "/ask"
    assert request.body == {"question": QUESTION}
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("base", "expected_path"),
    [("", "/ask"), ("/", "/ask"), ("/pipeline", "/pipeline/ask"), ("/pipeline/", "/pipeline/ask")],
)
def test_ask_goes_to_ask_under_the_base_url(
    pipeline_server: ScriptedPipeline, base: str, expected_path: str
) -> None:
    # given a base URL with or without a path and a trailing slash
    pipeline_server.script(Reply(body=answer_reply()))

    # when the pipeline is asked
    HttpPipeline(pipeline_server.url + base, timeout=5).ask(QUESTION)

    # then the request went to <base>/ask
    assert pipeline_server.paths() == [expected_path]


@pytest.mark.parametrize(
    ("secret", "expected"), [(SECRET, f"Bearer {SECRET}"), ("", None)], ids=["secret", "none"]
)
def test_the_secret_is_sent_as_a_bearer_token_only_when_set(
    pipeline_server: ScriptedPipeline, secret: str, expected: str | None
) -> None:
    # given a pipeline with or without a secret
    pipeline_server.script(Reply(body=answer_reply()))

    # when it is asked
    HttpPipeline(pipeline_server.url, secret=secret, timeout=5).ask(QUESTION)

    # then the Authorization header is the bearer token, or absent
    [request] = pipeline_server.requests
    assert request.headers.get("authorization") == expected


def test_rerun_posts_the_corrected_trace_and_the_position(
    pipeline_server: ScriptedPipeline,
) -> None:
    # given a pipeline that re-runs
    pipeline_server.script(Reply(body=rerun_reply))
    trace = answer_reply()["trace"][:2]

    # when a re-run from stage 1 is requested
    reply = HttpPipeline(pipeline_server.url, timeout=5).rerun(QUESTION, trace, from_position=1)

    # then <url>/rerun received the question, the trace and the position
    [request] = pipeline_server.requests
    assert request.path == "/rerun"
    assert request.body == {"question": QUESTION, "trace": trace, "from_position": 1}
    assert reply["response"] == "Revised from doc-7, doc-9."


@pytest.mark.parametrize(
    ("first", "attempts"),
    [
        ([Reply(status=500)], 2),
        ([Reply(status=503), Reply(status=502)], 3),
        ([Reply(delay=3.0, body=answer_reply())], 2),
    ],
    ids=["500-then-200", "503-502-then-200", "timeout-then-200"],
)
def test_transient_failures_are_retried_until_the_pipeline_answers(
    pipeline_server: ScriptedPipeline, first: list[Reply], attempts: int
) -> None:
    # given a pipeline that fails transiently, then answers
    pipeline_server.script(*first, Reply(body=answer_reply()))

    # when it is asked
    reply = HttpPipeline(pipeline_server.url, timeout=1).ask(QUESTION)

    # then the retry got the answer
    assert reply == answer_reply()
    assert pipeline_server.paths() == ["/ask"] * attempts


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_pipeline_failing_every_time_gives_up_after_three_attempts(
    pipeline_server: ScriptedPipeline, status: int
) -> None:
    # given a pipeline that always fails
    pipeline_server.script(Reply(status=status, body=b'{"error": "down"}'))

    # when it is asked
    with pytest.raises(PipelineError) as raised:
        HttpPipeline(pipeline_server.url, timeout=5).ask(QUESTION)

    # then it was tried three times and the message names the status and the host, not what
    # the pipeline said
    assert pipeline_server.paths() == ["/ask"] * 3
    assert str(raised.value) == (
        f"The pipeline at {host_of(pipeline_server)} answered HTTP {status} "
        f"({HTTPStatus(status).phrase}) (3 attempts)."
    )


def test_a_pipeline_slower_than_the_connector_timeout_did_not_answer_in_time(
    project: Project, pipeline_server: ScriptedPipeline
) -> None:
    # given a connector waiting 1 second per attempt, and a pipeline that takes 3
    connector_for(project, pipeline_server.url, timeout=1)
    pipeline_server.script(Reply(delay=3.0, body=answer_reply()))

    # when the project's pipeline is asked
    with pytest.raises(PipelineError) as raised:
        pipeline_for(project).ask(QUESTION)

    # then three attempts timed out, and the message says it did not answer in time
    assert pipeline_server.paths() == ["/ask"] * 3
    assert str(raised.value) == "The pipeline did not answer within 1 s (3 attempts)."


def test_an_unreachable_pipeline_is_retried_then_reported() -> None:
    # given a URL on which nothing listens
    pipeline = HttpPipeline(closed_port_url(), timeout=2)

    # when it is asked
    with pytest.raises(PipelineError) as raised:
        pipeline.ask(QUESTION)

    # then the message says it could not be reached
    assert str(raised.value) == "The pipeline could not be reached (ConnectError) (3 attempts)."


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_4xx_reply_stops_at_once(pipeline_server: ScriptedPipeline, status: int) -> None:
    # given a pipeline that refuses the request
    pipeline_server.script(Reply(status=status, body=b'{"error": "no"}'))

    # when it is asked
    with pytest.raises(PipelineError) as raised:
        HttpPipeline(pipeline_server.url, timeout=5).ask(QUESTION)

    # then there was exactly one attempt, and the message names the status and the host
    assert pipeline_server.paths() == ["/ask"]
    assert str(raised.value) == (
        f"The pipeline at {host_of(pipeline_server)} answered HTTP {status} "
        f"({HTTPStatus(status).phrase}) to the ask request."
    )


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"<html>busy</html>", b'{"response": "cut'], ids=repr
)
def test_malformed_json_stops_at_once(pipeline_server: ScriptedPipeline, body: bytes) -> None:
    # given a pipeline answering 200 with something that is not JSON
    pipeline_server.script(Reply(body=body))

    # when it is asked
    with pytest.raises(PipelineError) as raised:
        HttpPipeline(pipeline_server.url, timeout=5).ask(QUESTION)

    # then there was exactly one attempt
    assert pipeline_server.paths() == ["/ask"]
    assert str(raised.value) == "The pipeline returned malformed JSON."


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (without(answer_reply(), "model"), "The pipeline's answer is invalid (model: "),
        (answer_reply(response=42), "The pipeline's answer is invalid (response: "),
        (
            answer_reply(trace=[{"kind": "telepathy", "output": {}}]),
            "The pipeline's answer is invalid (trace[0].kind: ",
        ),
        ([answer_reply()], "The pipeline's reply is not a JSON object."),
        (
            with_document_url("javascript:alert(1)"),
            "The pipeline's answer is invalid (trace[1].output.documents[0].url: Must be an "
            "http:// or https:// URL with a host.)",
        ),
    ],
    ids=["no-model", "response-not-text", "unknown-stage-kind", "not-an-object", "script-url"],
)
def test_a_reply_that_is_not_a_valid_answer_is_refused(
    pipeline_server: ScriptedPipeline, reply: Any, expected: str
) -> None:
    # given a pipeline answering valid JSON that is not a valid answer
    pipeline_server.script(Reply(body=reply))

    # when its reply is checked as the platform does before storing anything
    with pytest.raises(PipelineError) as raised:
        checked_reply(
            HttpPipeline(pipeline_server.url, timeout=5).ask(QUESTION),
            external_id="ask-1",
            now=timezone.now(),
        )

    # then one attempt, and the message names what is wrong
    assert pipeline_server.paths() == ["/ask"]
    assert str(raised.value).startswith(expected)


# --- 2. The ask page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_ask_page_stores_the_connectors_answer_with_its_trace(
    project: Project, pipeline_server: ScriptedPipeline
) -> None:
    # given a project whose connector answers, and a member
    connector_for(project, pipeline_server.url, secret=SECRET)
    pipeline_server.script(Reply(body=answer_reply()))
    client = member(project, Role.RATER, "rita")

    # when the member asks a question
    response = client.post(f"/projects/{project.slug}/ask/", {"question": QUESTION})

    # then the connector was asked (with the secret) and its answer opens, trace and all
    [request] = pipeline_server.requests
    assert (request.path, request.body) == ("/ask", {"question": QUESTION})
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    [answer] = Answer.objects.filter(project=project)
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.slug}/answers/{answer.external_id}/"
    assert (answer.response, answer.model, answer.model_version) == (
        "About every 300 km [doc-7].",
        "acme-rag",
        "7",
    )
    assert answer.metadata == {"pipeline": "acme-rag"}
    assert [
        (s.position, s.kind, s.parent_position, s.name, s.input, s.output)
        for s in answer.stages.order_by("position")
    ] == [
        (0, "decomposition", None, "", {}, {"subqueries": ["chain oil"]}),
        (1, "retrieval", 0, "bm25", {"queries": ["chain oil"]}, {"documents": DOCUMENTS}),
        (2, "generation", 1, "", {}, {"text": "About every 300 km [doc-7]."}),
    ]
    assert client.get(response["Location"]).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ([Reply(status=503)], "answered HTTP 503 (Service Unavailable) (3 attempts)."),
        ([Reply(delay=3.0, body=answer_reply())], "did not answer within 1 s (3 attempts)"),
        ([Reply(body=b"{not json")], "The pipeline returned malformed JSON."),
        ([Reply(status=401)], "answered HTTP 401 (Unauthorized) to the ask request."),
        ([Reply(body=without(answer_reply(), "model"))], "The pipeline's answer is invalid"),
        ([Reply(status=500), Reply(body=[1, 2])], "The pipeline's reply is not a JSON object."),
        (
            [Reply(body=with_document_url("https://user:secret@docs.example.org/"))],
            "trace[1].output.documents[0].url: Must not contain a user name or password.",
        ),
    ],
    ids=[
        "always-503",
        "timeout",
        "malformed-json",
        "4xx",
        "invalid-answer",
        "not-an-object",
        "credentials-in-a-document-url",
    ],
)
def test_a_failing_pipeline_answers_502_keeps_the_question_and_stores_nothing(
    project: Project, pipeline_server: ScriptedPipeline, replies: list[Reply], expected: str
) -> None:
    # given a project whose connector fails in some way
    connector_for(project, pipeline_server.url, timeout=1)
    pipeline_server.script(*replies)
    client = member(project, Role.RATER, "rita")
    question = 'Chains & "sprockets": how often <oil>?'

    # when a member asks
    response = client.post(f"/projects/{project.slug}/ask/", {"question": question})

    # then a gateway error shows what went wrong, with the question kept; nothing is stored
    html = response.content.decode()
    assert response.status_code == 502
    assert escape(expected) in html
    assert f">{escape(question)}</textarea>" in html
    assert not Answer.objects.exists()
    assert not Stage.objects.exists()


@pytest.mark.django_db
def test_an_unreachable_connector_answers_502_and_stores_nothing(project: Project) -> None:
    # given a connector pointing where nothing listens
    connector_for(project, closed_port_url(), timeout=1)
    client = member(project, Role.RATER, "rita")

    # when a member asks
    response = client.post(f"/projects/{project.slug}/ask/", {"question": QUESTION})

    # then the page says the pipeline could not be reached
    assert response.status_code == 502
    assert "could not be reached" in response.content.decode()
    assert not Answer.objects.exists()


@pytest.mark.django_db
def test_without_a_connector_the_demo_pipeline_answers(
    project: Project, pipeline_server: ScriptedPipeline
) -> None:
    # given a project without a connector (and a pipeline server nobody registered)
    pipeline_server.script(Reply(body=answer_reply()))
    client = member(project, Role.RATER, "rita")

    # when a member asks
    response = client.post(
        f"/projects/{project.slug}/ask/", {"question": "How do I cook rice on the stove?"}
    )

    # then the built-in demo pipeline answered, with its trace
    [answer] = Answer.objects.filter(project=project)
    assert response.status_code == 302
    assert answer.metadata["pipeline"] == "demo"
    assert answer.stages.count() == 3
    assert pipeline_server.requests == []


# --- 3. The connector settings --------------------------------------------------------------


def connector_url(project: Project) -> str:
    return f"/projects/{project.slug}/settings/connector/"


def settings_url(project: Project) -> str:
    return f"/projects/{project.slug}/settings/"


@pytest.mark.django_db
def test_an_owner_saves_a_connector_and_the_page_never_shows_the_secret(
    project: Project,
) -> None:
    # given an owner
    owner = member(project, Role.OWNER, "olga")

    # when the owner saves a URL, a secret and a timeout
    response = owner.post(
        connector_url(project),
        {"url": "https://pipeline.example.org/v1", "secret": SECRET, "timeout_seconds": "7"},
    )

    # then the connector is stored, and the settings page names it without its secret
    assert response.status_code == 302
    assert response["Location"] == settings_url(project)
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://pipeline.example.org/v1",
        SECRET,
        7,
    )
    page = owner.get(settings_url(project))
    html = page.content.decode()
    assert page.status_code == 200
    assert "https://pipeline.example.org/v1" in html
    assert SECRET not in html
    assert "A secret is set; leave blank to keep it." in html
    assert isinstance(pipeline_for(Project.objects.get(pk=project.pk)), HttpPipeline)


@pytest.mark.django_db
def test_saving_again_with_a_blank_secret_keeps_the_stored_one(project: Project) -> None:
    # given a connector with a secret
    connector_for(project, "https://old.example.org", secret=SECRET, timeout=10)
    owner = member(project, Role.OWNER, "olga")

    # when the owner changes the URL and the timeout, leaving the secret blank
    response = owner.post(
        connector_url(project),
        {"url": "https://new.example.org", "secret": "", "timeout_seconds": "3"},
    )

    # then the new URL and timeout are stored with the old secret
    assert response.status_code == 302
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://new.example.org",
        SECRET,
        3,
    )


@pytest.mark.django_db
def test_remove_deletes_the_connector_and_the_demo_pipeline_answers_again(
    project: Project,
) -> None:
    # given a connector
    connector_for(project, "https://pipeline.example.org", secret=SECRET)
    owner = member(project, Role.OWNER, "olga")

    # when the owner ticks "remove"
    response = owner.post(
        connector_url(project), {"url": "", "timeout_seconds": "10", "remove": "on"}
    )

    # then the connector is gone
    assert response.status_code == 302
    assert not PipelineConnector.objects.filter(project=project).exists()
    assert pipeline_for(Project.objects.get(pk=project.pk)).name == "demo"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"), [(Role.RESEARCHER, 403), (Role.ANNOTATOR, 403), (Role.RATER, 403)]
)
def test_only_owners_may_change_the_connector(project: Project, role: str, status: int) -> None:
    # given a member below owner
    client = member(project, role, "rob")

    # when they try to register a connector
    response = client.post(
        connector_url(project),
        {"url": "https://evil.example.org", "secret": "x", "timeout_seconds": "5"},
    )

    # then they are refused and nothing is stored
    assert response.status_code == status
    assert not PipelineConnector.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("remove", [False, True], ids=["save", "remove"])
def test_an_owner_of_another_project_gets_404(
    project: Project, other_project: Project, remove: bool
) -> None:
    # given a connector in one project, and the owner of another project
    connector_for(project, "https://pipeline.example.org", secret=SECRET)
    outsider = member(other_project, Role.OWNER, "otto")
    form = {"url": "https://evil.example.org", "timeout_seconds": "5"}
    if remove:
        form["remove"] = "on"

    # when the outsider posts to the first project's connector
    response = outsider.post(
        connector_url(project), {**form, **({"remove": "on"} if remove else {})}
    )

    # then the project is not found, and its connector is unchanged
    assert response.status_code == 404
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret) == ("https://pipeline.example.org", SECRET)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "Enter a valid URL."),
        ("http://", "Enter a valid URL."),
        ("https://" + "a" * 500 + ".org", "Ensure this value has at most 500 characters"),
        ("", escape("Give the pipeline's URL, or tick “Remove the connector”.")),
        # The protocol is HTTP POST: an FTP address can never answer it.
        ("ftp://pipeline.example.org/v1", "Enter a valid URL."),
        ("https://acme:hunter2@pipeline.example.org", "Must not contain a user name or password."),
    ],
    ids=["words", "no-host", "too-long", "blank", "ftp", "credentials"],
)
def test_an_invalid_url_is_refused_with_the_field_error_and_changes_nothing(
    project: Project, url: str, expected: str
) -> None:
    # given a connector
    connector_for(project, "https://pipeline.example.org", secret=SECRET, timeout=10)
    owner = member(project, Role.OWNER, "olga")

    # when the owner submits an invalid URL with a new secret
    response = owner.post(
        connector_url(project),
        {"url": url, "secret": "new-secret-5b2d", "timeout_seconds": "3"},
    )

    # then 400 with the error by the field; the stored connector is as it was; no secret echoed
    html = response.content.decode()
    assert response.status_code == 400
    assert expected in html
    assert "new-secret-5b2d" not in html
    assert SECRET not in html
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://pipeline.example.org",
        SECRET,
        10,
    )


# --- 4. Re-runs through a real worker -------------------------------------------------------


def correct_and_rerun(project: Project, api: APIClient) -> tuple[Answer, Client, Any]:
    """An answer ingested through the API, its retrieval corrected in debug mode (doc-9 judged
    irrelevant), and the re-run from that stage requested."""
    original = ingest(api)
    annotator = member(project, Role.ANNOTATOR, "anna")
    save_correction(annotator, original, {"s1-rel-doc-9": "irrelevant"})
    assert Intervention.objects.filter(answer=original, action="doc_relevance").count() == 1
    response = annotator.post(rerun_url(original), {"stage": "1"})
    return original, annotator, response


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


# --- 5. The sweeper -------------------------------------------------------------------------


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
    answer = AnswerFactory.create(project=project, external_id="a-1")
    stage = StageFactory.create(
        answer=answer, position=0, kind="retrieval", output={"documents": DOCUMENTS}
    )
    rerun = Rerun.objects.create(
        project=project,
        answer=answer,
        stage=stage,
        requested_by=UserFactory.create(username="anna"),
        corrected_output={"documents": DOCUMENTS[:1]},
    )

    # when the worker runs it and the pipeline answers after the sweep
    rerun_execute(rerun_id=rerun.pk)

    # then the re-run stays failed as the sweeper left it, and no revision is kept
    rerun.refresh_from_db()
    assert pipeline_server.paths() == ["/rerun"]
    assert rerun.status == JobStatus.FAILED
    assert "start it again" in rerun.error
    assert rerun.revision_id is None
    assert list(Answer.objects.values_list("external_id", flat=True)) == ["a-1"]


# --- 6. Where the platform may send requests ------------------------------------------------

# An error reply's body may be an internal service's page, or echo a credential back.
SECRET_BODY = b'{"error": "db password is hunter2-7c1e, admin token tk_live_4f9a"}'
BODY_FRAGMENTS = ("hunter2-7c1e", "tk_live_4f9a")


@pytest.fixture
def nothing_allowed(settings: Any) -> None:
    """Production's default: no host may be in the refused ranges."""
    settings.OUTBOUND_ALLOWED_HOSTS = []


@pytest.mark.django_db
@pytest.mark.usefixtures("nothing_allowed")
@pytest.mark.parametrize(
    ("url", "host", "kind"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1", "is a loopback"),
        ("http://localhost:8080/pipeline", "localhost", "resolves to a loopback"),
        ("http://[::1]:8080", "::1", "is a loopback"),
        ("http://[::ffff:127.0.0.1]:8080", "::ffff:127.0.0.1", "is a loopback"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254", "is a link-local"),
        ("http://10.0.0.7:9000", "10.0.0.7", "is a private"),
    ],
    ids=["loopback", "localhost", "ipv6-loopback", "ipv4-mapped", "metadata", "private"],
)
def test_a_connector_inside_the_network_is_refused_when_saved(
    project: Project, url: str, host: str, kind: str
) -> None:
    # given a connector, and an owner
    connector_for(project, "https://pipeline.example.org", secret=SECRET, timeout=10)
    owner = member(project, Role.OWNER, "olga")

    # when the owner points it at an internal address
    response = owner.post(
        connector_url(project), {"url": url, "secret": "new-secret-5b2d", "timeout_seconds": "3"}
    )

    # then 400, saying why by the URL field; the stored connector is unchanged
    html = response.content.decode()
    assert response.status_code == 400
    assert escape(f"Requests to {host} are not allowed: it {kind} address.") in html
    assert html.index("Pipeline URL") < html.index("are not allowed")
    assert "new-secret-5b2d" not in html
    connector = PipelineConnector.objects.get(project=project)
    assert (connector.url, connector.secret, connector.timeout_seconds) == (
        "https://pipeline.example.org",
        SECRET,
        10,
    )


@pytest.mark.django_db
def test_credentials_in_the_connector_url_are_refused_and_not_shown_again(
    project: Project,
) -> None:
    # given an owner
    owner = member(project, Role.OWNER, "olga")

    # when the URL carries a user name and password
    response = owner.post(
        connector_url(project),
        {"url": "https://bot:pw-91c3e@pipeline.example.org/v1", "timeout_seconds": "5"},
    )

    # then 400 naming the problem; the password is not put back into the page; nothing stored
    html = response.content.decode()
    assert response.status_code == 400
    assert "Must not contain a user name or password." in html
    assert "pw-91c3e" not in html
    assert 'value="https://pipeline.example.org/v1"' in html
    assert not PipelineConnector.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("nothing_allowed")
def test_a_connector_saved_earlier_is_refused_at_call_time_and_nothing_is_sent(
    project: Project, pipeline_server: ScriptedPipeline
) -> None:
    # given a connector to a local address, stored before the policy (or by another path)
    connector_for(project, pipeline_server.url, secret=SECRET, timeout=1)
    pipeline_server.script(Reply(body=answer_reply()))
    client = member(project, Role.RATER, "rita")

    # when a member asks a question
    response = client.post(f"/projects/{project.slug}/ask/", {"question": QUESTION})

    # then the page says the destination is refused; the pipeline got nothing (nor the secret)
    assert response.status_code == 502
    assert escape("Requests to 127.0.0.1 are not allowed: it is a loopback address.") in (
        response.content.decode()
    )
    assert pipeline_server.requests == []
    assert not Answer.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("nothing_allowed")
def test_a_rerun_through_a_refused_connector_fails_with_the_reason(
    project: Project, pipeline_server: ScriptedPipeline
) -> None:
    # given a queued re-run, and a connector to a local address
    connector_for(project, pipeline_server.url, secret=SECRET)
    pipeline_server.script(Reply(body=rerun_reply))
    answer = AnswerFactory.create(project=project, external_id="a-1")
    stage = StageFactory.create(
        answer=answer, position=0, kind="retrieval", output={"documents": DOCUMENTS}
    )
    rerun = Rerun.objects.create(
        project=project,
        answer=answer,
        stage=stage,
        requested_by=UserFactory.create(username="anna"),
        corrected_output={"documents": DOCUMENTS[:1]},
    )

    # when the worker runs it
    rerun_execute(rerun_id=rerun.pk)

    # then it failed at once with the reason, and nothing was sent
    rerun.refresh_from_db()
    assert rerun.status == JobStatus.FAILED
    assert rerun.error.startswith("Requests to 127.0.0.1 are not allowed")
    assert pipeline_server.requests == []


@pytest.mark.django_db
@pytest.mark.usefixtures("nothing_allowed")
def test_a_name_that_rebinds_to_the_local_host_after_saving_is_refused_when_asked(
    project: Project, pipeline_server: ScriptedPipeline, dns: Dns
) -> None:
    # given a name that resolves to a public address when the connector is saved, and to the
    # local host afterwards
    dns("pipeline.rebind.example", [["93.184.215.14"], ["127.0.0.1"]])
    port = pipeline_server.url.rsplit(":", 1)[1]
    owner = member(project, Role.OWNER, "olga")
    saved = owner.post(
        connector_url(project),
        {"url": f"http://pipeline.rebind.example:{port}", "timeout_seconds": "2"},
    )
    assert saved.status_code == 302
    pipeline_server.script(Reply(body=answer_reply()))

    # when a question is asked
    response = owner.post(f"/projects/{project.slug}/ask/", {"question": QUESTION})

    # then the call checked the address it connects to, and refused it
    assert response.status_code == 502
    assert escape("Requests to pipeline.rebind.example are not allowed") in (
        response.content.decode()
    )
    assert pipeline_server.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize("status", [401, 500])
def test_an_error_reply_is_described_without_its_body(
    project: Project, pipeline_server: ScriptedPipeline, status: int
) -> None:
    # given an (allowed) pipeline whose error reply holds secrets
    connector_for(project, pipeline_server.url, timeout=1)
    pipeline_server.script(Reply(status=status, body=SECRET_BODY))
    client = member(project, Role.RATER, "rita")

    # when a member asks
    response = client.post(f"/projects/{project.slug}/ask/", {"question": QUESTION})

    # then the page names the status and the host, and none of the body
    html = response.content.decode()
    assert response.status_code == 502
    assert f"The pipeline at {host_of(pipeline_server)} answered HTTP {status}" in html
    assert not any(fragment in html for fragment in BODY_FRAGMENTS)


@pytest.mark.django_db
def test_a_redirect_to_an_internal_address_is_not_followed(
    project: Project, pipeline_server: ScriptedPipeline, settings: Any
) -> None:
    # given a pipeline allowed by name that redirects to another local service
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    port = pipeline_server.url.rsplit(":", 1)[1]
    with ChatServer() as internal:
        connector_for(project, f"http://localhost:{port}", timeout=1)
        pipeline_server.script(Reply(status=307, headers={"Location": f"{internal.url}/ask"}))
        client = member(project, Role.RATER, "rita")

        # when a member asks
        response = client.post(f"/projects/{project.slug}/ask/", {"question": QUESTION})

        # then the redirect is reported, not followed: the other service received nothing
        expected = (
            f"The pipeline at localhost:{port} answered HTTP 307 (Temporary Redirect) to the ask "
            "request."
        )
        assert response.status_code == 502
        assert escape(expected) in response.content.decode()
        assert internal.requests == []
