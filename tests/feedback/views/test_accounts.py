"""Password guessing is throttled: 10 failures for one username, or from one client address,
within the cool-off lock that username or address out, even for the right password, until the
cool-off has passed. Others log in as usual."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from django.utils import timezone

from tests.factories import UserFactory

PASSWORD = "correct horse battery"  # every factory user's
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"
COOL_OFF = timedelta(minutes=15)


def log_in(
    client: Client, username: str, password: str, address: str, path: str = "/accounts/login/"
) -> Any:
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(response: Any) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def retry_time(response: Any) -> datetime:
    """The moment the lockout page names, from its machine-readable <time>."""
    found = re.search(r'<time datetime="([^"]+)">', response.content.decode())
    assert found, "the lockout page says when to try again"
    return datetime.fromisoformat(found.group(1))


@pytest.mark.django_db
def test_ten_wrong_passwords_lock_the_username_even_against_the_right_one(client: Client) -> None:
    UserFactory.create(username="ada")

    wrong = [log_in(client, "ada", f"guess-{n}", ATTACKER) for n in range(9)]
    tenth = log_in(client, "ada", "guess-9", ATTACKER)
    before = timezone.now()
    right = log_in(client, "ada", PASSWORD, ATTACKER)
    after = timezone.now()

    assert [r.status_code for r in wrong] == [200] * 9
    assert all(b"didn't match" in r.content for r in wrong)
    assert tenth.status_code == 429
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    page = right.content.decode()
    assert "Too many failed logins" in page
    assert 'class="site-header"' in page  # the site's layout
    assert before + COOL_OFF <= retry_time(right) <= after + COOL_OFF
    assert right["Retry-After"] == str(int(COOL_OFF.total_seconds()))


@pytest.mark.django_db
def test_a_username_guessed_from_many_addresses_is_locked_and_other_users_are_not(
    client: Client,
) -> None:
    UserFactory.create(username="ada")
    UserFactory.create(username="bob")

    for n in range(10):
        log_in(client, "ada", "wrong", f"192.0.2.{n}")
    ada = log_in(client, "ada", PASSWORD, ELSEWHERE)
    bob = log_in(Client(), "bob", PASSWORD, ELSEWHERE)

    assert ada.status_code == 429
    assert signed_in(bob)


@pytest.mark.django_db
def test_an_address_guessing_many_usernames_is_locked_and_other_addresses_are_not(
    client: Client,
) -> None:
    UserFactory.create(username="ada")

    for n in range(10):
        log_in(client, f"nobody-{n}", "wrong", ATTACKER)
    from_attacker = log_in(client, "ada", PASSWORD, ATTACKER)
    from_elsewhere = log_in(Client(), "ada", PASSWORD, ELSEWHERE)

    assert from_attacker.status_code == 429
    assert signed_in(from_elsewhere)


@pytest.mark.django_db
def test_the_admin_login_is_locked_the_same_way(client: Client) -> None:
    UserFactory.create(username="root", is_staff=True, is_superuser=True)
    admin_login = "/admin/login/?next=/admin/"

    wrong = [log_in(client, "root", "wrong", ATTACKER, admin_login) for _ in range(9)]
    tenth = log_in(client, "root", "wrong", ATTACKER, admin_login)
    right = log_in(client, "root", PASSWORD, ATTACKER, admin_login)
    site_login = log_in(Client(), "root", PASSWORD, ELSEWHERE)

    assert [r.status_code for r in wrong] == [200] * 9
    assert tenth.status_code == 429
    assert right.status_code == 429
    assert "Too many failed logins" in right.content.decode()
    assert retry_time(right) > timezone.now()
    assert site_login.status_code == 429  # one lock for the username, whichever form


@pytest.mark.django_db
def test_the_lock_lifts_once_the_cool_off_has_passed(client: Client) -> None:
    UserFactory.create(username="ada")
    for n in range(10):
        log_in(client, "ada", f"guess-{n}", ATTACKER)
    assert log_in(client, "ada", PASSWORD, ATTACKER).status_code == 429

    # The cool-off passes: every recorded failure becomes older than it.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF - timedelta(seconds=1))
    again = log_in(client, "ada", PASSWORD, ATTACKER)

    assert signed_in(again)


@pytest.mark.django_db
def test_failures_older_than_the_cool_off_do_not_count(client: Client) -> None:
    UserFactory.create(username="ada")
    for n in range(9):
        log_in(client, "ada", f"guess-{n}", ATTACKER)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - COOL_OFF - timedelta(seconds=1))

    one_more = log_in(client, "ada", "guess-9", ATTACKER)
    right = log_in(client, "ada", PASSWORD, ATTACKER)

    assert one_more.status_code == 200
    assert signed_in(right)


@pytest.mark.django_db
def test_a_forged_x_forwarded_for_does_not_dodge_the_address_lock(client: Client) -> None:
    UserFactory.create(username="ada")

    for n in range(10):
        client.post(
            "/accounts/login/",
            {"username": f"nobody-{n}", "password": "wrong"},
            REMOTE_ADDR=ATTACKER,
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    right = log_in(client, "ada", PASSWORD, ATTACKER)

    assert right.status_code == 429
