"""REST API v1 of the feedback app: thin views that parse, call one service or selector, and
render. Errors leave through `feedback.core.api.exception_handler`."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError, PermissionDenied, Throttled
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import datasets, events, otel, schemas, selectors, services
from feedback.core.access import found_or_404, viewer_of
from feedback.core.api import (
    ERRORS,
    READ_ERRORS,
    ErrorSerializer,
    FileRenderer,
    FromMethod,
    MethodCharField,
    MethodListField,
    NdjsonRenderer,
    OrjsonRenderer,
    TextRenderer,
    error_responses,
    request_body,
    validated_body,
)
from feedback.core.auth import project_for
from feedback.core.errors import NON_FIELD, NotReady, ValidationFailed
from feedback.core.jobs import JobStatus
from feedback.core.storage import download_response
from feedback.ingest import parse_timestamp
from feedback.models import (
    Answer,
    ApiKey,
    Export,
    FeedbackEvent,
    Project,
    Role,
    Scope,
    Source,
    Stage,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    role_includes,
)
from feedback.selectors import webhooks as webhook_selectors


def batch_items(body: Any, key: str) -> list[Any]:
    """The items of a batch body `{key: [...]}`: a non-empty list of at most API_MAX_BATCH."""
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ValidationFailed({key: ["Must be a non-empty list."]}, f'Send {{"{key}": [...]}}.')
    if len(items) > settings.API_MAX_BATCH:
        raise ValidationFailed(
            {key: [f"Must contain at most {settings.API_MAX_BATCH} items."]},
            f"A batch holds at most {settings.API_MAX_BATCH} {key}.",
        )
    return items


# --- batch results ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch's results, one per item in order, and its totals."""

    results: Sequence[services.IngestResult | services.FeedbackResult]

    @property
    def created(self) -> int:
        return sum(r.status == "created" for r in self.results)

    @property
    def duplicates(self) -> int:
        return sum(r.status == "duplicate" for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.status == "error" for r in self.results)


# One item's result; the keys that don't apply to it (an id of an item not created, the errors
# of a valid one) are left out, not null. (Serializers have comments, not docstrings: the schema
# would show a docstring as the shape's description.)
class BatchResultSerializer(serializers.Serializer[Any]):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "error"])

    def to_representation(self, instance: Any) -> dict[str, Any]:
        shown = super().to_representation(instance)
        return {key: value for key, value in shown.items() if value is not None}


class IngestResultSerializer(BatchResultSerializer):
    external_id = serializers.CharField(required=False)
    id = serializers.IntegerField(required=False, help_text="Present when created.")
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages keyed by the path of the field at fault, e.g. trace[0].output.",
    )


class FeedbackResultSerializer(BatchResultSerializer):
    event_id = serializers.CharField(required=False)
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


# What a batch endpoint answers; each endpoint's OutputSerializer names its results' serializer
# (DRF keeps the position of a field that a subclass declares again). Rendered by hand on these
# hot paths: `batch_body`.
class BatchOutputSerializer(serializers.Serializer[Batch]):
    results = BatchResultSerializer(many=True)
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]


def result_dict(result: services.IngestResult | services.FeedbackResult) -> dict[str, Any]:
    """What `IngestResultSerializer` or `FeedbackResultSerializer` renders, built by hand (why:
    `batch_body`)."""
    shown: dict[str, Any] = {"index": result.index, "status": result.status}
    if isinstance(result, services.IngestResult):
        if result.external_id is not None:
            shown["external_id"] = result.external_id
        if result.id is not None:
            shown["id"] = result.id
    elif result.event_id is not None:
        shown["event_id"] = result.event_id
    if result.errors is not None:
        shown["errors"] = result.errors
    return shown


