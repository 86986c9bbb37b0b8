from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.urls import reverse

from accounts.models import ApiCredential, CredentialStatus, mask_key
from tests.fakes.upstream import json_reply

pytestmark = pytest.mark.django_db

KEY = "sk-9f8e7d6c5b4a3210fedcba98a1b2"
MODELS_OK = {"object": "list", "data": [{"id": "qwen-plus"}]}


def _add(client, key=KEY, **fields):
    data = {"kind": "dashscope", "label": "我的百炼", "region": "beijing", "base_url": "",
            "text_model": "", "image_model": "", "key": key, **fields}
    return client.post(reverse("accounts:credential_add"), data)


@pytest.fixture
def valid_upstream(local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(200, MODELS_OK), repeat=True)
    return local_provider


def test_mask_key():
    assert mask_key(KEY) == "sk-…a1b2"
    assert mask_key("sk-or-v1-0123456789abcdef") == "sk-or-…cdef"
    assert mask_key("abcdefgh1234") == "…1234"


def test_it_adds_a_key_and_shows_it_masked(alice_client, alice, valid_upstream):
    response = _add(alice_client)
    assert response.status_code == 302
    credential = ApiCredential.objects.get(owner=alice)
    assert credential.status == CredentialStatus.VALID
    assert credential.validated_at is not None
    page = alice_client.get(reverse("accounts:settings")).content.decode()
    assert "sk-…a1b2" in page
    assert KEY not in page
    assert KEY[3:-4] not in page
    # The validation call carried the key, as a bearer token.
    assert valid_upstream.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_the_key_is_encrypted_at_rest(alice_client, valid_upstream):
    _add(alice_client)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apicredential")
        row = cursor.fetchone()
    assert KEY not in " ".join(str(value) for value in row)
    assert ApiCredential.objects.get().api_key == KEY


def test_it_trims_spaces_and_newlines_from_keys(alice_client, valid_upstream):
    _add(alice_client, key=f"  {KEY[:10]}\n{KEY[10:]} \r\n")
    assert ApiCredential.objects.get().api_key == KEY


@pytest.mark.parametrize(
    ("key", "message"),
    [("", "请填写密钥"), ("   \n ", "请填写密钥"), ("sk-1", "密钥太短"), ("sk-密钥密钥密钥密钥", "只能包含")],
)
def test_it_rejects_bad_keys_with_a_chinese_message(alice_client, key, message):
    response = _add(alice_client, key=key)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiCredential.objects.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "请输入有效的网址"),
        ("ftp://example.com/v1", "只能以 http"),
        ("http://127.0.0.1:9/v1", "本机或内网"),
        ("http://localhost/v1", "本机或内网"),
        ("http://10.0.0.8/v1", "本机或内网"),
        ("http://169.254.169.254/latest", "本机或内网"),
        ("http://[::1]/v1", "本机或内网"),
        ("http://100.100.100.200/latest/meta-data", "本机或内网"),  # Alibaba Cloud metadata (100.64.0.0/10)
        ("http://[2002:a9fe:a9fe::1]/v1", "本机或内网"),  # 6to4 around 169.254.169.254
        ("http://[fec0::1]/v1", "本机或内网"),  # site-local
        ("https://api.example.com/v1?x=", "不能包含“?”或“#”"),  # would push /models into the query
        ("https://api.example.com/v1#top", "不能包含“?”或“#”"),
        ("https://me:secret@api.example.com/v1", "不能包含用户名或密码"),
    ],
)
def test_it_rejects_unsafe_or_invalid_base_urls(alice_client, url, message):
    response = _add(alice_client, kind="openai_compatible", base_url=url)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiCredential.objects.exists()


def test_openai_compatible_needs_a_base_url(alice_client):
    response = _add(alice_client, kind="openai_compatible")
    assert response.status_code == 400
    assert "需要填写接口地址" in response.content.decode()


def test_it_saves_an_invalid_key_with_its_status(alice_client, local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(401, {"error": {"code": "invalid_api_key"}}), repeat=True)
    local_provider.route("GET", "/sg/compatible-mode/v1/models", json_reply(401, {"error": {"code": "invalid_api_key"}}), repeat=True)
    _add(alice_client)
    credential = ApiCredential.objects.get()
    assert credential.status == CredentialStatus.INVALID
    page = alice_client.get(reverse("accounts:settings")).content.decode()
    assert "密钥无效" in page


