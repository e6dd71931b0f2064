"""Annotation queues: creating one from a filter, handing items out (also to annotators pulling
at the same moment, against real PostgreSQL), progress and agreement."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from feedback.core.errors import ValidationFailed
from feedback.models import (
    AnnotationQueue,
    Answer,
    AssignmentStatus,
    Intervention,
    Project,
    QueueAssignment,
    QueueItem,
)
from feedback.selectors import queue_agreement, queue_progress, queues_with_progress
from feedback.services.annotation import (
    AssignmentExpired,
    QueueFilter,
    queue_item_following,
    queue_item_next_for,
    queue_item_skip,
    queue_item_submit,
)
from tests.factories import AnswerFactory, StageFactory
from tests.feedback.queue_data import annotators, answers_of, at, finish, make_queue, react

REL, PART, IRR = "relevant", "partial", "irrelevant"


# --- helpers ------------------------------------------------------------------------------------


def judge(
    answer: Answer, annotator: User, doc_id: str, relevance: str, *, minute: int = 0
) -> Intervention:
    """One document-relevance judgment, as debug mode stores it."""
    n = Intervention.objects.count()
    return Intervention.objects.create(
        project=answer.project,
        answer=answer,
        annotator=annotator,
        action="doc_relevance",
        after={"doc_id": doc_id, "relevance": relevance},
        event_id=f"judgment-{n}",
        created_at=at(20, 12, minute),
    )


def in_threads(target: Callable[[], None], count: int) -> list[BaseException]:
    """Run `target` in `count` threads released together by a barrier; each thread opens its
    own database connection before the barrier (so connecting does not stagger them) and
    closes it at the end. Returns what the threads raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            target()
        except BaseException as error:  # handed to the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


# --- queue_create: which answers ----------------------------------------------------------------


@pytest.fixture
def varied(project: Project, other_project: Project) -> None:
    """Answers differing in model, version, day, reactions and trace; created out of time
    order so that "oldest first" is not merely insertion order."""
    specs: list[tuple[str, str, str, datetime]] = [
        ("late", "m-a", "1", at(11, 0, 0, 0)),  # just after the range 2026-03-05..10
        ("b-v1", "m-b", "1", at(7)),
        ("a-v2", "m-a", "2", at(6)),
        ("last-second", "m-a", "1", at(10, 23, 59, 59)),
        ("first-second", "m-a", "1", at(5, 0, 0, 0)),
        ("early", "m-b", "2", at(4, 23, 59, 59)),  # just before the range
    ]
    for external_id, model, version, created_at in specs:
        AnswerFactory.create(
            project=project,
            external_id=external_id,
            model=model,
            model_version=version,
            created_at=created_at,
        )
    AnswerFactory.create(project=other_project, external_id="rival", model="m-a", created_at=at(6))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            QueueFilter(),
            ["early", "first-second", "a-v2", "b-v1", "last-second", "late"],
        ),
        (QueueFilter(model="m-a"), ["first-second", "a-v2", "last-second", "late"]),
        (QueueFilter(model_version="2"), ["early", "a-v2"]),
        (QueueFilter(model="m-a", model_version="1"), ["first-second", "last-second", "late"]),
        (
            QueueFilter(created_from=date(2026, 3, 5), created_to=date(2026, 3, 10)),
            ["first-second", "a-v2", "b-v1", "last-second"],
        ),
        (QueueFilter(created_from=date(2026, 3, 7)), ["b-v1", "last-second", "late"]),
        (QueueFilter(created_to=date(2026, 3, 5)), ["early", "first-second"]),
        (
            QueueFilter(created_from=date(2026, 3, 6), created_to=date(2026, 3, 6)),
            ["a-v2"],
        ),
        (QueueFilter(model="m-b", created_to=date(2026, 3, 6)), ["early"]),
    ],
)
def test_queue_holds_the_matching_answers_oldest_first(
    project: Project, varied: None, spec: QueueFilter, expected: list[str]
) -> None:
    # given answers of two models and versions over a week, and one in another project

    # when a queue is created from the filter
    queue = make_queue(project, spec=spec)

    # then it holds exactly the matching answers of this project, oldest first (the date range
    # includes its whole last day), and records the filter
    assert answers_of(queue) == expected
    assert queue.filters == spec.as_json()