def batch_body(batch: Batch) -> dict[str, Any]:
    """What the batch endpoints answer: what their OutputSerializer renders, built by hand."""
    # Measured (best of 7, rendering included): for 1,000 results the serializer takes 6.0 ms
    # against 0.4 ms for these dicts, 4% of a 1,000-answer ingest request (130 ms); for the one
    # result of a single reaction, the request benchmarks/react.py sends, 0.11 ms against
    # 0.002 ms, 2.5% of that request (4.5 ms). tests/test_openapi.py holds the two to the same
    # output.
    return {
        "results": [result_dict(r) for r in batch.results],
        "created": batch.created,
        "duplicates": batch.duplicates,
        "errors": batch.errors,
    }


def batch_response(results: Sequence[services.IngestResult | services.FeedbackResult]) -> Response:
    """A result per item, the totals, and 201 when anything was created."""
    batch = Batch(results)
    return Response(
        batch_body(batch),
        status=status.HTTP_201_CREATED if batch.created else status.HTTP_200_OK,
    )


class AnswerIngestApi(APIView):
    @extend_schema_serializer(component_name="IngestResponse")
    class OutputSerializer(BatchOutputSerializer):
        results = IngestResultSerializer(many=True)

    @extend_schema(
        operation_id="answers_ingest",
        summary="Ingest one answer or a batch of up to 1,000",
        request=schemas.ANSWER_INGEST_REQUEST,
        responses={
            200: OutputSerializer,
            201: OutputSerializer,
            **ERRORS,
        },
        description=(
            'Send one answer object, or `{"answers": [...]}`. Each item gets a result: '
            "`created`, `duplicate` (that external_id exists; nothing written) or `error` with "
            "messages keyed by field path. Valid items are written together even when others "
            "fail. A single invalid answer answers 400. 201 when anything was created."
        ),
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.INGEST)
        body: Any = request.data
        if isinstance(body, dict) and "answers" in body:
            items, single = batch_items(body, "answers"), False
        elif isinstance(body, dict):
            items, single = [body], True
        else:
            raise ValidationFailed(
                {NON_FIELD: ["Expected a JSON object."]},
                'Send an answer object or {"answers": [...]}.',
            )

        results = services.answers_ingest(project=project, items=items)
        if single and results[0].errors:  # a single answer refused: the 400 naming its fields
            raise ValidationFailed(results[0].errors, "The answer has invalid fields.")
        return batch_response(results)


# --- OpenTelemetry ---------------------------------------------------------------------------

OTLP_PROTOBUF = "application/x-protobuf"


class OtlpProtobufParser(BaseParser):
    """An OTLP `ExportTraceServiceRequest` in protobuf (`request_body` reads it)."""

    media_type = OTLP_PROTOBUF
    json = False

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return otel.decode_request(request_body(stream, parser_context), json=self.json)
        except otel.NotOtlp as error:
            raise ParseError(str(error)) from error


class OtlpJsonParser(OtlpProtobufParser):
    """The same in OTLP/JSON."""

    media_type = "application/json"
    json = True


class OtelTraceIngestApi(APIView):
    parser_classes = [OtlpProtobufParser, OtlpJsonParser]

    @extend_schema(
        operation_id="otel_traces_ingest",
        summary="Ingest OpenTelemetry traces (OTLP/HTTP): each trace becomes an answer",
        request={OTLP_PROTOBUF: OpenApiTypes.BINARY, "application/json": OpenApiTypes.OBJECT},
        responses={
            (200, OTLP_PROTOBUF): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.OBJECT,
            **ERRORS,
        },
        description=(
            "The OTLP/HTTP trace export, so an OpenTelemetry SDK sends here with "
            "`OTEL_EXPORTER_OTLP_ENDPOINT=<site>/api/v1/otel` and `OTEL_EXPORTER_OTLP_HEADERS="
            "Authorization=Bearer <key with scope ingest>`. The body is an "
            "`ExportTraceServiceRequest` in protobuf or OTLP/JSON, gzip or deflate allowed; "
            "the reply is an `ExportTraceServiceResponse` in the same encoding, whose "
            "`partial_success` counts the spans that could not be used, with the reasons. "
            "Each trace becomes an answer whose external_id is the trace id (32 lowercase hex "
            "characters) once its root span has arrived; later spans are added as stages. "
            "Spans sent again change nothing. The README maps OpenInference and GenAI spans "
            "to answers and stages."
        ),
    )
    def post(self, request: Request) -> HttpResponse:
        project = project_for(request, Scope.INGEST)
        export = request.data
        if not isinstance(export, otel.ExportTraceServiceRequest):  # no body at all
            raise ParseError("Send an OTLP ExportTraceServiceRequest (protobuf or JSON).")
        spans, refused = otel.spans_of(export)
        refused += services.traces.otel_spans_ingest(project=project, spans=spans)
        json = _is_json(request)
        return HttpResponse(
            otel.encode_response(refused, json=json),
            content_type="application/json" if json else OTLP_PROTOBUF,
        )


