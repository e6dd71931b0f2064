"""C3PO assembly: counts, request validation, sampling and splitting."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from rewardmodels.c3po import (
    COUNT_LIMITS,
    DEFAULT_COUNTS,
    baseline_messages,
    categories_request,
    counts_clean,
    out_of_scope_request,
    prompts_request,
    revise_messages,
    sample_out_of_scope,
    split_of,
)
from rewardmodels.generator import ChatClient, GeneratorSettings
from tests.rewardmodels.chat_server import ChatServer, digest, last_user_message

FEEDBACK = "Don't use emojis when drafting emails to my boss"
DOMAIN = "drafting emails to my boss"
EFFECT = "no emojis"

# -- counts -------------------------------------------------------------------------------------


def test_counts_default_to_the_papers_proportions() -> None:
    assert counts_clean(None) == (DEFAULT_COUNTS, {})
    assert counts_clean({})[0] == {
        "categories": 30,
        "in_scope_per_category": 34,
        "near_scope_per_category": 34,
        "out_of_scope": 1000,
        "test_fraction": 0.1,
    }


def test_counts_keep_given_values_and_fill_the_rest() -> None:
    cleaned, errors = counts_clean({"categories": 5, "test_fraction": 0})

    assert errors == {}
    assert cleaned == {**DEFAULT_COUNTS, "categories": 5, "test_fraction": 0.0}
    assert isinstance(cleaned["test_fraction"], float)


@pytest.mark.parametrize("key", list(COUNT_LIMITS))
def test_counts_accept_both_limits(key: str) -> None:
    low, high = COUNT_LIMITS[key]

    assert counts_clean({key: low}) == ({**DEFAULT_COUNTS, key: low}, {})
    assert counts_clean({key: high}) == ({**DEFAULT_COUNTS, key: high}, {})


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"categories": 0}, "counts.categories", "between 1 and 100"),
        ({"categories": 101}, "counts.categories", "between 1 and 100"),
        ({"in_scope_per_category": 201}, "counts.in_scope_per_category", "between"),
        ({"near_scope_per_category": 0}, "counts.near_scope_per_category", "between"),
        ({"out_of_scope": -1}, "counts.out_of_scope", "between 0 and 5000"),
        ({"out_of_scope": 5001}, "counts.out_of_scope", "between 0 and 5000"),
        ({"test_fraction": 0.6}, "counts.test_fraction", "between"),
        ({"test_fraction": -0.1}, "counts.test_fraction", "between"),
        ({"test_fraction": math.nan}, "counts.test_fraction", "finite"),
        ({"test_fraction": "0.1"}, "counts.test_fraction", "number"),
        ({"test_fraction": True}, "counts.test_fraction", "number"),
        ({"categories": 2.5}, "counts.categories", "integer"),
        ({"categories": 3.0}, "counts.categories", "integer"),
        ({"categories": "3"}, "counts.categories", "integer"),
        ({"categories": True}, "counts.categories", "integer"),
        ({"categories": None}, "counts.categories", "integer"),
        ({"prompts": 3}, "counts.prompts", "Unknown key"),
    ],
)
def test_counts_name_the_invalid_key(raw: dict[str, Any], field: str, message: str) -> None:
    _, errors = counts_clean(raw)

    assert list(errors) == [field]
    assert message in " ".join(errors[field])


def test_counts_report_every_problem_at_once() -> None:
    _, errors = counts_clean({"categories": 0, "out_of_scope": "many", "extra": 1})

    assert set(errors) == {"counts.categories", "counts.out_of_scope", "counts.extra"}


@pytest.mark.parametrize("raw", [[], "30", 30])
def test_counts_must_be_an_object(raw: Any) -> None:
    assert counts_clean(raw) == ({}, {"counts": ["Must be an object."]})


# -- categories -----------------------------------------------------------------------------------


def test_categories_request_asks_for_the_count_within_the_domain() -> None:
    request = categories_request(FEEDBACK, domain=DOMAIN, effect=EFFECT, count=12)

    text = request.messages[-1]["content"]
    assert request.messages[-1]["role"] == "user"
    assert FEEDBACK in text
    assert DOMAIN in text
    assert EFFECT in text
    assert "exactly 12" in text
    assert request.name == "categories"
    assert request.schema["required"] == ["categories"]
    assert request.schema["additionalProperties"] is False


def test_categories_are_trimmed_deduplicated_case_insensitively_and_cut_to_count() -> None:
    request = categories_request(FEEDBACK, domain=DOMAIN, effect=EFFECT, count=3)

    result = request.validate(
        {
            "categories": [
                " Status updates ",
                "status  UPDATES",
                "",
                "   ",
                7,
                "Asking for time off",
                "Project proposals",
                "Meeting requests",
            ]
        }
    )

    assert result == ["Status updates", "Asking for time off", "Project proposals"]


def test_categories_accept_half_the_count_because_models_miscount() -> None:
    request = categories_request(FEEDBACK, domain=DOMAIN, effect=EFFECT, count=10)

    assert request.validate({"categories": [f"c{i}" for i in range(5)]}) == [
        f"c{i}" for i in range(5)
    ]


def test_too_few_distinct_categories_are_rejected() -> None:
    request = categories_request(FEEDBACK, domain=DOMAIN, effect=EFFECT, count=10)

    with pytest.raises(ValueError, match="got 4 distinct"):
        request.validate({"categories": ["a", "b", "c", "d", "A", "B"]})


@pytest.mark.parametrize(
    "parsed", [["a", "b"], {"categories": "a, b"}, {"names": ["a"]}, None], ids=repr
)
def test_categories_of_the_wrong_shape_are_rejected(parsed: Any) -> None:
    request = categories_request(FEEDBACK, domain=DOMAIN, effect=EFFECT, count=2)

    with pytest.raises(ValueError, match='"categories" list'):
        request.validate(parsed)


def test_a_single_category_needs_one() -> None:
    request = categories_request(FEEDBACK, domain=DOMAIN, effect=EFFECT, count=1)

    with pytest.raises(ValueError, match="at least 1"):
        request.validate({"categories": []})


# -- prompts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["in_scope", "near_scope"])
def test_prompts_request_names_the_category_and_count(scope: Any) -> None:
    request = prompts_request(
        FEEDBACK, domain=DOMAIN, category="Status updates", count=7, scope=scope
    )

    text = request.messages[-1]["content"]
    assert FEEDBACK in text
    assert '"Status updates"' in text
    assert "exactly 7" in text
    assert request.name == "prompts"
    assert request.schema["properties"]["prompts"]["type"] == "array"


def test_in_and_near_scope_ask_for_different_things() -> None:
    def text(scope: Any) -> str:
        request = prompts_request(FEEDBACK, domain=DOMAIN, category="c", count=2, scope=scope)
        return request.messages[-1]["content"]

    assert "does NOT apply" in text("near_scope")
    assert "does NOT apply" not in text("in_scope")
    assert "must clearly apply" in text("in_scope")


def test_an_unknown_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="scope"):
        prompts_request(FEEDBACK, domain=DOMAIN, category="c", count=2, scope="far")  # type: ignore[arg-type]


def test_prompts_drop_empty_overlong_and_duplicate_ones() -> None:
    request = prompts_request(FEEDBACK, domain=DOMAIN, category="c", count=4, scope="in_scope")
    too_long = "x" * 2001
    just_fits = "y" * 2000

    result = request.validate(
        {
            "prompts": [
                "Email my boss about the delay.",
                too_long,
                "",
                just_fits,
                "email my boss about the delay.",
            ]
        }
    )

    assert result == ["Email my boss about the delay.", just_fits]


def test_prompts_are_cut_to_count() -> None:
    request = prompts_request(FEEDBACK, domain=DOMAIN, category="c", count=2, scope="near_scope")

    assert request.validate({"prompts": ["a", "b", "c"]}) == ["a", "b"]


def test_too_few_prompts_are_rejected() -> None:
    request = prompts_request(FEEDBACK, domain=DOMAIN, category="c", count=6, scope="in_scope")

    with pytest.raises(ValueError, match="asked for 6 prompts, got 2"):
        request.validate({"prompts": ["a", "b", "A"]})


def test_a_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        prompts_request(FEEDBACK, domain=DOMAIN, category="c", count=0, scope="in_scope")


def test_out_of_scope_request_avoids_the_domain_and_varies_by_batch() -> None:
    first = out_of_scope_request(count=20, avoid=DOMAIN)
    second = out_of_scope_request(count=20, avoid=DOMAIN, batch=1)

    assert DOMAIN in first.messages[-1]["content"]
    assert "exactly 20" in first.messages[-1]["content"]
    assert first.messages != second.messages
    distinct = [f"What is {i}+{i}?" for i in range(10)]
    assert first.validate({"prompts": distinct + distinct}) == distinct
    with pytest.raises(ValueError, match="got 9 distinct"):
        first.validate({"prompts": distinct[:9] * 3})


# -- answer messages ------------------------------------------------------------------------------


def test_baseline_is_the_prompt_alone_without_the_feedback() -> None:
    assert baseline_messages("Write to my boss about Friday.") == [
        {"role": "user", "content": "Write to my boss about Friday."}
    ]


def test_revise_carries_feedback_prompt_and_baseline() -> None:
    messages = revise_messages(FEEDBACK, "Write to my boss.", "Hi boss! 😀 See you.")

    assert messages[0]["role"] == "system"
    assert "Change only" in messages[0]["content"]
    user = messages[-1]
    assert user["role"] == "user"
    assert FEEDBACK in user["content"]
    assert "<prompt>\nWrite to my boss.\n</prompt>" in user["content"]
    assert "<response>\nHi boss! 😀 See you.\n</response>" in user["content"]


# -- the requests against a generator -------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[tuple[ChatServer, ChatClient]]:
    with (
        ChatServer() as server,
        ChatClient(GeneratorSettings(base_url=server.url, model="m", max_attempts=1)) as chat,
    ):
        yield server, chat


def test_requests_work_through_the_client_against_the_fake_server(
    client: tuple[ChatServer, ChatClient],
) -> None:
    server, chat = client
    categories = categories_request(FEEDBACK, domain=DOMAIN, effect=EFFECT, count=4)
    prompts = prompts_request(FEEDBACK, domain=DOMAIN, category="c", count=3, scope="in_scope")

    got_categories = chat.complete_json(
        categories.messages,
        name=categories.name,
        schema=categories.schema,
        validate=categories.validate,
    )
    got_prompts = chat.complete_json(
        prompts.messages, name=prompts.name, schema=prompts.schema, validate=prompts.validate
    )

    assert got_categories == ["Category 1", "Category 2", "Category 3", "Category 4"]
    marker = digest(last_user_message(server.completions[1].body))
    assert got_prompts == [f"Prompt {i} [{marker}]" for i in (1, 2, 3)]
    assert server.completions[0].body["response_format"]["json_schema"]["strict"] is True


# -- out-of-scope sampling ------------------------------------------------------------------------


def test_sample_is_deterministic_and_independent_of_input_order() -> None:
    collected = [f"question {i}" for i in range(50)]

    first = sample_out_of_scope(collected, 10, seed=7)

    assert first == sample_out_of_scope(list(reversed(collected)), 10, seed=7)
    assert first != sample_out_of_scope(collected, 10, seed=8)
    assert len(first) == 10
    assert set(first) <= set(collected)


def test_sample_is_distinct_non_empty_and_excludes() -> None:
    collected = ["a", " a ", "A", "", "   ", "b", "c", "d"]

    sample = sample_out_of_scope(collected, 10, seed=1, exclude=["C"])

    assert sorted(sample) == ["a", "b", "d"]


def test_sample_keeps_most_picks_when_the_collection_grows() -> None:
    collected = [f"question {i}" for i in range(200)]
    before = sample_out_of_scope(collected, 20, seed=3)

    after = sample_out_of_scope([*collected, "question new"], 20, seed=3)

    assert len(set(before) & set(after)) >= 19


def test_sample_of_zero_is_empty_and_negative_is_refused() -> None:
    assert sample_out_of_scope(["a"], 0, seed=1) == []
    with pytest.raises(ValueError, match="negative"):
        sample_out_of_scope(["a"], -1, seed=1)


# -- splitting ------------------------------------------------------------------------------------


def test_split_is_deterministic_per_key_and_seed() -> None:
    keys = [f"row-{i}" for i in range(200)]

    first = [split_of(k, test_fraction=0.3, seed="build-1") for k in keys]

    assert first == [split_of(k, test_fraction=0.3, seed="build-1") for k in keys]
    assert first != [split_of(k, test_fraction=0.3, seed="build-2") for k in keys]


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_split_puts_roughly_the_fraction_in_test(fraction: float) -> None:
    tests = sum(
        split_of(f"prompt-{i}", test_fraction=fraction, seed="s") == "test" for i in range(1000)
    )

    # Binomial(1000, 0.5) has a standard deviation under 16; 4 of them is a safe margin.
    assert abs(tests - 1000 * fraction) < 64


def test_split_extremes() -> None:
    keys = [str(i) for i in range(100)]

    assert {split_of(k, test_fraction=0.0, seed="s") for k in keys} == {"train"}
    assert {split_of(k, test_fraction=1.0, seed="s") for k in keys} == {"test"}
    with pytest.raises(ValueError, match="test_fraction"):
        split_of("k", test_fraction=1.5, seed="s")