@pytest.fixture
def reacted(project: Project) -> None:
    """One answer per reaction situation (default reaction sets: love and like positive,
    dislike and angry negative)."""
    cases: dict[str, list[tuple[str, bool]]] = {
        "loved": [("love", False)],
        "liked": [("like", False)],
        "disliked": [("dislike", False)],
        "angered": [("angry", False), ("like", True)],
        "love-removed": [("love", True)],
        "wowed": [("wow", False)],
        "silent": [],
    }
    for minute, (external_id, reactions) in enumerate(cases.items()):
        answer = AnswerFactory.create(
            project=project, external_id=external_id, created_at=at(1, 12, minute)
        )
        for kind, removed in reactions:
            react(answer, kind, removed=removed)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            "any",
            ["loved", "liked", "disliked", "angered", "love-removed", "wowed", "silent"],
        ),
        ("loved", ["loved"]),
        ("positive", ["loved", "liked"]),
        ("negative", ["disliked", "angered"]),
        # a removed reaction is history: the answer has no (active) reaction
        ("none", ["love-removed", "silent"]),
    ],
)
def test_queue_by_reaction_state_counts_only_active_reactions(
    project: Project, reacted: None, state: str, expected: list[str]
) -> None:
    # given answers loved, liked, disliked, angered (with a removed like), with a removed love,
    # with a neutral "wow", and without any reaction

    # when a queue is created for a reaction state
    queue = make_queue(project, spec=QueueFilter(reaction_state=state))

    # then it holds exactly the answers in that state
    assert answers_of(queue) == expected


def test_queue_with_trace_only_holds_answers_that_have_stages(project: Project) -> None:
    # given one answer with a pipeline trace and one without
    traced = AnswerFactory.create(project=project, external_id="traced", created_at=at(2))
    StageFactory.create(answer=traced, position=0)
    AnswerFactory.create(project=project, external_id="plain", created_at=at(1))

    # when queues are created with and without the trace filter
    with_trace = make_queue(project, name="with", spec=QueueFilter(has_trace=True))
    without = make_queue(project, name="without", spec=QueueFilter(has_trace=False))

    # then only the traced answer is in the first; both in the second
    assert answers_of(with_trace) == ["traced"]
    assert answers_of(without) == ["plain", "traced"]


@pytest.mark.parametrize(
    ("name", "overlap", "spec", "field"),
    [
        ("Existing", 1, QueueFilter(), "name"),
        ("  Existing ", 1, QueueFilter(), "name"),
        ("   ", 1, QueueFilter(), "name"),
        ("New", 0, QueueFilter(), "overlap"),
        ("New", 11, QueueFilter(), "overlap"),
        ("New", 1, QueueFilter(reaction_state="meh"), "reaction_state"),
        (
            "New",
            1,
            QueueFilter(created_from=date(2026, 3, 2), created_to=date(2026, 3, 1)),
            "created_to",
        ),
    ],
)
def test_invalid_queue_names_the_field_and_creates_nothing(
    project: Project, name: str, overlap: int, spec: QueueFilter, field: str
) -> None:
    # given a project with answers and a queue named "Existing"
    AnswerFactory.create_batch(3, project=project)
    make_queue(project, name="Existing")
    queues, items = AnnotationQueue.objects.count(), QueueItem.objects.count()

    # when a queue with an invalid setting is created
    with pytest.raises(ValidationFailed) as raised:
        make_queue(project, name=name, overlap=overlap, spec=spec)

    # then the error names exactly that field, and no queue or item was added
    assert list(raised.value.errors) == [field]
    assert AnnotationQueue.objects.count() == queues
    assert QueueItem.objects.count() == items


