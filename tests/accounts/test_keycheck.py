"""Validation against a scripted upstream: a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import ApiCredential, CredentialStatus
from tests.fakes.dns import fake_dns  # noqa: F401  (fixture)
from tests.fakes.upstream import Reply, json_reply

pytestmark = pytest.mark.django_db

KEY = "sk-0123456789abcdefa1b2"
INVALID = {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                     "param": None, "code": "invalid_api_key"}, "request_id": "b02e047c"}


def _credential(owner, **fields) -> ApiCredential:
    credential = ApiCredential(owner=owner, label="k", **{"kind": "dashscope", "region": "beijing", **fields})
    credential.set_key(KEY)
    credential.save()
    return credential


def test_a_valid_dashscope_key(alice, local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(200, {"data": [{"id": "qwen-plus"}]}))
    credential = services.credential_validate(_credential(alice))
    assert credential.status == CredentialStatus.VALID
    assert credential.last_error == ""
    request = local_provider.requests[0]
    assert request.method == "GET" and request.headers["authorization"] == f"Bearer {KEY}"


def test_an_invalid_key(alice, local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(401, INVALID))
    local_provider.route("GET", "/sg/compatible-mode/v1/models", json_reply(401, INVALID))
    credential = services.credential_validate(_credential(alice))
    assert credential.status == CredentialStatus.INVALID
    assert "密钥无效" in credential.last_error
    assert KEY not in credential.last_error


def test_a_key_from_the_other_region(alice, local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(401, INVALID))
    local_provider.route("GET", "/sg/compatible-mode/v1/models", json_reply(200, {"data": []}))
    credential = services.credential_validate(_credential(alice))
    assert credential.status == CredentialStatus.WRONG_REGION
    assert "国际（新加坡）" in credential.last_error


def test_a_timeout_is_unreachable(alice, local_provider, settings):
    settings.KEYCHECK_TIMEOUT = 0.3
    local_provider.route("GET", "/bj/compatible-mode/v1/models", Reply(200, body=b"{}", header_delay=2.0))
    credential = services.credential_validate(_credential(alice))
    assert credential.status == CredentialStatus.UNREACHABLE
    assert "超时" in credential.last_error


def test_a_closed_port_is_unreachable(alice, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]
    credential = services.credential_validate(_credential(alice, kind="openai_compatible", base_url="http://127.0.0.1:9/v1"))
    assert credential.status == CredentialStatus.UNREACHABLE


def test_openrouter_checks_the_key_endpoint(alice, local_provider):
    local_provider.route("GET", "/api/v1/key", json_reply(200, {"data": {"limit": None, "usage": 0}}))
    credential = services.credential_validate(_credential(alice, kind="openrouter"))
    assert credential.status == CredentialStatus.VALID
    assert local_provider.requests[0].path == "/api/v1/key"


def test_openai_compatible_checks_models(alice, local_provider):
    local_provider.route("GET", "/relay/v1/models", json_reply(200, {"data": []}))
    credential = services.credential_validate(
        _credential(alice, kind="openai_compatible", base_url=f"{local_provider.url}/relay/v1")
    )
    assert credential.status == CredentialStatus.VALID


def test_a_user_base_url_is_checked_again_before_the_call(alice, upstream, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = []
    credential = services.credential_validate(
        _credential(alice, kind="openai_compatible", base_url=f"{upstream.url}/v1")
    )
    assert credential.status == CredentialStatus.ERROR
    assert "本机或内网" in credential.last_error
    assert upstream.requests == []


def test_a_site_wide_credential_may_point_at_a_local_server(db, upstream, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = []
    upstream.route("GET", "/v1/models", json_reply(200, {"data": []}))
    credential = services.credential_validate(_credential(None, kind="openai_compatible", base_url=f"{upstream.url}/v1"))
    assert credential.status == CredentialStatus.VALID


def test_an_unresolvable_host_is_unreachable(alice, settings):
    credential = services.credential_validate(
        _credential(alice, kind="openai_compatible", base_url="https://no-such-host.invalid/v1")
    )
    assert credential.status == CredentialStatus.UNREACHABLE
    assert "无法解析" in credential.last_error


def test_a_user_base_url_that_rebinds_after_the_check_is_refused_at_connect(alice, upstream, settings, fake_dns):
    # Public for the check before the call, loopback (where the upstream listens) for the connection.
    settings.USER_BASE_URL_ALLOWED_HOSTS = []
    fake_dns.script("relay.example", ["93.184.216.34"], ["127.0.0.1"])
    upstream.route("GET", "/v1/models", json_reply(200, {"data": []}))
    credential = services.credential_validate(
        _credential(alice, kind="openai_compatible", base_url=f"http://relay.example:{upstream.port}/v1")
    )
    assert credential.status == CredentialStatus.ERROR
    assert "本机或内网" in credential.last_error
    assert upstream.connections_accepted == 0 and fake_dns.count("relay.example") == 2


def test_a_stored_base_url_with_a_query_is_refused_before_the_call(alice, upstream, settings):
    # Saved before the form refused it: `…/v1?x=` would send the key to `/v1?x=/models`.
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]
    upstream.route("GET", "/v1", json_reply(200, {"data": []}))
    credential = services.credential_validate(
        _credential(alice, kind="openai_compatible", base_url=f"{upstream.url}/v1?x=")
    )
    assert credential.status == CredentialStatus.ERROR
    assert "不能包含" in credential.last_error and upstream.requests == []
