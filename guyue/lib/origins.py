"""Websocket Origin check by scheme, host and port (channels' AllowedHostsOriginValidator looks
at the host only, so a page on another port of the same host could open the chat socket).

A handshake is accepted when its Origin is the site's own origin, the way Django's CSRF check
sees it: the scheme of the socket (wss → https, or the trusted proxy's header), and the Host
header, which must be in ALLOWED_HOSTS. Origins listed in CSRF_TRUSTED_ORIGINS are accepted too
(`https://*.example.com` covers subdomains, as it does for CSRF). A missing or opaque ("null")
Origin is refused: browsers always send one, and only a browser carries the session cookie.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import is_same_domain, split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def parse_origin(value: str) -> Origin | None:
    """`scheme://host[:port]` as a comparable triple; None for anything else (paths included)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username is not None or parts.password is not None:
        return None
    return Origin(scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme])


def _headers(scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope.get("headers", [])}


def _allowed_hosts() -> list[str]:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django's get_host allows then
    return hosts


def _socket_scheme(scope, headers: dict[str, str]) -> str:
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        meta_name, secure_value = proxy
        header = meta_name.removeprefix("HTTP_").lower().replace("_", "-")
        if header in headers:
            return "https" if headers[header].split(",")[0].strip() == secure_value else "http"
    return "https" if scope.get("scheme") == "wss" else "http"


def own_origin(scope, headers: dict[str, str]) -> Origin | None:
    """The origin this socket was opened on, or None when its Host is not one we answer to."""
    host = headers.get("host", "")
    domain, port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return None
    scheme = _socket_scheme(scope, headers)
    # Host keeps IPv6 brackets, an Origin's parsed host name does not.
    return Origin(scheme, domain.removeprefix("[").removesuffix("]"), int(port) if port else DEFAULT_PORTS[scheme])


def trusted(origin: Origin, patterns: list[str]) -> bool:
    """Whether a CSRF_TRUSTED_ORIGINS entry names the origin (`scheme://*.domain` for subdomains)."""
    for pattern in patterns:
        scheme, _, rest = pattern.partition("://")
        if rest.startswith("*."):
            base = parse_origin(f"{scheme}://{rest[2:]}")
            if base and (origin.scheme, origin.port) == (base.scheme, base.port) \
                    and is_same_domain(origin.host, "." + base.host):
                return True
        elif parse_origin(pattern) == origin:
            return True
    return False


def origin_allowed(scope) -> bool:
    headers = _headers(scope)
    origin = parse_origin(headers.get("origin", ""))
    if origin is None:
        return False
    return origin == own_origin(scope, headers) or trusted(origin, settings.CSRF_TRUSTED_ORIGINS)


class SameOriginValidator:
    """ASGI middleware: websocket handshakes from any other origin are closed before the app runs."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            # Closing before accepting makes the server answer the handshake with 403.
            await receive()  # websocket.connect
            await send({"type": "websocket.close"})
            return None
        return await self.application(scope, receive, send)