def test_same_name_in_another_project_is_allowed(project: Project, other_project: Project) -> None:
    # given a queue named "Q" in another project
    make_queue(other_project, name="Q")

    # when this project creates one with the same name
    queue = make_queue(project, name="Q")

    # then it exists
    assert queue.project == project


@pytest.mark.parametrize("overlap", [1, 10])
def test_overlap_bounds_are_accepted(project: Project, overlap: int) -> None:
    # when a queue is created with the smallest and the largest overlap
    queue = make_queue(project, overlap=overlap)

    # then it keeps it
    assert AnnotationQueue.objects.get(pk=queue.pk).overlap == overlap


# --- handing out --------------------------------------------------------------------------------


@pytest.fixture
def three_items(project: Project) -> list[Answer]:
    """Three answers, inserted newest first: "oldest" is handed out first."""
    return [
        AnswerFactory.create(project=project, external_id=external_id, created_at=at(day))
        for external_id, day in [("newest", 3), ("middle", 2), ("oldest", 1)]
    ]


def handed(assignment: QueueAssignment | None) -> str | None:
    return None if assignment is None else assignment.item.answer.external_id


def test_annotator_gets_the_oldest_item_and_keeps_it_until_done(
    project: Project, three_items: list[Answer]
) -> None:
    # given a queue of three answers and an annotator
    queue = make_queue(project)
    [ann] = annotators(project, "ann")

    # when they ask for an item twice, submit it, and ask again
    first = queue_item_next_for(queue=queue, annotator=ann)
    again = queue_item_next_for(queue=queue, annotator=ann)
    assert first is not None
    queue_item_submit(assignment=first)
    after_submit = queue_item_next_for(queue=queue, annotator=ann)

    # then they get the oldest, the same held one again, then the next oldest
    assert handed(first) == "oldest"
    assert again is not None
    assert again.pk == first.pk
    assert handed(after_submit) == "middle"
    assert QueueAssignment.objects.get(pk=first.pk).status == AssignmentStatus.DONE
    assert QueueAssignment.objects.filter(annotator=ann).count() == 2


@pytest.mark.parametrize("overlap", [1, 2])
def test_annotator_never_gets_an_item_they_did_or_skipped(
    project: Project, three_items: list[Answer], overlap: int
) -> None:
    # given a queue of three answers and an annotator
    queue = make_queue(project, overlap=overlap)
    [ann] = annotators(project, "ann")
    received: list[str | None] = []

    # when they skip the first, submit the second and the third, then ask again
    for finish_with in (queue_item_skip, queue_item_submit, queue_item_submit):
        assignment = queue_item_next_for(queue=queue, annotator=ann)
        received.append(handed(assignment))
        assert assignment is not None
        finish_with(assignment=assignment)
    received.append(handed(queue_item_next_for(queue=queue, annotator=ann)))

    # then they got each item once, oldest first, and then nothing
    assert received == ["oldest", "middle", "newest", None]
    statuses = QueueAssignment.objects.order_by("item_id").values_list("status", flat=True)
    assert list(statuses) == ["skipped", "done", "done"]


def test_skipped_item_is_free_for_another_annotator(project: Project) -> None:
    # given a queue of one item with overlap 1, skipped by its first annotator
    AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project, overlap=1)
    ann, bob = annotators(project, "ann", "bob")
    assignment = queue_item_next_for(queue=queue, annotator=ann)
    assert assignment is not None
    queue_item_skip(assignment=assignment)

    # when a second annotator asks
    theirs = queue_item_next_for(queue=queue, annotator=bob)

    # then they get it
    assert handed(theirs) == "only"


