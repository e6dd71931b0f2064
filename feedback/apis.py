"""REST API v1 of the feedback app: thin views that parse, call one service or selector, and
render. Errors leave through `feedback.core.api.exception_handler`."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import datasets, events, schemas, selectors, services
from feedback.core.access import viewer_of
from feedback.core.api import (
    ERRORS,
    ErrorSerializer,
    FileRenderer,
    InvalidInput,
    NdjsonRenderer,
    NotReady,
    OrjsonRenderer,
    TextRenderer,
)
from feedback.core.auth import project_for
from feedback.core.jobs import JobStatus
from feedback.ingest import parse_timestamp
from feedback.models import Answer, ApiKey, Export, FeedbackEvent, Scope, Source


def batch_items(body: Any, key: str) -> list[Any]:
    """The items of a batch body `{key: [...]}`: a non-empty list of at most API_MAX_BATCH."""
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidInput(f'Send {{"{key}": [...]}}.', {key: ["Must be a non-empty list."]})
    if len(items) > settings.API_MAX_BATCH:
        raise InvalidInput(
            f"A batch holds at most {settings.API_MAX_BATCH} {key}.",
            {key: [f"Must contain at most {settings.API_MAX_BATCH} items."]},
        )
    return items


def batch_response(results: Sequence[services.IngestResult | services.FeedbackResult]) -> Response:
    """A result per item, the totals, and 201 when anything was created."""
    created = sum(r.status == "created" for r in results)
    duplicates = sum(r.status == "duplicate" for r in results)
    return Response(
        {
            "results": [r.as_dict() for r in results],
            "created": created,
            "duplicates": duplicates,
            "errors": len(results) - created - duplicates,
        },
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


class AnswerIngestApi(APIView):
    @extend_schema(
        operation_id="answers_ingest",
        summary="Ingest one answer or a batch of up to 1,000",
        request=schemas.ANSWER_INGEST_REQUEST,
        responses={
            200: schemas.IngestResponseSerializer,
            201: schemas.IngestResponseSerializer,
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
            raise InvalidInput(
                'Send an answer object or {"answers": [...]}.',
                {"non_field_errors": ["Expected a JSON object."]},
            )

        results = services.answers_ingest(project=project, items=items)
        if single and results[0].status == "error":
            raise InvalidInput("The answer has invalid fields.", results[0].errors)
        return batch_response(results)


def answer_as_dict(answer: Answer) -> dict[str, Any]:
    return {
        "id": answer.pk,
        "external_id": answer.external_id,
        "conversation": answer.conversation,
        "user_ref": answer.user_ref,
        "prompt": answer.prompt,
        "response": answer.response,
        "model": answer.model,
        "model_version": answer.model_version,
        "metadata": answer.metadata,
        "created_at": answer.created_at.isoformat(),
        "revision_of": answer.revision_of.external_id if answer.revision_of else None,
        "revisions": [r.external_id for r in answer.revisions.all()],
        "trace": [
            {
                "position": s.position,
                "kind": s.kind,
                "name": s.name,
                "parent": s.parent_position,
                "input": s.input,
                "output": s.output,
            }
            for s in answer.stages.all()
        ],
        "feedback_counts": selectors.answer_feedback_counts(answer=answer),
    }


class AnswerDetailApi(APIView):
    @extend_schema(
        operation_id="answers_retrieve",
        summary="An answer with its trace, feedback counts and revisions",
        responses={
            200: schemas.AnswerOutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such answer here."),
            **{code: ERRORS[code] for code in (401, 403, 503)},
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        project = project_for(request, Scope.INGEST, Scope.EXPORT)
        answer = selectors.answer_get_detailed(project=project, external_id=external_id)
        if answer is None:
            raise NotFound("No answer with that external_id in this project.")
        return Response(answer_as_dict(answer))


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
        raise InvalidInput(
            "The cursor is not one this API gave out.", {"cursor": ["Unknown cursor."]}
        ) from error


def event_as_dict(event: FeedbackEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "event_id": event.event_id,
        "type": event.type,
        "answer": event.answer.external_id,
        "user_ref": event.viewer,
        "source": event.source,
        "at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        **event.data,
    }


class FeedbackApi(APIView):
    """`/api/v1/feedback`: POST records events, GET pages through them. One URL, so one view
    class with two operations."""

    @extend_schema(
        operation_id="feedback_record",
        summary="Record feedback events (up to 1,000)",
        request=schemas.FeedbackBatchInputSerializer,
        responses={
            200: schemas.FeedbackResponseSerializer,
            201: schemas.FeedbackResponseSerializer,
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
                wait=services.feedback.RATE_WINDOW.total_seconds(),
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
            200: schemas.FeedbackPageSerializer,
            **{code: ERRORS[code] for code in (400, 401, 403, 503)},
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
            raise InvalidInput("Invalid query parameters.", fields)
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
        return Response({"results": [event_as_dict(e) for e in page], "next": next_cursor})


def _time_param(params: Any, name: str, fields: dict[str, list[str]]) -> datetime | None:
    """An optional date-time query parameter; a problem is added to `fields`."""
    if name not in params:
        return None
    value, error = parse_timestamp(params[name], now=None, allow_future=True)
    if error:
        fields[name] = [error]
    return value


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
    )
    if fields:
        raise InvalidInput("Invalid query parameters.", fields)
    return form, filters


_FILTER_PARAMETERS = [
    OpenApiParameter("model", str),
    OpenApiParameter("model_version", str),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Feedback at ≥ since."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Feedback at < until."),
]


class DatasetQrelsApi(APIView):
    renderer_classes = [OrjsonRenderer, TextRenderer]

    @extend_schema(
        operation_id="datasets_qrels",
        summary="TREC qrels from document relevance judgments",
        parameters=_FILTER_PARAMETERS,
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            **{code: ERRORS[code] for code in (400, 401, 403, 503)},
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
            **{code: ERRORS[code] for code in (400, 401, 403, 503)},
            404: OpenApiResponse(ErrorSerializer, description="No such dataset."),
        },
        description=(
            "One JSON object per line, written as the database produces them (constant memory). "
            + " ".join(f"`{d.name}`: {d.description}." for d in datasets.DATASETS.values())
        ),
    )
    def get(self, request: Request, name: str) -> StreamingHttpResponse:
        project = project_for(request, Scope.EXPORT)
        dataset = datasets.DATASETS.get(name)
        if dataset is None:
            raise NotFound(
                f"No dataset {name!r}; there are {', '.join(sorted(datasets.DATASETS))}."
            )
        form, filters = _dataset_params(request.query_params)
        rows = dataset.rows(project, filters, form, timezone.now())
        response = StreamingHttpResponse(
            datasets.jsonl_chunks(rows), content_type="application/x-ndjson"
        )
        response["Content-Disposition"] = f'inline; filename="{project.slug}-{name}.jsonl"'
        return response


def export_as_dict(export: Export) -> dict[str, Any]:
    return {
        "id": export.pk,
        "dataset": export.dataset,
        "format": export.format,
        "form": export.form,
        "filters": export.filters,
        "status": export.status,
        "progress": export.progress,
        "rows": export.rows,
        "total_rows": export.total_rows,
        "sha256": export.sha256,
        "error": export.error,
        "created_at": export.created_at.isoformat(),
        "finished_at": export.finished_at.isoformat() if export.finished_at else None,
        "download": (
            reverse("api-export-download", args=[export.pk])
            if export.status == JobStatus.SUCCEEDED
            else None
        ),
    }


def _export_or_404(project: Any, export_id: int) -> Export:
    export = selectors.export_get(project=project, export_id=export_id)
    if export is None:
        raise NotFound("No export with that id in this project.")
    return export


class ExportCreateApi(APIView):
    @extend_schema(
        operation_id="exports_create",
        summary="Snapshot a dataset to a file (JSON Lines, Parquet or CSV)",
        request=schemas.ExportInputSerializer,
        responses={202: schemas.ExportOutputSerializer, **ERRORS},
        description="A worker writes the file; poll the export for status and progress.",
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.EXPORT)
        body: Any = request.data
        if not isinstance(body, dict):
            raise InvalidInput("Send an object.", {"non_field_errors": ["Expected an object."]})
        export = services.exports.export_request(
            project=project,
            dataset=body.get("dataset"),
            fmt=body.get("format"),
            form=body.get("form"),
            filters=body.get("filters"),
            requested_by=str(request.user),
        )
        return Response(export_as_dict(export), status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    @extend_schema(
        operation_id="exports_retrieve",
        summary="An export's status, progress, row count and sha256",
        responses={
            200: schemas.ExportOutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such export here."),
            **{code: ERRORS[code] for code in (401, 403, 503)},
        },
    )
    def get(self, request: Request, export_id: int) -> Response:
        project = project_for(request, Scope.EXPORT)
        return Response(export_as_dict(_export_or_404(project, export_id)))


class ExportDownloadApi(APIView):
    renderer_classes = [OrjsonRenderer, FileRenderer]

    @extend_schema(
        operation_id="exports_download",
        summary="The export's file, once it has succeeded",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            404: OpenApiResponse(ErrorSerializer, description="No such export here."),
            409: OpenApiResponse(ErrorSerializer, description="Not ready (or failed)."),
            **{code: ERRORS[code] for code in (401, 403, 503)},
        },
    )
    def get(self, request: Request, export_id: int) -> FileResponse:
        project = project_for(request, Scope.EXPORT)
        export = _export_or_404(project, export_id)
        if export.status != JobStatus.SUCCEEDED:
            raise NotReady(f"The export is {export.status}; download it once it has succeeded.")
        return FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=Path(export.file.name or "export").name,
            content_type="application/octet-stream",
        )
