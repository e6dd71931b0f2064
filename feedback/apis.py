"""REST API v1 of the feedback app: thin views that parse, call one service or selector, and
render. Errors leave through `feedback.api_support.exception_handler`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import schemas, selectors, services
from feedback.api_support import InvalidInput
from feedback.auth import project_for
from feedback.models import Answer, Scope

ERRORS = {
    400: OpenApiResponse(schemas.ErrorSerializer, description="Invalid input; fields named."),
    401: OpenApiResponse(schemas.ErrorSerializer, description="No or bad API key."),
    403: OpenApiResponse(schemas.ErrorSerializer, description="The key lacks the scope."),
    413: OpenApiResponse(schemas.ErrorSerializer, description="Body over the size limit."),
    503: OpenApiResponse(schemas.ErrorSerializer, description="Database down; retry later."),
}


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
            items = body["answers"]
            if not isinstance(items, list) or not items:
                raise InvalidInput(
                    "`answers` must be a non-empty list.",
                    {"answers": ["Must be a non-empty list."]},
                )
            if len(items) > settings.API_MAX_BATCH:
                raise InvalidInput(
                    f"A batch holds at most {settings.API_MAX_BATCH} answers.",
                    {"answers": [f"Must contain at most {settings.API_MAX_BATCH} items."]},
                )
            single = False
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
        "feedback_counts": {"exposures": answer.exposure_count},  # type: ignore[attr-defined]
    }


class AnswerDetailApi(APIView):
    @extend_schema(
        operation_id="answers_retrieve",
        summary="An answer with its trace, feedback counts and revisions",
        responses={
            200: schemas.AnswerOutputSerializer,
            404: OpenApiResponse(schemas.ErrorSerializer, description="No such answer here."),
            **{code: ERRORS[code] for code in (401, 403, 503)},
        },
    )
    def get(self, request: Request, external_id: str) -> Response:
        project = project_for(request, Scope.INGEST, Scope.EXPORT)
        answer = selectors.answer_get_detailed(project=project, external_id=external_id)
        if answer is None:
            raise NotFound("No answer with that external_id in this project.")
        return Response(answer_as_dict(answer))