def test_held_item_waits_for_its_lock_to_expire(project: Project) -> None:
    # given a queue of one item with overlap 1, held by the first annotator
    AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project, overlap=1)
    ann, bob = annotators(project, "ann", "bob")
    held = queue_item_next_for(queue=queue, annotator=ann)
    assert handed(held) == "only"

    # when a second annotator asks while the lock holds, and again after it expired
    while_held = queue_item_next_for(queue=queue, annotator=bob)
    QueueAssignment.objects.filter(annotator=ann).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    after_expiry = queue_item_next_for(queue=queue, annotator=bob)

    # then they get nothing at first, then the item
    assert while_held is None
    assert handed(after_expiry) == "only"


def test_held_item_is_passed_over_for_the_next(project: Project, three_items: list[Answer]) -> None:
    # given a queue with overlap 1 whose oldest item the first annotator holds
    queue = make_queue(project, overlap=1)
    ann, bob = annotators(project, "ann", "bob")
    queue_item_next_for(queue=queue, annotator=ann)

    # when a second annotator asks
    theirs = queue_item_next_for(queue=queue, annotator=bob)

    # then they get the next oldest
    assert handed(theirs) == "middle"


def test_annotator_whose_lock_expired_gets_the_item_back(project: Project) -> None:
    # given an annotator whose hold on the only item expired, nobody else having taken it
    AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project, overlap=1)
    [ann] = annotators(project, "ann")
    first = queue_item_next_for(queue=queue, annotator=ann)
    assert first is not None
    QueueAssignment.objects.filter(pk=first.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )

    # when they ask again
    again = queue_item_next_for(queue=queue, annotator=ann)

    # then they hold the same item again, on the same assignment row, with a fresh lock
    assert again is not None
    assert again.pk == first.pk
    assert QueueAssignment.objects.get(pk=first.pk).locked_until > timezone.now()


def test_overlap_two_hands_each_item_to_two_annotators_then_runs_out(project: Project) -> None:
    # given a queue of one item with overlap 2
    AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project, overlap=2)
    ann, bob, cid = annotators(project, "ann", "bob", "cid")

    # when three annotators ask in turn
    received = [handed(queue_item_next_for(queue=queue, annotator=u)) for u in (ann, bob, cid)]

    # then the first two get it and the third nothing
    assert received == ["only", "only", None]


def test_empty_queue_hands_out_nothing(project: Project) -> None:
    # given a queue that matched no answers
    queue = make_queue(project)
    [ann] = annotators(project, "ann")

    # when an annotator asks, then nothing
    assert queue_item_next_for(queue=queue, annotator=ann) is None


def test_submitting_twice_changes_nothing(project: Project) -> None:
    # given an item an annotator skipped
    AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project)
    [ann] = annotators(project, "ann")
    assignment = queue_item_next_for(queue=queue, annotator=ann)
    assert assignment is not None
    queue_item_skip(assignment=assignment)

    # when the same assignment is submitted afterwards (a stale tab)
    result = queue_item_submit(assignment=assignment)

    # then it stays skipped
    assert result.status == AssignmentStatus.SKIPPED
    assert QueueAssignment.objects.get(pk=assignment.pk).status == AssignmentStatus.SKIPPED


@pytest.mark.parametrize(("others_took_it", "final"), [(True, "assigned"), (False, "done")])
def test_a_late_submit_counts_only_while_a_place_is_free(
    project: Project, others_took_it: bool, final: str
) -> None:
    # given an annotator whose hold on the only item (overlap 1) expired
    AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project)
    ann, bob = annotators(project, "ann", "bob")
    late = queue_item_next_for(queue=queue, annotator=ann)
    assert late is not None
    QueueAssignment.objects.filter(pk=late.pk).update(
        locked_until=timezone.now() - timedelta(minutes=1)
    )
    if others_took_it:
        taken = queue_item_next_for(queue=queue, annotator=bob)
        assert taken is not None
        queue_item_submit(assignment=taken)

    # when the first annotator submits from the stale page
    if others_took_it:
        with pytest.raises(AssignmentExpired):
            queue_item_submit(assignment=late)
    else:
        queue_item_submit(assignment=late)

    # then the item never has more than its overlap done
    assert QueueAssignment.objects.get(pk=late.pk).status == final
    assert QueueAssignment.objects.filter(item__queue=queue, status="done").count() == 1


