"""Stored JSON shown to people: indented or on one line, as JSON (never a Python dict), and
escaped by the template like any other text."""

from __future__ import annotations

from django.template import Context, Template

from feedback.templatetags.annotate import compact_json, pretty_json


def test_pretty_json_indents_and_keeps_text_as_it_is() -> None:
    value = {"question": "Où <est> la gare?", "n": [1, None, True]}
    assert pretty_json(value) == (
        '{\n  "question": "Où <est> la gare?",\n  "n": [\n    1,\n    null,\n    true\n  ]\n}'
    )
    assert compact_json(value) == '{"question": "Où <est> la gare?", "n": [1, null, true]}'


def test_the_template_escapes_what_the_filters_return() -> None:
    template = Template("{% load annotate %}<pre>{{ value|pretty_json }}</pre>")
    rendered = template.render(Context({"value": {"t": "</pre><script>x()</script>"}}))
    assert "<script>" not in rendered
    assert "&lt;/pre&gt;&lt;script&gt;" in rendered
