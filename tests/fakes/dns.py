"""A scripted resolver in place of socket.getaddrinfo, for names the tests make up.

Each name gets a list of answers, one per lookup; the last answer repeats. Every lookup of a
scripted name is recorded, so a test can tell how often a name was resolved. Other names (and
the IP literals a connection passes down) go to the real resolver.

    fake_dns.script("relay.example", ["93.184.216.34"], ["127.0.0.1"])  # public, then loopback
"""

from __future__ import annotations

import socket

import pytest


class FakeDNS:
    def __init__(self, real) -> None:
        self.real = real
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def script(self, name: str, *answers: list[str]) -> None:
        self.answers[name] = [list(a) for a in answers]

    def count(self, name: str) -> int:
        return self.lookups.count(name)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        queue = self.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        port = int(port or 0)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
             (a, port, 0, 0) if ":" in a else (a, port))
            for a in addresses
        ]  # fmt: skip


@pytest.fixture
def fake_dns(monkeypatch) -> FakeDNS:
    # Patched on the socket module, so the check, httpx/httpcore and anyio's thread all see it.
    dns = FakeDNS(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    return dns
