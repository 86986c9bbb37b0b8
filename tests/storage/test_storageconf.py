"""guyue.lib.storageconf: the default storage from the MEDIA_S3_* variables."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from guyue.lib.storageconf import FILESYSTEM, VARIABLES, default_storage

ROOT = Path(__file__).resolve().parents[2]

FULL = {
    "MEDIA_S3_BUCKET": "guyue-media",
    "MEDIA_S3_ENDPOINT_URL": "https://s3.example.test",
    "MEDIA_S3_REGION": "eu-central-1",
    "MEDIA_S3_ACCESS_KEY_ID": "key-id",
    "MEDIA_S3_SECRET_ACCESS_KEY": "key-secret",
    "MEDIA_S3_PREFIX": "/media/",
}


@pytest.mark.parametrize("environ", [{}, {"MEDIA_S3_BUCKET": ""}, {"MEDIA_S3_BUCKET": "  ", "MEDIA_S3_REGION": "x"}])
def test_without_a_bucket_files_stay_on_the_local_disk(environ):
    assert default_storage(environ) == {"BACKEND": FILESYSTEM}


def _settings_storage(environ: dict[str, str]) -> dict:
    """STORAGES["default"] as guyue.settings builds it in a fresh process with these variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_S3_", "DJANGO_"))}
    # Set even when empty: a real variable wins over the local .env, which might name a bucket.
    env.update(
        {name: "" for name in VARIABLES},
        **environ,
        DJANGO_SETTINGS_MODULE="guyue.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        FIELD_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    code = "import json; from django.conf import settings; print(json.dumps(settings.STORAGES['default']))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_settings_build_the_default_storage_from_the_environment():
    assert _settings_storage({}) == {"BACKEND": FILESYSTEM}
    assert _settings_storage(FULL) == default_storage(FULL)


def test_a_bucket_makes_a_private_s3_storage_that_never_overwrites():
    assert set(VARIABLES) == set(FULL)
    assert default_storage(FULL) == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "guyue-media",
            "endpoint_url": "https://s3.example.test",
            "region_name": "eu-central-1",
            "access_key": "key-id",
            "secret_key": "key-secret",
            "location": "media",
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }


def test_endpoint_region_and_prefix_are_optional():
    environ = {key: FULL[key] for key in ("MEDIA_S3_BUCKET", "MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY")}
    options = default_storage(environ)["OPTIONS"]
    assert options["endpoint_url"] is None and options["region_name"] is None and options["location"] == ""


@pytest.mark.parametrize("missing", ["MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY"])
def test_a_bucket_without_its_keys_refuses_to_start(missing):
    with pytest.raises(ImproperlyConfigured, match=missing):
        default_storage({**FULL, missing: ""})
