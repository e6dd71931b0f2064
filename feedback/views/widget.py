"""The embeddable widget's script, served at a stable address for other sites' pages, and a
demo page that embeds it the way another site would."""

from __future__ import annotations

import hashlib
from functools import cache

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import condition, require_GET

from feedback import selectors
from feedback.core.access import membership_or_404, viewer_of
from feedback.selectors import widget as widget_selectors
from feedback.services import widget as widget_services

SCRIPT = "js/widget.js"
# The address is stable (pages embed it as it is), so caches keep it briefly and revalidate
# with its ETag, which a new release changes.
SCRIPT_MAX_AGE_SECONDS = 300
DEMO_ANSWERS = 5


@cache
def _script() -> tuple[bytes, str]:
    """The widget's source and its ETag, read once per process."""
    found = finders.find(SCRIPT)
    if isinstance(found, str):
        with open(found, "rb") as file:
            source = file.read()
    else:  # only the collected static files are deployed
        with staticfiles_storage.open(SCRIPT) as file:
            source = file.read()
    return source, '"' + hashlib.sha256(source).hexdigest()[:32] + '"'


def _script_etag(request: HttpRequest) -> str:
    if settings.DEBUG:
        _script.cache_clear()  # development: the file as it is now
    return _script()[1]


@require_GET
@gzip_page
@condition(etag_func=_script_etag)
def widget_script(request: HttpRequest) -> HttpResponse:
    source, _ = _script()
    response = HttpResponse(source, content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={SCRIPT_MAX_AGE_SECONDS}"
    # Pages of any site load it, including ones that isolate themselves (COEP).
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    response["Access-Control-Allow-Origin"] = "*"
    return response


@never_cache
@require_GET
@login_required
def widget_demo(request: HttpRequest, slug: str) -> HttpResponse:
    """A host page as a product embedding the widget would write it: the answers in its own
    markup, one element per answer, and the script tag with the project's demo key and a
    viewer token the "host backend" (this view) asked for, for the signed-in person."""
    membership = membership_or_404(request, slug)
    project = membership.project
    demo_key = widget_selectors.widget_demo_key_get(project=project)
    token, expires_at = widget_services.viewer_token_issue(
        project=project, user_ref=viewer_of(request), site_user=True
    )
    origin = f"{request.scheme}://{request.get_host()}"
    answers = list(selectors.answers_filtered(project=project)[:DEMO_ANSWERS])
    return render(
        request,
        "feedback/widget_demo.html",
        {
            "membership": membership,
            "project": project,
            "answers": answers,
            "widget_key": demo_key[0] if demo_key else None,
            "origin_allowed": demo_key is not None and origin in demo_key[1].origins,
            "origin": origin,
            "token": token,
            "expires_at": expires_at,
        },
    )
