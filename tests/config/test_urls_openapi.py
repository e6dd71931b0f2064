"""The OpenAPI schema is the contract: schemathesis generates requests from it (valid and
invalid) and checks that the API never answers 5xx and that every response matches the schema;
the answers built by hand on the hot paths are held to the serializers that document them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application
from feedback import selectors, services
from feedback.apis import AnswerIngestApi, Batch, FeedbackApi, batch_body
from feedback.core.api import OrjsonRenderer
from feedback.events import EVENT_TYPES
from feedback.models import Project, Source
from tests.factories import AnswerFactory, answer_payload, api_key_for

# Fetching the schema needs no database, so it is loaded once, at collection.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def wsgi_keeps_test_connection(db: Any) -> Iterator[None]:
    """Called straight through WSGI, Django would close the test's connection at the end of
    each request (it is inside the test's transaction); its own test client avoids that the
    same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def api_key(project: Project) -> str:
    return api_key_for(project)


@pytest.mark.django_db
def test_schema_and_docs_are_served_with_local_assets(client: Client) -> None:
    schema_response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/").content.decode()

    paths = schema_response.json()["paths"]
    assert {"/api/v1/answers", "/api/v1/answers/{external_id}"} <= set(paths)
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs
    assert "cdn" not in docs.lower()


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(
    case: Any, api_key: str, wsgi_keeps_test_connection: None
) -> None:
    # Some rules can't be written in JSON Schema (a stage's parent is an earlier position,
    # positions are unique, created_at is not in the future), so a schema-valid body may still
    # be refused with a 400 that names the field; the tests of the answers API cover those.
    excluded = [positive_data_acceptance]
    if isinstance(case.body, dict) and ({"answers", "events"} & case.body.keys()):
        # A batch answers 200 with a result per item, invalid items included: the contract
        # is "one bad item never loses the others", so an invalid item is not a rejected request.
        excluded.append(negative_data_rejection)
    case.call_and_validate(headers={"Authorization": f"Bearer {api_key}"}, excluded_checks=excluded)


# Three hot paths build their answers as plain dicts (feedback/apis.py gives the figures that
# justify it): the batch answers of POST /answers and POST /feedback, and the pages of
# GET /feedback. Each is documented by an OutputSerializer, which must render the very same
# thing, and a real answer must match the schema.

AUTH = "Authorization"

PROMPT = [{"role": "user", "content": "How do I oil a bicycle chain?"}]

# One event of each type with every field its type takes.
EVENT_FIELDS: dict[str, dict[str, Any]] = {
    "exposure": {"surface": "chat"},
    "reaction": {"reaction": "love"},
    "unreaction": {"reaction": "love"},
    "critique": {"text": "Too long.", "quote": "one drop", "category": "verbosity"},
    "comparison": {"other_answer": "a-2", "winner": "b"},
    "followup": {"outcome": "partly", "text": "Chain still squeaks."},
}


def event_of(event_id: str, type_: str) -> dict[str, Any]:
    fields = EVENT_FIELDS[type_]
    return {"event_id": event_id, "type": type_, "answer": "a-1", "user_ref": "u-1", **fields}


def test_an_answer_batch_is_answered_as_its_serializer_documents(
    project: Project, api_key: str, wsgi_keeps_test_connection: None
) -> None:
    # given a batch with a new answer, a repeat of it, and two invalid ones (one with no id)
    items: list[Any] = [
        answer_payload("a-1"),
        answer_payload("a-1"),
        answer_payload("a-2", prompt=7),
        {},
    ]
    # when it is ingested
    results = services.answers_ingest(project=project, items=items)
    # then the hand-built answer is what the documenting serializer renders
    assert [r.status for r in results] == ["created", "duplicate", "error", "error"]
    assert batch_body(Batch(results)) == AnswerIngestApi.OutputSerializer(Batch(results)).data

    # and the API's answer to such a batch matches the schema
    operation = schema["/api/v1/answers"]["POST"]
    items = [answer_payload("b-1"), answer_payload("b-1"), answer_payload("b-2", prompt=7), {}]
    response = operation.Case(body={"answers": items}).call(headers={AUTH: f"Bearer {api_key}"})
    assert response.status_code == 201
    operation.validate_response(response)
    assert response.json()["results"][0].keys() == {"index", "status", "external_id", "id"}


def test_a_feedback_batch_is_answered_as_its_serializer_documents(
    project: Project, api_key: str, wsgi_keeps_test_connection: None
) -> None:
    # given a batch with a new reaction, a repeat of it, and one on an unknown answer
    AnswerFactory.create(project=project, external_id="a-1")
    items: list[Any] = [
        event_of("e1", "reaction"),
        event_of("e1", "reaction"),
        event_of("e2", "reaction"),
    ]
    items[2]["answer"] = "nowhere"
    # when it is recorded
    results = services.feedback_record(project=project, items=items, source=Source.API)
    # then the hand-built answer is what the documenting serializer renders
    assert [r.status for r in results] == ["created", "duplicate", "error"]
    assert batch_body(Batch(results)) == FeedbackApi.RecordOutputSerializer(Batch(results)).data

    # and the API's answer to such a batch matches the schema
    operation = schema["/api/v1/feedback"]["POST"]
    items = [event_of("e3", "critique"), event_of("e3", "critique"), event_of("e4", "followup")]
    items[2]["outcome"] = "never"
    response = operation.Case(body={"events": items}).call(headers={AUTH: f"Bearer {api_key}"})
    assert response.status_code == 201
    operation.validate_response(response)


def test_the_feedback_feed_is_answered_as_its_serializer_documents(
    project: Project, api_key: str, wsgi_keeps_test_connection: None
) -> None:
    # given events of every type
    AnswerFactory.create(project=project, external_id="a-1", prompt=PROMPT)
    AnswerFactory.create(project=project, external_id="a-2", prompt=PROMPT)
    items = [event_of(f"e-{type_}", type_) for type_ in EVENT_TYPES]
    results = services.feedback_record(project=project, items=items, source=Source.API)
    assert {r.status for r in results} == {"created"}
    # when the feed is read through the API
    operation = schema["/api/v1/feedback"]["GET"]
    response = operation.Case(query={"limit": 100}).call(headers={AUTH: f"Bearer {api_key}"})
    # then it matches the schema
    assert response.status_code == 200
    operation.validate_response(response)
    # and it is what the documenting serializer renders for the same events, key for key
    events = selectors.feedback_events_page(project=project, after_id=0, limit=100)
    documented = FeedbackApi.PageOutputSerializer({"results": events, "next": None}).data
    assert response.json() == orjson.loads(OrjsonRenderer().render(documented))
    assert {event["type"] for event in response.json()["results"]} == set(EVENT_TYPES)
