"""What the htmx pages of both apps share: answering an htmx request with only the partial it
swaps, and the whole page otherwise (so every page also works without JavaScript)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def is_htmx(request: HttpRequest) -> bool:
    """Did htmx send this request (django-htmx's middleware sets `request.htmx`)?"""
    return bool(getattr(request, "htmx", False))


def render_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    partial: str,
    status: int = 200,
) -> HttpResponse:
    """The page `template`, or only its named `partial` when htmx asks (a poll, a swap)."""
    if is_htmx(request):
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)
