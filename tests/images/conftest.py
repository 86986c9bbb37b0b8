from __future__ import annotations

import pytest

from accounts.models import ApiCredential, CredentialKind, CredentialStatus
from chat.media import worker as worker_module
from chat.media.worker import Worker, WorkerOptions
from chat.services import conversation_start
from tests.personas.factories import make_persona

SITE_KEY = "sk-site-image-0123456789abcdef"


@pytest.fixture(autouse=True)
def _image_settings(settings):
    settings.IMAGE_DOWNLOAD_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture
def libai(db):
    return make_persona("libai", "李白")


@pytest.fixture
def conversation(alice, libai):
    return conversation_start(owner=alice, persona=libai)


def site_credential(kind: str, base_url: str, model: str = "") -> ApiCredential:
    credential = ApiCredential(owner=None, kind=kind, label=f"site {kind}", base_url=base_url, image_model=model,
                               status=CredentialStatus.VALID, is_default=True)
    credential.set_key(SITE_KEY)
    credential.save()
    return credential


@pytest.fixture
def dashscope(upstream, db):
    """A site-wide DashScope key whose compatible base is the scripted upstream's /bj/ prefix."""
    return site_credential(CredentialKind.DASHSCOPE, f"{upstream.url}/bj/compatible-mode/v1")


def fast_options(**overrides) -> WorkerOptions:
    values = {"concurrency": 1, "idle": 0.05, "stale": 30.0, "poll_interval": 0.01, "poll_max_interval": 0.02,
              "poll_deadline": 5.0, "submits_per_second": 100}
    return WorkerOptions(**{**values, **overrides})


@pytest.fixture
def run_worker(monkeypatch):
    """Run every claimable job to its end in this thread (inside the test's transaction)."""
    # Closing connections between jobs is for a long-lived process; here it would end the test's transaction.
    monkeypatch.setattr(worker_module, "close_old_connections", lambda: None)

    def run(**overrides) -> Worker:
        worker = Worker(worker_id="inline", options=fast_options(**overrides))
        while (job := worker.claim()) is not None:
            worker._run_job(job)
        return worker

    return run
