"""Requests the database could never answer are refused before any view runs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from feedback.api_support import error_body


class RejectNulCharactersMiddleware:
    """A NUL character in the path or the query string is a 400: PostgreSQL text can't hold
    one, so looking it up would fail inside the database instead of saying what is wrong."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or "\x00" in value
            for key, values in request.GET.lists()
            for value in values
        ):
            message = "The URL contains a NUL character."
            if request.path.startswith("/api/"):
                return JsonResponse(error_body("invalid", message), status=400)
            return HttpResponseBadRequest(message)
        return self.get_response(request)
