"""Debug-mode corrections: validated per action, stored all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.core.errors import ValidationFailed
from feedback.models import Answer, Intervention, Project
from feedback.services.annotation import interventions_save
from tests.factories import AnswerFactory, StageFactory, UserFactory


@pytest.fixture
def traced(project: Project) -> Answer:
    answer = AnswerFactory.create(project=project, external_id="a-1", response="Oil it weekly.")
    StageFactory.create(
        answer=answer, position=0, kind="decomposition", output={"subqueries": ["oil", "how often"]}
    )
    StageFactory.create(
        answer=answer,
        position=1,
        kind="retrieval",
        output={
            "documents": [
                {"id": "d1", "title": "Chains", "text": "Oil sparingly."},
                {"id": "d 2", "title": "Brakes", "text": "Pads."},
            ]
        },
    )
    StageFactory.create(
        answer=answer, position=2, kind="generation", output={"text": "Oil it weekly."}
    )
    return answer


@pytest.mark.parametrize(
    ("change", "before", "after"),
    [
        (
            {"stage": 0, "action": "subquery_add", "after": {"text": "which oil"}},
            {},
            {"text": "which oil"},
        ),
        (
            {"stage": 0, "action": "subquery_remove", "index": 1},
            {"index": 1, "text": "how often"},
            {},
        ),
        (
            {"stage": 0, "action": "subquery_edit", "index": 0, "after": {"text": "chain oil"}},
            {"index": 0, "text": "oil"},
            {"text": "chain oil"},
        ),
        (
            {"stage": 0, "action": "subquery_reorder", "after": {"order": ["how often", "oil"]}},
            {"order": ["oil", "how often"]},
            {"order": ["how often", "oil"]},
        ),
        (
            {
                "stage": 1,
                "action": "doc_relevance",
                "after": {"doc_id": "d 2", "relevance": "irrelevant"},
            },
            {},
            {"doc_id": "d 2", "relevance": "irrelevant"},
        ),
        (
            {"stage": 1, "action": "doc_rerank", "after": {"order": ["d 2", "d1"]}},
            {"order": ["d1", "d 2"]},
            {"order": ["d 2", "d1"]},
        ),
        (
            {"stage": 1, "action": "doc_add", "after": {"title": "Oils", "text": "Use chain oil."}},
            {},
            {"title": "Oils", "text": "Use chain oil.", "url": ""},
        ),
        (
            {"stage": 2, "action": "answer_edit", "after": {"text": "Oil it every 300 km."}},
            {"text": "Oil it weekly."},
            {"text": "Oil it every 300 km."},
        ),
        (
            {
                "stage": 2,
                "action": "claim_flag",
                "after": {"span": "weekly", "reason": "Not in the docs."},
            },
            {},
            {"span": "weekly", "reason": "Not in the docs."},
        ),
    ],
)
def test_each_action_is_stored_typed(
    traced: Answer, change: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> None:
    annotator = UserFactory.create()

    interventions_save(answer=traced, annotator=annotator, changes=[change], rationale="why")

    stored = Intervention.objects.get()
    assert (stored.action, stored.before, stored.after) == (change["action"], before, after)
    assert stored.stage is not None
    assert stored.stage.position == change["stage"]
    assert (stored.annotator, stored.rationale) == (annotator, "why")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stage": 0, "action": "subquery_add", "after": {"text": "  "}}, "after.text"),
        ({"stage": 0, "action": "subquery_remove", "index": 5}, "index"),
        ({"stage": 0, "action": "subquery_reorder", "after": {"order": ["oil"]}}, "after.order"),
        (
            {
                "stage": 1,
                "action": "doc_relevance",
                "after": {"doc_id": "d9", "relevance": "relevant"},
            },
            "after.doc_id",
        ),
        (
            {"stage": 1, "action": "doc_relevance", "after": {"doc_id": "d1", "relevance": "meh"}},
            "after.relevance",
        ),
        (
            {"stage": 1, "action": "doc_add", "after": {"title": "Chains", "text": "dup"}},
            "after.title",
        ),
        *(
            (
                {"stage": 1, "action": "doc_add", "after": {"title": "X", "text": "Y", "url": url}},
                "after.url",
            )
            for url in (
                "javascript:x",
                "https://user:secret@docs.example.org/",
                "https://",
                "https://docs.example.org/a b",
                "https://docs.example.org:99999/",
                "https://docs.example.org/\u202etxt.exe",
                ["https://docs.example.org/"],
            )
        ),
        ({"stage": 2, "action": "answer_edit", "after": {"text": "Oil it weekly."}}, "after.text"),
        (
            {"stage": 2, "action": "claim_flag", "after": {"span": "never said", "reason": "x"}},
            "after.span",
        ),
        ({"stage": 0, "action": "answer_edit", "after": {"text": "x"}}, "stage"),
        ({"stage": 9, "action": "answer_edit", "after": {"text": "x"}}, "stage"),
        ({"stage": 2, "action": "teleport"}, "action"),
    ],
)
def test_a_bad_change_names_its_field_and_nothing_is_saved(
    traced: Answer, change: dict[str, Any], field: str
) -> None:
    good = {"stage": 2, "action": "answer_edit", "after": {"text": "Oil it every 300 km."}}

    with pytest.raises(ValidationFailed) as raised:
        interventions_save(answer=traced, annotator=UserFactory.create(), changes=[good, change])

    assert f"changes[1].{field}" in raised.value.errors
    assert not Intervention.objects.exists()


def test_an_answer_without_a_trace_can_still_be_corrected(project: Project) -> None:
    answer = AnswerFactory.create(project=project, response="Wrong.")

    interventions_save(
        answer=answer,
        annotator=UserFactory.create(),
        changes=[{"action": "answer_edit", "after": {"text": "Right."}}],
    )

    assert Intervention.objects.get().before == {"text": "Wrong."}


def test_a_replayed_change_is_stored_once(traced: Answer) -> None:
    change = {"event_id": "e1", "stage": 2, "action": "answer_edit", "after": {"text": "Better."}}

    interventions_save(answer=traced, annotator=UserFactory.create(), changes=[change])
    interventions_save(answer=traced, annotator=UserFactory.create(), changes=[change])

    assert Intervention.objects.count() == 1
