"""Serializers of what the feedback API accepts, and the schema's post-processing hooks.

The hot paths, answers and feedback events, validate with `feedback.ingest` and
`feedback.events` (one pass, no serializer per item); their serializers here describe exactly
what those accept, so the schema stays the contract. Every other body is checked by the
serializer that documents it (`feedback.core.api.validated_body`). What the API answers is
rendered by the OutputSerializers in `feedback.apis`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from feedback import events, ingest
from feedback.core.api import StrictCharField
from feedback.core.errors import NON_FIELD
from feedback.core.validators import MAX_URL_LENGTH
from feedback.datasets.definitions import DATASETS, FORMS
from feedback.models import ExportFormat

# Ids and names are shown in lists: characters that reorder the text around them are refused.
NO_BIDI = " No bidirectional control characters (U+202A-U+202E, U+2066-U+2069)."


class MessageSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(choices=ingest.MESSAGE_ROLES)
    content = serializers.CharField(max_length=ingest.MAX_TEXT_LENGTH, allow_blank=True)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": ingest.MAX_TEXT_LENGTH},
            {
                "type": "array",
                "minItems": 1,
                "maxItems": ingest.MAX_MESSAGES,
                "items": {"$ref": "#/components/schemas/Message"},
            },
        ],
        "description": "Chat messages up to this turn; a plain string is one user message.",
    }
)
class PromptField(serializers.JSONField):
    pass


class DocumentSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(max_length=ingest.MAX_ID_LENGTH)
    title = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    text = serializers.CharField(allow_blank=True)
    url = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=MAX_URL_LENGTH,
        help_text="The source's link: an absolute http:// or https:// URL with a host, without a "
        "user name, password, spaces or control characters.",
    )
    score = serializers.FloatField(required=False, allow_null=True)


class DecompositionOutputSerializer(serializers.Serializer[Any]):
    subqueries = serializers.ListField(child=serializers.CharField(allow_blank=True))


class DocumentsOutputSerializer(serializers.Serializer[Any]):
    documents = serializers.ListField(child=DocumentSerializer(), max_length=ingest.MAX_DOCUMENTS)


class GenerationOutputSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(allow_blank=True)


def _stage_serializer(kind: str, output: Any) -> type[serializers.Serializer[Any]]:
    attrs = {
        "kind": serializers.ChoiceField(choices=[kind]),
        "position": serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=0,
            max_value=2**31 - 1,
            help_text="Defaults to the index.",
        ),
        "parent": serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=0,
            help_text="Position of an earlier stage this one consumed.",
        ),
        "name": serializers.CharField(
            required=False, allow_null=True, allow_blank=True, max_length=200
        ),
        "input": serializers.DictField(required=False, allow_null=True),
        "output": output,
    }
    name = f"{kind.capitalize()}Stage"
    return type(name, (serializers.Serializer,), attrs)


STAGE_SCHEMA = PolymorphicProxySerializer(
    component_name="Stage",
    serializers={
        "decomposition": _stage_serializer("decomposition", DecompositionOutputSerializer()),
        "retrieval": _stage_serializer("retrieval", DocumentsOutputSerializer()),
        "rerank": _stage_serializer("rerank", DocumentsOutputSerializer()),
        "generation": _stage_serializer("generation", GenerationOutputSerializer()),
        "tool": _stage_serializer("tool", serializers.DictField()),
        "other": _stage_serializer("other", serializers.DictField()),
    },
    resource_type_field_name="kind",
    many=False,
)


class AnswerInputSerializer(serializers.Serializer[Any]):
    external_id = serializers.CharField(
        max_length=ingest.MAX_ID_LENGTH,
        help_text=f"Your id for the answer; the idempotency key.{NO_BIDI}",
    )
    prompt = PromptField()
    response = serializers.CharField(max_length=ingest.MAX_TEXT_LENGTH, allow_blank=True)
    model = serializers.CharField(max_length=ingest.MAX_MODEL_LENGTH, help_text=NO_BIDI.strip())
    model_version = serializers.CharField(
        max_length=ingest.MAX_MODEL_LENGTH, required=False, allow_null=True, allow_blank=True
    )
    conversation = serializers.CharField(
        max_length=ingest.MAX_ID_LENGTH, required=False, allow_null=True, allow_blank=True
    )
    user_ref = serializers.CharField(
        max_length=ingest.MAX_ID_LENGTH,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text=f"Pseudonymous id of the end user the answer was generated for.{NO_BIDI}",
    )
    metadata = serializers.DictField(required=False, allow_null=True)
    created_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text="When your system produced the answer; not in the future.",
    )
    trace = serializers.ListField(
        child=STAGE_SCHEMA, required=False, allow_null=True, max_length=ingest.MAX_STAGES
    )


class AnswerBatchInputSerializer(serializers.Serializer[Any]):
    answers = serializers.ListField(child=AnswerInputSerializer(), min_length=1, max_length=1000)


ANSWER_INGEST_REQUEST = PolymorphicProxySerializer(
    component_name="AnswerIngestRequest",
    serializers=[AnswerInputSerializer, AnswerBatchInputSerializer],
    resource_type_field_name=None,
)


def require_request_bodies(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: every request body of this API is required (an empty POST is a
    400), and the schema should say so."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result


def document_auth_throttling(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular hook: every operation that takes an API key may answer 429 with
    Retry-After once the client's address has failed too many API-key authentications."""
    throttled = (
        "Too many failed API-key authentications from this address; retry after Retry-After "
        "seconds."
    )
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict) or not any(
                "ApiKey" in requirement for requirement in operation.get("security", [])
            ):
                continue
            responses = operation.setdefault("responses", {})
            if "429" in responses:
                responses["429"]["description"] += f" Or: {throttled}"
            else:
                responses["429"] = {
                    "description": throttled,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
            responses["429"].setdefault("headers", {})["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds to wait.",
            }
    return result


# --- feedback ------------------------------------------------------------------------------


class FeedbackEventInputSerializer(serializers.Serializer[Any]):
    event_id = serializers.CharField(
        max_length=events.MAX_ID_LENGTH,
        help_text=(
            f"Your id for the event; the idempotency key. Not starting with "
            f"{events.PAGE_VIEW_PREFIX!r} (the pages' own exposures).{NO_BIDI}"
        ),
    )
    type = serializers.ChoiceField(choices=events.EVENT_TYPES)
    answer = serializers.CharField(max_length=events.MAX_ID_LENGTH, help_text="external_id")
    user_ref = serializers.CharField(
        max_length=events.MAX_ID_LENGTH, help_text=f"Pseudonymous id of the viewer.{NO_BIDI}"
    )
    at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="When it happened; not in the future."
    )
    reaction = serializers.CharField(
        required=False, help_text="reaction, unreaction: one of the project's reactions."
    )
    text = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=events.MAX_CRITIQUE_LENGTH,
        help_text="critique (required), followup (optional).",
    )
    quote = serializers.CharField(
        required=False, allow_blank=True, max_length=events.MAX_CRITIQUE_LENGTH
    )
    category = serializers.CharField(
        required=False, allow_blank=True, max_length=events.MAX_CATEGORY_LENGTH
    )
    other_answer = serializers.CharField(
        required=False, max_length=events.MAX_ID_LENGTH, help_text="comparison: answer B."
    )
    winner = serializers.ChoiceField(choices=events.WINNERS, required=False)
    outcome = serializers.ChoiceField(choices=events.OUTCOMES, required=False)
    surface = serializers.CharField(
        required=False, allow_blank=True, max_length=events.MAX_SURFACE_LENGTH
    )


