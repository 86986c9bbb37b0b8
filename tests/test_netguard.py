"""The outbound address guard: which addresses are allowed, and that connections go where it checked."""

from __future__ import annotations

from datetime import UTC

import httpx
import pytest

from guyue.lib import netguard
from guyue.lib.netguard import AddressGuard, UnsafeURL, address_allowed, async_client, check_public_url, sync_client
from tests.fakes.dns import fake_dns  # noqa: F401  (fixture)
from tests.fakes.upstream import json_reply

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize("address", [
    "100.100.100.200",  # Alibaba Cloud metadata service (shared address space, 100.64.0.0/10)
    "100.64.0.1",
    "169.254.169.254", "127.0.0.1", "10.0.0.1", "192.168.1.1", "0.0.0.0", "255.255.255.255", "198.18.0.1",
    "224.0.1.1", "239.1.1.1",  # multicast, which Python calls global
    "192.88.99.1",  # the deprecated 6to4 relay anycast
    "::1", "::", "fe80::1", "fc00::1", "ff0e::1",
    "fec0::1",  # site-local, which Python 3.11 calls global
    "::ffff:169.254.169.254", "::ffff:100.100.100.200",  # IPv4-mapped
    "::127.0.0.1",  # IPv4-compatible
    "2002:a9fe:a9fe::1", "2002:7f00:1::1", "2002:6464:64c8::",  # 6to4 around 169.254.169.254, loopback, 100.100.100.200
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b:1::a00:1",  # NAT64 to private IPv4 hosts
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",
])  # fmt: skip
def test_it_refuses_addresses_that_are_not_global(address):
    assert not address_allowed(address)


@pytest.mark.parametrize("address", [
    "8.8.8.8", PUBLIC, "2606:4700:4700::1111", "2001:4860:4860::8888",
    "2002:808:808::1",  # 6to4 around a public address
    "64:ff9b::808:808",  # NAT64 to a public address
])  # fmt: skip
def test_it_allows_globally_routable_addresses(address):
    assert address_allowed(address)


def test_a_name_that_resolves_to_the_metadata_service_is_refused(fake_dns):
    fake_dns.script("metadata.example", ["100.100.100.200"])
    with pytest.raises(UnsafeURL, match="本机或内网"):
        check_public_url("https://metadata.example/v1")


def test_one_internal_answer_refuses_the_name(fake_dns):
    fake_dns.script("mixed.example", [PUBLIC, "10.0.0.1"])
    with pytest.raises(UnsafeURL):
        check_public_url("https://mixed.example/v1")


@pytest.mark.parametrize("url, words", [
    ("https://relay.example/v1?x=", "?"),
    ("https://relay.example/v1?", "?"),
    ("https://relay.example/v1#frag", "#"),
    ("https://user:secret@relay.example/v1", "用户名或密码"),
])  # fmt: skip
def test_a_base_url_with_a_query_a_fragment_or_userinfo_is_refused(fake_dns, url, words):
    fake_dns.script("relay.example", [PUBLIC])
    with pytest.raises(UnsafeURL) as caught:
        check_public_url(url)
    assert words in str(caught.value)
    assert fake_dns.count("relay.example") == 0  # refused for its shape, before any lookup


def test_a_clean_public_base_url_passes(fake_dns):
    fake_dns.script("relay.example", [PUBLIC])
    check_public_url("https://relay.example:8443/v1")


# --- connections -----------------------------------------------------------------------------------


@pytest.fixture
def loopback_counts_as_public(monkeypatch):
    """The scripted upstream is on 127.0.0.1; let the guard take it for a public address, so a test can
    see where a connection that passed the check really goes."""
    real = netguard.address_allowed
    monkeypatch.setattr(netguard, "address_allowed", lambda a: a == "127.0.0.1" or real(a))


