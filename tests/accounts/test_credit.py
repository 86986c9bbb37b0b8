"""Remaining credit, where the provider reports it: OpenRouter's /key, the task platform's balance."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import ApiCredential, CredentialStatus
from chat.providers.credit import fetch_credit
from guyue.lib.netguard import AddressGuard
from tests.fakes.upstream import Reply, json_reply

pytestmark = pytest.mark.django_db

KEY = "sk-or-v1-credit-test-0123456789"
OPENROUTER_KEY = {"data": {"label": "sk-or-v1-012...789", "limit": 20, "limit_remaining": 12.3, "usage": 7.7,
                           "is_free_tier": False, "limit_reset": None}}
BALANCE = {"success": True, "trace_id": "abc123def456", "data": [{
    "balance_cents": 100000, "balance_display": "¥1000.00", "tier": 2, "tier_name": "标准版",
    "usage_today": {"request_count": 50, "cost_cents": 500},
    "rate_limit": {"per_minute": 20, "per_day": 1000, "remaining_today": 950},
}]}


def _credential(owner, **fields) -> ApiCredential:
    credential = ApiCredential(owner=owner, label="我的", **{"kind": "openrouter", **fields})
    credential.set_key(KEY)
    credential.save()
    return credential


def _page(client) -> str:
    return client.get(reverse("accounts:settings")).content.decode()


def test_openrouter_reports_the_keys_remaining_credit(alice, alice_client, local_provider):
    local_provider.route("GET", "/api/v1/key", json_reply(200, OPENROUTER_KEY), repeat=True)
    credential = services.credential_validate(_credential(alice))
    assert credential.status == CredentialStatus.VALID
    credential.refresh_from_db()
    assert {k: credential.credit[k] for k in ("remaining", "used", "limit", "currency")} == {
        "remaining": 12.3, "used": 7.7, "limit": 20.0, "currency": "USD"}
    assert credential.credit["checked_at"]
    credit_call = local_provider.requests[-1]
    assert (credit_call.method, credit_call.path) == ("GET", "/api/v1/key")
    assert credit_call.headers["authorization"] == f"Bearer {KEY}"
    page = _page(alice_client)
    assert "余额 <strong>$12.30</strong>" in page and "额度 $20.00，已用 $7.70" in page


def test_a_key_without_a_cap_shows_what_it_used(alice, alice_client, local_provider):
    body = {"data": {"limit": None, "limit_remaining": None, "usage": 0.25}}
    local_provider.route("GET", "/api/v1/key", json_reply(200, body), repeat=True)
    services.credential_validate(_credential(alice))
    page = _page(alice_client)
    assert "已用 <strong>$0.25</strong>" in page and "余额" not in page


def test_the_task_platform_reports_its_balance(alice, alice_client, local_provider):
    local_provider.route("GET", "/relay/v1/models", json_reply(200, {"data": []}))
    local_provider.route("POST", "/relay/api/account/balance", json_reply(200, BALANCE))
    credential = services.credential_validate(
        _credential(alice, kind="openai_compatible", base_url=f"{local_provider.url}/relay/v1"))
    credential.refresh_from_db()
    assert credential.credit["remaining"] == 1000.0 and credential.credit["currency"] == "CNY"
    balance = local_provider.requests[-1]
    assert (balance.method, balance.path, balance.body) == ("POST", "/relay/api/account/balance", b"")
    assert balance.headers["authorization"] == f"Bearer {KEY}"
    assert "余额 <strong>¥1000.00</strong>" in _page(alice_client)


@pytest.mark.parametrize("reply", [
    json_reply(404, {"error": "not found"}),  # a relay without the endpoint
    json_reply(200, {"success": False, "error": {"code": "UNAUTHORIZED"}}),
    json_reply(200, {"object": "list"}),  # some other shape
    Reply(200, {"Content-Type": "text/html"}, body="<html>控制台</html>"),
], ids=["404", "not-success", "other-shape", "html"])
def test_a_provider_that_reports_nothing_shows_nothing(alice, alice_client, local_provider, reply):
    local_provider.route("GET", "/relay/v1/models", json_reply(200, {"data": []}))
    local_provider.route("POST", "/relay/api/account/balance", reply)
    credential = services.credential_validate(
        _credential(alice, kind="openai_compatible", base_url=f"{local_provider.url}/relay/v1"))
    assert credential.status == CredentialStatus.VALID and credential.last_error == ""
    credential.refresh_from_db()
    assert credential.credit is None
    page = _page(alice_client)
    assert "余额" not in page and "已用 <strong>" not in page and "有效" in page


def test_dashscope_is_not_asked(alice, local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(200, {"data": []}))
    credential = services.credential_validate(_credential(alice, kind="dashscope"))
    assert credential.status == CredentialStatus.VALID and credential.credit is None
    assert [r.path for r in local_provider.requests] == ["/bj/compatible-mode/v1/models"]


def test_an_invalid_key_fetches_no_credit(alice, local_provider):
    local_provider.route("GET", "/api/v1/key", json_reply(401, {"error": {"message": "No auth"}}))
    credential = services.credential_validate(_credential(alice))
    assert credential.status == CredentialStatus.INVALID and credential.credit is None
    assert len(local_provider.requests) == 1


def test_a_users_base_url_is_guarded(local_provider, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = []
    local_provider.route("POST", "/api/account/balance", json_reply(200, BALANCE))
    assert fetch_credit(kind="openai_compatible", base_url=f"{local_provider.url}/v1", api_key=KEY, timeout=2,
                        guard=AddressGuard()) is None
    assert local_provider.requests == []


def test_another_users_credit_is_not_on_my_page(alice, bob_client, local_provider):
    local_provider.route("GET", "/api/v1/key", json_reply(200, OPENROUTER_KEY), repeat=True)
    services.credential_validate(_credential(alice))
    assert "$12.30" not in _page(bob_client)