# --- handing out concurrently (real PostgreSQL, real transactions) ------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(5))
def test_concurrent_annotators_fill_every_item_exactly_to_its_overlap(
    project: Project, round_: int
) -> None:
    # given a fresh queue of 10 items with overlap 2 and three annotators
    for i in range(10):
        AnswerFactory.create(project=project, external_id=f"a-{i}", created_at=at(1, 12, i))
    queue = make_queue(project, name=f"round {round_}", overlap=2)
    users = annotators(project, "ann", "bob", "cid")
    handed_out: list[tuple[int, int]] = []
    lock = threading.Lock()

    def pull_until_empty(annotator: User) -> None:
        for _ in range(50):  # more than an annotator can ever get: a guard against looping
            assignment = queue_item_next_for(queue=queue, annotator=annotator)
            if assignment is None:
                return
            with lock:
                handed_out.append((assignment.item_id, annotator.pk))
            queue_item_submit(assignment=assignment)
        raise AssertionError(f"{annotator} kept getting items")

    # when each pulls and submits from its own thread, all starting at once, until nothing is left
    next_user = iter(users)

    def one_annotator() -> None:
        with lock:
            annotator = next(next_user)
        pull_until_empty(annotator)

    errors = in_threads(one_annotator, 3)

    # then no item went to more than two, none twice to one person, every item to exactly two,
    # 20 hand-outs in all, each of them done
    assert errors == []
    done = QueueAssignment.objects.filter(item__queue=queue, status=AssignmentStatus.DONE)
    per_item = Counter(done.values_list("item_id", flat=True))
    per_pair = Counter(done.values_list("item_id", "annotator_id"))
    assert max(per_pair.values()) == 1
    assert max(per_item.values()) <= 2
    assert per_item == dict.fromkeys(queue.items.values_list("id", flat=True), 2)
    assert len(handed_out) == 20
    assert Counter(handed_out) == Counter(done.values_list("item_id", "annotator_id"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(5))
def test_three_annotators_asking_at_once_for_one_item_with_overlap_two(
    project: Project, round_: int
) -> None:
    # given a fresh queue of one item with overlap 2 and three annotators
    AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project, name=f"round {round_}", overlap=2)
    users = iter(annotators(project, "ann", "bob", "cid"))
    results: list[str | None] = []
    lock = threading.Lock()

    def ask_once() -> None:
        with lock:
            annotator = next(users)
        assignment = queue_item_next_for(queue=queue, annotator=annotator)
        with lock:
            results.append(handed(assignment))

    # when all three ask for an item at the same moment
    errors = in_threads(ask_once, 3)

    # then exactly two get it and the third gets nothing
    assert errors == []
    assert sorted(results, key=str) == [None, "only", "only"]
    assert QueueAssignment.objects.filter(item__queue=queue).count() == 2


# --- progress -----------------------------------------------------------------------------------


