"""The queue pages: who may see and create queues, the form's errors, and working through a
queue from the debug page (Next, Skip, Done, saving corrections as the assignment)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feedback.models import (
    AnnotationQueue,
    AssignmentStatus,
    Intervention,
    Project,
    QueueAssignment,
)
from feedback.services.annotation import queue_item_next_for
from tests.factories import AnswerFactory, StageFactory, login
from tests.feedback.queue_data import annotators, answers_of, at, finish, make_queue, react


@pytest.fixture
def queue(project: Project) -> AnnotationQueue:
    """A queue of three answers without a trace (oldest "q-0"), overlap 1, with guidelines."""
    for i in range(3):
        AnswerFactory.create(
            project=project, external_id=f"q-{i}", created_at=at(1, 12, i), response=f"Answer {i}."
        )
    return make_queue(
        project, name="Chains", guidelines="Judge every document on its own.", overlap=1
    )


def debug_url(external_id: str, assignment: QueueAssignment) -> str:
    return f"/projects/acme/answers/{external_id}/debug/?assignment={assignment.pk}"


def only_assignment(user: User) -> QueueAssignment:
    return QueueAssignment.objects.select_related("item__answer").get(
        annotator=user, status=AssignmentStatus.ASSIGNED
    )


def test_annotator_sees_list_and_detail_without_agreement(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an annotator
    login(client, project, "annotator")

    # when they open the list and the queue, and try to create a queue
    listing = client.get("/projects/acme/queues/")
    detail = client.get(f"/projects/acme/queues/{queue.pk}/")
    create = client.post("/projects/acme/queues/create/", {"name": "Mine", "overlap": "1"})

    # then they see both pages, without agreement and the create form, and may not create
    assert listing.status_code == 200
    assert "Chains" in listing.content.decode()
    assert "0 / 3 items complete" in listing.content.decode()
    assert 'action="/projects/acme/queues/create/"' not in listing.content.decode()
    assert detail.status_code == 200
    assert "0 of 3 items complete" in detail.content.decode()
    assert 'aria-label="Agreement"' not in detail.content.decode()
    assert "Judge every document on its own." in detail.content.decode()
    assert create.status_code == 403
    assert not AnnotationQueue.objects.filter(name="Mine").exists()


def test_raters_may_not_see_queues(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given a member below the annotator role
    login(client, project, "rater")

    # when they open the queue pages, then 403
    assert client.get("/projects/acme/queues/").status_code == 403
    assert client.get(f"/projects/acme/queues/{queue.pk}/").status_code == 403
    assert client.post(f"/projects/acme/queues/{queue.pk}/next/").status_code == 403


def test_researcher_creates_a_queue_from_the_form_and_sees_agreement(
    client: Client, project: Project
) -> None:
    # given a researcher and answers of two models, one with a trace and a love
    login(client, project, "researcher")
    wanted = AnswerFactory.create(
        project=project, external_id="wanted", model="m-a", model_version="2", created_at=at(5)
    )
    StageFactory.create(answer=wanted, position=0)
    react(wanted, "love")
    AnswerFactory.create(project=project, external_id="other-model", model="m-b", created_at=at(5))
    AnswerFactory.create(project=project, external_id="untraced", model="m-a", created_at=at(5))

    # when they submit the form
    response = client.post(
        "/projects/acme/queues/create/",
        {
            "name": " Loved m-a ",
            "guidelines": "Be strict.",
            "overlap": "3",
            "model": "m-a",
            "model_version": "2",
            "created_from": "2026-03-05",
            "created_to": "2026-03-05",
            "reaction_state": "loved",
            "has_trace": "on",
        },
    )

    # then the queue exists with the matching answer and they land on it, agreement included
    created = AnnotationQueue.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/projects/acme/queues/{created.pk}/"
    assert (created.name, created.guidelines, created.overlap) == ("Loved m-a", "Be strict.", 3)
    assert answers_of(created) == ["wanted"]
    assert created.filters == {
        "model": "m-a",
        "model_version": "2",
        "created_from": "2026-03-05",
        "created_to": "2026-03-05",
        "reaction_state": "loved",
        "has_trace": True,
    }
    detail = client.get(response["Location"]).content.decode()
    assert "created with 1 answers" in detail
    assert 'aria-label="Agreement"' in detail


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"name": "Chains", "overlap": "1"},
            ("name", "The project already has a queue with this name."),
        ),
        (
            {"name": "New", "overlap": "11"},
            ("overlap", "Must be between 1 and 10 annotators per item."),
        ),
        (
            {"name": "New", "overlap": "two"},
            ("overlap", "Must be between 1 and 10 annotators per item."),
        ),
        (
            {
                "name": "New",
                "overlap": "1",
                "created_from": "2026-03-02",
                "created_to": "2026-03-01",
            },
            ("to", "Must not be before the start date."),
        ),
        (
            {"name": "New", "overlap": "1", "created_from": "March"},
            ("from", "Must be a date like 2026-01-31."),
        ),
    ],
)
def test_invalid_form_is_a_400_with_the_message_and_no_queue(
    client: Client,
    project: Project,
    queue: AnnotationQueue,
    form: dict[str, str],
    message: tuple[str, str],
) -> None:
    # given a researcher and an existing queue "Chains"
    login(client, project, "researcher")

    # when they submit an invalid form
    response = client.post("/projects/acme/queues/create/", form)

    # then the form comes back with the message under its field, and no queue was added
    field, text = message
    assert response.status_code == 400
    page = response.content.decode()
    assert f'aria-invalid="true" aria-describedby="queue-{field}-errors"' in page
    assert f'<ul class="errorlist" id="queue-{field}-errors"><li>{text}</li></ul>' in page
    assert list(AnnotationQueue.objects.values_list("name", flat=True)) == ["Chains"]


def test_another_projects_member_gets_404(
    client: Client, project: Project, other_project: Project, queue: AnnotationQueue
) -> None:
    # given a researcher of another project
    user = login(client, other_project, "researcher")

    # when they open this project's queue pages, or this queue under their own project
    responses = [
        client.get("/projects/acme/queues/"),
        client.get(f"/projects/acme/queues/{queue.pk}/"),
        client.post(f"/projects/acme/queues/{queue.pk}/next/"),
        client.post("/projects/acme/queues/create/", {"name": "Mine", "overlap": "1"}),
        client.get(f"/projects/rival/queues/{queue.pk}/"),
        client.post(f"/projects/rival/queues/{queue.pk}/next/"),
    ]

    # then every one is 404, and nothing was handed to them
    assert [r.status_code for r in responses] == [404] * 6
    assert not QueueAssignment.objects.filter(annotator=user).exists()


def test_next_leads_to_the_oldest_items_debug_page_with_the_guidelines(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an annotator
    user = login(client, project, "annotator")

    # when they press Next and follow the redirect
    response = client.post(f"/projects/acme/queues/{queue.pk}/next/")
    assignment = only_assignment(user)
    page = client.get(response["Location"]).content.decode()

    # then they are on the oldest answer's debug page, as that assignment, with the guidelines,
    # where they are in the queue, and the Save, Save and next, Done and Skip buttons of the
    # corrections form
    assert response.status_code == 302
    assert response["Location"] == debug_url("q-0", assignment)
    assert 'aria-label="Guidelines"' in page
    assert "Judge every document on its own." in page
    assert "Item 1 of 3" in page
    assert f'<input type="hidden" name="assignment" value="{assignment.pk}">' in page
    for then in ("save", "next", "done", "skip"):
        assert f'name="then" value="{then}"' in page


@pytest.mark.parametrize(("then", "status"), [("skip", "skipped"), ("done", "done")])
def test_skip_and_done_move_to_the_next_item(
    client: Client, project: Project, queue: AnnotationQueue, then: str, status: str
) -> None:
    # given an annotator on the oldest item who changed nothing
    user = login(client, project, "annotator")
    current, fields = _on_item(client, queue, user)

    # when they press Skip / Done
    response = client.post("/projects/acme/answers/q-0/-/debug/save/", {**fields, "then": then})

    # then it is finished so, and they are sent to the next item's debug page
    following = only_assignment(user)
    assert QueueAssignment.objects.get(pk=current.pk).status == status
    assert response.status_code == 302
    assert response["Location"] == debug_url("q-1", following)


def test_last_item_done_goes_back_to_the_queue(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an annotator who finished all but the last item
    user = login(client, project, "annotator")
    for i in range(2):
        _, fields = _on_item(client, queue, user)
        client.post(f"/projects/acme/answers/q-{i}/-/debug/save/", {**fields, "then": "done"})
    _, fields = _on_item(client, queue, user)

    # when they finish the last one
    response = client.post(
        "/projects/acme/answers/q-2/-/debug/save/", {**fields, "then": "done"}, follow=True
    )

    # then they are back on the queue, told it is done for them, with their count
    assert response.redirect_chain == [(f"/projects/acme/queues/{queue.pk}/", 302)]
    content = response.content.decode()
    assert "Nothing left for you in this queue. Thank you!" in content
    assert "You: 3 done, 0 skipped." in content


def test_skip_with_someone_elses_assignment_finishes_nothing(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an item held by another annotator
    [ann] = annotators(project, "ann")
    theirs = queue_item_next_for(queue=queue, annotator=ann)
    assert theirs is not None
    user = login(client, project, "annotator")
    _, fields = _on_item(client, queue, user)

    # when someone else posts Skip on that answer with that assignment
    response = client.post(
        f"/projects/acme/answers/{theirs.item.answer.external_id}/-/debug/save/",
        {**fields, "assignment": str(theirs.pk), "then": "skip"},
    )

    # then nothing is finished: the item stays held, and they are not moved through a queue
    assert response.status_code in (200, 302)
    assert QueueAssignment.objects.get(pk=theirs.pk).status == AssignmentStatus.ASSIGNED
    assert not QueueAssignment.objects.filter(annotator=user).exclude(
        status=AssignmentStatus.ASSIGNED
    )


def debug_form_fields(page: str) -> dict[str, str]:
    """The hidden fields of the debug page's corrections form (version, assignment, which
    editors were on the page), as the browser would submit them."""
    form = re.search(r'<form id="debug-form".*?</form>', page, re.DOTALL)
    assert form is not None
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(0)))


def test_save_and_next_finishes_the_item_and_moves_on(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an annotator on the oldest item's debug page, reached through Next
    user = login(client, project, "annotator")
    location = client.post(f"/projects/acme/queues/{queue.pk}/next/")["Location"]
    current = only_assignment(user)
    fields = debug_form_fields(client.get(location).content.decode())
    assert fields["assignment"] == str(current.pk)
    assert fields["version"]

    # when they save a corrected answer with the assignment and ask for the next item
    response = client.post(
        "/projects/acme/answers/q-0/-/debug/save/",
        {
            **fields,
            "answer-answer": "Answer 0, corrected.",
            "rationale": "Too vague.",
            "then": "next",
        },
    )

    # then the correction is stored, the item is done, and they are on the next item
    following = only_assignment(user)
    edit = Intervention.objects.get(answer__external_id="q-0", annotator=user)
    assert (edit.action, edit.after) == ("answer_edit", {"text": "Answer 0, corrected."})
    assert QueueAssignment.objects.get(pk=current.pk).status == AssignmentStatus.DONE
    assert response.status_code == 302
    assert response["Location"] == debug_url("q-1", following)


def test_saving_corrections_without_an_assignment_stays_on_the_answer(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an annotator holding the oldest item but opening its debug page directly
    user = login(client, project, "annotator")
    client.post(f"/projects/acme/queues/{queue.pk}/next/")
    current = only_assignment(user)
    fields = debug_form_fields(client.get("/projects/acme/answers/q-0/debug/").content.decode())
    assert "assignment" not in fields

    # when they save a correction without the assignment
    response = client.post(
        "/projects/acme/answers/q-0/-/debug/save/",
        {**fields, "answer-answer": "Answer 0, corrected."},
    )

    # then the correction is stored but the item stays theirs, unfinished, and they stay on
    # the answer
    assert Intervention.objects.filter(answer__external_id="q-0", annotator=user).count() == 1
    assert QueueAssignment.objects.get(pk=current.pk).status == AssignmentStatus.ASSIGNED
    assert response.status_code == 302
    assert response["Location"] == "/projects/acme/answers/q-0/debug/"


def test_queue_list_query_count_does_not_grow_with_queues(
    client: Client, project: Project, django_assert_num_queries: Any
) -> None:
    # given a researcher, and queues each with an item that one annotator finished
    login(client, project, "researcher")
    answer = AnswerFactory.create(project=project)
    [ann] = annotators(project, "ann")

    def add_queues(first: int, last: int) -> None:
        for i in range(first, last):
            created = make_queue(project, name=f"queue-{i:03}")
            finish(created, answer, ann, "done")

    add_queues(0, 10)
    with CaptureQueriesContext(connection) as ten:
        assert client.get("/projects/acme/queues/").status_code == 200

    # when the list is loaded with 100 queues
    add_queues(10, 100)
    with django_assert_num_queries(len(ten.captured_queries)):
        response = client.get("/projects/acme/queues/")

    # then it took as many queries as with 10 (session, user, membership, the progress query,
    # the queues, the model names), and shows every queue complete
    assert len(ten.captured_queries) == 6
    content = response.content.decode()
    assert all(f"queue-{i:03}" in content for i in range(100))
    assert content.count("1 / 1 items complete") == 100


def _on_item(
    client: Client, queue: AnnotationQueue, user: User
) -> tuple[QueueAssignment, dict[str, str]]:
    """Next, then the debug page of the item handed out: its assignment and form fields."""
    location = client.post(f"/projects/acme/queues/{queue.pk}/next/")["Location"]
    current = only_assignment(user)
    return current, debug_form_fields(client.get(location).content.decode())


def test_save_stays_on_the_item_and_says_so_above_it(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an annotator on the oldest item
    user = login(client, project, "annotator")
    current, fields = _on_item(client, queue, user)

    # when they press Save (not Save and next) with a corrected answer
    response = client.post(
        "/projects/acme/answers/q-0/-/debug/save/",
        {**fields, "answer-answer": "Answer 0, corrected.", "then": "save"},
        follow=True,
    )

    # then they are back on the same item, still theirs to finish, told what was saved there
    assert response.redirect_chain == [(debug_url("q-0", current), 302)]
    page = response.content.decode()
    assert "Saved 1 correction(s)." in page
    assert "Item 1 of 3" in page
    assert QueueAssignment.objects.get(pk=current.pk).status == AssignmentStatus.ASSIGNED
    assert Intervention.objects.filter(answer__external_id="q-0", annotator=user).count() == 1


@pytest.mark.parametrize("then", ["done", "skip"])
def test_finishing_with_unsaved_corrections_asks_first_and_keeps_them(
    client: Client, project: Project, queue: AnnotationQueue, then: str
) -> None:
    # given an annotator on the oldest item who typed a correction
    user = login(client, project, "annotator")
    current, fields = _on_item(client, queue, user)
    typed = {**fields, "answer-answer": "Answer 0, corrected.", "then": then}

    # when they press Done / Skip without saying the correction may go
    refused = client.post("/projects/acme/answers/q-0/-/debug/save/", typed)

    # then nothing is saved or finished, the page keeps what they typed and asks
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "This item has 1 unsaved correction" in page
    assert "Answer 0, corrected.</textarea>" in page
    assert 'name="discard" value="1"' in page
    assert 'data-unsaved="true"' in page
    assert QueueAssignment.objects.get(pk=current.pk).status == AssignmentStatus.ASSIGNED
    assert not Intervention.objects.filter(annotator=user).exists()

    # when they confirm that the correction may go
    finished = client.post("/projects/acme/answers/q-0/-/debug/save/", {**typed, "discard": "1"})

    # then the item is finished without it, and they are on the next item
    status = "done" if then == "done" else "skipped"
    assert QueueAssignment.objects.get(pk=current.pk).status == status
    assert not Intervention.objects.filter(annotator=user).exists()
    assert finished["Location"] == debug_url("q-1", only_assignment(user))


def test_previous_and_next_walk_through_the_annotators_own_items(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an annotator who finished the first item and skipped the second, holding the third
    user = login(client, project, "annotator")
    first, fields = _on_item(client, queue, user)
    client.post("/projects/acme/answers/q-0/-/debug/save/", {**fields, "then": "done"})
    second, fields = _on_item(client, queue, user)
    client.post("/projects/acme/answers/q-1/-/debug/save/", {**fields, "then": "skip"})
    third = only_assignment(user)

    # when they look at the third, then go back to the first
    on_third = client.get(debug_url("q-2", third)).content.decode()
    on_first = client.get(debug_url("q-0", first)).content.decode()

    # then each says where it stands, with links to the neighbours among their own items
    assert "Item 3 of 3" in on_third
    assert f'rel="prev" href="{debug_url("q-1", second)}"' in on_third
    assert 'rel="next"' not in on_third
    assert "Item 1 of 3" in on_first
    assert "You finished this item" in on_first
    assert 'rel="prev"' not in on_first
    assert f'rel="next" href="{debug_url("q-1", second)}"' in on_first
    assert 'value="done"' not in on_first  # a finished item is not finished again
    queue_page = client.get(f"/projects/acme/queues/{queue.pk}/").content.decode()
    assert f'href="{debug_url("q-2", third)}">Back to your last item' in queue_page

    # when they correct the first item and press Save and next
    fields = debug_form_fields(on_first)
    response = client.post(
        "/projects/acme/answers/q-0/-/debug/save/",
        {**fields, "answer-answer": "Answer 0, later.", "then": "next"},
    )

    # then the correction is kept, the item stays done, and the next of their items opens
    assert response["Location"] == debug_url("q-1", second)
    assert QueueAssignment.objects.get(pk=first.pk).status == AssignmentStatus.DONE
    assert Intervention.objects.get(annotator=user).after == {"text": "Answer 0, later."}


def test_another_annotators_item_is_not_shown_as_a_queue_item(
    client: Client, project: Project, queue: AnnotationQueue
) -> None:
    # given an item handed to someone else
    [ann] = annotators(project, "ann")
    theirs = queue_item_next_for(queue=queue, annotator=ann)
    assert theirs is not None
    login(client, project, "annotator")

    # when another annotator opens the answer with that assignment in the address
    page = client.get(debug_url("q-0", theirs)).content.decode()

    # then it is the plain debug page: no queue navigation, no way to finish their item
    assert "Item 1 of" not in page
    assert 'name="assignment"' not in page
    assert 'value="done"' not in page
