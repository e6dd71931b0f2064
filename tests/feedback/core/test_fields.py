"""Secrets at rest: generator API keys and connector secrets are stored as Fernet tokens in
PostgreSQL, read back as the text, survive a key rotation, and the data migrations encrypt the
ones stored before."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from feedback import services
from feedback.core import crypto
from feedback.models import PipelineConnector, Project
from rewardmodels.models import Generator
from rewardmodels.services import c3po as c3po_services

CONNECTOR_SECRET = "conn-secret-6d1f0a"
API_KEY = "sk-live-93b2c7e4"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def raw_column(table: str, column: str, pk: int) -> str:
    """What PostgreSQL holds, bypassing the model field."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        value: str = cursor.fetchone()[0]
    return value


def save_connector(project: Project, secret: str | None = CONNECTOR_SECRET) -> PipelineConnector:
    return services.connector_save(
        project=project, url="https://pipeline.example.org", secret=secret, timeout_seconds=5
    )


def save_generator(project: Project, api_key: str | None = API_KEY) -> Generator:
    return c3po_services.generator_save(
        project=project,
        name="remote",
        base_url="https://llm.example.org/v1",
        model="m",
        api_key=api_key,
    )


def stored_connector(project: Project) -> str:
    connector = PipelineConnector.objects.get(project=project)
    return raw_column("feedback_pipelineconnector", "secret", connector.pk)


def stored_generator(project: Project) -> str:
    generator = Generator.objects.get(project=project)
    return raw_column("rewardmodels_generator", "api_key", generator.pk)


# --- at rest ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_connector_secret_is_encrypted_in_the_database(project: Project) -> None:
    # when an owner saves a connector with a secret
    save_connector(project)

    # then PostgreSQL holds a token that only the key opens, and the model reads the secret
    raw = stored_connector(project)
    assert CONNECTOR_SECRET not in raw
    assert Fernet(crypto.configured_keys()[0]).decrypt(raw.encode()).decode() == CONNECTOR_SECRET
    assert PipelineConnector.objects.get(project=project).secret == CONNECTOR_SECRET


@pytest.mark.django_db
def test_the_generator_key_is_encrypted_in_the_database_and_never_shown(
    project: Project, api: APIClient
) -> None:
    # when a generator is registered through the API with a key
    response = api.post(
        "/api/v1/generators",
        {
            "name": "remote",
            "base_url": "https://llm.example.org/v1",
            "model": "m",
            "api_key": API_KEY,
        },
        format="json",
    )

    # then the API says only that a key is set; PostgreSQL holds a token; the model reads the key
    assert response.status_code == 200
    assert response.json()["has_api_key"] is True
    assert API_KEY not in response.content.decode()
    raw = stored_generator(project)
    assert API_KEY not in raw
    assert Fernet(crypto.configured_keys()[0]).decrypt(raw.encode()).decode() == API_KEY
    assert Generator.objects.get(project=project).api_key == API_KEY


@pytest.mark.django_db
def test_the_same_secret_is_stored_differently_each_time(project: Project) -> None:
    save_connector(project)
    first = stored_connector(project)

    save_connector(project)

    assert stored_connector(project) != first


@pytest.mark.django_db
def test_no_secret_is_stored_as_empty(project: Project) -> None:
    save_generator(project, api_key="")

    assert stored_generator(project) == ""
    assert Generator.objects.get(project=project).api_key == ""


@pytest.mark.django_db
def test_an_encrypted_column_cannot_be_searched(project: Project) -> None:
    # A token differs on every write: an equality filter would silently match nothing.
    save_generator(project)

    with pytest.raises(FieldError):
        list(Generator.objects.filter(api_key=API_KEY))
    assert Generator.objects.filter(api_key__isnull=False).count() == 1


# --- keys and rotation -----------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_key_setting_the_key_is_derived_from_the_secret_key(
    project: Project, settings: Any
) -> None:
    # given no FIELD_ENCRYPTION_KEY
    settings.FIELD_ENCRYPTION_KEY = ""

    # when a secret is stored
    save_connector(project)

    # then it opens with the key derived from SECRET_KEY, which is not SECRET_KEY itself
    derived = crypto.derived_key(settings.SECRET_KEY)
    assert Fernet(derived).decrypt(stored_connector(project).encode()).decode() == CONNECTOR_SECRET
    assert settings.SECRET_KEY not in derived


@pytest.mark.django_db
def test_a_rotated_key_still_reads_old_secrets_and_writes_with_the_new_key(
    project: Project, settings: Any
) -> None:
    # given secrets stored under the old key
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    save_connector(project)
    save_generator(project)

    # when the key is rotated, the old one kept for reading
    settings.FIELD_ENCRYPTION_KEY = NEW_KEY
    settings.FIELD_ENCRYPTION_OLD_KEYS = [OLD_KEY]

    # then the old secrets still read
    assert PipelineConnector.objects.get(project=project).secret == CONNECTOR_SECRET
    assert Generator.objects.get(project=project).api_key == API_KEY
    # and a secret written now is under the new key only
    save_generator(project, api_key="sk-live-rotated-1")
    raw = stored_generator(project)
    assert Fernet(NEW_KEY).decrypt(raw.encode()).decode() == "sk-live-rotated-1"
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY).decrypt(raw.encode())


@pytest.mark.django_db
def test_secrets_under_a_key_that_is_gone_load_as_unreadable_not_misread(
    project: Project, settings: Any
) -> None:
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    save_connector(project)

    settings.FIELD_ENCRYPTION_KEY = NEW_KEY  # the old key not kept

    secret = PipelineConnector.objects.get(project=project).secret
    assert isinstance(secret, crypto.UnreadableSecret)
    assert not secret  # nothing that could be sent
    assert stored_connector(project) not in repr(secret)


