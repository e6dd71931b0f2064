"""Checks for text that arrives from outside and is later rendered or followed.

Pure functions, no Django: each returns a message for the user, or None when the value is fine,
so every caller (the ingestion pass, debug-mode corrections, a connector's reply, a settings form)
reports the problem under its own field name. Each check is one precompiled regular-expression
search (plus a parse for URLs), because ingestion runs them on every field of every answer.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048

# Characters that reorder how the text around them is displayed (U+202A-U+202E embeddings and
# overrides, U+2066-U+2069 isolates): in an id they make "txt.exe" look like "exe.txt".
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# In a URL: whitespace (`\s` matches what `str.isspace` does), C0 controls and DEL.
_URL_UNSAFE_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


def url_problem(value: str) -> str | None:
    """Why `value` may not be stored as a link that people will follow, or None.

    Only absolute http(s) URLs with a host pass. `javascript:`, `data:` and every other scheme
    would run or embed content when clicked; credentials (`user:pw@host`) would leak, or disguise
    the real host (`https://bank.example@evil.example`). Browsers ignore tabs, newlines and
    leading spaces inside a scheme (`java\\tscript:`), so any whitespace or control character is
    refused outright rather than normalised; so are bidi controls, which make a link display as
    another one."""
    if len(value) > MAX_URL_LENGTH:
        return f"Must be at most {MAX_URL_LENGTH} characters."
    if _URL_UNSAFE_SPACE.search(value):
        return "Must not contain spaces or control characters."
    if bidi := bidi_problem(value):
        return bidi
    if "\\" in value:
        # Browsers read a backslash as "/" in http(s) URLs, Python's parser doesn't: the two
        # would see different hosts in https://evil.example\\.good.example.
        return "Must not contain backslashes (write %5C)."
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return "Must be a valid http(s) URL."
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Must be an http:// or https:// URL with a host."
    if parts.username is not None or parts.password is not None:
        return "Must not contain a user name or password."
    return None


def bidi_problem(value: str) -> str | None:
    """Why `value` can't be an identifier shown to people, or None: bidirectional control
    characters make an id display as something it is not."""
    if _BIDI.search(value):
        return "Must not contain bidirectional control characters (U+202A-U+202E, U+2066-U+2069)."
    return None
