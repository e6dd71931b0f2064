"""What the htmx pages of both apps share: answering an htmx request with only the partial it
swaps, and the whole page otherwise (so every page also works without JavaScript); and the
answer to a form in front of one service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from feedback.core.forms import ServiceForm

FormT = TypeVar("FormT", bound=ServiceForm)
T = TypeVar("T")


def is_htmx(request: HttpRequest) -> bool:
    """Did htmx send this request (django-htmx's middleware sets `request.htmx`)?"""
    return bool(getattr(request, "htmx", False))


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page `template`, or only its named `partial` when htmx asks (a poll, a swap)."""
    if partial and is_htmx(request):
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)


def submit_form(
    request: HttpRequest,
    form: FormT,
    call: Callable[[dict[str, Any]], T],
    *,
    template: str,
    context: Callable[[FormT], dict[str, Any]],
    done: Callable[[T], HttpResponse],
    message: str | Callable[[T], str] = "",
    partial: str | None = None,
) -> HttpResponse:
    """A posted form in front of one service: `call(cleaned_data)` (ServiceForm.submit), then
    the success `message` and `done(made)`, mostly a redirect so a reload does not post again.
    Refused, by the form or the service: the page again, status 400, with `context(form)`
    showing the form with its errors (only its `partial` for htmx)."""
    made = form.submit(call)
    if made is None:
        return render_page(request, template, context(form), partial=partial, status=400)
    if message:
        messages.success(request, message if isinstance(message, str) else message(made))
    return done(made)