@pytest.mark.django_db
def test_reencrypting_moves_every_secret_to_the_new_key(project: Project, settings: Any) -> None:
    # given secrets under the old key, and the key rotated
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    save_connector(project)
    save_generator(project)
    settings.FIELD_ENCRYPTION_KEY = NEW_KEY
    settings.FIELD_ENCRYPTION_OLD_KEYS = [OLD_KEY]

    # when the stored secrets are encrypted again
    out = io.StringIO()
    call_command("secrets_reencrypt", stdout=out)

    # then they open with the new key alone, so the old one can be dropped
    assert out.getvalue().strip() == "Encrypted 2 row(s) with the current key."
    settings.FIELD_ENCRYPTION_OLD_KEYS = []
    assert Fernet(NEW_KEY).decrypt(stored_connector(project).encode()).decode() == CONNECTOR_SECRET
    assert Fernet(NEW_KEY).decrypt(stored_generator(project).encode()).decode() == API_KEY
    assert PipelineConnector.objects.get(project=project).secret == CONNECTOR_SECRET


@pytest.mark.django_db
def test_reencrypting_reports_the_secrets_no_key_opens_and_leaves_them_as_they_are(
    project: Project, other_project: Project, settings: Any
) -> None:
    # given a secret under a key that is gone, one under a kept old key, and a generator without
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    save_generator(project)
    lost_token = stored_generator(project)
    settings.FIELD_ENCRYPTION_KEY = OLD_KEY
    save_connector(project)
    save_generator(other_project, api_key="")
    settings.FIELD_ENCRYPTION_KEY = NEW_KEY
    settings.FIELD_ENCRYPTION_OLD_KEYS = [OLD_KEY]

    # when the stored secrets are encrypted again
    out, err = io.StringIO(), io.StringIO()
    call_command("secrets_reencrypt", stdout=out, stderr=err)

    # then the readable one is under the new key, the empty one stays empty, and the lost one
    # is named and left as it was
    generator = Generator.objects.get(project=project)
    assert out.getvalue().strip() == "Encrypted 1 row(s) with the current key."
    assert err.getvalue().splitlines()[-1] == f"rewardmodels.Generator {generator.pk} api_key"
    assert "enter them again" in err.getvalue()
    assert Fernet(NEW_KEY).decrypt(stored_connector(project).encode()).decode() == CONNECTOR_SECRET
    assert stored_generator(other_project) == ""
    assert stored_generator(project) == lost_token


@pytest.mark.django_db
def test_changing_the_secret_key_keeps_secrets_readable_through_its_fallbacks(
    project: Project, settings: Any
) -> None:
    settings.FIELD_ENCRYPTION_KEY = ""
    save_connector(project)
    old_secret_key = settings.SECRET_KEY

    settings.SECRET_KEY = "a-new-secret-key-for-this-test-0123456789abcdef"
    settings.SECRET_KEY_FALLBACKS = [old_secret_key]

    assert PipelineConnector.objects.get(project=project).secret == CONNECTOR_SECRET


def test_a_key_that_is_not_a_fernet_key_is_a_configuration_error(settings: Any) -> None:
    settings.FIELD_ENCRYPTION_KEY = "not-a-fernet-key"

    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        crypto.encrypt("x")


# --- the data migrations ---------------------------------------------------------------------

BEFORE = [("feedback", "0006_exposure_time_index"), ("rewardmodels", "0002_c3po")]


@pytest.fixture
def migrated_back() -> Iterator[MigrationExecutor]:
    """The schema as it was before secrets were encrypted; the latest schema again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        yield executor
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_migrations_encrypt_the_secrets_stored_before(
    migrated_back: MigrationExecutor,
) -> None:
    # given a connector and generators stored in plain text by the old schema
    old = migrated_back.loader.project_state(BEFORE).apps
    project = old.get_model("feedback", "Project").objects.create(slug="acme", name="Acme")
    connector = old.get_model("feedback", "PipelineConnector").objects.create(
        project=project, url="https://pipeline.example.org", secret=CONNECTOR_SECRET
    )
    old_generator = old.get_model("rewardmodels", "Generator")
    with_key = old_generator.objects.create(
        project=project, name="a", base_url="https://llm.example.org/v1", model="m", api_key=API_KEY
    )
    without_key = old_generator.objects.create(
        project=project, name="b", base_url="https://llm.example.org/v1", model="m", api_key=""
    )
    assert raw_column("rewardmodels_generator", "api_key", with_key.pk) == API_KEY

    # when the migrations run
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then the stored secrets are tokens, and the models read them as before
    raw_secret = raw_column("feedback_pipelineconnector", "secret", connector.pk)
    raw_key = raw_column("rewardmodels_generator", "api_key", with_key.pk)
    assert CONNECTOR_SECRET not in raw_secret
    assert API_KEY not in raw_key
    assert crypto.decrypt(raw_secret) == CONNECTOR_SECRET
    assert PipelineConnector.objects.get(pk=connector.pk).secret == CONNECTOR_SECRET
    assert Generator.objects.get(pk=with_key.pk).api_key == API_KEY
    assert Generator.objects.get(pk=without_key.pk).api_key == ""

    # and migrating back gives the plain text back
    MigrationExecutor(connection).migrate(BEFORE)
    assert raw_column("feedback_pipelineconnector", "secret", connector.pk) == CONNECTOR_SECRET
    assert raw_column("rewardmodels_generator", "api_key", with_key.pk) == API_KEY
