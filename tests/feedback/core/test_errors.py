"""The service errors as an API client gets them: ValidationFailed as the one 400 shape naming
the fields (like a body the endpoint's serializer refuses), NotReady as the 409, with nothing
written; a 404 keeps the message naming what is missing."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import Http404
from rest_framework.test import APIClient

from feedback.core.api import exception_handler
from feedback.core.errors import NON_FIELD, NotReady, ServiceError, ValidationFailed
from feedback.models import Export, Project
from rewardmodels.models import C3POBuild, Generator, RewardModel, VerbalFeedback

NOT_TRAINED = "The model has no trained version yet; train it first."


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        # a refusal of the input, naming two fields, one of them twice: every message under
        # its field
        (
            ValidationFailed({"name": ["Too long.", "Has a NUL."], NON_FIELD: ["Bad."]}, "No."),
            400,
            {
                "code": "invalid",
                "message": "No.",
                "fields": {"name": ["Too long.", "Has a NUL."], "non_field_errors": ["Bad."]},
            },
        ),
        # a thing that exists but can't give what was asked yet: the service's words
        (NotReady(NOT_TRAINED), 409, {"code": "not_ready", "message": NOT_TRAINED}),
        # a lookup that found nothing: the message naming what is missing
        (
            Http404("No such reward model in this project."),
            404,
            {"code": "not_found", "message": "No such reward model in this project."},
        ),
    ],
)
def test_the_handler_answers_each_refusal_in_the_error_shape(
    error: Exception, status: int, body: dict[str, Any]
) -> None:
    # when the API's exception handler turns the error into a response
    response = exception_handler(error, {})

    # then it is the error shape with the status that error has everywhere in the API
    assert response is not None
    assert response.status_code == status
    assert response.data == {"error": body}


def test_a_refusal_that_is_not_about_input_is_left_to_its_caller() -> None:
    # given a service error that names a state, not bad input
    # when it reaches the API's exception handler
    # then the handler does not dress it up as a 400 (it is a bug if no view handled it)
    assert exception_handler(ServiceError("Another re-run was starting."), {}) is None


def test_one_field_at_fault_is_also_the_summary() -> None:
    failed = ValidationFailed.of("url", "Must not contain a user name or password.")

    assert failed.errors == {"url": ["Must not contain a user name or password."]}
    assert failed.message == "Must not contain a user name or password."
    assert isinstance(failed, ServiceError)


def test_a_refusal_names_at_least_one_field() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ValidationFailed({}, "Nothing named.")


@pytest.fixture
def feedback(project: Project) -> VerbalFeedback:
    return VerbalFeedback.objects.create(project=project, text="Be brief.")


# Each endpoint that takes a body, with a bad one and its answer: the message and fields of the
# service where the rule is the service's (a page's form passes through it too), of the
# serializer that documents the body where the body breaks the schema.
BODY_REFUSED = "The request has invalid fields."
CASES = [
    (
        "/api/v1/exports",
        {"dataset": "kto", "format": "xlsx"},
        BODY_REFUSED,
        {"format": ['"xlsx" is not a valid choice.']},
        Export,
    ),
    (
        "/api/v1/exports",
        {"dataset": "kto", "format": "csv", "filters": {"since": "later"}},
        "The export request has invalid fields.",
        {"filters.since": ["Must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z."]},
        Export,
    ),
    (
        "/api/v1/reward-models",
        {"name": "love", "objective": "p_love", "config": {"epochs": 0}},
        "The reward model is invalid.",
        {"config.epochs": ["Must be from 1 to 50."]},
        RewardModel,
    ),
    (
        "/api/v1/reward-models",
        {"name": 7, "objective": "p_love"},
        BODY_REFUSED,
        {"name": ["Not a valid string."]},
        RewardModel,
    ),
    (
        "/api/v1/verbal-feedback",
        {"text": "  "},
        "Invalid input; nothing was saved.",
        {"text": ["Must not be empty."]},
        None,
    ),
    (
        "/api/v1/generators",
        {"name": "g", "base_url": "https://llm.example.org/v1", "model": "m", "temperature": 3},
        BODY_REFUSED,
        {"temperature": ["Ensure this value is less than or equal to 2."]},
        Generator,
    ),
    (
        "/api/v1/verbal-feedback/{feedback}/builds",
        {"counts": {"categories": 0}},
        "Invalid input; nothing was saved.",
        {"counts.categories": ["Must be between 1 and 100."]},
        C3POBuild,
    ),
    (
        "/api/v1/verbal-feedback/{feedback}/builds",
        {"counts": {"categories": 0}, "seed": "not a seed!"},
        BODY_REFUSED,
        {"seed": ["Must be 1 to 32 letters, digits, - or _."]},
        C3POBuild,
    ),
]


@pytest.mark.parametrize(("url", "body", "message", "fields", "model"), CASES)
def test_each_endpoint_answers_a_refused_body_with_the_400_shape(
    api: APIClient,
    feedback: VerbalFeedback,
    url: str,
    body: dict[str, Any],
    message: str,
    fields: dict[str, list[str]],
    model: Any,
) -> None:
    # given an API client of the project
    # when it sends a body the endpoint's serializer or its service refuses
    response = api.post(url.format(feedback=feedback.pk), body, format="json")

    # then the answer is the 400 with the refusal's message and fields, and nothing was written
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": message, "fields": fields}}
    if model is not None:
        assert not model.objects.exists()
    assert VerbalFeedback.objects.count() == 1
