"""The feedback API's bodies and lookups outside the hot paths: an export's body is checked by
the serializer that documents it and reaches the service as the schema names it; a missing
export, answer or dataset is a 404 that says what is missing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from feedback.models import Export


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "stored"),
    [
        ({"dataset": "kto", "format": "csv"}, ("csv", "conversational", {})),
        (
            {"dataset": "kto", "format": "parquet", "form": None, "filters": None},
            ("parquet", "conversational", {}),
        ),
        (
            {
                "dataset": "kto",
                "format": "jsonl",
                "form": "text",
                "filters": {"model": "m", "since": "2026-01-31T12:00:00+02:00"},
            },
            ("jsonl", "text", {"model": "m", "since": "2026-01-31T10:00:00+00:00"}),
        ),
    ],
)
def test_an_export_body_reaches_the_service_as_documented(
    api: APIClient, body: dict[str, Any], stored: tuple[str, str, dict[str, str]]
) -> None:
    response = api.post("/api/v1/exports", body, format="json")

    assert response.status_code == 202, response.json()
    export = Export.objects.get()
    assert (export.format, export.form, export.filters) == stored


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset": 5, "format": "csv"}, "dataset"),
        ({"dataset": "kto", "format": "csv", "filters": {"model": 5}}, "filters.model"),
        ({"dataset": "kto", "format": "csv", "filters": {"since": 1769853600}}, "filters.since"),
        ({"dataset": "kto", "format": "csv", "filters": {"colour": "red"}}, "filters"),
        ([{"dataset": "kto", "format": "csv"}], "non_field_errors"),
    ],
)
def test_an_export_body_unlike_its_schema_is_refused_naming_the_field(
    api: APIClient, body: Any, field: str
) -> None:
    response = api.post("/api/v1/exports", body, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert not Export.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("exports/999999", "No export with that id in this project."),
        ("exports/999999/download", "No export with that id in this project."),
        ("answers/no-such-answer", "No answer with that external_id in this project."),
        ("datasets/nothing.jsonl", "No dataset 'nothing'; there are "),
    ],
)
def test_a_missing_thing_is_a_404_that_says_what_is_missing(
    api: APIClient, path: str, message: str
) -> None:
    response = api.get(f"/api/v1/{path}")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["message"].startswith(message)
