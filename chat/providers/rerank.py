"""`POST {base}/rerank` in the Jina shape that relays standardise on (Cohere and Xinference answers are
reshaped to it): {model, query, documents, top_n} → {"results": [{"index", "relevance_score"}, …]}."""

from __future__ import annotations

import httpx

from guyue.lib.netguard import AddressGuard, sync_client


class RerankError(Exception):
    """Any failure: the caller keeps its own order."""


def rerank(*, base_url: str, api_key: str, model: str, query: str, documents: list[str], top_n: int,
           timeout: float, guard: AddressGuard | None) -> list[tuple[int, float]]:
    """(index into `documents`, relevance score) pairs, best first, at most `top_n` of them."""
    body = {"model": model, "query": query, "documents": documents, "top_n": top_n}
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    try:
        with sync_client(guard, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as client:
            response = client.post(base_url.rstrip("/") + "/rerank", json=body, headers=headers)
        response.raise_for_status()
        results = response.json()["results"]
        pairs = [(int(item["index"]), float(item["relevance_score"])) for item in results]
    # UnsafeURL (a ValueError) comes from the guard; a body of the wrong shape gives the others.
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise RerankError(f"{type(exc).__name__}: {exc}") from None
    if any(not 0 <= index < len(documents) for index, _ in pairs):
        raise RerankError("index out of range")
    pairs.sort(key=lambda pair: -pair[1])  # relays do sort, but nothing says every upstream does
    best: list[tuple[int, float]] = []
    for index, score in pairs:
        if all(index != kept for kept, _ in best):  # a repeated index counts once, at its best score
            best.append((index, score))
    return best[:top_n]