def test_it_connects_to_the_address_it_checked_and_resolves_once(upstream, fake_dns, loopback_counts_as_public):
    # The first answer is the one checked; a second lookup would get an address nothing listens on.
    fake_dns.script("relay.example", ["127.0.0.1"], ["10.255.255.1"])
    upstream.route("GET", "/v1/models", json_reply(200, {"data": []}))
    with sync_client(AddressGuard()) as http:
        response = http.get(f"http://relay.example:{upstream.port}/v1/models", timeout=2.0)
    assert response.status_code == 200
    assert fake_dns.count("relay.example") == 1
    assert upstream.requests[0].headers["host"] == f"relay.example:{upstream.port}"  # the name, not the IP


async def test_the_async_client_connects_to_the_address_it_checked(upstream, fake_dns, loopback_counts_as_public):
    fake_dns.script("relay.example", ["127.0.0.1"], ["10.255.255.1"])
    upstream.route("GET", "/v1/models", json_reply(200, {"data": []}))
    async with async_client(AddressGuard()) as http:
        response = await http.get(f"http://relay.example:{upstream.port}/v1/models", timeout=2.0)
    assert response.status_code == 200
    assert fake_dns.count("relay.example") == 1
    assert upstream.requests[0].headers["host"] == f"relay.example:{upstream.port}"


def test_a_name_that_rebinds_after_the_check_is_refused_at_connect(upstream, fake_dns):
    # DNS rebinding: public for the check before the call, loopback for the connection.
    fake_dns.script("relay.example", [PUBLIC], ["127.0.0.1"])
    upstream.route("GET", "/v1/models", json_reply(200, {"data": []}))
    url = f"http://relay.example:{upstream.port}/v1"
    check_public_url(url)
    with sync_client(AddressGuard()) as http, pytest.raises(UnsafeURL):
        http.get(url + "/models", timeout=2.0)
    assert upstream.connections_accepted == 0 and upstream.requests == []


async def test_the_async_client_refuses_a_rebound_name(upstream, fake_dns):
    fake_dns.script("relay.example", [PUBLIC], ["127.0.0.1"])
    url = f"http://relay.example:{upstream.port}/v1"
    check_public_url(url)
    async with async_client(AddressGuard()) as http:
        with pytest.raises(UnsafeURL):
            await http.get(url + "/models", timeout=2.0)
    assert upstream.connections_accepted == 0


def test_an_ip_literal_is_checked_too(upstream):
    with sync_client(AddressGuard()) as http, pytest.raises(UnsafeURL):
        http.get(f"{upstream.url}/v1/models", timeout=2.0)
    assert upstream.connections_accepted == 0


def test_an_operator_listed_host_connects_wherever_it_resolves(upstream):
    upstream.route("GET", "/v1/models", json_reply(200, {"data": []}))
    with sync_client(AddressGuard.allowing([f"127.0.0.1:{upstream.port}"])) as http:
        assert http.get(f"{upstream.url}/v1/models", timeout=2.0).status_code == 200


def test_an_unresolvable_name_is_a_connect_error(fake_dns):
    with sync_client(AddressGuard()) as http, pytest.raises(httpx.ConnectError):
        http.get("http://no-such-host.invalid/v1", timeout=2.0)


def test_a_trusted_client_is_plain_httpx(upstream):
    upstream.route("GET", "/v1/models", json_reply(200, {"data": []}))
    with sync_client(None) as http:
        assert http.get(f"{upstream.url}/v1/models", timeout=2.0).status_code == 200


def _self_signed(tmp_path, name: str) -> tuple[str, str]:
    from datetime import datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return str(cert_file), str(key_file)


def test_tls_to_the_checked_address_still_verifies_the_name(tmp_path, fake_dns, loopback_counts_as_public,
                                                           monkeypatch):  # fmt: skip
    import http.server
    import ssl
    import threading

    cert_file, key_file = _self_signed(tmp_path, "relay.example")
    names: list[str | None] = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake_dns.script("relay.example", ["127.0.0.1"])
    # Trust the test certificate instead of the system store.
    monkeypatch.setattr(netguard.httpx, "create_ssl_context", lambda: ssl.create_default_context(cafile=cert_file))
    try:
        with sync_client(AddressGuard()) as http:
            response = http.get(f"https://relay.example:{server.server_address[1]}/v1/models", timeout=5.0)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200 and response.text == "ok"
    assert names == ["relay.example"] and fake_dns.count("relay.example") == 1
