from __future__ import annotations

import pytest

from accounts import services
from accounts.models import ApiCredential, CredentialStatus

pytestmark = pytest.mark.django_db


def _cred(owner, status, label="k", **fields):
    credential = ApiCredential(owner=owner, kind="dashscope", label=label, status=status, **fields)
    credential.set_key("sk-abcdefgh" + label)
    credential.save()
    return credential


def test_own_valid_key_wins(alice):
    _cred(None, CredentialStatus.VALID, "site", is_default=True)
    own = _cred(alice, CredentialStatus.VALID, "own")
    assert services.credential_resolve(alice) == own


def test_invalid_own_key_falls_back_to_the_site_default(alice):
    site = _cred(None, CredentialStatus.VALID, "site", is_default=True)
    _cred(alice, CredentialStatus.INVALID, "own")
    assert services.credential_resolve(alice) == site


def test_another_users_key_is_never_used(alice, bob):
    _cred(bob, CredentialStatus.VALID, "bob")
    assert services.credential_resolve(alice) is None


def test_no_key_at_all(alice):
    _cred(None, CredentialStatus.INVALID, "broken-site")
    assert services.credential_resolve(alice) is None


def test_env_keys_create_and_update_the_site_credential(db):
    services.site_credentials_sync_from_env({"DASHSCOPE_API_KEY": " sk-envenvenv1111 "})
    credential = ApiCredential.objects.get(owner=None)
    assert credential.api_key == "sk-envenvenv1111" and credential.is_default
    services.site_credentials_sync_from_env(
        {"DASHSCOPE_API_KEY": "sk-envenvenv2222", "DASHSCOPE_BASE_URL": "http://10.0.0.5:8080/v1",
         "OPENROUTER_API_KEY": "sk-or-v1-envenv3333"}
    )
    site = ApiCredential.objects.filter(owner=None)
    assert site.count() == 2
    dashscope = site.get(kind="dashscope")
    assert dashscope.api_key == "sk-envenvenv2222"
    assert dashscope.base_url == "http://10.0.0.5:8080/v1"
    assert dashscope.status == CredentialStatus.UNCHECKED
    assert not site.get(kind="openrouter").is_default
    assert services.credential_resolve(None) == dashscope


@pytest.mark.parametrize("own_status", [CredentialStatus.VALID, CredentialStatus.INVALID])
def test_resolving_costs_one_query_whichever_key_wins(alice, django_assert_num_queries, own_status):
    # Every reply resolves its key: the own-then-site fallback must not be a second round trip.
    site = _cred(None, CredentialStatus.VALID, "site", is_default=True)
    own = _cred(alice, own_status, "own")
    with django_assert_num_queries(1):
        resolved = services.credential_resolve(alice)
    assert resolved == (own if own_status == CredentialStatus.VALID else site)
