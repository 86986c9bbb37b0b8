"""makecurator asks for the password twice and applies the site's password validators."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User

pytestmark = pytest.mark.django_db


def prompted(monkeypatch, *answers: str) -> None:
    replies = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(replies))


def test_the_password_is_asked_twice_and_must_match(monkeypatch):
    prompted(monkeypatch, "Curate-the-past-1", "Curate-the-past-2")
    with pytest.raises(CommandError, match="differ"):
        call_command("makecurator", "curator", stdout=io.StringIO())
    assert not User.objects.filter(username="curator").exists()

    prompted(monkeypatch, "Curate-the-past-1", "Curate-the-past-1")
    call_command("makecurator", "curator", stdout=io.StringIO())
    user = User.objects.get(username="curator")
    assert user.is_staff and user.check_password("Curate-the-past-1")


@pytest.mark.parametrize("password", ["short1", "12345678901", "password123", "curator1"])
def test_a_weak_password_is_refused_and_nothing_is_saved(monkeypatch, password):
    prompted(monkeypatch, password, password)
    with pytest.raises(CommandError, match="password refused"):
        call_command("makecurator", "curator", stdout=io.StringIO())
    assert not User.objects.filter(username="curator").exists()
    with pytest.raises(CommandError, match="password refused"):
        call_command("makecurator", "curator", "--password", password, stdout=io.StringIO())


def test_promoting_an_existing_user_keeps_their_password(monkeypatch):
    User.objects.create_user(username="scholar", password="Moon-over-river-7")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": pytest.fail("no prompt for an existing user"))
    call_command("makecurator", "scholar", stdout=io.StringIO())
    user = User.objects.get(username="scholar")
    assert user.is_staff and user.check_password("Moon-over-river-7")
