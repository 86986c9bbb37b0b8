"""Keep user-supplied URLs from reaching the server's own network (SSRF)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit


class UnsafeURL(ValueError):
    """Raised with a message fit to show the user."""


class UnresolvableHost(UnsafeURL):
    """The host does not resolve (now): not provably unsafe, but not usable either."""


def _is_internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def check_public_url(url: str, allowed_hosts: Iterable[str] = ()) -> None:
    """Raise UnsafeURL unless url is http(s) and every address its host resolves to is public.

    `allowed_hosts` lists `host` or `host:port` entries an operator has explicitly allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("接口地址只能以 http:// 或 https:// 开头。")
    host = parts.hostname
    if not host:
        raise UnsafeURL("接口地址缺少主机名。")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("接口地址的端口无效。") from None
    allowed = set(allowed_hosts)
    if host in allowed or f"{host}:{port}" in allowed:
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise UnresolvableHost("无法解析接口地址的主机名，请检查地址或网络。") from None
    for info in infos:
        address = info[4][0].split("%", 1)[0]
        if _is_internal(ipaddress.ip_address(address)):
            raise UnsafeURL("接口地址指向本机或内网，出于安全考虑不允许使用。")
