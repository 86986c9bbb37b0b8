"""Connections by capability (docs/connections.md): which model each task runs on, the model list read
at the key check, warnings for names it does not list, and editing a saved connection."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import ApiCredential, CredentialStatus
from chat.streaming import provider_config
from personas.models import Persona
from tests.fakes.upstream import json_reply

pytestmark = pytest.mark.django_db

KEY = "sk-9f8e7d6c5b4a3210fedcba98a1b2"
NEW_KEY = "sk-1111222233334444aaaa"
LIST = {"object": "list", "data": [{"id": "qwen-plus"}, {"id": "qwen-turbo"}, {"id": "qwen-vl-plus"}]}


def _credential(owner, **fields) -> ApiCredential:
    credential = ApiCredential(owner=owner, label="k", **{"kind": "dashscope", "region": "beijing", **fields})
    credential.set_key(KEY)
    credential.save()
    return credential


@pytest.fixture
def listing(local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(200, LIST), repeat=True)
    return local_provider


def test_an_existing_key_keeps_doing_what_it_did(alice, local_provider):
    credential = _credential(alice)  # every capability field blank, as the migration leaves them
    assert credential.model_for("reply") == "qwen-plus"
    assert credential.model_for("image") == "wan2.2-t2i-flash"
    assert credential.model_for("summary") == "qwen-plus"  # no task model: the reply's
    for capability in ("vision", "speech", "transcription", "rerank"):
        assert not credential.offers(capability)
    assert provider_config(credential).protocol == "openai"


def test_background_tasks_run_on_the_task_model(alice, local_provider):
    credential = _credential(alice, text_model="qwen-max", task_model="qwen-turbo", vision_model="qwen-vl-plus")
    assert provider_config(credential).model == "qwen-max"
    for task in ("summary", "title", "extract", "judge", "callback"):
        assert provider_config(credential, task).model == "qwen-turbo"
    assert credential.model_for("vision") == "qwen-vl-plus" and credential.offers("vision")


def test_a_figures_own_model_applies_on_site_connections_only(alice, local_provider):
    persona = Persona(name="李白", slug="li-bai", chat_model="qwen-max-latest")  # not saved: only read
    site, own = _credential(None), _credential(alice, text_model="my-model")
    assert provider_config(site, persona=persona).model == "qwen-max-latest"
    assert provider_config(site, "summary", persona).model == "qwen-plus"  # only the reply
    assert provider_config(own, persona=persona).model == "my-model"


def test_the_check_stores_the_listed_models(alice, listing):
    credential = services.credential_validate(_credential(alice, text_model="qwen-plus"))
    assert credential.listed_ids() == ["qwen-plus", "qwen-turbo", "qwen-vl-plus"]
    assert credential.unlisted_models() == []


def test_openrouter_lists_its_public_models_with_modalities(alice, local_provider):
    local_provider.route("GET", "/api/v1/key", json_reply(200, {"data": {"limit": None, "usage": 0}}))
    local_provider.route("GET", "/api/v1/models", json_reply(200, {"data": [
        {"id": "qwen/qwen-plus", "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]}},
        {"id": "qwen/qwen2.5-vl-72b-instruct",
         "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]}},
    ]}))
    credential = services.credential_validate(_credential(alice, kind="openrouter", vision_model="qwen/qwen-vl"))
    assert credential.status == CredentialStatus.VALID
    assert credential.listed_models[1] == {"id": "qwen/qwen2.5-vl-72b-instruct", "input": ["text", "image"],
                                           "output": ["text"]}
    assert credential.unlisted_models() == [("识图模型", "qwen/qwen-vl")]
    # The public list is asked without the key.
    assert "authorization" not in local_provider.requests[1].headers


def test_a_mistyped_model_is_saved_with_a_warning(alice_client, listing):
    response = alice_client.post(reverse("accounts:credential_add"), {
        "kind": "dashscope", "label": "百炼", "region": "beijing", "key": KEY, "text_model": "qwen-plsu",
    }, follow=True)
    page = response.content.decode()
    assert ApiCredential.objects.get().text_model == "qwen-plsu"
    assert "文本模型「qwen-plsu」不在该接口列出的模型中" in page


def test_no_warning_when_the_provider_lists_nothing(alice, local_provider):
    local_provider.route("GET", "/bj/compatible-mode/v1/models", json_reply(200, {"object": "list"}))
    credential = services.credential_validate(_credential(alice, text_model="anything"))
    assert credential.status == CredentialStatus.VALID and credential.unlisted_models() == []


def test_a_model_name_with_spaces_is_refused(alice_client):
    response = alice_client.post(reverse("accounts:credential_add"), {
        "kind": "dashscope", "label": "百炼", "region": "beijing", "key": KEY, "vision_model": "qwen vl",
    })
    assert response.status_code == 400 and "模型名称不能包含空格" in response.content.decode()
    assert not ApiCredential.objects.exists()


def _edit(client, credential, **fields):
    prefix = f"c{credential.pk}"
    data = {"label": credential.label, "region": credential.region, "base_url": credential.base_url,
            "chat_protocol": credential.chat_protocol, "confirm": "yes", **fields}
    return client.post(reverse("accounts:credential_edit", args=[credential.pk]),
                       {f"{prefix}-{name}": value for name, value in data.items()})


def test_editing_models_keeps_the_key_and_checks_again(alice_client, alice, listing):
    credential = _credential(alice, status=CredentialStatus.VALID)
    response = _edit(alice_client, credential, text_model="qwen-turbo", vision_model="qwen-vl-plus")
    assert response.status_code == 302
    credential.refresh_from_db()
    assert (credential.text_model, credential.vision_model, credential.api_key) == ("qwen-turbo", "qwen-vl-plus", KEY)
    assert credential.status == CredentialStatus.VALID and listing.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_the_edit_form_offers_the_listed_models(alice_client, alice, listing):
    services.credential_validate(_credential(alice))
    page = alice_client.get(reverse("accounts:settings")).content.decode()
    assert 'list="models-' in page and '<option value="qwen-vl-plus">' in page


def test_a_new_address_needs_the_key_typed_again(alice_client, alice, local_provider, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]
    credential = _credential(alice, kind="openai_compatible", base_url=f"{local_provider.url}/a/v1")
    response = _edit(alice_client, credential, base_url=f"{local_provider.url}/b/v1")
    assert response.status_code == 400 and "更改接口地址需要重新填写密钥" in response.content.decode()
    credential.refresh_from_db()
    assert credential.base_url.endswith("/a/v1") and local_provider.requests == []  # the old key went nowhere

    local_provider.route("GET", "/b/v1/models", json_reply(200, {"data": []}))
    response = _edit(alice_client, credential, base_url=f"{local_provider.url}/b/v1", key=NEW_KEY)
    credential.refresh_from_db()
    assert credential.base_url.endswith("/b/v1") and credential.api_key == NEW_KEY
    assert local_provider.requests[0].headers["authorization"] == f"Bearer {NEW_KEY}"


def test_an_edit_without_confirmation_changes_nothing(alice_client, alice):
    credential = _credential(alice)
    response = _edit(alice_client, credential, text_model="qwen-turbo", confirm="")
    assert response.status_code == 400 and "请确认修改" in response.content.decode()
    credential.refresh_from_db()
    assert credential.text_model == ""


def test_another_users_connection_cannot_be_edited(bob_client, alice):
    credential = _credential(alice)
    assert _edit(bob_client, credential, text_model="qwen-turbo").status_code == 404
    credential.refresh_from_db()
    assert credential.text_model == ""
