"""C3PO dataset assembly: prompt texts, JSON schemas, validation, counts and splitting.

C3PO (from "RLVF: Learning from Verbal Feedback without Overgeneralization", 2024) turns one
sentence of feedback into a small dataset that teaches a model to apply the feedback where it
belongs and nowhere else:

1. categories of requests within the feedback's domain;
2. per category, **in-scope** prompts (the feedback applies) and **near-scope** prompts (a similar
   topic, but the feedback does not apply);
3. **out-of-scope** prompts, unrelated to the feedback: sampled from the project's collected prompts
   (as the paper samples a general prompt collection), generated only when there are too few;
4. a **baseline** answer for every prompt from the model itself, without the feedback, and for
   in-scope prompts a **revision** of that baseline which follows the feedback.

Pure computation: no Django, no ORM, no network, so it is tested on plain data. The service loads
and stores rows and hands the `JsonRequest`s and message lists built here to
`rewardmodels.generator.ChatClient`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

# The scopes a generator writes prompts for by category (out-of-scope prompts are sampled first).
PromptScope = Literal["in_scope", "near_scope"]
Split = Literal["train", "test"]

DEFAULT_COUNTS: dict[str, int | float] = {
    "categories": 30,
    "in_scope_per_category": 34,
    "near_scope_per_category": 34,
    "out_of_scope": 1000,
    "test_fraction": 0.1,
}
"""The paper's proportions: a few dozen categories, about a thousand prompts of each kind, a 10%
test split."""

COUNT_LIMITS: dict[str, tuple[int | float, int | float]] = {
    "categories": (1, 100),
    "in_scope_per_category": (1, 200),
    "near_scope_per_category": (1, 200),
    "out_of_scope": (0, 5000),
    "test_fraction": (0.0, 0.5),
}
"""Inclusive bounds. The upper ones keep a single build's cost (calls to the generator) within
reason; a test fraction above one half would leave less to train on than to test with."""

MAX_PROMPT_CHARS = 2000
"""Longer generated prompts are dropped: a rambling prompt is a sign the model lost the thread."""

MAX_CATEGORY_CHARS = 120


def counts_clean(raw: object) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """`raw` (None or a JSON object, possibly partial) with defaults filled in, and the errors:
    "counts.<key>" (or "counts") to messages, in the shape the API's error responses use,
    naming every problem at once so a form or an API client can fix them all in one go."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return {}, {"counts": ["Must be an object."]}
    errors: dict[str, list[str]] = {}
    for key in raw:
        if key not in DEFAULT_COUNTS:
            errors[f"counts.{key}"] = [
                f"Unknown key; expected one of: {', '.join(DEFAULT_COUNTS)}."
            ]
    cleaned: dict[str, Any] = {}
    for key, default in DEFAULT_COUNTS.items():
        value = raw.get(key, default)
        low, high = COUNT_LIMITS[key]
        if isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                errors[f"counts.{key}"] = ["Must be an integer."]
                continue
        elif isinstance(value, bool) or not isinstance(value, int | float):
            errors[f"counts.{key}"] = ["Must be a number."]
            continue
        elif not math.isfinite(value):
            errors[f"counts.{key}"] = ["Must be a finite number."]
            continue
        else:
            value = float(value)
        if not low <= value <= high:
            errors[f"counts.{key}"] = [f"Must be between {low} and {high}."]
            continue
        cleaned[key] = value
    return cleaned, errors


@dataclass(frozen=True)
class JsonRequest(Generic[T]):
    """Everything `ChatClient.complete_json` needs for one structured-output call."""

    messages: list[dict[str, str]]
    name: str
    schema: dict[str, Any]
    validate: Callable[[Any], T]


_SYSTEM_DATASET = (
    "You help build a dataset that teaches an AI assistant to follow a user's feedback exactly "
    "where it applies and nowhere else. Follow the instructions precisely and answer only with "
    "JSON that matches the requested schema."
)


