"""HTTP calls the media back-ends share beyond chat.images.backends.request_json.

Two cases request_json cannot serve: multipart uploads (image edits, the task platform's file
upload) and task polls whose 200 answer carries an `error` object for a failed task (request_json
would turn that into an error and lose the task's status).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

import httpx

from chat.images.backends import Sleep, checked
from chat.providers.errors import ProviderError, error_from_payload, error_from_response, redact
from chat.providers.retry import backoff_delay

logger = logging.getLogger(__name__)

_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%?")


def progress(value: Any) -> int | None:
    """"45%" (Midjourney, Suno), 45 or 0.45 → 45; anything else → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value) * (100 if 0 < value < 1 else 1)
    else:
        match = _PERCENT.fullmatch(str(value).strip())
        if not match:
            return None
        number = float(match.group(1))
    return max(0, min(100, int(number)))


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key.strip()}"}


def poll_json(http: httpx.Client, method: str, url: str, *, headers: dict[str, str], body: dict | None = None,
              http_timeout: httpx.Timeout, secret: str) -> dict[str, Any]:
    """One task query. HTTP errors are classified as usual; a 200 body is returned as it is, `error`
    field included. No retry here: wait_for_task polls again after a retryable error."""
    content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    try:
        response = http.request(method, url, headers=headers, content=content, timeout=http_timeout)
    except httpx.HTTPError as exc:
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "upstream"
        raise ProviderError(kind, detail=redact(f"{type(exc).__name__}: {exc}", secret), retryable=True) from None
    if response.status_code >= 400:
        error = error_from_response(response.status_code, response.headers, response.content)
        error.detail = redact(error.detail, secret)
        raise error
    try:
        payload = json.loads(response.content)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ProviderError("upstream", detail="task query answered without a JSON object", retryable=True)
    return payload


def post_multipart(http: httpx.Client, url: str, *, headers: dict[str, str], data: dict[str, str],
                   files: list[tuple[str, tuple[str, bytes, str]]], http_timeout: httpx.Timeout, secret: str,
                   sleep: Sleep = time.sleep, max_retries: int = 2) -> dict[str, Any]:
    """A multipart POST that creates something (and is billed): retried only when it provably was
    not acted on, that is the connection never opened or the server answered 408/429/5xx."""
    retries = 0
    while True:
        try:
            return _multipart_once(http, url, headers, data, files, http_timeout)
        except ProviderError as error:
            error.detail = redact(error.detail, secret)
            if retries >= max_retries or not error.retryable or getattr(error, "maybe_sent", False):
                raise
            delay = backoff_delay(retries, error.retry_after)
            logger.warning("media upload to %s failed (%s), retry %d in %.2fs", httpx.URL(url).path, error,
                           retries + 1, delay)  # fmt: skip
            sleep(delay)
            retries += 1


def _multipart_once(http, url, headers, data, files, http_timeout) -> dict[str, Any]:
    response = checked(lambda: http.post(url, headers=headers, data=data, files=files, timeout=http_timeout))
    try:
        payload = json.loads(response.content)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        error = ProviderError("upstream", detail=f"HTTP {response.status_code}, not a JSON object", retryable=True)
        error.maybe_sent = True
        raise error
    if isinstance(payload.get("error"), dict | str):
        raise error_from_payload(payload)
    return payload
