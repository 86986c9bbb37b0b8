"""One cheap authenticated call that tells whether an API key works."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from guyue.lib.netguard import AddressGuard, UnsafeURL, sync_client

VALID = "valid"
INVALID = "invalid"
UNREACHABLE = "unreachable"
ERROR = "error"


@dataclass(frozen=True)
class CheckResult:
    outcome: str
    message: str  # Chinese, safe to show: never contains the key


def _check_path(kind: str) -> str:
    # OpenRouter's /models needs no auth, so it proves nothing; /key does.
    return "/key" if kind == "openrouter" else "/models"


def check_key(
    *, kind: str, base_url: str, api_key: str, timeout: float, guard: AddressGuard | None = AddressGuard()
) -> CheckResult:
    """`guard` limits where the call may connect; None only for trusted site-wide credentials."""
    url = base_url.rstrip("/") + _check_path(kind)
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    try:
        with sync_client(guard, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as client:
            response = client.get(url, headers=headers)
    except UnsafeURL as exc:
        return CheckResult(ERROR, str(exc))
    except httpx.TimeoutException:
        return CheckResult(UNREACHABLE, "连接接口超时，请检查网络或接口地址。")
    except httpx.HTTPError:
        return CheckResult(UNREACHABLE, "无法连接到接口地址，请检查地址是否正确。")
    status = response.status_code
    if 200 <= status < 300:
        return CheckResult(VALID, "密钥有效。")
    if status in (401, 403):
        return CheckResult(INVALID, "密钥无效或无权访问，请核对后重新填写。")
    if status == 404:
        return CheckResult(ERROR, "接口地址不正确（返回 404），请检查接口地址。")
    if status == 429:
        return CheckResult(ERROR, "接口繁忙（请求过于频繁），请稍后再验证。")
    return CheckResult(ERROR, f"接口返回错误（HTTP {status}），请稍后再试。")
