"""Starting projects and managing their members: who may be added, what a new account gets,
and that a project never loses its last owner, even to two owners demoting each other at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.utils.http import urlsafe_base64_decode

from feedback.core.errors import ValidationFailed
from feedback.models import Membership, Project, Role
from feedback.services.tenancy import (
    account_setup_link,
    member_add,
    member_create,
    member_remove,
    member_role_change,
    project_create_owned,
)
from tests.factories import MembershipFactory, ProjectFactory, UserFactory


def test_a_new_project_has_its_creator_as_owner_and_a_slug_from_its_name(db: Any) -> None:
    olga = UserFactory.create(username="olga")

    project = project_create_owned(owner=olga, name="  Bike shop  ")

    assert (project.slug, project.name) == ("bike-shop", "Bike shop")
    assert Membership.objects.get(project=project).role == Role.OWNER


@pytest.mark.parametrize(
    ("name", "slug", "field"),
    [
        ("", "", "name"),
        ("Taken", "acme", "slug"),
        ("Reserved", "create", "slug"),
        ("Bad address", "no spaces", "slug"),
        ("日本", "", "slug"),  # nothing to make an address from
    ],
)
def test_a_project_is_refused_without_a_name_or_a_free_address(
    project: Project, name: str, slug: str, field: str
) -> None:
    olga = UserFactory.create(username="olga")

    with pytest.raises(ValidationFailed) as refused:
        project_create_owned(owner=olga, name=name, slug=slug)

    assert field in refused.value.errors
    assert not Membership.objects.filter(user=olga).exists()


def test_an_existing_user_is_added_by_username_or_email_once(project: Project) -> None:
    UserFactory.create(username="bert", email="bert@example.org")
    UserFactory.create(username="cleo", email="")

    by_email = member_add(project=project, identifier="BERT@example.org", role=Role.ANNOTATOR)
    by_name = member_add(project=project, identifier="Cleo", role=Role.RATER)

    assert (by_email.user.username, by_email.role) == ("bert", Role.ANNOTATOR)
    assert by_name.user.username == "cleo"
    with pytest.raises(ValidationFailed, match="member already"):
        member_add(project=project, identifier="bert", role=Role.OWNER)
    with pytest.raises(ValidationFailed, match="No user has"):
        member_add(project=project, identifier="", role=Role.RATER)  # blank email never matches
    assert Membership.objects.get(user__username="bert").role == Role.ANNOTATOR


def test_a_created_account_has_no_password_and_a_link_that_works_until_it_is_set(
    project: Project,
) -> None:
    made = member_create(project=project, username="newbie", email="", role=Role.RATER)
    user = made.user

    uidb64, token = account_setup_link(user=user)

    assert not user.has_usable_password()
    assert urlsafe_base64_decode(uidb64).decode() == str(user.pk)
    assert default_token_generator.check_token(user, token)
    user.set_password("a long new passphrase 42")
    user.save()
    assert not default_token_generator.check_token(user, token)
    with pytest.raises(ValidationFailed, match="taken"):
        member_create(project=project, username="NEWBIE", email="", role=Role.RATER)


@pytest.mark.parametrize(
    ("username", "email", "field"),
    [("", "", "username"), ("has space", "", "username"), ("ok", "not-an-email", "email")],
)
def test_a_created_account_needs_a_valid_username_and_email(
    project: Project, username: str, email: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        member_create(project=project, username=username, email=email, role=Role.RATER)

    assert field in refused.value.errors
    assert not Membership.objects.exists()


def test_the_last_owner_can_be_neither_demoted_nor_removed(project: Project) -> None:
    owner = MembershipFactory.create(project=project, role=Role.OWNER)
    rater = MembershipFactory.create(project=project, role=Role.RATER)

    for attempt in (
        lambda: member_role_change(project=project, membership_id=owner.pk, role=Role.RATER),
        lambda: member_remove(project=project, membership_id=owner.pk),
    ):
        with pytest.raises(ValidationFailed, match="needs an owner"):
            attempt()

    member_role_change(project=project, membership_id=rater.pk, role=Role.OWNER)
    member_role_change(project=project, membership_id=owner.pk, role=Role.RESEARCHER)
    assert set(Membership.objects.values_list("role", flat=True)) == {Role.OWNER, Role.RESEARCHER}


def test_another_projects_member_is_not_found(project: Project) -> None:
    theirs = MembershipFactory.create(project=ProjectFactory.create(slug="rival"))

    with pytest.raises(Membership.DoesNotExist):
        member_remove(project=project, membership_id=theirs.pk)


def in_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    """Run the targets together (released by a barrier), each on its own connection."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target: Callable[[], None]) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=30)
            target()
        except BaseException as error:  # handed to the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["demote", "remove"])
def test_two_owners_leaving_at_once_leave_one_owner(how: str) -> None:
    project = ProjectFactory.create(slug="acme")
    owners = [MembershipFactory.create(project=project, role=Role.OWNER) for _ in range(2)]

    def leave(membership: Membership) -> Callable[[], None]:
        def run() -> None:
            if how == "demote":
                member_role_change(project=project, membership_id=membership.pk, role=Role.RATER)
            else:
                member_remove(project=project, membership_id=membership.pk)

        return run

    errors = in_threads([leave(owner) for owner in owners])

    assert [type(e) for e in errors] == [ValidationFailed]
    assert Membership.objects.filter(project=project, role=Role.OWNER).count() == 1
