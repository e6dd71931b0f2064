"""The OpenAPI schema is the contract: schemathesis generates requests from it (valid and
invalid) and checks that the API never answers 5xx and that every response matches the schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from config.wsgi import application
from feedback.models import Project
from tests.factories import api_key_for

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
