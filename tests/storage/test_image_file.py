"""End to end: a generated image kept in the S3 bucket, served by the owner-checked file view."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from chat.models import MediaJob
from chat.services import conversation_start
from guyue.lib.storageconf import default_storage
from tests.fakes.imagetasks import PNG
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

PREFIX = "e2e"


class StoredJob(NamedTuple):
    job: MediaJob
    name: str  # the file's name in the database (the object's key is PREFIX/name)
    url: str  # the owner-checked file view


def finished_job(owner, conversation, data: bytes) -> StoredJob:
    """A finished job whose file went through the default storage.

    The only code here that names the job model, its file field and the view's URL.
    """
    job = MediaJob.objects.create(owner=owner, conversation=conversation, prompt="李白月下独酌", status="done",
                                  mime="image/png", finished_at=timezone.now())  # fmt: skip
    job.file.save(f"{job.pk}-s3.png", ContentFile(data))
    return StoredJob(job, job.file.name, reverse("chat:media_file", args=[conversation.pk, job.pk]))


@pytest.fixture
def s3_default(settings, s3_server):
    # Assigning STORAGES resets django's storages handler and default_storage (setting_changed).
    settings.STORAGES = {**settings.STORAGES, "default": default_storage(s3_server.environ(MEDIA_S3_PREFIX=PREFIX))}
    return s3_server


@pytest.fixture
def conversation(alice):
    return conversation_start(owner=alice, persona=make_persona("libai", "李白"))


def _head(server, key: str) -> dict | None:
    try:
        return server.client.head_object(Bucket=server.bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "404":
            return None
        raise


def test_the_owner_gets_the_bytes_from_the_bucket_and_no_one_else_does(
    s3_default, alice, conversation, alice_client, bob_client
):
    stored = finished_job(alice, conversation, PNG)
    assert _head(s3_default, f"{PREFIX}/{stored.name}")["ContentLength"] == len(PNG)

    response = alice_client.get(stored.url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png" and response["Cache-Control"].startswith("private")
    response.close()

    assert bob_client.get(stored.url).status_code == 404


def test_deleting_the_job_deletes_its_object(s3_default, alice, conversation, django_capture_on_commit_callbacks):
    stored = finished_job(alice, conversation, PNG)
    key = f"{PREFIX}/{stored.name}"
    assert _head(s3_default, key) is not None
    with django_capture_on_commit_callbacks(execute=True):
        stored.job.delete()
    assert _head(s3_default, key) is None


def test_a_portrait_in_the_bucket_is_served_by_the_sites_public_route(s3_default, client):
    from django.core.files.storage import default_storage as storage

    persona = make_persona("dufu", "杜甫")
    persona.portrait.save("dufu.png", ContentFile(PNG))
    assert persona.portrait_src == "/media/" + persona.portrait.name  # the site's route, not a bucket URL
    response = client.get(persona.portrait_src)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert storage.exists(persona.portrait.name)
    for sneaky in ("/media/portraits/../images/x.png", "/media/portraits/%2e%2e/images/x.png", "/media/portraits/nope.png"):
        assert client.get(sneaky).status_code == 404, sneaky
