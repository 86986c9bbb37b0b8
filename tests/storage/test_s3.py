"""The S3 storage the settings build, against moto's S3 server on 127.0.0.1."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile
from storages.backends.s3 import S3Storage

from guyue.lib.storageconf import default_storage

DATA = bytes(range(256)) * 64 + b"\x00\xff end"  # binary, and more than one read's worth


def storage_for(environ) -> S3Storage:
    return S3Storage(**default_storage(environ)["OPTIONS"])


@pytest.fixture
def storage(s3_server) -> S3Storage:
    return storage_for(s3_server.environ())


@pytest.fixture
def name() -> str:
    # One server serves the whole session: each test writes under names of its own.
    return f"images/7/{uuid.uuid4().hex}.png"


def test_a_saved_file_reads_back_byte_for_byte(storage, s3_server, name):
    stored = storage.save(name, ContentFile(DATA))
    assert stored == name and storage.exists(name) and storage.size(name) == len(DATA)
    with storage.open(name, "rb") as handle:
        assert handle.read() == DATA
    assert s3_server.client.get_object(Bucket=s3_server.bucket, Key=name)["Body"].read() == DATA


def test_the_object_is_private(storage, s3_server, name):
    storage.save(name, ContentFile(DATA))
    grants = s3_server.client.get_object_acl(Bucket=s3_server.bucket, Key=name)["Grants"]
    assert all("URI" not in grant["Grantee"] for grant in grants)  # no AllUsers / AuthenticatedUsers grant
    assert "X-Amz-Signature=" in storage.url(name) or "Signature=" in storage.url(name)


def test_a_second_file_of_the_same_name_gets_a_new_name(storage, s3_server, name):
    first = storage.save(name, ContentFile(b"alice's picture"))
    second = storage.save(name, ContentFile(b"bob's picture"))
    assert first == name and second != name and second.startswith(name.removesuffix(".png"))
    with storage.open(first, "rb") as handle:
        assert handle.read() == b"alice's picture"
    with storage.open(second, "rb") as handle:
        assert handle.read() == b"bob's picture"
    assert {first, second} <= s3_server.keys(prefix="images/7/")


def test_delete_removes_the_object_from_the_server(storage, s3_server, name):
    storage.save(name, ContentFile(DATA))
    storage.delete(name)
    assert not storage.exists(name) and name not in s3_server.keys(prefix="images/7/")
    with pytest.raises(ClientError) as caught:
        s3_server.client.head_object(Bucket=s3_server.bucket, Key=name)
    assert caught.value.response["Error"]["Code"] == "404"


def test_a_prefix_puts_every_file_under_it(s3_server, name):
    prefix = f"site-{uuid.uuid4().hex[:8]}"
    storage = storage_for(s3_server.environ(MEDIA_S3_PREFIX=prefix))
    stored = storage.save(name, ContentFile(DATA))
    # The name the database keeps has no prefix; the key on the server has it.
    assert stored == name and s3_server.keys(prefix=prefix) == {f"{prefix}/{name}"}
    assert name not in s3_server.keys(prefix="images/7/")
    with storage.open(name, "rb") as handle:
        assert handle.read() == DATA
