"""A page's ServiceForm: the service is called only with a valid form, and what the service
refuses lands on the form, each message by its field and named as the API names it; a thing not
ready yet is said on the form as a whole."""

from __future__ import annotations

from typing import Any

from django import forms

from feedback.core.errors import NON_FIELD, NotReady, ValidationFailed
from feedback.core.forms import ServiceForm


class PlanForm(ServiceForm):
    name = forms.CharField(required=False)
    seats = forms.IntegerField(required=False, error_messages={"invalid": "Must be a number."})
    url = forms.CharField(required=False)

    service_names = {"seats": "config.seats"}
    url_fields = ("url",)


class Service:
    """Stands in for a service call: records its arguments, then refuses or answers."""

    def __init__(self, refusal: ValidationFailed | NotReady | None = None) -> None:
        self.refusal = refusal
        self.calls: list[dict[str, Any]] = []

    def __call__(self, data: dict[str, Any]) -> str:
        self.calls.append(data)
        if self.refusal is not None:
            raise self.refusal
        return "made"


def test_a_valid_form_calls_the_service_with_typed_values() -> None:
    form = PlanForm({"name": "Plan", "seats": "3"})
    service = Service()

    assert form.submit(service) == "made"
    assert service.calls == [{"name": "Plan", "seats": 3, "url": ""}]
    assert form.error_lines() == []


def test_an_invalid_form_never_reaches_the_service() -> None:
    # given a value the form cannot read as a number
    form = PlanForm({"name": "Plan", "seats": "three"})
    service = Service()

    # when it is submitted
    made = form.submit(service)

    # then the service was not called, and the message names the input as the service does
    assert made is None
    assert service.calls == []
    assert form.error_lines() == ["config.seats: Must be a number."]


def test_the_services_refusal_lands_on_the_fields_it_names() -> None:
    # given a service that refuses a field of the form, one known to it by another name, an
    # input the form does not have, and the request as a whole
    form = PlanForm({"name": "Plan", "seats": "300"})
    service = Service(
        ValidationFailed(
            {
                "name": ["Taken."],
                "config.seats": ["Must be from 1 to 99."],
                "counts.extra": ["Unknown key."],
                NON_FIELD: ["The plan is closed."],
            }
        )
    )

    # when the form is submitted
    made = form.submit(service)

    # then each message is on its field, the rest are the form's own and still say which
    # input they are about (unless they are about the whole request)
    assert made is None
    assert form.errors["name"] == ["Taken."]
    assert form.errors["seats"] == ["Must be from 1 to 99."]
    assert form.non_field_errors() == ["counts.extra: Unknown key.", "The plan is closed."]
    assert form.error_lines() == [
        "name: Taken.",
        "config.seats: Must be from 1 to 99.",
        "counts.extra: Unknown key.",
        "The plan is closed.",
    ]
    assert form.error_texts() == [
        "Taken.",
        "Must be from 1 to 99.",
        "counts.extra: Unknown key.",
        "The plan is closed.",
    ]


def test_a_thing_not_ready_is_said_on_the_form_as_a_whole() -> None:
    # given a service whose thing can't give what was asked yet (no trained version, say)
    form = PlanForm({"name": "Plan"})
    service = Service(NotReady("The model has no trained version yet; train it first."))

    # when the form is submitted
    made = form.submit(service)

    # then nothing was made and the page says why, about no field in particular
    assert made is None
    assert len(service.calls) == 1
    assert form.error_lines() == ["The model has no trained version yet; train it first."]


def test_a_url_is_shown_again_without_its_credentials() -> None:
    form = PlanForm({"name": "Plan", "url": "https://bot:pw-1@llm.example.org/v1"})
    form.submit(Service(ValidationFailed.of("url", "Must not contain a user name or password.")))

    shown = form.redact()

    assert "pw-1" not in str(shown.data["url"])
    assert shown.data["name"] == "Plan"
    assert shown.error_lines() == ["url: Must not contain a user name or password."]
