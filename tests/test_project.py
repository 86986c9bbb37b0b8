"""Project-level behaviour: settings from the environment, deploy checks, log redaction, URL guard."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from guyue.lib.netguard import UnsafeURL, check_public_url
from guyue.lib.redact import RedactSecretsFilter, redact

ROOT = Path(__file__).resolve().parent.parent


def _run_manage(args, env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k not in ("DEBUG", "DATABASE_URL", "REDIS_URL")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


PRODUCTION = {
    "DJANGO_SECRET_KEY": "x7Qp-2vK9_mZ4rT8wY1nB6cH3jL5sD0fG9aE2uI7oP4kM1xV8zQ3tR6yW0bN5cJ",
    "FIELD_ENCRYPTION_KEY": "OP5XJm3pT7mN3qHAbNQ2b8m6v4Iuxd1HC8FiB9c3W2M=",
    "ALLOWED_HOSTS": "guyue.example",
    "DEBUG": "false",
}


def test_deploy_check_reports_only_the_documented_https_items():
    result = _run_manage(["check", "--deploy"], PRODUCTION)
    ids = {part for line in result.stderr.splitlines() for part in line.split() if part.startswith("(security.W")}
    documented = {"(security.W004)", "(security.W008)", "(security.W012)", "(security.W016)"}
    assert ids <= documented, result.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for item in documented:
        assert item.strip("()") in readme


def test_deploy_check_is_clean_with_https_on():
    result = _run_manage(["check", "--deploy"], {**PRODUCTION, "SECURE_HTTPS": "true", "SECURE_HSTS_PRELOAD": "true"})
    assert "security.W" not in result.stderr, result.stderr
    assert result.returncode == 0


def test_settings_refuse_to_start_without_secrets():
    result = _run_manage(["check"], {"DJANGO_SECRET_KEY": "", "FIELD_ENCRYPTION_KEY": "x", "DJANGO_SETTINGS_MODULE": "guyue.settings"})
    # An explicitly empty variable must not be filled in from the local .env either.
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_settings_follow_database_and_redis_urls():
    code = (
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']);"
        "print(s.CHANNEL_LAYERS['default']['BACKEND']);"
        "print(s.CACHES['default']['BACKEND'])"
    )
    env = {**PRODUCTION, "DATABASE_URL": "postgres://guyue:pw@db.internal:5432/guyue", "REDIS_URL": "redis://cache:6379/0"}
    result = _run_manage(["shell", "-c", code], env)
    assert result.stdout.split()[-3:] == [
        "django.db.backends.postgresql",
        "channels_redis.core.RedisChannelLayer",
        "django.core.cache.backends.redis.RedisCache",
    ], result.stderr
    result = _run_manage(["shell", "-c", code], PRODUCTION)
    assert result.stdout.split()[-3:] == [
        "django.db.backends.sqlite3",
        "channels.layers.InMemoryChannelLayer",
        "django.core.cache.backends.locmem.LocMemCache",
    ], result.stderr


def test_daphne_is_first_and_asgi_wraps_websockets():
    from django.conf import settings

    from guyue.asgi import application

    assert settings.INSTALLED_APPS[0] == "daphne"
    websocket = application.application_mapping["websocket"]
    assert type(websocket).__name__ == "SameOriginValidator"


@pytest.mark.parametrize(
    "text",
    ["Authorization: Bearer sk-live-abcdef123456", "key sk-abcdef1234567890 failed", "api_key=abc123secret"],
)
def test_redact_scrubs_key_shapes(text):
    cleaned = redact(text)
    assert "abcdef123456" not in cleaned and "abc123secret" not in cleaned
    assert "[REDACTED]" in cleaned


def test_the_log_filter_scrubs_messages_and_tracebacks():
    try:
        raise RuntimeError("upstream said Bearer sk-zzzzzzzzzzzz1")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "calling with %s", ("sk-yyyyyyyyyyyy2",), sys.exc_info())
    RedactSecretsFilter().filter(record)
    assert "sk-yyyy" not in record.getMessage()
    assert "sk-zzzz" not in record.exc_text


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://example.com", "http://127.0.0.1/", "http://0.0.0.0/", "http://[::ffff:127.0.0.1]/",
     "http://192.168.1.1/", "http://172.16.0.1/", "http://2130706433/", "http://localhost:8000/"],
)
def test_the_url_guard_rejects_internal_targets(url):
    with pytest.raises(UnsafeURL):
        check_public_url(url)


def test_the_url_guard_honours_the_operator_allowlist():
    check_public_url("http://127.0.0.1:8080/v1", ["127.0.0.1:8080"])
    with pytest.raises(UnsafeURL):
        check_public_url("http://127.0.0.1:8081/v1", ["127.0.0.1:8080"])


@pytest.mark.django_db
def test_pages_are_compressed_for_browsers_that_accept_it(client):
    import gzip

    from django.core.management import call_command

    call_command("seedpersonas", verbosity=0)
    plain = client.get("/")
    packed = client.get("/", HTTP_ACCEPT_ENCODING="gzip")
    assert packed["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed["Vary"]
    assert len(packed.content) * 3 < len(plain.content)
    assert gzip.decompress(packed.content).decode().count("figure-card") == plain.content.decode().count("figure-card")
