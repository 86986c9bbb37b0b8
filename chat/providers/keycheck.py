"""One cheap authenticated call that tells whether an API key works, and the models it may name."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import httpx

from guyue.lib.netguard import AddressGuard, UnsafeURL, sync_client

VALID = "valid"
INVALID = "invalid"
UNREACHABLE = "unreachable"
ERROR = "error"


MODEL_LIST_LIMIT = 3000  # OpenRouter lists a few hundred; a relay's list longer than this is cut


@dataclass(frozen=True)
class CheckResult:
    outcome: str
    message: str  # Chinese, safe to show: never contains the key
    # [{"id": …, "input": [modalities], "output": [modalities]}], modalities where the provider says;
    # None when no list could be read (then nothing is warned about).
    models: list[dict] | None = field(default=None)


def parse_models(body: bytes) -> list[dict] | None:
    """The `data` list of an OpenAI-style or OpenRouter `GET /models` answer."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        return None
    models = []
    for item in data[:MODEL_LIST_LIMIT]:
        model_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(model_id, str) or not model_id.strip() or len(model_id) > 100:
            continue
        entry: dict = {"id": model_id.strip()}
        architecture = item.get("architecture")
        if isinstance(architecture, dict):  # OpenRouter says what each model reads and writes
            for key, name in (("input", "input_modalities"), ("output", "output_modalities")):
                value = architecture.get(name)
                if isinstance(value, list):
                    entry[key] = [str(v) for v in value if isinstance(v, str)]
        models.append(entry)
    return models


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
            if response.is_success and kind == "openrouter":
                # /key proves the key; the public list (no auth) says what it may name.
                return CheckResult(VALID, "密钥有效。", _listing(client, base_url.rstrip("/") + "/models"))
    except UnsafeURL as exc:
        return CheckResult(ERROR, str(exc))
    except httpx.TimeoutException:
        return CheckResult(UNREACHABLE, "连接接口超时，请检查网络或接口地址。")
    except httpx.HTTPError:
        return CheckResult(UNREACHABLE, "无法连接到接口地址，请检查地址是否正确。")
    status = response.status_code
    if 200 <= status < 300:
        return CheckResult(VALID, "密钥有效。", parse_models(response.content))
    if status in (401, 403):
        return CheckResult(INVALID, "密钥无效或无权访问，请核对后重新填写。")
    if status == 404:
        return CheckResult(ERROR, "接口地址不正确（返回 404），请检查接口地址。")
    if status == 429:
        return CheckResult(ERROR, "接口繁忙（请求过于频繁），请稍后再验证。")
    return CheckResult(ERROR, f"接口返回错误（HTTP {status}），请稍后再试。")


def _listing(client: httpx.Client, url: str) -> list[dict] | None:
    try:
        response = client.get(url, headers={"Accept": "application/json"})
    except (httpx.HTTPError, UnsafeURL):
        return None  # the key is good either way; only the warnings are lost
    return parse_models(response.content) if response.is_success else None
