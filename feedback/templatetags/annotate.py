"""Showing stored JSON (a stage's input and output, a correction) to people: indented and
readable, never as a Python dict. The result is plain text, escaped like any other value."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """`value` as indented JSON (keys in their stored order, non-ASCII text as it is)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def compact_json(value: Any) -> str:
    """`value` as JSON on one line, for a short summary."""
    return json.dumps(value, ensure_ascii=False, default=str)
