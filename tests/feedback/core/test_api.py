"""What the API's endpoints share for request bodies: a value is taken only as the JSON type its
schema states, and a body's refusal names each field at fault, nested ones by their path."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework import serializers

from feedback.core.api import (
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    exception_handler,
)


class ItemSerializer(serializers.Serializer[Any]):
    text = StrictCharField()


class BodySerializer(serializers.Serializer[Any]):
    text = StrictCharField(required=False)
    whole = StrictIntegerField(required=False)
    number = StrictFloatField(required=False)
    flag = StrictBooleanField(required=False)
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=ItemSerializer(), required=False, allow_empty=False
    )


def _refusal(body: Any) -> dict[str, Any]:
    checked = BodySerializer(data=body)
    assert not checked.is_valid()
    response = exception_handler(serializers.ValidationError(checked.errors), {})
    assert response is not None
    assert response.status_code == 400
    error: dict[str, Any] = response.data["error"]
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": 5}, "text"),
        ({"text": ["a"]}, "text"),
        ({"whole": "3"}, "whole"),
        ({"whole": 3.0}, "whole"),
        ({"whole": True}, "whole"),
        ({"number": "0.5"}, "number"),
        ({"number": False}, "number"),
        ({"flag": "true"}, "flag"),
        ({"flag": 1}, "flag"),
    ],
)
def test_a_value_of_another_json_type_is_refused_naming_its_field(
    body: dict[str, Any], field: str
) -> None:
    # given a value DRF's own field would have converted (5 to "5", "true" to True, ...)
    # when the body is checked
    error = _refusal(body)

    # then it is refused, by the field's name, and nothing else is named
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]


def test_values_of_the_stated_types_are_taken_as_sent() -> None:
    checked = BodySerializer(
        data={
            "text": "  spaced  ",
            "whole": 3,
            "number": 1,
            "flag": False,
            "items": [{"text": "x"}],
        }
    )

    assert checked.is_valid(), checked.errors
    assert checked.validated_data == {
        "text": "  spaced  ",  # not stripped: the service decides what is blank
        "whole": 3,
        "number": 1.0,
        "flag": False,
        "items": [{"text": "x"}],
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        # what a list says about itself is under the list's own name
        ({"items": []}, ["items"]),
        # an item's field is under the item's path
        ({"items": [{"text": "ok"}, {"text": 7}]}, ["items[1].text"]),
        # a body that is no object at all is refused as a whole
        ([1, 2], ["non_field_errors"]),
    ],
)
def test_a_nested_refusal_is_named_by_its_path(body: Any, fields: list[str]) -> None:
    assert list(_refusal(body)["fields"]) == fields
