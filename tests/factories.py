"""factory_boy factories for the feedback app, and members signed in for page tests."""

from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from feedback.ingest import prompt_digest
from feedback.models import Answer, Membership, Project, Role, Stage
from feedback.services import api_key_create


class ProjectFactory(factory.django.DjangoModelFactory[Project]):
    class Meta:
        model = Project
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.LazyAttribute(lambda p: p.slug.title())


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def save_password(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create:
            obj.save(update_fields=["password"])


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ProjectFactory)
    role = Role.RATER


class AnswerFactory(factory.django.DjangoModelFactory[Answer]):
    class Meta:
        model = Answer

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"answer-{n}")
    prompt = factory.LazyFunction(lambda: [{"role": "user", "content": "How do I oil a chain?"}])
    prompt_hash = factory.LazyAttribute(lambda a: prompt_digest(a.prompt))
    response = "Wipe it, then one drop per link."
    model = "demo-small"
    model_version = "1"
    created_at = factory.LazyFunction(timezone.now)


class StageFactory(factory.django.DjangoModelFactory[Stage]):
    class Meta:
        model = Stage

    answer = factory.SubFactory(AnswerFactory)
    position = factory.Sequence(lambda n: n)
    kind = "generation"
    output = factory.LazyFunction(lambda: {"text": "Wipe it, then one drop per link."})


def api_key_for(project: Project, *scopes: str) -> str:
    """A new raw API key for the project with `scopes` (all of them by default)."""
    _, raw = api_key_create(
        project=project, name="test", scopes=scopes or ("ingest", "feedback", "export", "train")
    )
    return raw


def answer_payload(external_id: str = "a-1", **overrides: Any) -> dict[str, Any]:
    """A valid ingestion payload with a three-stage trace."""
    payload: dict[str, Any] = {
        "external_id": external_id,
        "conversation": "c-1",
        "user_ref": "u-1",
        "prompt": [{"role": "user", "content": "How do I oil a bicycle chain?"}],
        "response": "Wipe the chain, then put **one drop** on each link [doc-1].",
        "model": "demo-large",
        "model_version": "2",
        "metadata": {"latency_ms": 812},
        "trace": [
            {"kind": "decomposition", "output": {"subqueries": ["chain oil", "how often"]}},
            {
                "kind": "retrieval",
                "parent": 0,
                "input": {"queries": ["chain oil"]},
                "output": {
                    "documents": [
                        {"id": "doc-1", "title": "Chains", "text": "Oil sparingly.", "score": 0.8}
                    ]
                },
            },
            {"kind": "generation", "parent": 1, "output": {"text": "Wipe the chain, then oil."}},
        ],
    }
    payload.update(overrides)
    return payload


def login(client: Client, project: Project, role: str, username: str | None = None) -> User:
    """Sign `client` in as a new member of `project` with `role`; returns the user."""
    user = UserFactory.create(**({"username": username} if username else {}))
    MembershipFactory.create(user=user, project=project, role=role)
    client.force_login(user)
    return user


def member(project: Project, role: str, username: str) -> Client:
    """A new client signed in as a new member `username` of `project` with `role`."""
    user = UserFactory.create(username=username)
    MembershipFactory.create(user=user, project=project, role=role)
    client = Client()
    client.force_login(user)
    return client
