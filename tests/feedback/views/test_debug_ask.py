"""The ask page: a member's question goes to the project's pipeline (its connector, or the
built-in demo without one) and the answer is stored with its trace; a failing or unreachable
pipeline gives a 502 page that keeps the question and stores nothing."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from feedback.models import Answer, Project, Role, Stage
from tests.factories import member
from tests.feedback.pipeline_server import (
    DOCUMENTS,
    QUESTION,
    SECRET,
    Reply,
    ScriptedPipeline,
    answer_reply,
    closed_port_url,
    connector_for,
    with_document_url,
    without,
)

# Retries wait 0.01 s instead of the real backoff (the `fast_backoff` fixture).
pytestmark = pytest.mark.usefixtures("fast_backoff")


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
