"""The checks every entry path runs on URLs it stores and on identifiers it shows."""

from __future__ import annotations

import pytest

from feedback.core.validators import MAX_URL_LENGTH, bidi_problem, url_problem

# The nine characters that reorder how the text around them is displayed.
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


@pytest.mark.parametrize(
    "url",
    [
        "https://docs.example.org/cooking-rice",
        "http://docs.example.org",
        "HTTPS://DOCS.EXAMPLE.ORG/Rice?q=1&lang=en#steps",
        "https://docs.example.org:8443/a/b",
        "https://[2001:db8::1]/doc",
        "https://xn--bcher-kva.example/",
        "https://bücher.example/seite",  # an IDN host is a host
        "https://docs.example.org/a%20b",
    ],
)
def test_followable_urls_pass(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(1)", "with a host"),
        ("JaVaScRiPt:alert(1)", "with a host"),
        ("java\tscript:alert(1)", "spaces or control"),
        ("java\nscript:alert(1)", "spaces or control"),
        ("\x01javascript:alert(1)", "spaces or control"),
        ("data:text/html,<script>alert(1)</script>", "with a host"),
        ("vbscript:msgbox(1)", "with a host"),
        ("file:///etc/passwd", "with a host"),
        ("ftp://files.example.org/doc", "with a host"),
        ("//docs.example.org/no-scheme", "with a host"),
        ("/relative/path", "with a host"),
        ("https://user:secret@docs.example.org/", "user name or password"),
        ("https://user@docs.example.org/", "user name or password"),
        ("https://:secret@docs.example.org/", "user name or password"),
        # A look-alike host in front of the real one.
        ("https://bank.example@evil.example/", "user name or password"),
        ("https://", "with a host"),
        ("https:///path-only", "with a host"),
        ("https://docs.example.org:99999/", "valid"),
        ("https://docs.example.org:port/", "valid"),
        ("https://[::1/", "valid"),
        (" https://docs.example.org/", "spaces or control"),
        ("https://docs.example.org/a b", "spaces or control"),
        ("https://docs.example.org/\u00a0", "spaces or control"),
        ("https://docs.example.org/\u202egnp.exe", "bidirectional"),
        # Browsers take "\\" for "/": the host they see is evil.example.
        ("https://evil.example\\.docs.example.org/", "backslashes"),
        ("https:\\\\evil.example/", "backslashes"),
        ("https://docs.example.org/" + "a" * MAX_URL_LENGTH, f"at most {MAX_URL_LENGTH}"),
    ],
)
def test_urls_that_would_run_leak_or_disguise_are_refused(url: str, why: str) -> None:
    problem = url_problem(url)

    assert problem is not None
    assert why in problem


def test_a_url_of_exactly_the_maximum_length_passes() -> None:
    url = "https://docs.example.org/"
    url += "a" * (MAX_URL_LENGTH - len(url))

    assert url_problem(url) is None


@pytest.mark.parametrize("char", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
def test_every_bidi_control_is_refused_anywhere_in_an_identifier(char: str) -> None:
    for value in (f"{char}abc", f"invoice{char}txt.exe", f"abc{char}"):
        problem = bidi_problem(value)
        assert problem is not None
        assert "bidirectional control characters" in problem


def test_the_nine_characters_are_the_documented_set() -> None:
    neighbours = "\u2029\u202f\u2065\u206a"  # just outside both ranges

    assert all(bidi_problem(c) for c in BIDI)
    assert not any(bidi_problem(c) for c in neighbours)


@pytest.mark.parametrize(
    "value",
    [
        "a-1",
        "chat-42-turn-3",
        "مرحبا",  # right-to-left text itself is fine
        "user\u200d\u200c",  # joiners are not direction controls
        "\u200e\u200f",  # nor are the implicit marks
        "",
    ],
)
def test_ordinary_identifiers_pass(value: str) -> None:
    assert bidi_problem(value) is None