def test_htmx_add_returns_the_partial(alice_client, valid_upstream):
    response = alice_client.post(
        reverse("accounts:credential_add"),
        {"kind": "dashscope", "label": "百炼", "region": "beijing", "key": KEY},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="credentials"')
    assert "<html" not in body
    assert "已保存「百炼」：有效" in body


def _credential_for(user, key=KEY, **fields):
    credential = ApiCredential(owner=user, kind="dashscope", label=fields.pop("label", "k"), **fields)
    credential.set_key(key)
    credential.status = CredentialStatus.VALID
    credential.save()
    return credential


def test_it_replaces_a_key_after_confirmation(alice_client, alice, valid_upstream):
    credential = _credential_for(alice, key="sk-oldoldoldold0000")
    new_key = "sk-newnewnewnew9999"
    url = reverse("accounts:credential_replace", args=[credential.pk])
    response = alice_client.post(url, {"key": new_key})  # no confirmation
    assert response.status_code == 400
    credential.refresh_from_db()
    assert credential.api_key == "sk-oldoldoldold0000"
    response = alice_client.post(url, {"key": new_key, "confirm": "yes"})
    assert response.status_code == 302
    credential.refresh_from_db()
    assert credential.api_key == new_key
    assert credential.key_hint == "sk-…9999"


def test_it_deletes_a_key_after_confirmation(alice_client, alice):
    credential = _credential_for(alice)
    url = reverse("accounts:credential_delete", args=[credential.pk])
    page = alice_client.get(url).content.decode()
    assert "确定删除" in page and KEY not in page
    alice_client.post(url)  # no confirmation: nothing happens
    assert ApiCredential.objects.filter(pk=credential.pk).exists()
    response = alice_client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert not ApiCredential.objects.filter(pk=credential.pk).exists()


@pytest.mark.parametrize(
    ("name", "method", "data"),
    [
        ("accounts:credential_replace", "post", {"key": "sk-stolenstolen00", "confirm": "yes"}),
        ("accounts:credential_revalidate", "post", {}),
        ("accounts:credential_delete", "post", {"confirm": "yes"}),
        ("accounts:credential_delete", "get", {}),
    ],
)
def test_another_users_credential_is_a_404(bob_client, charlie_client, alice, name, method, data):
    credential = _credential_for(alice)
    for client in (bob_client, charlie_client):
        response = getattr(client, method)(reverse(name, args=[credential.pk]), data)
        assert response.status_code == 404
    credential.refresh_from_db()
    assert credential.api_key == KEY


def test_the_settings_page_lists_only_my_credentials(bob_client, alice, bob):
    _credential_for(alice, label="alice-key")
    _credential_for(bob, key="sk-bobbobbobbob7777", label="bob-key")
    page = bob_client.get(reverse("accounts:settings")).content.decode()
    assert "bob-key" in page and "alice-key" not in page


def test_settings_pages_need_login(client):
    assert client.get(reverse("accounts:settings")).status_code == 302
    assert client.post(reverse("accounts:credential_add"), {}).status_code == 302


def test_the_key_never_reaches_the_logs(alice_client, local_provider, caplog):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(500, {"error": {"message": "boom"}}), repeat=True)
    with caplog.at_level(logging.DEBUG):
        _add(alice_client)
    assert KEY not in caplog.text
    assert ApiCredential.objects.get().status == CredentialStatus.ERROR


def test_key_checks_are_rate_limited_per_user(alice_client, alice, valid_upstream, settings):
    settings.KEYCHECK_LIMIT_PER_10_MINUTES = 2
    credential = _credential_for(alice)
    url = reverse("accounts:credential_revalidate", args=[credential.pk])
    assert alice_client.post(url).status_code == 302
    assert alice_client.post(url).status_code == 302
    response = alice_client.post(url)
    assert response.status_code == 429
    assert "验证过于频繁" in response.content.decode()
    assert len(valid_upstream.requests) == 2
