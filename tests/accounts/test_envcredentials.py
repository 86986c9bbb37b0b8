"""`envcredentials --check` (run by `make run` and `make serve` at start-up) validates the
environment's site-wide key, and the admin's key list shows the outcome."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import ApiCredential
from tests.fakes.upstream import json_reply

pytestmark = pytest.mark.django_db

MODELS = "/bj/compatible-mode/v1/models"


def run(monkeypatch, *args: str) -> str:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env0123456789abcdef")
    out = io.StringIO()
    call_command("envcredentials", *args, stdout=out)
    return out.getvalue()


def test_a_good_key_is_valid_after_start_up(monkeypatch, local_provider):
    local_provider.route("GET", MODELS, json_reply(200, {"data": [{"id": "qwen-plus"}]}))
    assert run(monkeypatch, "--check").strip().endswith(": valid")
    assert ApiCredential.objects.get(owner=None).status == "valid"
    assert [r.path for r in local_provider.requests] == [MODELS]


def test_a_refused_key_is_marked_and_shown_in_the_admin(monkeypatch, local_provider, admin_client):
    local_provider.route("GET", MODELS, json_reply(401, {"error": {"message": "Invalid API-key provided."}}))
    assert ": invalid (" in run(monkeypatch, "--check")
    credential = ApiCredential.objects.get(owner=None)
    assert credential.status == "invalid" and credential.last_error
    page = admin_client.get("/admin/accounts/apicredential/").content.decode()
    assert credential.label in page and "密钥无效" in page


def test_an_unreachable_provider_leaves_the_key_in_use(monkeypatch, local_provider, settings):
    settings.DASHSCOPE_REGIONS = {"beijing": "http://127.0.0.1:9/bj/compatible-mode/v1",
                                  "singapore": "http://127.0.0.1:9/sg/compatible-mode/v1"}
    run(monkeypatch, "--check")
    credential = ApiCredential.objects.get(owner=None)
    assert credential.status == "unchecked" and credential.last_error.startswith("启动时无法连接服务商")


def test_without_check_no_request_is_made(monkeypatch, local_provider):
    run(monkeypatch)
    assert ApiCredential.objects.get(owner=None).status == "unchecked" and local_provider.requests == []
