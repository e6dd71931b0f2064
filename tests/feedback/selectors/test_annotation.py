"""Reads of annotation: what end users said about an answer (for debug mode) and where an item
stands in an annotator's way through a queue."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.models import AnnotationQueue, Project
from feedback.selectors import answer_end_user_feedback, queue_position
from feedback.services.annotation import queue_item_next_for, queue_item_skip, queue_item_submit
from tests.factories import AnswerFactory
from tests.feedback.end_user_data import critique, followup, reaction
from tests.feedback.queue_data import annotators, make_queue

pytestmark = pytest.mark.django_db


def test_end_users_feedback_counts_real_feedback_only(project: Project) -> None:
    # given an answer with reactions, critiques and follow-ups from end users, some of them
    # removed, and simulated ones from a judge
    answer = AnswerFactory.create(project=project)
    other = AnswerFactory.create(project=project)
    for kind in ("like", "love", "love", "sad"):
        reaction(answer, kind)
    reaction(answer, "love", source="browser")
    reaction(answer, "sad", removed=True)
    reaction(answer, "love", source="simulated")
    reaction(answer, "angry", source="simulated")
    reaction(other, "angry")
    critique(answer, "Too short.", quote="one drop", category="incomplete")
    critique(answer, "A judge's view.", source="simulated")
    followup(answer, "solved", "It worked.")
    followup(answer, "not_solved")
    followup(answer, "solved", source="simulated")

    # when the feedback is read
    feedback = answer_end_user_feedback(answer=answer)

    # then only end users' active feedback counts, reactions in the project's order
    assert feedback.reactions == [("love", 3), ("like", 1), ("sad", 1)]
    assert [(c.text, c.quote, c.category) for c in feedback.critiques] == [
        ("Too short.", "one drop", "incomplete")
    ]
    assert feedback.critique_count == 1
    assert sorted((f.outcome, f.text) for f in feedback.followups) == [
        ("not_solved", ""),
        ("solved", "It worked."),
    ]
    assert feedback.followup_outcomes == [("Solved", 1), ("Not solved", 1)]
    assert not feedback.empty


@pytest.mark.parametrize("critiques", [3, 60])
def test_end_users_feedback_takes_the_same_queries_for_any_number(
    project: Project, critiques: int, django_assert_num_queries: Any
) -> None:
    # given an answer with a few or many critiques, each with a follow-up
    answer = AnswerFactory.create(project=project)
    for i in range(critiques):
        critique(answer, f"Critique {i}", quote=f"quote {i}")
        followup(answer, "partly", f"Follow-up {i}")

    # when the feedback is read, then: reactions, critiques, their count when the list is
    # cut short, follow-ups, outcomes
    with django_assert_num_queries(5 if critiques > 50 else 4):
        feedback = answer_end_user_feedback(answer=answer)
    assert feedback.critique_count == critiques
    assert len(feedback.critiques) == min(critiques, 50)
    assert feedback.critiques[0].text == f"Critique {critiques - 1}"  # newest first
    assert feedback.followup_outcomes == [("Partly", critiques)]


def test_queue_position_follows_the_annotators_own_items(
    project: Project, django_assert_num_queries: Any
) -> None:
    # given a queue of four items, two annotators working through it
    for i in range(4):
        AnswerFactory.create(project=project, external_id=f"q-{i}")
    queue: AnnotationQueue = make_queue(project, overlap=1)
    ann, bob = annotators(project, "ann", "bob")
    first = queue_item_next_for(queue=queue, annotator=ann)
    assert first is not None
    queue_item_submit(assignment=first)
    theirs = queue_item_next_for(queue=queue, annotator=bob)
    assert theirs is not None
    second = queue_item_next_for(queue=queue, annotator=ann)
    assert second is not None
    queue_item_skip(assignment=second)
    third = queue_item_next_for(queue=queue, annotator=ann)
    assert third is not None

    # when each of ann's items is placed (in a fixed number of queries)
    with django_assert_num_queries(4):
        middle = queue_position(assignment=second)
    positions = [queue_position(assignment=a) for a in (first, third)]

    # then the numbers and neighbours count only ann's items; bob's item is none of them
    def pk(assignment: Any) -> int | None:
        return assignment.pk if assignment else None

    assert (middle.number, middle.total, pk(middle.previous), pk(middle.next)) == (
        2,
        4,
        first.pk,
        third.pk,
    )
    assert middle.previous is not None
    assert middle.previous.item.answer.external_id == first.item.answer.external_id
    assert [(p.number, pk(p.previous), pk(p.next)) for p in positions] == [
        (1, None, second.pk),
        (3, second.pk, None),
    ]
