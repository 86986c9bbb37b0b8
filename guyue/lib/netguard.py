"""Keep user-supplied URLs, and the addresses behind them, away from the server's own network (SSRF).

One place decides whether an address may be reached (`address_allowed`): it must be globally
routable once the IPv4 address that IPv4-mapped, IPv4-compatible, 6to4, Teredo and NAT64 forms
carry is taken out. Checking a URL before a call is not enough on its own: httpx would resolve the
name again when it connects, and a name can answer differently the second time (DNS rebinding).
So guarded clients (`sync_client`, `async_client`) resolve in the connection itself, check every
answer, and connect to a checked address; TLS and the Host header still use the name.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

INTERNAL_MESSAGE = "接口地址指向本机或内网，出于安全考虑不允许使用。"


class UnsafeURL(ValueError):
    """Raised with a message fit to show the user."""


class UnresolvableHost(UnsafeURL):
    """The host does not resolve (now): not provably unsafe, but not usable either."""


# Not globally reachable, though Python 3.11's `is_global` says they are: site-local (deprecated,
# still routed by some stacks), the 6to4 relay anycast, documentation and SRv6 SID blocks.
_NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("fec0::/10", "192.88.99.0/24", "3fff::/20", "5f00::/16"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
_NAT64 = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48"))


def _destinations(ip: IPAddress) -> list[IPAddress]:
    """The addresses a packet to `ip` may end up at: itself, or the IPv4 host a wrapper points to."""
    if isinstance(ip, ipaddress.IPv4Address):
        return [ip]
    if ip.ipv4_mapped:
        return [ip.ipv4_mapped]
    embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPATIBLE or any(ip in net for net in _NAT64):
        # A NAT64 gateway forwards to the embedded IPv4 host, so only that host decides. With a
        # local-use prefix shorter than /96 the low bits are not an address: that fails closed.
        return [embedded]
    if ip.sixtofour:
        return [ip, ip.sixtofour]
    if ip.teredo:
        server, client = ip.teredo
        return [ip, server, client]
    return [ip]


def address_allowed(ip: IPAddress | str) -> bool:
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone index
    return all(
        dest.is_global and not dest.is_multicast and not any(dest in net for net in _NOT_GLOBAL)
        for dest in _destinations(ip)
    )


@dataclass(frozen=True)
class AddressGuard:
    """Connections reach only allowed addresses, except to hosts an operator listed (`host` or
    `host:port`), which are trusted wherever they resolve (a local relay, the test upstream)."""

    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def allowing(cls, hosts: Iterable[str]) -> AddressGuard:
        return cls(frozenset(h.strip().lower() for h in hosts if h.strip()))

    def trusts(self, host: str, port: int) -> bool:
        host = host.lower()
        return host in self.allowed_hosts or f"{host}:{port}" in self.allowed_hosts

    def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to, once; UnsafeURL if any of them is not allowed."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise UnresolvableHost("无法解析接口地址的主机名，请检查地址或网络。") from None
        return _checked(infos)

    async def aresolve(self, host: str, port: int) -> list[str]:
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise UnresolvableHost("无法解析接口地址的主机名，请检查地址或网络。") from None
        return _checked(infos)


def _checked(infos: list[tuple[Any, ...]]) -> list[str]:
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    # One internal answer refuses the whole name: a round-robin mix is how rebinding is staged.
    if not addresses or not all(address_allowed(a) for a in addresses):
        raise UnsafeURL(INTERNAL_MESSAGE)
    return addresses


def check_public_url(url: str, allowed_hosts: Iterable[str] = ()) -> None:
    """Raise UnsafeURL unless url is a usable base URL whose host resolves to allowed addresses only.

    A base URL gets paths appended (`/chat/completions`, `/models`), so a query string or a
    fragment would swallow them, and userinfo would be sent as credentials: all three are refused.
    `allowed_hosts` lists `host` or `host:port` entries an operator has explicitly allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("接口地址只能以 http:// 或 https:// 开头。")
    host = parts.hostname
    if not host:
        raise UnsafeURL("接口地址缺少主机名。")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise UnsafeURL(
            "接口地址不能包含“?”或“#”及其后的内容，请只填写到路径为止（例如 https://example.com/v1）。"
        )
    if "@" in parts.netloc:
        raise UnsafeURL("接口地址不能包含用户名或密码，密钥请填写在“密钥”一栏。")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("接口地址的端口无效。") from None
    guard = AddressGuard.allowing(allowed_hosts)
    if not guard.trusts(host, port):
        guard.resolve(host, port)


# --- guarded HTTP clients --------------------------------------------------------------------------
# httpx has no public hook for an httpcore network backend, so the guarded transports build the
# httpcore pool themselves; `_pool` is all httpx's transport classes use (tests/test_netguard.py
# fails if that changes). Environment proxies are not used: a proxy would resolve the name itself.


def _connect_error(exc: Exception) -> httpcore.ConnectError:
    return httpcore.ConnectError(f"{type(exc).__name__}: {exc}")


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, guard: AddressGuard) -> None:
        self.guard, self.inner = guard, httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:  # fmt: skip
        if self.guard.trusts(host, port):
            return self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            addresses = self.guard.resolve(host, port)
        except UnresolvableHost as exc:
            raise _connect_error(exc) from None
        failure: Exception | None = None
        for address in addresses:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                return self.inner.connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError("no address")

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise UnsafeURL(INTERNAL_MESSAGE)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, guard: AddressGuard) -> None:
        self.guard, self.inner = guard, httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:  # fmt: skip
        if self.guard.trusts(host, port):
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            with anyio.fail_after(timeout):
                addresses = await self.guard.aresolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout("name resolution timed out") from None
        except UnresolvableHost as exc:
            raise _connect_error(exc) from None
        failure: Exception | None = None
        for address in addresses:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                return await self.inner.connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError("no address")

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL(INTERNAL_MESSAGE)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _pool_options(limits: httpx.Limits) -> dict[str, Any]:
    return {
        "ssl_context": httpx.create_ssl_context(),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, guard: AddressGuard, limits: httpx.Limits = httpx.Limits()) -> None:
        self._pool = httpcore.ConnectionPool(**_pool_options(limits), network_backend=_GuardedBackend(guard))


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, guard: AddressGuard, limits: httpx.Limits = httpx.Limits()) -> None:
        self._pool = httpcore.AsyncConnectionPool(**_pool_options(limits),
                                                  network_backend=_AsyncGuardedBackend(guard))  # fmt: skip


def sync_client(guard: AddressGuard | None, **kwargs: Any) -> httpx.Client:
    """An httpx.Client that never follows redirects; with a guard, it connects only where the guard allows.
    `guard=None` is for trusted, site-wide endpoints (a curator's local model server)."""
    limits = kwargs.pop("limits", httpx.Limits())
    if guard is not None:
        kwargs["transport"] = GuardedTransport(guard, limits)
    else:
        kwargs["limits"] = limits
    return httpx.Client(follow_redirects=False, **kwargs)


def async_client(guard: AddressGuard | None, **kwargs: Any) -> httpx.AsyncClient:
    limits = kwargs.pop("limits", httpx.Limits())
    if guard is not None:
        kwargs["transport"] = AsyncGuardedTransport(guard, limits)
    else:
        kwargs["limits"] = limits
    return httpx.AsyncClient(follow_redirects=False, **kwargs)
