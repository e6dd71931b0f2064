"""What a debug form's submission becomes (changes), and what saved changes make of a stage."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.debug_mode import (
    AnswerState,
    Correction,
    DocumentRow,
    SubqueryRow,
    answer_changes,
    corrected_documents,
    corrected_output,
    corrected_subqueries,
    document_changes,
    subquery_changes,
    word_diff,
)
from feedback.interventions import StageView, ValidChange, validate_change

SYSTEM = ["rice water ratio", "rice cooking time", "rinse rice"]
DOCUMENTS = [
    {"id": "d1", "title": "Rice", "text": "Rinse it.", "url": "https://x.test/1", "score": 0.9},
    {"id": "d2", "title": "Eggs", "text": "Boil them.", "url": "", "score": 0.4},
    {"id": "d3", "title": "Pasta", "text": "Salt the water.", "score": 0.1},
]


def _saved(
    kind: str, output: dict[str, Any], changes: list[dict[str, Any]], saved_at: int = 1
) -> list[Correction]:
    """The changes as the service would store them: validated, then read back."""
    corrections = []
    for change in changes:
        checked = validate_change(change, stage=StageView(kind, output), response="")
        assert isinstance(checked, ValidChange), checked
        corrections.append(Correction(checked.action, checked.before, checked.after, saved_at))
    return corrections


def _form(prefix: str, rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    return {
        f"{prefix}subquery": [text for _, text in rows],
        f"{prefix}origin": [origin for origin, _ in rows],
    }


@pytest.mark.parametrize(
    "rows",
    [
        # reorder only
        [("2", "rinse rice"), ("0", "rice water ratio"), ("1", "rice cooking time")],
        # edit one, remove one
        [("0", "how much water for rice"), ("2", "rinse rice")],
        # add one in the middle, and move another
        [("1", "rice cooking time"), ("new", "which pot"), ("0", "rice water ratio")],
        # everything at once
        [("new", "brown or white rice"), ("2", "rinse the rice first"), ("new", "which pot")],
    ],
)
def test_a_submitted_sub_query_list_round_trips_through_its_changes(
    rows: list[tuple[str, str]],
) -> None:
    # Given the system's sub-queries shown unchanged, when the annotator submits a new list
    output = {"subqueries": SYSTEM}
    current = [SubqueryRow(i, q) for i, q in enumerate(SYSTEM)]
    changes = subquery_changes(0, SYSTEM, current, _form("s0-", rows), "s0-")

    # then the validated changes, applied, give exactly the submitted list back
    corrected = corrected_subqueries(SYSTEM, _saved("decomposition", output, changes))
    assert [r.text for r in corrected] == [text for _, text in rows]
    assert [r.origin for r in corrected] == [None if o == "new" else int(o) for o, _ in rows]


def test_resubmitting_what_the_page_showed_changes_nothing() -> None:
    # Given a saved correction, the page shows the corrected list
    output = {"subqueries": SYSTEM}
    rows = [("1", "rice cooking time"), ("new", "which pot")]
    saved = _saved("decomposition", output, subquery_changes(0, SYSTEM, [], _form("", rows), ""))
    shown = corrected_subqueries(SYSTEM, saved)

    # When the same list is submitted again, there is nothing new to store
    assert subquery_changes(0, SYSTEM, shown, _form("", rows), "") == []
    # and the untouched system list produces no correction either
    untouched = [(str(i), q) for i, q in enumerate(SYSTEM)]
    assert subquery_changes(0, SYSTEM, [SubqueryRow(i, q) for i, q in enumerate(SYSTEM)],
                            _form("", untouched), "") == []  # fmt: skip


def test_the_newest_save_is_the_corrected_sub_query_list() -> None:
    output = {"subqueries": SYSTEM}
    first = _saved("decomposition", output, [{"action": "subquery_remove", "index": 0}], saved_at=1)
    second = _saved(
        "decomposition",
        output,
        [{"action": "subquery_edit", "index": 2, "after": {"text": "wash rice"}}],
        saved_at=2,
    )
    # The second save is a full snapshot: the first save's removal no longer applies.
    assert [r.text for r in corrected_subqueries(SYSTEM, first + second)] == [
        "rice water ratio",
        "rice cooking time",
        "wash rice",
    ]


def test_document_corrections_newest_judgment_order_and_additions() -> None:
    output = {"documents": DOCUMENTS}
    saved = _saved(
        "retrieval",
        output,
        [
            {"action": "doc_relevance", "after": {"doc_id": "d2", "relevance": "relevant"}},
            {"action": "doc_rerank", "after": {"order": ["d3", "d1", "d2"]}},
            {"action": "doc_add", "after": {"title": "Rice cookers", "text": "Press start."}},
            {"action": "doc_relevance", "after": {"doc_id": "d2", "relevance": "irrelevant"}},
        ],
    )
    rows = corrected_documents(DOCUMENTS, saved)
    assert [(r.id, r.relevance, r.added) for r in rows] == [
        ("d3", None, False),
        ("d1", None, False),
        ("d2", "irrelevant", False),
        ("added-1", None, True),
    ]
    # A re-run sees the corrected ranking without the irrelevant document.
    after = corrected_output("retrieval", output, saved)
    assert [d["id"] for d in after["documents"]] == ["d3", "d1", "added-1"]
    assert after["documents"][2] == {
        "id": "added-1",
        "title": "Rice cookers",
        "text": "Press start.",
        "url": "",
    }


def test_document_form_emits_only_what_differs_and_refuses_a_duplicate_title() -> None:
    current = [
        DocumentRow("d1", "Rice", "Rinse it.", relevance="relevant"),
        DocumentRow("d2", "Eggs", "Boil them."),
        DocumentRow("added-1", "Rice cookers", "Press start.", added=True),
    ]
    form = {
        "s1-rel-d1": ["relevant"],  # unchanged
        "s1-rel-d2": ["partial"],
        "s1-doc-order": ["d1", "d2"],  # unchanged order
        "s1-add-title": ["rice cookers"],
        "s1-add-text": ["again"],
        "s1-add-url": [""],
    }
    changes, errors = document_changes(1, current, form, "s1-")
    assert changes == [
        {"stage": 1, "action": "doc_relevance", "after": {"doc_id": "d2", "relevance": "partial"}}
    ]
    assert list(errors) == ["s1-add-title"]

    form |= {"s1-doc-order": ["d2", "d1"], "s1-add-title": ["Risotto"]}
    changes, errors = document_changes(1, current, form, "s1-")
    assert errors == {}
    assert [c["action"] for c in changes] == ["doc_relevance", "doc_rerank", "doc_add"]


def test_answer_form_edit_and_new_flags_only() -> None:
    current = AnswerState("Rice needs water.", [{"span": "water", "reason": "vague"}])
    form = {
        "answer": ["Rice needs 1.5 parts water.\r\n"],
        "flag-span": ["water", "Rice"],
        "flag-reason": ["vague", "obvious"],
    }
    changes = answer_changes(None, current, form, "")
    assert changes == [
        {
            "stage": None,
            "action": "answer_edit",
            "after": {"text": "Rice needs 1.5 parts water.\n"},
        },
        {"stage": None, "action": "claim_flag", "after": {"span": "Rice", "reason": "obvious"}},
    ]
    unchanged = {"answer": ["Rice needs water."], "flag-span": [""], "flag-reason": [""]}
    assert answer_changes(None, current, unchanged, "") == []


def test_word_diff_marks_deleted_and_inserted_words() -> None:
    pieces = word_diff("Boil the rice for ten minutes.", "Boil the rice for fifteen minutes.")
    assert pieces == [
        ("equal", "Boil the rice for "),
        ("delete", "ten "),
        ("insert", "fifteen "),
        ("equal", "minutes."),
    ]
    assert "".join(t for op, t in pieces if op != "delete") == "Boil the rice for fifteen minutes."
