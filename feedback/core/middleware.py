"""Requests refused or completed before any view runs, and the answer every page and endpoint
gives while the database is down."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import BinaryIO

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.cache import add_never_cache_headers

from feedback.core.api import (
    ServiceUnavailable,
    error_body,
    is_database_outage,
    note_database_outage,
)

logger = logging.getLogger(__name__)

GetResponse = Callable[[HttpRequest], HttpResponse]

# How much of a body without Content-Length is read per call: the whole body is read anyway,
# this only bounds the pieces.
READ_STEP = 64 * 1024


def is_api(request: HttpRequest) -> bool:
    """Requests answered in the API's JSON error shape rather than with a page."""
    return request.path.startswith("/api/")


class RejectNulCharactersMiddleware:
    """A NUL character in the path or the query string is a 400: PostgreSQL text can't hold
    one, so looking it up would fail inside the database instead of saying what is wrong."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or "\x00" in value
            for key, values in request.GET.lists()
            for value in values
        ):
            return _refusal(request, 400, "invalid", "The URL contains a NUL character.")
        return self.get_response(request)


class ChunkedBodyMiddleware:
    """Reads a body sent with `Transfer-Encoding: chunked`, which has no Content-Length.

    Django reads exactly Content-Length bytes of a body, so left alone a chunked body reads as
    empty and a valid request fails validation as if its fields were missing. A server that
    de-chunks the body and ends the input stream where the body ends says so with
    `wsgi.input_terminated` (gunicorn does): the body is read here, at most one byte past
    API_MAX_BODY_BYTES, and handed on as if it had come with a Content-Length, so every limit
    downstream (DATA_UPLOAD_MAX_MEMORY_SIZE for forms) applies to it as to any other body.
    Past the limit the answer is 413. A server that doesn't mark the end (Django's development
    server) leaves no safe way to find it: the answer is 411, asking for a Content-Length.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.META.get("CONTENT_LENGTH") or not _is_chunked(request):
            return self.get_response(request)
        if not request.META.get("wsgi.input_terminated"):
            return _refusal(
                request,
                411,
                "length_required",
                "This server can't read a chunked request body: send it with a Content-Length.",
            )
        limit = settings.API_MAX_BODY_BYTES
        body = _read_at_most(request.META["wsgi.input"], limit + 1)
        if len(body) > limit:
            return _refusal(
                request,
                413,
                "payload_too_large",
                f"The request body is over the limit of {limit} bytes.",
            )
        # The request wrapped its input in a stream that ends after Content-Length bytes, none
        # here: give it the body just read instead, and that body's length.
        request.META["CONTENT_LENGTH"] = str(len(body))
        request._stream = io.BytesIO(body)
        return self.get_response(request)


def _is_chunked(request: HttpRequest) -> bool:
    codings = request.META.get("HTTP_TRANSFER_ENCODING", "")
    return codings.rsplit(",", 1)[-1].strip().lower() == "chunked"


def _read_at_most(stream: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end of the stream (a read may return less than
    asked before the end)."""
    pieces: list[bytes] = []
    remaining = size
    while remaining > 0:
        piece = stream.read(min(remaining, READ_STEP))
        if not piece:
            break
        pieces.append(piece)
        remaining -= len(piece)
    return b"".join(pieces)


def _refusal(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    if is_api(request):
        return JsonResponse(error_body(code, message), status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class DatabaseUnavailableMiddleware:
    """A view that fails because the database can't be reached answers 503 with Retry-After:
    a page in the site's layout, or the API's JSON error. (The API's own views answer the same
    through its exception handler; errors raised outside any view, in another middleware,
    reach the 500 handler, which answers the same way.)"""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_outage(exception):
            return database_unavailable_response(request, exception)
        return None


def database_unavailable_response(
    request: HttpRequest, exception: BaseException | None
) -> HttpResponse:
    """503 with Retry-After. The page is rendered without the request, so nothing in it (the
    signed-in user, messages, the session) goes back to the database that just failed."""
    note_database_outage(exception)
    response: HttpResponse
    if is_api(request):
        body = error_body(ServiceUnavailable.default_code, str(ServiceUnavailable.default_detail))
        response = JsonResponse(body, status=503)
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(settings.API_RETRY_AFTER_SECONDS)
    add_never_cache_headers(response)
    return response
