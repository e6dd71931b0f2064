"""The management commands for operators and scripts."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import orjson
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from feedback.models import (
    AnnotationQueue,
    Answer,
    Exposure,
    Membership,
    Project,
    Reaction,
    Stage,
)
from feedback.services import api_key_authenticate
from tests.factories import answer_payload


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.django_db
def test_create_project_is_idempotent() -> None:
    assert "Created" in run("create_project", "acme", "--name", "Acme")
    assert "Exists" in run("create_project", "acme")
    assert Project.objects.get().name == "Acme"


@pytest.mark.django_db
def test_create_member_sets_password_and_role() -> None:
    run("create_project", "acme")

    run(
        "create_member",
        "--project",
        "acme",
        "--username",
        "ada",
        "--password",
        "pw-1",
        "--role",
        "rater",
    )
    run("create_member", "--project", "acme", "--username", "ada", "--role", "owner")

    user = User.objects.get(username="ada")
    assert user.check_password("pw-1")
    assert Membership.objects.get(user=user).role == "owner"


@pytest.mark.django_db
def test_create_member_needs_an_existing_project() -> None:
    with pytest.raises(CommandError, match="No project"):
        run("create_member", "--project", "nope", "--username", "ada", "--role", "rater")


@pytest.mark.django_db
def test_create_api_key_prints_a_working_key_last() -> None:
    run("create_project", "acme")

    output = run("create_api_key", "--project", "acme", "--scopes", "ingest,export")

    key = api_key_authenticate(raw_key=output.strip().splitlines()[-1])
    assert key is not None
    assert key.scopes == ["export", "ingest"]


@pytest.mark.django_db
def test_create_api_key_refuses_unknown_scopes() -> None:
    run("create_project", "acme")

    with pytest.raises(CommandError, match="Scopes"):
        run("create_api_key", "--project", "acme", "--scopes", "ingest,root")


@pytest.mark.django_db
def test_seed_demo_creates_users_for_each_role_and_traced_answers() -> None:
    run("seed_demo")
    output = run("seed_demo")

    project = Project.objects.get(slug="demo")
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {
        "owner": "owner",
        "researcher": "researcher",
        "annotator": "annotator",
        "rater": "rater",
    }
    # 36 written answers, and the 12 demo questions asked through the demo pipeline
    assert Answer.objects.filter(project=project).count() == 36 + 12
    assert Answer.objects.filter(project=project, metadata__pipeline="demo").count() == 12
    assert Stage.objects.filter(answer__project=project).count() == (36 + 12) * 3
    assert "0 new answers" in output
    assert "Asked the demo pipeline: 0 new" in output
    queue = AnnotationQueue.objects.get(project=project, name="Relevance pass")
    assert queue.items.count() == 12
    assert queue.overlap == 2
    assert "0 new events" in output
    assert set(Reaction.objects.values_list("source", flat=True)) == {"api"}
    assert Exposure.objects.filter(project=project).count() > Reaction.objects.count() > 0


@pytest.mark.django_db
def test_import_answers_reports_each_bad_line_and_is_idempotent(tmp_path: Path) -> None:
    run("create_project", "acme")
    path = tmp_path / "answers.jsonl"
    lines = [
        orjson.dumps(answer_payload("a-1")),
        b"{not json",
        orjson.dumps(answer_payload("a-2", model="")),
        b"",
        orjson.dumps(answer_payload("a-3")),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    errors = StringIO()

    out = StringIO()
    call_command("import_answers", str(path), "--project", "acme", stdout=out, stderr=errors)
    again = run("import_answers", str(path), "--project", "acme")

    assert "created 2, duplicates 0, errors 2" in out.getvalue()
    assert "line 2: malformed JSON" in errors.getvalue()
    assert "line 3: {'model'" in errors.getvalue()
    assert "created 0, duplicates 2, errors 2" in again
    assert Stage.objects.count() == 6


@pytest.mark.django_db
def test_import_answers_needs_the_file(tmp_path: Path) -> None:
    run("create_project", "acme")

    with pytest.raises(CommandError, match="No such file"):
        run("import_answers", str(tmp_path / "missing.jsonl"), "--project", "acme")


@pytest.mark.django_db
def test_import_answers_uses_the_only_project_when_none_is_named(tmp_path: Path) -> None:
    run("create_project", "acme")
    path = tmp_path / "answers.jsonl"
    path.write_bytes(orjson.dumps(answer_payload("a-1")) + b"\n")

    assert "created 1" in run("import_answers", str(path))
    run("create_project", "rival")
    with pytest.raises(CommandError, match="Name the project"):
        run("import_answers", str(path))


@pytest.mark.django_db
def test_import_answers_refuses_script_links_and_spoofed_ids_line_by_line(tmp_path: Path) -> None:
    # Given a file with an answer linking a document to a script, one whose id hides its end
    # behind a right-to-left override, and a good one
    run("create_project", "acme")
    script_link = answer_payload("a-1")
    script_link["trace"][1]["output"]["documents"][0]["url"] = "javascript:alert(1)"
    lines = [
        orjson.dumps(script_link),
        orjson.dumps(answer_payload("invoice\u202etxt.exe", model="gpt\u20664\u2069")),
        orjson.dumps(answer_payload("a-3")),
    ]
    path = tmp_path / "answers.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    errors = StringIO()

    # When it is imported
    out = StringIO()
    call_command("import_answers", str(path), "--project", "acme", stdout=out, stderr=errors)

    # Then each bad line is reported by field and only the good answer is stored
    assert "created 1, duplicates 0, errors 2" in out.getvalue()
    assert "line 1: {'trace[1].output.documents[0].url'" in errors.getvalue()
    assert "line 2: {'external_id'" in errors.getvalue()
    assert "'model': ['Must not contain bidirectional" in errors.getvalue()
    assert list(Answer.objects.values_list("external_id", flat=True)) == ["a-3"]
    assert Stage.objects.count() == 3
