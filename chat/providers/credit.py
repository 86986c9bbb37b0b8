"""The remaining credit of a key, where the provider reports it (docs/connections.md, "Credit").

- OpenRouter: `GET {base}/key` → {"data": {"limit", "limit_remaining", "usage", …}} in US dollars;
  `limit` null means the key has no cap of its own (then only the usage is known).
- The task platform (an OpenAI-compatible relay): `POST {origin}/api/account/balance` →
  {"success": true, "data": [{"balance_cents", "balance_display", …}]}, in yuan.
- DashScope has no balance endpoint: nothing is fetched.

A provider that reports nothing, or fails, gives None: credit is shown when known, never an error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from guyue.lib.netguard import AddressGuard, sync_client

logger = logging.getLogger(__name__)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _openrouter(client: httpx.Client, base_url: str, headers: dict) -> dict | None:
    response = client.get(base_url.rstrip("/") + "/key", headers=headers)
    response.raise_for_status()
    data = response.json()["data"]
    remaining, used = _number(data.get("limit_remaining")), _number(data.get("usage"))
    if remaining is None and used is None:
        return None
    return {"remaining": remaining, "used": used, "limit": _number(data.get("limit")), "currency": "USD"}


def _balance_url(base_url: str) -> str:
    # The platform's account endpoints sit at the host's root, beside its OpenAI-style /v1.
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path[: -len("/v1")] if parts.path.endswith("/v1") else parts.path
    return f"{parts.scheme}://{parts.netloc}{path}/api/account/balance"


def _task_platform(client: httpx.Client, base_url: str, headers: dict) -> dict | None:
    response = client.post(_balance_url(base_url), headers=headers)
    response.raise_for_status()
    body = response.json()
    if body.get("success") is not True or not body.get("data"):
        return None
    cents = _number(body["data"][0].get("balance_cents"))
    return None if cents is None else {"remaining": cents / 100, "used": None, "limit": None, "currency": "CNY"}


_FETCHERS = {"openrouter": _openrouter, "openai_compatible": _task_platform}


def fetch_credit(*, kind: str, base_url: str, api_key: str, timeout: float,
                 guard: AddressGuard | None = AddressGuard()) -> dict | None:
    """{"remaining", "used", "limit", "currency", "checked_at"} (amounts may be None), or None."""
    fetcher = _FETCHERS.get(kind)
    if fetcher is None or not base_url:
        return None
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    try:
        with sync_client(guard, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as client:
            credit = fetcher(client, base_url, headers)
    # UnsafeURL is a ValueError, as is a body that is not JSON; a body of another shape, the others.
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        logger.info("no credit reported (%s): %s", kind, type(exc).__name__)
        return None
    if credit is not None:
        credit["checked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return credit


def credit_refresh(credential, *, timeout: float, guard: AddressGuard | None) -> None:
    """Store what the provider reports now in `credential.credit` (None when it reports nothing)."""
    credential.credit = fetch_credit(kind=credential.kind, base_url=credential.effective_base_url(),
                                     api_key=credential.api_key, timeout=timeout, guard=guard)
    credential.save(update_fields=["credit"])