def _string_list_request(
    user: str, *, key: str, count: int, max_chars: int
) -> JsonRequest[list[str]]:
    """A dataset call answering `{key: [str, ...]}`: `user`'s instructions, then the answer's
    shape. Its schema is kept to the keywords every structured-output backend accepts in strict
    mode (no minItems/maxItems): the requested count is in the prompt and the validator
    tolerates models that miscount."""
    _check_count(count)
    user += f'\n\nReturn exactly {count} {key} as {{"{key}": ["...", ...]}}.'
    return JsonRequest(
        messages=[
            {"role": "system", "content": _SYSTEM_DATASET},
            {"role": "user", "content": user},
        ],
        name=key,
        schema={
            "type": "object",
            "properties": {key: {"type": "array", "items": {"type": "string"}}},
            "required": [key],
            "additionalProperties": False,
        },
        validate=lambda parsed: _validate_strings(
            parsed, key=key, count=count, max_chars=max_chars
        ),
    )


def _feedback_block(feedback: str, domain: str) -> str:
    return (
        f'The user\'s feedback, verbatim: "{feedback.strip()}"\n'
        f"Where it applies (its domain): {domain.strip()}\n"
    )


def categories_request(
    feedback: str, *, domain: str, effect: str, count: int
) -> JsonRequest[list[str]]:
    """Ask for `count` distinct category names of requests within the feedback's domain, the
    first stage: prompts are then generated per category, which spreads them over the domain
    instead of letting the generator write a thousand variations of one request."""
    user = (
        _feedback_block(feedback, domain)
        + f"What it changes in the assistant's answers: {effect.strip()}\n\n"
        f"List categories of requests that a user could send an AI assistant and that fall within "
        f"this domain, so the feedback applies to them. Each category is a short name of two to "
        f"six words, broad enough that many different requests fit it, and clearly different from "
        f"the other categories. Together they should cover the domain widely. Do not restate the "
        f"feedback and do not number the names."
    )
    return _string_list_request(user, key="categories", count=count, max_chars=MAX_CATEGORY_CHARS)


def prompts_request(
    feedback: str, *, domain: str, category: str, count: int, scope: PromptScope
) -> JsonRequest[list[str]]:
    """Ask for `count` prompts in `category`: in-scope ones where the feedback clearly applies
    (they become preference pairs), or near-scope ones on similar topics where it does not (they
    teach the model not to overgeneralise the feedback)."""
    if scope == "in_scope":
        task = (
            f'Write prompts that a user might send an AI assistant, in the category "{category}". '
            f"The feedback must clearly apply to every prompt: an answer that follows the feedback "
            f"must visibly differ from one that ignores it."
        )
    elif scope == "near_scope":
        task = (
            f"Write prompts that a user might send an AI assistant on topics similar to the "
            f'category "{category}", but that fall outside the domain above, so the feedback '
            f"does NOT apply to them: a good answer to each would be the same whether or not the "
            f"assistant knew the feedback. Keep them close to the category, the kind of request "
            f"someone could mistake for one the feedback covers."
        )
    else:
        raise ValueError(f"unknown scope {scope!r}")
    user = (
        _feedback_block(feedback, domain) + "\n" + task + "\n\n"
        "Write each prompt exactly as the user would type it: self-contained, with any details "
        "the assistant needs, and without mentioning the feedback. Vary the length, wording, tone "
        "and the specific situation from one prompt to the next."
    )
    return _string_list_request(user, key="prompts", count=count, max_chars=MAX_PROMPT_CHARS)


_GENERAL_THEMES = (
    "everyday questions and practical advice",
    "programming and data",
    "mathematics and logic puzzles",
    "science, nature and history",
    "creative writing and wordplay",
    "health, food and travel",
    "business, money and careers",
    "language learning, translation and grammar",
)


def out_of_scope_request(*, count: int, avoid: str, batch: int = 0) -> JsonRequest[list[str]]:
    """Ask for `count` general-purpose prompts unrelated to `avoid` (the feedback's domain). Used
    only when the project has collected too few prompts of its own. Repeated calls with the same
    text tend to return the same prompts, so `batch` (the call's number) rotates a theme hint to
    keep successive batches apart."""
    theme = _GENERAL_THEMES[batch % len(_GENERAL_THEMES)]
    user = (
        "Write varied, general-purpose prompts that people send an AI assistant: questions, "
        "tasks and requests of every kind, favouring this area this time: "
        f"{theme}.\n"
        f"None of them may relate in any way to: {avoid.strip()}\n\n"
        "Write each prompt exactly as the user would type it, self-contained, and make them differ "
        "in length, wording and subject."
    )
    return _string_list_request(user, key="prompts", count=count, max_chars=MAX_PROMPT_CHARS)


