"""The default file storage (STORAGES["default"]): the local disk, or an S3-compatible bucket when
MEDIA_S3_BUCKET is set (docs/storage.md).

Stored files are private: the owner-checked views open them through the storage and stream them, so
objects get no ACL of their own (the bucket's private default) and no page ever links to the bucket.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

FILESYSTEM = "django.core.files.storage.FileSystemStorage"
S3 = "storages.backends.s3.S3Storage"
VARIABLES = (
    "MEDIA_S3_BUCKET",
    "MEDIA_S3_ENDPOINT_URL",
    "MEDIA_S3_REGION",
    "MEDIA_S3_ACCESS_KEY_ID",
    "MEDIA_S3_SECRET_ACCESS_KEY",
    "MEDIA_S3_PREFIX",
)


def default_storage(environ: Mapping[str, str]) -> dict:
    """STORAGES["default"] for these variables (settings passes them read through env_str)."""
    bucket = environ.get("MEDIA_S3_BUCKET", "").strip()
    if not bucket:
        return {"BACKEND": FILESYSTEM}
    # Explicit keys only: boto3's own credential chain could pick up whatever else the host has.
    for name in ("MEDIA_S3_ACCESS_KEY_ID", "MEDIA_S3_SECRET_ACCESS_KEY"):
        if not environ.get(name, "").strip():
            raise ImproperlyConfigured(f"{name} is not set (needed with MEDIA_S3_BUCKET)")
    return {
        "BACKEND": S3,
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": environ.get("MEDIA_S3_ENDPOINT_URL", "").strip() or None,
            "region_name": environ.get("MEDIA_S3_REGION", "").strip() or None,
            "access_key": environ["MEDIA_S3_ACCESS_KEY_ID"].strip(),
            "secret_key": environ["MEDIA_S3_SECRET_ACCESS_KEY"].strip(),
            "location": environ.get("MEDIA_S3_PREFIX", "").strip().strip("/"),
            "default_acl": None,  # the bucket's default, private: never public-read
            "querystring_auth": True,  # any URL the storage makes is signed and expires
            "file_overwrite": False,  # a name taken by another file gets a new one
        },
    }