def _is_json(request: Request) -> bool:
    return request.content_type.split(";")[0].strip().lower() == "application/json"


# --- answers ---------------------------------------------------------------------------------


class StageOutputSerializer(serializers.Serializer[Stage]):
    position = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    parent = serializers.IntegerField(source="parent_position", allow_null=True)  # type: ignore[assignment]
    input = serializers.JSONField()
    output = serializers.JSONField()


class FeedbackCountsSerializer(FromMethod, serializers.Serializer[dict[str, Any]]):
    exposures = serializers.IntegerField()
    reactions = serializers.DictField(
        child=serializers.IntegerField(), help_text="Active, by kind."
    )
    critiques = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    followups = serializers.DictField(child=serializers.IntegerField(), help_text="By outcome.")


class AnswerDetailApi(APIView):
    @extend_schema_serializer(component_name="AnswerOutput")
    class OutputSerializer(serializers.Serializer[Answer]):
        id = serializers.IntegerField()
        external_id = serializers.CharField()
        conversation = serializers.CharField()
        user_ref = serializers.CharField()
        prompt = schemas.MessageSerializer(many=True)
        response = serializers.CharField()
        model = serializers.CharField()
        model_version = serializers.CharField()
        metadata = serializers.DictField()
        created_at = serializers.DateTimeField()
        revision_of = serializers.CharField(source="revision_of.external_id", allow_null=True)
        revisions = MethodListField(child=serializers.CharField())
        trace = StageOutputSerializer(many=True, source="stages")
        feedback_counts = FeedbackCountsSerializer()

        def get_revisions(self, answer: Answer) -> list[str]:
            return [revision.external_id for revision in answer.revisions.all()]

        def get_feedback_counts(self, answer: Answer) -> dict[str, Any]:
            return selectors.answer_feedback_counts(answer=answer)

    @extend_schema(
        operation_id="answers_retrieve",
        summary="An answer with its trace, feedback counts and revisions",
        responses={
            200: OutputSerializer,
            **error_responses(*READ_ERRORS, not_found="No such answer here."),
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        project = project_for(request, Scope.INGEST, Scope.EXPORT)
        answer = found_or_404(
            selectors.answer_get_detailed(project=project, external_id=external_id),
            "No answer with that external_id in this project.",
        )
        return Response(self.OutputSerializer(answer).data)


# --- feedback --------------------------------------------------------------------------------

FEEDBACK_PAGE_DEFAULT = 100
FEEDBACK_PAGE_MAX = 1000


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("e") or not raw[1:].isdigit() or int(raw[1:]) >= 2**63:
            raise ValueError(cursor)
        return int(raw[1:])
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed(
            {"cursor": ["Unknown cursor."]}, "The cursor is not one this API gave out."
        ) from error


# An event as the feed shows it: what every event has, then what its type adds.
class FeedbackEventOutputSerializer(serializers.Serializer[FeedbackEvent]):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    type = serializers.ChoiceField(choices=events.EVENT_TYPES)
    answer = serializers.CharField(source="answer.external_id")
    user_ref = serializers.CharField(source="viewer")
    source = serializers.ChoiceField(choices=["browser", "api", "simulated"])  # type: ignore[assignment]
    at = serializers.DateTimeField(source="occurred_at")
    received_at = serializers.DateTimeField()
    reaction = serializers.CharField(required=False, source="data.reaction")
    text = serializers.CharField(required=False, source="data.text")
    quote = serializers.CharField(required=False, source="data.quote")
    category = serializers.CharField(required=False, source="data.category")
    other_answer = serializers.CharField(required=False, source="data.other_answer")
    winner = serializers.CharField(required=False, source="data.winner")
    outcome = serializers.CharField(required=False, source="data.outcome")
    surface = serializers.CharField(required=False, source="data.surface")


def event_dict(event: FeedbackEvent) -> dict[str, Any]:
    """What `FeedbackEventOutputSerializer` renders, built by hand."""
    # Measured (best of 7, rendering included): for a page of 1,000 events the serializer takes
    # 20 ms against 1.2 ms for these dicts, where the whole page takes about 40 ms: it would make
    # the feed half as slow again. tests/test_openapi.py holds the two to the same output.
    return {
        "id": event.pk,
        "event_id": event.event_id,
        "type": event.type,
        "answer": event.answer.external_id,
        "user_ref": event.viewer,
        "source": event.source,
        "at": event.occurred_at,
        "received_at": event.received_at,
        **event.data,
    }


class FeedbackApi(APIView):
    """`/api/v1/feedback`: POST records events, GET pages through them. One URL, so one view
    class with two operations."""

    @extend_schema_serializer(component_name="FeedbackResponse")
    class RecordOutputSerializer(BatchOutputSerializer):
        results = FeedbackResultSerializer(many=True)

    @extend_schema_serializer(component_name="FeedbackPage")
    class PageOutputSerializer(serializers.Serializer[Any]):
        # Rendered by hand on this hot path: `event_dict`.
        results = FeedbackEventOutputSerializer(many=True)
        next = serializers.CharField(allow_null=True, help_text="Cursor of the next page, or null.")

    @extend_schema(
        operation_id="feedback_record",
        summary="Record feedback events (up to 1,000)",
        request=schemas.FeedbackBatchInputSerializer,
        responses={
            200: RecordOutputSerializer,
            201: RecordOutputSerializer,
            429: OpenApiResponse(ErrorSerializer, description="Viewers over the limit."),
            **ERRORS,
        },
        description=(
            "Each event gets a result: `created`, `duplicate` (its `event_id` was recorded "
            "before; nothing written) or `error` with the fields named (unknown answer, unknown "
            "reaction for this project, comparison of answers to different prompts, ...). "
            "Valid events are written even when others fail. 429 with Retry-After when every "
            "event was refused by the per-viewer rate limit."
        ),
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.FEEDBACK)
        body: Any = request.data
        items = batch_items(body, "events")
        if isinstance(request.auth, ApiKey):
            results = services.feedback_record(project=project, items=items, source=Source.API)
        else:
            # A signed-in person speaks for themselves only, whatever user_ref says.
            results = services.feedback_record(
                project=project,
                items=items,
                source=Source.BROWSER,
                viewer=viewer_of(request),
            )
        if all(r.limit == "rate_limited" for r in results):
            raise Throttled(
                wait=services.signals.RATE_WINDOW.total_seconds(),
                detail="Too much feedback from these viewers; retry later.",
            )
        return batch_response(results)

    @extend_schema(
        operation_id="feedback_list",
        summary="Page through recorded feedback events",
        parameters=[
            OpenApiParameter("type", str, enum=list(events.EVENT_TYPES)),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="at ≥ since"),
            OpenApiParameter("answer", str, description="An answer's external_id."),
            OpenApiParameter("cursor", str, description="`next` of the previous page."),
            OpenApiParameter("limit", int, description=f"1 to {FEEDBACK_PAGE_MAX}, default 100."),
        ],
        responses={
            200: PageOutputSerializer,
            **error_responses(400, *READ_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        project = project_for(request, Scope.EXPORT)
        params = request.query_params
        fields: dict[str, list[str]] = {}
        # A parameter that is present must be valid, even when empty.
        event_type = params.get("type")
        if event_type is not None and event_type not in events.EVENT_TYPES:
            fields["type"] = [f"Must be one of: {', '.join(events.EVENT_TYPES)}."]
        since = _time_param(params, "since", fields)
        limit = FEEDBACK_PAGE_DEFAULT
        if "limit" in params:
            raw = params["limit"]
            if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= FEEDBACK_PAGE_MAX:
                fields["limit"] = [f"Must be an integer from 1 to {FEEDBACK_PAGE_MAX}."]
            else:
                limit = int(raw)
        if fields:
            raise ValidationFailed(fields, "Invalid query parameters.")
        after_id = _decode_cursor(params["cursor"]) if "cursor" in params else 0
        page = selectors.feedback_events_page(
            project=project,
            after_id=after_id,
            limit=limit,
            event_type=event_type,
            since=since,
            answer_external_id=params.get("answer") or None,
        )
        next_cursor = _encode_cursor(page[-1].pk) if len(page) == limit else None
        return Response({"results": [event_dict(e) for e in page], "next": next_cursor})


def _time_param(params: Any, name: str, fields: dict[str, list[str]]) -> datetime | None:
    """An optional date-time query parameter; a problem is added to `fields`."""
    if name not in params:
        return None
    value, error = parse_timestamp(params[name], now=None, allow_future=True)
    if error:
        fields[name] = [error]
    return value


def _flag_param(params: Any, name: str, fields: dict[str, list[str]]) -> bool:
    """An optional true/false query parameter (absent: false); a problem is added to `fields`."""
    value = params.get(name, "false")
    if value not in ("true", "false"):
        fields[name] = ["Must be true or false."]
    return value == "true"


def _dataset_params(params: Any, *, with_form: bool = True) -> tuple[str, datasets.Filters]:
    """`form` and the filters of a dataset request, or a 400 naming the bad ones."""
    fields: dict[str, list[str]] = {}
    form = params.get("form", "conversational")
    if with_form and form not in datasets.FORMS:
        fields["form"] = [f"Must be one of: {', '.join(datasets.FORMS)}."]
    filters = datasets.Filters(
        model=params.get("model") or None,
        model_version=params.get("model_version") or None,
        since=_time_param(params, "since", fields),
        until=_time_param(params, "until", fields),
        include_simulated=_flag_param(params, "include_simulated", fields),
    )
    if fields:
        raise ValidationFailed(fields, "Invalid query parameters.")
    return form, filters


_FILTER_PARAMETERS = [
    OpenApiParameter("model", str),
    OpenApiParameter("model_version", str),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Feedback at ≥ since."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Feedback at < until."),
    OpenApiParameter(
        "include_simulated",
        OpenApiTypes.BOOL,
        description=(
            "Also simulated feedback (shadows, judges); every row then says `simulated` and "
            "carries a `weight`. Default false: people's feedback only."
        ),
    ),
]


class DatasetQrelsApi(APIView):
    renderer_classes = [OrjsonRenderer, TextRenderer]

    @extend_schema(
        operation_id="datasets_qrels",
        summary="TREC qrels from document relevance judgments",
        parameters=_FILTER_PARAMETERS[:4],
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            **error_responses(400, *READ_ERRORS),
        },
        description=(
            "`qid iter docno rel` lines: qid is the answer's external_id, docno the document "
            "id (both percent-encoded), rel 2 relevant, 1 partly, 0 irrelevant (the newest "
            "judgment of each document)."
        ),
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        project = project_for(request, Scope.EXPORT)
        _, filters = _dataset_params(request.query_params, with_form=False)
        if filters.include_simulated:
            # Plain qrels lines have no column to mark a simulated judgment with.
            raise ValidationFailed(
                {"include_simulated": ["qrels holds people's judgments only."]},
                "Invalid query parameters.",
            )
        response = StreamingHttpResponse(
            datasets.qrels_lines(project, filters), content_type="text/plain; charset=utf-8"
        )
        response["Content-Disposition"] = f'inline; filename="{project.slug}-qrels.txt"'
        return response


class DatasetExportApi(APIView):
    renderer_classes = [OrjsonRenderer, NdjsonRenderer]

    @extend_schema(
        operation_id="datasets_stream",
        summary="Stream a dataset as JSON Lines",
        parameters=[
            OpenApiParameter("name", str, OpenApiParameter.PATH, enum=sorted(datasets.DATASETS)),
            OpenApiParameter(
                "form",
                str,
                enum=list(datasets.FORMS),
                description="Prompts as [{role, content}] (default) or plain text.",
            ),
            *_FILTER_PARAMETERS,
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            **error_responses(400, *READ_ERRORS, not_found="No such dataset."),
        },
        description=(
            "One JSON object per line, written as the database produces them (constant memory). "
            + " ".join(f"`{d.name}`: {d.description}." for d in datasets.DATASETS.values())
        ),
    )
    def get(self, request: Request, name: str) -> StreamingHttpResponse:
        project = project_for(request, Scope.EXPORT)
        dataset = found_or_404(
            datasets.DATASETS.get(name),
            f"No dataset {name!r}; there are {', '.join(sorted(datasets.DATASETS))}.",
        )
        form, filters = _dataset_params(request.query_params)
        rows = dataset.rows(project, filters, form, timezone.now())
        return datasets.jsonl_response(rows, f"{project.slug}-{name}.jsonl")


# --- exports ---------------------------------------------------------------------------------


# An export, as creating it and reading it answer.
class ExportOutputSerializer(serializers.Serializer[Export]):
    id = serializers.IntegerField()
    dataset = serializers.CharField()
    format = serializers.CharField()
    form = serializers.CharField()
    filters = serializers.DictField()
    status = serializers.ChoiceField(
        choices=JobStatus.values,
        help_text=(
            "The status vocabulary every job shares (exports, training runs, C3PO builds); "
            "nothing cancels an export today, so an export is never `cancelled`."
        ),
    )
    progress = serializers.FloatField()
    rows = serializers.IntegerField()
    total_rows = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    download = MethodCharField(allow_null=True, help_text="URL once succeeded.")

    def get_download(self, export: Export) -> str | None:
        if export.status != JobStatus.SUCCEEDED:
            return None
        return reverse("api-export-download", args=[export.pk])


def _export_or_404(project: Project, export_id: int) -> Export:
    export = selectors.export_get(project=project, export_id=export_id)
    return found_or_404(export, "No export with that id in this project.")


class ExportCreateApi(APIView):
    @extend_schema(
        operation_id="exports_create",
        summary="Snapshot a dataset to a file (JSON Lines, Parquet or CSV)",
        request=schemas.ExportInputSerializer,
        responses={202: ExportOutputSerializer, **ERRORS},
        description="A worker writes the file; poll the export for status and progress.",
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.EXPORT)
        export = services.datasets.export_request(
            project=project,
            requested_by=str(request.user),
            **validated_body(request, schemas.ExportInputSerializer),
        )
        return Response(ExportOutputSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(
        operation_id="exports_retrieve",
        summary="An export's status, progress, row count and sha256",
        responses={
            200: ExportOutputSerializer,
            **error_responses(*READ_ERRORS, not_found="No such export here."),
        },
    )
    def get(self, request: Request, export_id: int) -> Response:
        project = project_for(request, Scope.EXPORT)
        return Response(ExportOutputSerializer(_export_or_404(project, export_id)).data)


class ExportDownloadApi(APIView):
    renderer_classes = [OrjsonRenderer, FileRenderer]

    @extend_schema(
        operation_id="exports_download",
        summary="The export's file, once it has succeeded",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            302: OpenApiResponse(
                description="With STORAGE_DOWNLOAD_REDIRECT on an object store: `Location` is "
                "a signed URL of the file that expires after STORAGE_DOWNLOAD_URL_SECONDS."
            ),
            **error_responses(
                *READ_ERRORS,
                not_found="No such export here.",
                not_ready="Not ready (or failed).",
            ),
        },
    )
    def get(self, request: Request, export_id: int) -> HttpResponseBase:
        project = project_for(request, Scope.EXPORT)
        export = _export_or_404(project, export_id)
        if export.status != JobStatus.SUCCEEDED:
            raise NotReady(f"The export is {export.status}; download it once it has succeeded.")
        return download_response(export.file)


# --- webhooks --------------------------------------------------------------------------------


def _webhooks_project(request: Request) -> Project:
    """The project whose webhooks the caller manages: a key with the `feedback` scope, or a
    signed-in owner (an endpoint hears every event of the project, so no lesser role)."""
    project = project_for(request, Scope.FEEDBACK)
    if not isinstance(request.auth, ApiKey):
        membership = selectors.membership_get(user=request.user, slug=project.slug)
        if membership is None or not role_includes(membership.role, Role.OWNER):
            raise PermissionDenied("Only the project's owners manage its webhooks.")
    return project


def _endpoint_or_404(project: Project, endpoint_id: int) -> WebhookEndpoint:
    endpoint = webhook_selectors.webhook_endpoint_get(project=project, endpoint_id=endpoint_id)
    return found_or_404(endpoint, "No webhook endpoint with that id in this project.")


class WebhookEndpointOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_success_at = serializers.DateTimeField(allow_null=True)
    disabled_at = serializers.DateTimeField(
        allow_null=True, help_text="Set when it was disabled after repeated failure."
    )
    disabled_reason = serializers.CharField()


class WebhookDeliveryOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    webhook_id = serializers.CharField(
        source="message_id", help_text="The `webhook-id` header, the same on every try."
    )
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.values)
    attempts = serializers.IntegerField(help_text="Tries so far.")
    response_status = serializers.IntegerField(
        allow_null=True, help_text="The last reply's HTTP status; null when none came."
    )
    message = serializers.CharField()
    error = serializers.CharField(help_text="Why the last try failed (never the reply's body).")
    next_attempt_at = MethodCharField(allow_null=True, help_text="While queued: when it is due.")
    created_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)

    def get_next_attempt_at(self, delivery: WebhookDelivery) -> str | None:
        if delivery.status != JobStatus.QUEUED:
            return None
        return delivery.next_attempt_at.isoformat()


class WebhookCollectionApi(APIView):
    """`/api/v1/webhooks`: POST registers an endpoint, GET lists them. One URL, so one view
    class with two operations."""

    class EndpointInputSerializer(serializers.Serializer[Any]):
        url = serializers.CharField(help_text="https://…; http:// only for allowed local hosts.")
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=WebhookEventType.values), allow_empty=False
        )
        description = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @extend_schema_serializer(component_name="WebhookEndpointCreated")
    class CreatedOutputSerializer(WebhookEndpointOutputSerializer):
        secret = serializers.CharField(
            help_text="The signing secret (`whsec_…`): shown in this response only."
        )

    @extend_schema(
        operation_id="webhooks_create",
        summary="Register a webhook endpoint",
        request=EndpointInputSerializer,
        responses={201: CreatedOutputSerializer, **ERRORS},
        description=(
            "Events are delivered as the Standard Webhooks specification says: headers "
            "`webhook-id`, `webhook-timestamp` and `webhook-signature` (HMAC-SHA256 with the "
            "secret returned here, once). Failed deliveries are retried for about a day."
        ),
    )
    def post(self, request: Request) -> Response:
        project = _webhooks_project(request)
        body: Any = request.data
        body = body if isinstance(body, dict) else {}
        endpoint, secret = services.webhooks.webhook_endpoint_create(
            project=project,
            url=body.get("url"),
            events=body.get("events"),
            description=body.get("description", ""),
            created_by=str(request.user),
        )
        output = self.CreatedOutputSerializer(endpoint).data | {"secret": secret}
        response = Response(output, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        operation_id="webhooks_list",
        summary="The project's webhook endpoints",
        responses={
            200: WebhookEndpointOutputSerializer(many=True),
            **error_responses(*READ_ERRORS),
        },
    )
    def get(self, request: Request) -> Response:
        project = _webhooks_project(request)
        endpoints = webhook_selectors.webhook_endpoints_for_project(project=project)
        return Response(WebhookEndpointOutputSerializer(endpoints, many=True).data)


