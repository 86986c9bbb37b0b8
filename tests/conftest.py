from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from tests.fakes.upstream import upstream  # noqa: F401  (fixture)
from tests.servers import postgres_url, redis_url  # noqa: F401  (fixtures)

PASSWORD = "ink-and-paper-2026"


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KEYCHECK_TIMEOUT = 2.0
    # A test's socket closing must not start a model call that outlives it; the tests of it opt in.
    settings.MEMORY_EXTRACT_ON_LEAVE = False
    cache.clear()
    yield
    cache.clear()


def _user(username: str) -> User:
    return User.objects.create_user(username=username, password=PASSWORD)


@pytest.fixture
def alice(db) -> User:
    return _user("alice")


@pytest.fixture
def bob(db) -> User:
    return _user("bob")


@pytest.fixture
def charlie(db) -> User:
    return _user("charlie")


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice) -> Client:
    return client_for(alice)


@pytest.fixture
def bob_client(bob) -> Client:
    return client_for(bob)


@pytest.fixture
def charlie_client(charlie) -> Client:
    return client_for(charlie)


@pytest.fixture
def local_provider(settings, upstream):
    """Point every provider default at the scripted upstream and allow it for user credentials."""
    settings.DASHSCOPE_REGIONS = {
        "beijing": f"{upstream.url}/bj/compatible-mode/v1",
        "singapore": f"{upstream.url}/sg/compatible-mode/v1",
    }
    settings.OPENROUTER_BASE_URL = f"{upstream.url}/api/v1"
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]
    return upstream