def test_progress_counts_items_done_by_overlap_annotators(project: Project) -> None:
    # given a queue of three items with overlap 2: the first done by ann and bob, the second done
    # by ann and skipped by bob, the third held by cid and by dan whose lock expired; and an empty
    # queue
    one, two, three = (
        AnswerFactory.create(project=project, external_id=f"a-{i}", created_at=at(1, 12, i))
        for i in range(3)
    )
    queue = make_queue(project, name="main", overlap=2)
    empty = make_queue(project, name="empty", spec=QueueFilter(model="nobody"))
    ann, bob, cid, dan = annotators(project, "ann", "bob", "cid", "dan")
    finish(queue, one, ann, "done")
    finish(queue, one, bob, "done")
    finish(queue, two, ann, "done")
    finish(queue, two, bob, "skipped")
    finish(queue, three, cid, "assigned")
    finish(queue, three, dan, "assigned")
    QueueAssignment.objects.filter(annotator=dan).update(
        locked_until=timezone.now() - timedelta(minutes=1)
    )

    # when progress is read
    progress = queue_progress(queue=queue)
    listed = {
        q.name: (q.total, q.complete)  # type: ignore[attr-defined]
        for q in queues_with_progress(project=project)
    }

    # then one of three items is complete, with each annotator's counts
    assert (progress["total"], progress["complete"]) == (3, 1)
    assert progress["fraction"] == pytest.approx(1 / 3)
    assert progress["per_annotator"] == [
        {"annotator__username": "ann", "done": 2, "skipped": 0, "holding": 0},
        {"annotator__username": "bob", "done": 1, "skipped": 1, "holding": 0},
        {"annotator__username": "cid", "done": 0, "skipped": 0, "holding": 1},
        {"annotator__username": "dan", "done": 0, "skipped": 0, "holding": 0},
    ]
    assert listed == {"main": (3, 1), "empty": (0, 0)}
    assert queue_progress(queue=empty)["fraction"] == 0.0


# --- agreement ----------------------------------------------------------------------------------


def test_agreement_over_finished_items_with_hand_computed_values(project: Project) -> None:
    # given a queue of two answers with overlap 3, both done by ann and bob; cid still holds the
    # first and dan skipped it; and a third answer outside the queue
    first = AnswerFactory.create(project=project, external_id="first", created_at=at(1))
    second = AnswerFactory.create(project=project, external_id="second", created_at=at(2))
    queue = make_queue(project, overlap=3)
    outside = AnswerFactory.create(project=project, external_id="outside", created_at=at(3))
    ann, bob, cid, dan = annotators(project, "ann", "bob", "cid", "dan")
    for answer in (first, second):
        finish(queue, answer, ann, "done")
        finish(queue, answer, bob, "done")
    finish(queue, first, cid, "assigned")
    finish(queue, first, dan, "skipped")
    # the four units, (answer, document), and the newest judgment of each annotator:
    #   (first, d1)   ann relevant    bob relevant
    #   (first, d2)   ann relevant    bob partial
    #   (second, d1)  ann irrelevant  bob irrelevant
    #   (second, d3)  ann partial     bob partial    (ann first said relevant, then partial)
    judge(first, ann, "d1", REL, minute=1)
    judge(first, bob, "d1", REL, minute=2)
    judge(first, ann, "d2", REL, minute=3)
    judge(first, bob, "d2", PART, minute=4)
    judge(second, ann, "d1", IRR, minute=5)
    judge(second, bob, "d1", IRR, minute=6)
    judge(second, ann, "d3", REL, minute=7)
    judge(second, bob, "d3", PART, minute=8)
    judge(second, ann, "d3", PART, minute=9)
    # ignored: cid's item is not done, dan skipped, and "outside" is in no item of the queue
    judge(first, cid, "d1", IRR, minute=10)
    judge(first, cid, "d2", IRR, minute=11)
    judge(first, dan, "d1", PART, minute=12)
    judge(outside, ann, "d1", REL, minute=13)
    judge(outside, bob, "d1", IRR, minute=14)

    # when agreement is computed
    agreement = queue_agreement(queue=queue)

    # then, by hand. Coincidences (each unit has 2 values, weight 1/(2-1) = 1):
    #   o[R,R] = 2, o[R,P] = o[P,R] = 1, o[I,I] = 2, o[P,P] = 2;
    #   marginals n_I = 2, n_P = 3, n_R = 3, n = 8.
    # Nominal: observed disagreement = o[R,P] + o[P,R] = 2;
    #   expected = n^2 - sum n_c^2 = 64 - (4 + 9 + 9) = 42;
    #   alpha = 1 - (n - 1) * 2 / 42 = 1 - 14/42 = 2/3.
    # Ordinal (irrelevant < partial < relevant), delta_ck = (sum_{g=c..k} n_g - (n_c + n_k)/2)^2:
    #   delta_IP = (5 - 2.5)^2 = 6.25, delta_PR = (6 - 3)^2 = 9, delta_IR = (8 - 2.5)^2 = 30.25;
    #   observed = 2 * 9 = 18;
    #   expected = 2 * (2*3*6.25 + 3*3*9 + 2*3*30.25) = 2 * (37.5 + 81 + 181.5) = 600;
    #   alpha = 1 - 7 * 18 / 600 = 1 - 0.21 = 0.79.
    # Cohen's kappa, ann vs bob over the 4 units: p_o = 3/4; ann R2 I1 P1, bob R1 I1 P2:
    #   p_e = (2*1 + 1*1 + 1*2) / 16 = 5/16; kappa = (12/16 - 5/16) / (11/16) = 7/11.
    assert agreement["units"] == 4
    assert agreement["alpha_nominal"] == pytest.approx(2 / 3)
    assert agreement["alpha_ordinal"] == pytest.approx(0.79)
    [pair] = agreement["pairs"]
    assert (pair.coder_a, pair.coder_b, pair.items) == ("ann", "bob", 4)
    assert pair.kappa == pytest.approx(7 / 11)


