"""A user's base URL reaches only the address that was checked; site-wide credentials stay trusted."""

from __future__ import annotations

import pytest

from accounts.models import ApiCredential, CredentialStatus
from chat.streaming import provider_config
from guyue.lib.netguard import AddressGuard
from tests.fakes.dns import fake_dns  # noqa: F401  (fixture)
from tests.fakes.upstream import sse_reply
from tests.providers import KEY, PATH, Sleeps, reply_parts, run, shared_client  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("shared_client")]


def _credential(owner, base_url: str) -> ApiCredential:
    credential = ApiCredential(owner=owner, kind="openai_compatible", label="k", base_url=base_url,
                               status=CredentialStatus.VALID)  # fmt: skip
    credential.set_key(KEY)
    credential.save()
    return credential


@pytest.fixture
def rebinding_config(alice, upstream, fake_dns, settings):
    """A user's relay whose name is public when provider_config checks it (so the check passes) and
    loopback, where the upstream listens, when httpx connects."""
    settings.USER_BASE_URL_ALLOWED_HOSTS = []
    fake_dns.script("relay.example", ["93.184.216.34"], ["127.0.0.1"])
    return provider_config(_credential(alice, f"http://relay.example:{upstream.port}/v1"))


async def test_a_user_base_url_that_rebinds_to_loopback_is_never_called(rebinding_config, upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("不该出现")))
    sleeps = Sleeps()
    outcome = await run(rebinding_config, sleep=sleeps)
    assert outcome.error.kind == "bad_request" and not outcome.error.retryable
    assert "本机或内网" in outcome.error.message
    assert upstream.connections_accepted == 0 and upstream.requests == [] and sleeps.delays == []


def test_provider_config_guards_a_user_credential_only(alice, upstream, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]
    own = provider_config(_credential(alice, f"{upstream.url}/v1"))
    site = provider_config(_credential(None, f"{upstream.url}/v1"))
    assert own.guard == AddressGuard.allowing(["127.0.0.1"])
    assert site.guard is None  # a curator's endpoint may be a local model server


@pytest.fixture
def site_config(db, upstream, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = []
    return provider_config(_credential(None, f"{upstream.url}/v1"))


async def test_a_site_wide_credential_may_call_a_local_server(site_config, upstream):
    upstream.route("POST", PATH, sse_reply(reply_parts("本地")))
    outcome = await run(site_config)
    assert outcome.error is None and outcome.text == "本地"