class WebhookDetailApi(APIView):
    """`/api/v1/webhooks/{id}`: GET shows an endpoint, DELETE removes it."""

    @extend_schema(
        operation_id="webhooks_retrieve",
        summary="A webhook endpoint (without its secret)",
        responses={
            200: WebhookEndpointOutputSerializer,
            **error_responses(*READ_ERRORS, not_found="No such endpoint here."),
        },
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(_webhooks_project(request), endpoint_id)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhooks_destroy",
        summary="Remove a webhook endpoint and its delivery log",
        responses={204: None, **error_responses(*READ_ERRORS, not_found="No such endpoint here.")},
    )
    def delete(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(_webhooks_project(request), endpoint_id)
        services.webhooks.webhook_endpoint_delete(endpoint=endpoint)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries_list",
        summary="An endpoint's newest deliveries (status, tries, last reply's status)",
        responses={
            200: WebhookDeliveryOutputSerializer(many=True),
            **error_responses(*READ_ERRORS, not_found="No such endpoint here."),
        },
    )
    def get(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(_webhooks_project(request), endpoint_id)
        deliveries = webhook_selectors.webhook_deliveries_for_endpoint(endpoint=endpoint)
        return Response(WebhookDeliveryOutputSerializer(deliveries, many=True).data)


class WebhookDeliveryResendApi(APIView):
    @extend_schema(
        operation_id="webhooks_deliveries_resend",
        summary="Send a finished delivery again (same webhook-id)",
        request=None,
        responses={
            202: WebhookDeliveryOutputSerializer,
            **error_responses(
                *READ_ERRORS,
                not_found="No such endpoint or delivery here.",
                not_ready="Still being sent, or the endpoint is disabled.",
            ),
        },
    )
    def post(self, request: Request, endpoint_id: int, delivery_id: int) -> Response:
        endpoint = _endpoint_or_404(_webhooks_project(request), endpoint_id)
        delivery = found_or_404(
            webhook_selectors.webhook_delivery_get(endpoint=endpoint, delivery_id=delivery_id),
            "No delivery with that id for this endpoint.",
        )
        delivery = services.webhooks.webhook_delivery_resend(delivery=delivery)
        return Response(
            WebhookDeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED
        )


class WebhookEnableApi(APIView):
    @extend_schema(
        operation_id="webhooks_enable",
        summary="Send to an endpoint that was disabled after repeated failure again",
        request=None,
        responses={
            200: WebhookEndpointOutputSerializer,
            **error_responses(*READ_ERRORS, not_found="No such endpoint here."),
        },
    )
    def post(self, request: Request, endpoint_id: int) -> Response:
        endpoint = _endpoint_or_404(_webhooks_project(request), endpoint_id)
        endpoint = services.webhooks.webhook_endpoint_enable(endpoint=endpoint)
        return Response(WebhookEndpointOutputSerializer(endpoint).data)
