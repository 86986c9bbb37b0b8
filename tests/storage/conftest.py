"""A real S3-compatible server for these tests: moto's server mode on 127.0.0.1, one per test session."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.servers import free_port

BUCKET = "guyue-media-test"
# Dummy credentials (moto accepts any); the storage is given them through MEDIA_S3_* like the site.
KEY_ID = SECRET = "testing"
REGION = "us-east-1"

# boto3 must reach nothing but the local server: no proxy, no credential files, no instance metadata.
ISOLATED_ENV = {
    "AWS_ACCESS_KEY_ID": KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "NO_PROXY": "127.0.0.1",
    "no_proxy": "127.0.0.1",
}
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    client: object  # a boto3 S3 client on the server, to check what the storage really wrote

    def environ(self, **extra: str) -> dict[str, str]:
        """The MEDIA_S3_* variables that point the site's storage at this server."""
        return {
            "MEDIA_S3_BUCKET": self.bucket,
            "MEDIA_S3_ENDPOINT_URL": self.endpoint_url,
            "MEDIA_S3_REGION": REGION,
            "MEDIA_S3_ACCESS_KEY_ID": KEY_ID,
            "MEDIA_S3_SECRET_ACCESS_KEY": SECRET,
            **extra,
        }

    def keys(self, prefix: str = "") -> set[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return {item["Key"] for item in listed.get("Contents", [])}


@pytest.fixture(scope="session")
def s3_server():
    with pytest.MonkeyPatch.context() as patch:
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
        for name, value in ISOLATED_ENV.items():
            patch.setenv(name, value)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{port}"
            client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=KEY_ID,
                                  aws_secret_access_key=SECRET)  # fmt: skip
            client.create_bucket(Bucket=BUCKET)
            yield S3Server(endpoint_url=endpoint, bucket=BUCKET, client=client)
        finally:
            server.stop()
