"""What every API endpoint of both apps shares: JSON in and out (orjson), the error shape
`{"error": {"code", "message", "fields"?}}` with its schema and the error responses every
operation documents, the limits on request bodies, request bodies checked by the serializer
that documents them, and the output fields whose value a serializer method works out."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from feedback.core.errors import NON_FIELD, NotReady, ValidationFailed

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; nothing was written. Retry later."
    default_code = "service_unavailable"


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorDetailSerializer()


# An output field whose value is worked out by the serializer's `get_<field name>(instance)`
# method, as with DRF's SerializerMethodField, while the field keeps its own type: that type
# renders the value and is what the schema documents (a SerializerMethodField is documented as
# read-only and typed from its method's annotation). Mix it in before the field class, as the
# Method*Field classes below do, or into a nested serializer. A comment, not a docstring: the
# schema would take a docstring as the description of every serializer that mixes it in.
class FromMethod(serializers.Field):
    def get_attribute(self, instance: Any) -> Any:
        return getattr(self.parent, f"get_{self.field_name}")(instance)


class MethodCharField(FromMethod, serializers.CharField):
    pass


class MethodBooleanField(FromMethod, serializers.BooleanField):
    pass


class MethodDictField(FromMethod, serializers.DictField):
    pass


class MethodListField(FromMethod, serializers.ListField):
    pass


# A value of the JSON type its schema states, and only that: DRF's own fields would turn 5 into
# "5", "yes" into true and "2" into 2, where the API refuses a value of another type, as its hot
# paths do. Text is taken as sent (not stripped): the services decide what counts as blank.
# Mixed in before the field class, as the Strict*Field classes below do.
class JsonTyped(serializers.Field):
    json_types: ClassVar[tuple[type, ...]] = ()

    def to_internal_value(self, data: Any) -> Any:
        other_type = not isinstance(data, self.json_types)
        if other_type or (isinstance(data, bool) and bool not in self.json_types):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(JsonTyped, serializers.CharField):
    json_types = (str,)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


class StrictIntegerField(JsonTyped, serializers.IntegerField):
    json_types = (int,)


class StrictFloatField(JsonTyped, serializers.FloatField):
    json_types = (int, float)


class StrictBooleanField(JsonTyped, serializers.BooleanField):
    json_types = (bool,)


def validated_body(request: Request, serializer: type[serializers.Serializer[Any]]) -> Any:
    """The request body as `serializer` takes it (its validated data, named as the service it
    is passed to names them), or the 400 naming each field at fault. An operation documents its
    body with the same serializer (`extend_schema(request=...)`), so the schema is what is
    checked."""
    checked = serializer(data=request.data)
    checked.is_valid(raise_exception=True)
    return checked.validated_data


# The errors any operation may answer; each operation lists the ones that apply to it.
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; fields named."),
    401: OpenApiResponse(ErrorSerializer, description="No or bad API key."),
    403: OpenApiResponse(ErrorSerializer, description="The key lacks the scope."),
    413: OpenApiResponse(ErrorSerializer, description="Body over the size limit."),
    415: OpenApiResponse(ErrorSerializer, description="The body is not JSON."),
    503: OpenApiResponse(ErrorSerializer, description="Database down; retry later."),
}
# Those of an operation without a body or parameters to refuse.
READ_ERRORS = (401, 403, 503)


def error_responses(
    *codes: int, not_found: str = "", not_ready: str = ""
) -> dict[int, OpenApiResponse]:
    """The errors an operation documents: `codes` from ERRORS, and its 404 (`not_found`) and
    409 (`not_ready`) described for it when it answers them."""
    documented = {code: ERRORS[code] for code in codes}
    if not_found:
        documented[404] = OpenApiResponse(ErrorSerializer, description=not_found)
    if not_ready:
        documented[409] = OpenApiResponse(ErrorSerializer, description=not_ready)
    return documented


def request_body(stream: Any, parser_context: Mapping[str, Any] | None) -> bytes:
    """The body a parser is given, decoded as its `Content-Encoding` says (gzip or deflate, as
    exporters and agents send it), refused with a 413 when it is over `API_MAX_BODY_BYTES`
    either as sent or once decoded (a small compressed body may inflate to gigabytes, so it is
    never decoded past the limit)."""
    limit = settings.API_MAX_BODY_BYTES
    too_large = f"The request body is over the limit of {limit} bytes."
    request = (parser_context or {}).get("request")
    meta = request.META if request is not None else {}
    declared = meta.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(too_large)
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise PayloadTooLarge(too_large)
    coding = meta.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if coding in ("", "identity"):
        return bytes(body)
    if coding not in _CONTENT_CODINGS:
        raise exceptions.UnsupportedMediaType(
            coding, f"Content-Encoding {coding!r} is not supported: send gzip, deflate or none."
        )
    decoder = zlib.decompressobj(_CONTENT_CODINGS[coding])
    try:
        decoded = decoder.decompress(body, limit + 1)
    except zlib.error as error:
        raise exceptions.ParseError(f"The body is not valid {coding}: {error}") from error
    if len(decoded) > limit:
        raise PayloadTooLarge(f"The request body is over the limit of {limit} bytes once decoded.")
    if not decoder.eof:
        raise exceptions.ParseError(f"The {coding} body ends before its end.")
    return decoded


# Content-Encoding → zlib's wbits for it: gzip's header, or zlib's (what HTTP calls deflate).
_CONTENT_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 15}


class OrjsonParser(BaseParser):
    """JSON bodies parsed with orjson (`request_body` reads them)."""

    media_type = "application/json"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = request_body(stream, parser_context)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise exceptions.ParseError(f"Malformed JSON: {error}") from error


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


class NdjsonRenderer(OrjsonRenderer):
    """Lets a client that accepts only JSON Lines reach the streaming endpoints; errors still
    render as one JSON object."""

    media_type = "application/x-ndjson"
    format = "jsonl"


class TextRenderer(OrjsonRenderer):
    """For plain-text endpoints (TREC qrels); errors still render as JSON."""

    media_type = "text/plain"
    format = "txt"


class FileRenderer(OrjsonRenderer):
    """The same for file downloads."""

    media_type = "application/octet-stream"
    format = "bin"


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation detail → {"field.path": [messages]}, named as the services name
    fields ("items[3].prompt"); what a nested object or list says about itself as a whole (not
    an object, too few items) is under its own path."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(key, int):  # a list's errors, by the item's index
                path = f"{prefix}[{key}]"
            elif prefix:
                path = prefix if key == NON_FIELD else f"{prefix}.{key}"
            else:
                path = str(key)
            flat.update(_flatten(value, path))
        return flat
    if isinstance(detail, list) and detail and not all(isinstance(d, str) for d in detail):
        flat = {}
        for i, value in enumerate(detail):
            flat.update(_flatten(value, f"{prefix}[{i}]"))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or NON_FIELD: [str(m) for m in messages]}


def is_database_outage(exception: BaseException | None) -> bool:
    """The errors of a database that can't answer now (a lost or refused connection, a query
    cancelled or deadlocked: worth retrying), as opposed to a bad query (a bug)."""
    return isinstance(exception, OperationalError | InterfaceError)


def note_database_outage(exception: BaseException | None) -> None:
    """Log the outage and drop the broken connection now, so the client's retry gets a fresh
    one. The API and the pages both answer 503 after this."""
    logger.warning("database unavailable: %s", exception)
    connections["default"].close_if_unusable_or_obsolete()


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as `{"error": {"code", "message", "fields"?}}`: ValidationFailed (a
    service's or the API's own refusal of its input) becomes the 400 naming its fields, NotReady
    the 409 saying what it waits for, a 404 keeps its message (every one raised here names the
    missing thing, in the caller's project), and the database being down is a 503 with
    Retry-After (the transaction was rolled back, so nothing was written)."""
    if is_database_outage(exc):
        note_database_outage(exc)
        exc = ServiceUnavailable()
    elif isinstance(exc, DatabaseError):
        return None  # a bug, not bad input: let it surface as a 500 and be logged
    if isinstance(exc, ValidationFailed):
        body = error_body("invalid", exc.message, exc.errors)
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, NotReady):
        return Response(error_body("not_ready", exc.message), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = str(settings.API_RETRY_AFTER_SECONDS)
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
        exc.status_code = status.HTTP_401_UNAUTHORIZED

    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        body = error_body("invalid", "The request has invalid fields.", fields)
    else:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        codes = exc.get_codes()
        body = error_body(codes if isinstance(codes, str) else exc.default_code, str(detail))
    return Response(body, status=exc.status_code, headers=headers)