def baseline_messages(prompt: str) -> list[dict[str, str]]:
    """Just the user's prompt: the baseline is the model's own behaviour without the feedback,
    which is what the SFT term preserves on near- and out-of-scope prompts and what DPO moves
    away from on in-scope ones."""
    return [{"role": "user", "content": prompt}]


_SYSTEM_REVISE = (
    "You revise an AI assistant's response so that it follows a piece of user feedback. "
    "Change only what the feedback requires and keep everything else as it is: the content, "
    "facts, structure, tone, language and length. Reply with the revised response alone, "
    "with no preamble, explanation or quotation marks around it."
)


def revise_messages(feedback: str, prompt: str, baseline: str) -> list[dict[str, str]]:
    """Ask for the baseline rewritten to follow the feedback, changing nothing else, so the
    preference pair (revised over baseline) differs only in what the feedback is about."""
    user = (
        f"Feedback to apply: {feedback.strip()}\n\n"
        f"The user's prompt:\n<prompt>\n{prompt}\n</prompt>\n\n"
        f"The assistant's original response:\n<response>\n{baseline}\n</response>\n\n"
        "Write the revised response."
    )
    return [{"role": "system", "content": _SYSTEM_REVISE}, {"role": "user", "content": user}]


def sample_out_of_scope(
    collected: Sequence[str], count: int, *, seed: int, exclude: Collection[str] = ()
) -> list[str]:
    """Up to `count` distinct, non-empty prompts from `collected`, none of them in `exclude`
    (compared after trimming, case-insensitively). Deterministic: each candidate is ranked by a
    hash of (seed, text) and the lowest ranks win, so the result doesn't depend on the order the
    database returns rows in, and a collection that grows between runs keeps most of its picks.
    Returns fewer than `count` when there aren't enough; the caller generates the rest."""
    if count < 0:
        raise ValueError("count must not be negative")
    excluded = {_key(text) for text in exclude}
    candidates: dict[str, str] = {}
    for text in collected:
        if not isinstance(text, str):
            continue
        trimmed = text.strip()
        key = _key(trimmed)
        if not trimmed or key in excluded or key in candidates:
            continue
        candidates[key] = trimmed
    ranked = sorted(candidates, key=lambda key: (_digest(f"{seed}\0{key}"), key))
    return [candidates[key] for key in ranked[:count]]


def split_of(key: str, *, test_fraction: float, seed: str) -> Split:
    """ "train" or "test" for the row identified by `key`, decided by sha256 of (seed, key), so the
    same row lands in the same split on every run and after a resume, without storing a list."""
    if not 0 <= test_fraction <= 1:
        raise ValueError("test_fraction must be between 0 and 1")
    position = int.from_bytes(_digest(f"{seed}\0{key}")[:8], "big") / 2**64
    return "test" if position < test_fraction else "train"


# -- helpers -----------------------------------------------------------------------------------


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError("count must be at least 1")


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


_SPACE = re.compile(r"\s+")


def _key(text: str) -> str:
    """What makes two generated strings "the same": case and spacing don't count."""
    return _SPACE.sub(" ", text).strip().casefold()


def _distinct(values: Iterable[Any], *, max_chars: int) -> list[str]:
    seen: set[str] = set()
    kept: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        text = value.strip()
        key = _key(text)
        if not text or len(text) > max_chars or key in seen:
            continue
        seen.add(key)
        kept.append(text)
    return kept


def _validate_strings(parsed: Any, *, key: str, count: int, max_chars: int) -> list[str]:
    """The distinct usable strings under `key`, trimmed to `count`. Models miscount and repeat
    themselves, so half the requested number is accepted; fewer is a ValueError (the client
    resamples) whose text says what came back."""
    if not isinstance(parsed, dict) or not isinstance(parsed.get(key), list):
        raise ValueError(f'expected an object with a "{key}" list')
    kept = _distinct(parsed[key], max_chars=max_chars)
    needed = max(1, count // 2)
    if len(kept) < needed:
        raise ValueError(
            f"asked for {count} {key}, got {len(kept)} distinct usable ones "
            f"(at least {needed} are needed)"
        )
    return kept[:count]
