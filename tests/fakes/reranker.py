"""A scripted `POST /rerank` upstream whose scores come from a real ranking method, not from a script.

No rerank model runs offline, so this stands in for one (bench/rerank.py, docs/BENCHMARKS.md): TF-IDF
cosine similarity over character unigrams and bigrams of the query and of each document as sent,
with the inverse document frequency taken over the request's own documents (idf = ln(N / df), so a
character every document has weighs nothing). Punctuation and spaces are dropped. It shares no code
with the site's ranking (chat/tools/knowledge.py), which counts shared bigrams and trigger keys.

    with Upstream() as up:
        up.route("POST", "/v1/rerank", StandInReranker(), repeat=True)
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter

from tests.fakes.upstream import json_reply

_NOT_TEXT = re.compile(r"[\W_]+")


def _features(text: str) -> Counter:
    features: Counter = Counter()
    for run in _NOT_TEXT.split(text.lower()):
        features.update(run)
        features.update(run[i:i + 2] for i in range(len(run) - 1))
    return features


def tfidf_scores(query: str, documents: list[str]) -> list[float]:
    """Cosine similarity (0-1) of the query with each document."""
    docs = [_features(d) for d in documents]
    df = Counter(feature for doc in docs for feature in doc)
    n = len(docs)

    def vector(features: Counter) -> dict[str, float]:
        return {f: (1 + math.log(tf)) * math.log(n / df[f]) for f, tf in features.items() if df.get(f)}

    def norm(vec: dict[str, float]) -> float:
        return math.sqrt(sum(w * w for w in vec.values()))

    q = vector(_features(query))
    scores = []
    for doc in docs:
        d = vector(doc)
        dot = sum(w * d.get(f, 0.0) for f, w in q.items())
        scores.append(dot / (norm(q) * norm(d)) if dot else 0.0)
    return scores


class StandInReranker:
    """An Upstream route reply (called with the recorded request) answering in the Jina shape."""

    def __call__(self, request):
        body = json.loads(request.body)
        documents = body["documents"]
        scores = tfidf_scores(body["query"], documents)
        order = sorted(range(len(documents)), key=lambda i: -scores[i])[:body.get("top_n") or len(documents)]
        return json_reply(200, {
            "model": body["model"],
            "results": [{"index": i, "relevance_score": round(scores[i], 6), "document": {"text": documents[i]}}
                        for i in order],
            "usage": {"prompt_tokens": sum(map(len, documents)), "completion_tokens": 0,
                      "total_tokens": sum(map(len, documents))},
        })