class FeedbackBatchInputSerializer(serializers.Serializer[Any]):
    events = serializers.ListField(
        child=FeedbackEventInputSerializer(), min_length=1, max_length=1000
    )


# --- exports -------------------------------------------------------------------------------


# A time as ISO 8601 text with a UTC offset, parsed by the service the way every time the API
# takes is parsed (`feedback.ingest.parse_timestamp`).
@extend_schema_field(OpenApiTypes.DATETIME)
class DateTimeTextField(StrictCharField):
    pass


class ExportFiltersSerializer(serializers.Serializer[Any]):
    model = StrictCharField(required=False, allow_null=True, allow_blank=True)
    model_version = StrictCharField(required=False, allow_null=True, allow_blank=True)
    since = DateTimeTextField(required=False, allow_null=True)
    until = DateTimeTextField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        # A filter misspelt would export everything: refused, not ignored.
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError(
                {NON_FIELD: [f"Unknown filters: {', '.join(unknown)}."]}
            )
        return super().to_internal_value(data)


class ExportInputSerializer(serializers.Serializer[Any]):
    dataset = serializers.ChoiceField(choices=sorted(DATASETS))
    format = serializers.ChoiceField(choices=ExportFormat.values, source="fmt")
    form = serializers.ChoiceField(choices=list(FORMS), default=None, allow_null=True)
    filters = ExportFiltersSerializer(default=None, allow_null=True)
