"""Judge runs against a local stand-in OpenAI-compatible server with fixed judgments, their
agreement with annotators who agree and disagree in known ways, and accepting or rejecting
their proposals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.test import Client

from feedback.core.errors import NotReady
from feedback.datasets import DATASETS, Filters, jsonl_chunks
from feedback.models import Answer, Intervention, Project, Reaction, SimulatedFeedback
from feedback.services import answers_ingest, feedback_record
from feedback.services.annotation import interventions_save
from feedback.services.datasets import export_build, export_request
from feedback.services.proposals import proposal_decide
from rewardmodels import selectors, services
from rewardmodels.models import Generator, Judge
from tests.factories import MembershipFactory, UserFactory, answer_payload
from tests.rewardmodels.chat_server import ChatServer, completion, error

JUDGED = {"d0": "relevant", "d1": "relevant", "d2": "irrelevant", "d3": "irrelevant"}
BOB = {"d0": "relevant", "d1": "irrelevant", "d2": "relevant", "d3": "irrelevant"}


def _reply(content: dict[str, Any]) -> Any:
    return lambda body: (200, {}, completion(orjson.dumps(content).decode()))


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


def relevance_answer(project: Project) -> Answer:
    trace = [
        {"kind": "decomposition", "output": {"subqueries": ["chain oil", "how often"]}},
        {
            "kind": "retrieval",
            "parent": 0,
            "output": {"documents": [{"id": d, "text": f"text {d}"} for d in JUDGED]},
        },
        {"kind": "generation", "parent": 1, "output": {"text": "Oil it."}},
    ]
    payload = answer_payload("a1", prompt="How do I oil a chain?", response="Oil it.", trace=trace)
    results = answers_ingest(project=project, items=[payload])
    assert results[0].status == "created", results
    return Answer.objects.get(project=project, external_id="a1")


def _judge(project: Project, chat: ChatServer, target: str, **extra: Any) -> Judge:
    generator = Generator.objects.create(
        project=project, name=f"local {target}", base_url=chat.url, model="tiny"
    )
    return services.judges.judge_create(
        project=project,
        name=f"j-{target}",
        generator_id=generator.pk,
        rubric="Be fair.",
        target=target,
        **extra,
    )


def _run(judge: Judge) -> None:
    run = services.judges.judge_run_start(judge=judge)
    services.judges.judge_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error


def _annotator(project: Project, name: str) -> User:
    user = UserFactory.create(username=name)
    MembershipFactory.create(user=user, project=project, role="annotator")
    return user


def label_documents(answer: Answer, user: User, labels: dict[str, str]) -> None:
    interventions_save(
        answer=answer,
        annotator=user,
        changes=[
            {"stage": 1, "action": "doc_relevance", "after": {"doc_id": d, "relevance": r}}
            for d, r in labels.items()
        ],
    )


@pytest.mark.django_db
def test_a_relevance_judge_agrees_with_annotators_as_worked_out_by_hand(
    project: Project, chat: ChatServer
) -> None:
    # given an answer with four retrieved documents, labelled by alice exactly as the judge
    # will and by bob half the same
    answer = relevance_answer(project)
    label_documents(answer, _annotator(project, "alice"), JUDGED)
    label_documents(answer, _annotator(project, "bob"), BOB)
    chat.responder = _reply({"documents": [{"id": d, "relevance": r} for d, r in JUDGED.items()]})
    judge = _judge(project, chat, "document_relevance")

    # when the judge runs
    _run(judge)

    # then it asked once, for structured output, and stored four simulated proposals
    (request,) = chat.completions
    assert request.body["response_format"]["type"] == "json_schema"
    proposals = SimulatedFeedback.objects.filter(project=project, action="doc_relevance")
    assert {p.after["doc_id"]: p.after["relevance"] for p in proposals} == JUDGED
    assert {p.source for p in proposals} == {"simulated"}
    # and people's interventions are untouched
    assert Intervention.objects.count() == 8
    # and agreement is kappa 1 with alice, 0 with bob, alpha 28/72 with both
    agreement = selectors.judge_agreement(judge=judge)["relevance"]
    kappas = {a["annotator"]: a["kappa"] for a in agreement["annotators"]}
    assert kappas == {"alice": 1.0, "bob": 0.0}
    assert agreement["alpha"] == pytest.approx(28 / 72, abs=1e-6)


@pytest.mark.django_db
def test_accepting_makes_the_annotators_own_correction_and_rejecting_counts_against(
    project: Project, chat: ChatServer
) -> None:
    relevance_answer(project)
    chat.responder = _reply({"documents": [{"id": d, "relevance": r} for d, r in JUDGED.items()]})
    judge = _judge(project, chat, "document_relevance")
    _run(judge)
    carol, dave = _annotator(project, "carol"), _annotator(project, "dave")
    by_doc = {p.after["doc_id"]: p for p in SimulatedFeedback.objects.filter(project=project)}

    # when carol accepts the judgment of d0 and dave rejects that of d2
    accepted = proposal_decide(proposal=by_doc["d0"], annotator=carol, accept=True)
    proposal_decide(proposal=by_doc["d2"], annotator=dave, accept=False)

    # then carol has her own correction, with the proposal as its provenance
    mine = Intervention.objects.get(annotator=carol)
    assert (mine.action, mine.after) == ("doc_relevance", {"doc_id": "d0", "relevance": "relevant"})
    assert mine.event_id == f"proposal:{accepted.pk}:{carol.pk}:0"
    assert accepted.intervention_id == mine.pk
    # and a decided proposal can't be decided again
    with pytest.raises(NotReady):
        proposal_decide(proposal=by_doc["d0"], annotator=dave, accept=False)
    # and the agreement counts both: carol agreed on one document, dave disagreed on one
    agreement = selectors.judge_agreement(judge=judge)
    rows = {a["annotator"]: a for a in agreement["relevance"]["annotators"]}
    assert (rows["carol"]["items"], rows["carol"]["agreement"]) == (1, 1.0)
    assert (rows["dave"]["items"], rows["dave"]["rejected_without_label"]) == (0, 1)
    assert (rows["dave"]["agreement"], rows["dave"]["kappa"]) == (0.0, None)
    assert agreement["decisions"] == [
        {"annotator": "carol", "accepted": 1, "rejected": 0},
        {"annotator": "dave", "accepted": 0, "rejected": 1},
    ]


@pytest.mark.django_db
def test_a_verdict_judge_is_scored_against_peoples_reactions_and_kept_out_of_datasets(
    project: Project, chat: ChatServer
) -> None:
    # given an answer one viewer loved and another disliked
    relevance_answer(project)
    feedback_record(
        project=project,
        source="api",
        items=[
            {
                "event_id": f"r-{v}",
                "type": "reaction",
                "answer": "a1",
                "user_ref": v,
                "reaction": kind,
            }
            for v, kind in (("x", "love"), ("y", "dislike"))
        ],
    )
    chat.responder = _reply({"verdict": "love", "critique": "Clear and short."})
    judge = _judge(project, chat, "answer")

    _run(judge)

    verdict = SimulatedFeedback.objects.get(project=project)
    assert (verdict.reaction, verdict.text) == ("love", "Clear and short.")
    assert Reaction.objects.count() == 2
    assert selectors.judge_agreement(judge=judge)["verdicts"]["accuracy"] == 0.5

    def kto(include: bool) -> list[dict[str, Any]]:
        rows = DATASETS["kto"].rows(
            project, Filters(include_simulated=include), "text", verdict.created_at
        )
        return [orjson.loads(line) for line in b"".join(jsonl_chunks(rows)).splitlines()]

    assert len(kto(False)) == 2
    simulated = [r for r in kto(True) if r["simulated"]]
    assert [(r["reaction"], r["weight"], r["simulated_id"]) for r in simulated] == [
        ("love", 1.0, verdict.pk)
    ]


@pytest.mark.django_db
def test_a_personalised_subquery_judge_speaks_for_its_viewer_and_its_edit_can_be_accepted(
    project: Project, chat: ChatServer
) -> None:
    answer = relevance_answer(project)
    feedback_record(
        project=project,
        source="api",
        items=[
            {
                "event_id": "c",
                "type": "critique",
                "answer": "a1",
                "user_ref": "v1",
                "text": "Always name the oil.",
            }
        ],
    )
    chat.responder = _reply({"subqueries": ["chain oil type", "how often"]})
    judge = _judge(project, chat, "subqueries", viewer="v1")

    _run(judge)

    assert "Always name the oil." in chat.completions[0].body["messages"][0]["content"]
    proposal = SimulatedFeedback.objects.get(project=project)
    assert proposal.viewer == "v1"
    proposal_decide(proposal=proposal, annotator=_annotator(project, "erin"), accept=True)
    edit = Intervention.objects.get(answer=answer)
    assert (edit.action, edit.before, edit.after) == (
        "subquery_edit",
        {"index": 0, "text": "chain oil"},
        {"text": "chain oil type"},
    )


@pytest.mark.django_db
def test_a_generator_that_refuses_fails_the_run_with_a_reason(
    project: Project, chat: ChatServer
) -> None:
    relevance_answer(project)
    chat.responder = lambda body: (400, {}, error("model not found"))
    judge = _judge(project, chat, "answer")

    run = services.judges.judge_run_start(judge=judge)
    services.judges.judge_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert "400" in run.error
    assert not SimulatedFeedback.objects.exists()


@pytest.mark.django_db
def test_the_debug_mode_buttons_decide_a_proposal_in_place(
    project: Project, chat: ChatServer
) -> None:
    relevance_answer(project)
    chat.responder = _reply({"documents": [{"id": d, "relevance": r} for d, r in JUDGED.items()]})
    judge = _judge(project, chat, "document_relevance")
    _run(judge)
    proposal = SimulatedFeedback.objects.get(after__doc_id="d3")
    client = Client()
    client.force_login(_annotator(project, "fay"))
    url = f"/projects/acme/answers/a1/-/proposals/{proposal.pk}"

    swapped = client.post(f"{url}/reject/", HTTP_HX_REQUEST="true")
    again = client.post(f"{url}/accept/")

    assert swapped.status_code == 200
    page = swapped.content.decode()
    assert 'id="proposals-s2"' in page
    assert "Rejected by fay" in page
    assert 'aria-label="Accept proposal ' in page  # the other three are still pending
    assert again.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == "rejected"
    assert not Intervention.objects.exists()

    # and the judge's page counts fay's rejection
    researcher = UserFactory.create(username="rita")
    MembershipFactory.create(user=researcher, project=project, role="researcher")
    client.force_login(researcher)
    judge_page = client.get(f"/projects/acme/models/judges/{judge.pk}/")
    assert judge_page.status_code == 200
    text = judge_page.content.decode()
    assert "<td>fay</td><td>0</td><td>0</td><td>1</td>" in text.replace("\n", "").replace(
        "      ", ""
    )


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_judge_outputs_are_marked_in_every_dataset_and_export_that_includes_them(
    project: Project, chat: ChatServer, fmt: str, tmp_path: Any, settings: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    # given a relevance judge and a verdict judge that ran over the answer, and one proposal
    # an annotator accepted
    answer = relevance_answer(project)
    chat.responder = _reply({"documents": [{"id": d, "relevance": r} for d, r in JUDGED.items()]})
    _run(_judge(project, chat, "document_relevance"))
    chat.responder = _reply({"verdict": "dislike", "critique": "Says nothing about oil type."})
    _run(_judge(project, chat, "answer"))
    accepted = SimulatedFeedback.objects.get(after__doc_id="d0")
    proposal_decide(proposal=accepted, annotator=_annotator(project, "gus"), accept=True)
    now = answer.created_at + timedelta(days=1)

    def rows(name: str, include: bool) -> list[dict[str, Any]]:
        found = DATASETS[name].rows(project, Filters(include_simulated=include), "text", now)
        return [orjson.loads(line) for line in b"".join(jsonl_chunks(found)).splitlines()]

    # then by default only gus's correction is there, unmarked
    assert [r["corrected_output"]["doc_id"] for r in rows("stages", False)] == ["d0"]
    assert rows("critiques", False) == []
    # and included, the three undecided proposals and the critique follow, marked
    stages = rows("stages", True)
    assert [(r["simulated"], r["weight"]) for r in stages] == [(False, 1.0)] + [(True, 1.0)] * 3
    assert {r["corrected_output"]["doc_id"] for r in stages if r["simulated"]} == {"d1", "d2", "d3"}
    (critique,) = rows("critiques", True)
    assert (critique["critique"], critique["simulated"]) == ("Says nothing about oil type.", True)

    # and an export asked for them writes them in every format
    for name, expected in (("stages", 4), ("kto", 1), ("critiques", 1)):
        export = export_request(
            project=project,
            dataset=name,
            fmt=fmt,
            form=None,
            filters={"include_simulated": True},
            requested_by="t",
        )
        export_build(export_id=export.pk)
        export.refresh_from_db()
        assert export.status == "succeeded", export.error
        assert export.rows == expected
        assert export.filters == {"include_simulated": True}