def test_agreement_counts_a_judgment_once_the_assignment_is_done(project: Project) -> None:
    # given two annotators who judged the same document alike and differently; bob still
    # holds the item
    answer = AnswerFactory.create(project=project, external_id="only")
    queue = make_queue(project, overlap=2)
    ann, bob = annotators(project, "ann", "bob")
    finish(queue, answer, ann, "done")
    finish(queue, answer, bob, "assigned")
    judge(answer, ann, "d1", REL)
    judge(answer, bob, "d1", IRR)
    judge(answer, ann, "d2", PART)
    judge(answer, bob, "d2", PART)
    before = queue_agreement(queue=queue)

    # when bob finishes the item
    queue_item_submit(assignment=QueueAssignment.objects.get(annotator=bob))
    after = queue_agreement(queue=queue)

    # then nothing was pairable before; after, two units: 1 agreement of 2 (I, R; P, P):
    #   n_I = 1, n_P = 2, n_R = 1, n = 4; observed = o[I,R] + o[R,I] = 2;
    #   expected = 16 - (1 + 4 + 1) = 10; alpha = 1 - 3 * 2 / 10 = 0.4.
    assert (before["units"], before["alpha_nominal"], before["pairs"]) == (0, None, [])
    assert after["units"] == 2
    assert after["alpha_nominal"] == pytest.approx(0.4)


@pytest.mark.django_db
def test_following_an_earlier_item_leads_to_the_later_one_then_to_new_work(
    project: Project,
) -> None:
    # given an annotator who finished one item of three and holds the second
    for i in range(3):
        AnswerFactory.create(project=project, external_id=f"f-{i}", created_at=at(1, 12, i))
    queue = make_queue(project, overlap=1)
    [ann] = annotators(project, "ann")
    first = queue_item_next_for(queue=queue, annotator=ann)
    assert first is not None
    queue_item_submit(assignment=first)
    held = queue_item_next_for(queue=queue, annotator=ann)
    assert held is not None

    # when they go on from the first (having gone back to it), then from the held one once
    # it is done, then from the last
    after_first = queue_item_following(assignment=first)
    queue_item_submit(assignment=held)
    after_held = queue_item_following(assignment=held)
    assert after_held is not None
    queue_item_submit(assignment=after_held)
    after_last = queue_item_following(assignment=after_held)

    # then: the item they hold, a new item, and nothing (the queue is done for them)
    assert after_first is not None
    assert after_first.pk == held.pk
    assert after_held.item.answer.external_id == "f-2"
    assert after_last is None
