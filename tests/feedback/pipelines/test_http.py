"""The HTTP pipeline client against a real server speaking the protocol: what it sends, timeouts
and retries, the messages users see; and where it may send requests, checked each time a
question is asked or a re-run runs (the connector settings refuse them earlier too).

The pipeline is tests/feedback/pipeline_server.py's scripted server (the `pipeline_server`
fixture); each test scripts its replies and reads what it received.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.utils import timezone
from django.utils.html import escape

from feedback.models import Answer, Project, Role
from feedback.pipelines.http import HttpPipeline
from feedback.pipelines.protocol import PipelineError, checked_reply
from feedback.pipelines.resolve import pipeline_for
from tests.conftest import Dns
from tests.factories import member
from tests.feedback.pipeline_server import (
    QUESTION,
    SECRET,
    Reply,
    ScriptedPipeline,
    answer_reply,
    closed_port_url,
    connector_for,
    connector_url,
    host_of,
    rerun_reply,
    with_document_url,
    without,
)
from tests.rewardmodels.chat_server import ChatServer

# Retries wait 0.01 s instead of the real backoff (the `fast_backoff` fixture).
pytestmark = pytest.mark.usefixtures("fast_backoff")


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


# --- 2. Where the platform may send requests, at call time ----------------------------------


# An error reply's body may be an internal service's page, or echo a credential back.
SECRET_BODY = b'{"error": "db password is hunter2-7c1e, admin token tk_live_4f9a"}'
BODY_FRAGMENTS = ("hunter2-7c1e", "tk_live_4f9a")


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
