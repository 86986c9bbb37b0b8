"""Knowledge-base ranking: recall@3 of the labelled entries, local ranking against rerank.

    .venv/bin/python bench/rerank.py

On a fresh SQLite database in a temporary directory (migrated, figures seeded, removed at the end),
every question of bench/data/knowledge_questions.json goes through the 历史知识库 tool's own
`search_knowledge` twice: without a connection (today's local ranking: shared bigrams, trigger keys
weighing more) and with a site-wide connection whose rerank model is served by a scripted upstream
on 127.0.0.1. No rerank model runs offline, so that upstream ranks by a real, independent method
instead (tests/fakes/reranker.py: TF-IDF cosine over character unigrams and bigrams); the figure is
for that stand-in, not for any hosted reranker.

recall@3 of one question = share of its labelled entries among the three returned; the run's figure
is the mean over the answerable questions. For the few unanswerable ones (nothing in the base answers
them) the share of runs that returned nothing is given instead. Misses go to stderr; the last line printed is one JSON object:
{"local_recall_at_3": x, "rerank_recall_at_3": x, "questions": n, ...}.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fakes.reranker import StandInReranker  # noqa: E402
from tests.fakes.upstream import Upstream  # noqa: E402

QUESTIONS = REPO / "bench" / "data" / "knowledge_questions.json"
K = 3


def setup_django(tmp: Path) -> None:
    from cryptography.fernet import Fernet

    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "guyue.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DEBUG": "false", "REDIS_URL": "", "LOG_LEVEL": "WARNING",
        "STATIC_ROOT": str(tmp / "static"), "MEDIA_ROOT": str(tmp / "media"),
        "KNOWLEDGE_RERANK": "auto",  # measured whatever the default is
    })
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seedpersonas", verbosity=0, stdout=io.StringIO())


def recall(found: list[str], expected: list[str]) -> float | None:
    return len(set(found[:K]) & set(expected)) / len(expected) if expected else None


def measure(questions: list[dict], base_url: str) -> dict:
    from accounts.models import ApiCredential, CredentialKind
    from chat.tools.knowledge import search_knowledge
    from personas.models import Persona

    credential = ApiCredential(kind=CredentialKind.OPENAI_COMPATIBLE, label="rerank stand-in", base_url=base_url,
                               rerank_model="stand-in-tfidf")
    credential.set_key("sk-bench")
    credential.save()
    personas = {p.slug: p for p in Persona.objects.all()}
    rows = []
    for item in questions:
        persona = personas[item["figure"]]
        local = [e.title for e in search_knowledge(persona, item["question"])]
        reranked = [e.title for e in search_knowledge(persona, item["question"], credential=credential)]
        rows.append({**item, "local": local, "rerank": reranked,
                     "local_recall": recall(local, item["answers"]), "rerank_recall": recall(reranked, item["answers"])})
    return {"rows": rows}


def mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 3) if values else 0.0


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    questions = json.loads(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    tmp = Path(tempfile.mkdtemp(prefix="guyue-rerank-"))
    try:
        setup_django(tmp)
        with Upstream() as up:
            up.route("POST", "/v1/rerank", StandInReranker(), repeat=True)
            rows = measure(questions, up.url + "/v1")["rows"]
            calls = sum(1 for request in up.requests if request.path == "/v1/rerank")
            if up.errors:
                raise SystemExit(f"stand-in reranker failed: {up.errors!r}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    answerable = [row for row in rows if row["answers"]]
    unanswerable = [row for row in rows if not row["answers"]]
    for row in answerable:
        for way in ("local", "rerank"):
            if row[f"{way}_recall"] < 1:
                print(f"{way} miss [{row['kind']}] {row['figure']} {row['question']} → expected {row['answers']}; "
                      f"got {row[way]}", file=sys.stderr)
    result = {
        "local_recall_at_3": mean([r["local_recall"] for r in answerable]),
        "rerank_recall_at_3": mean([r["rerank_recall"] for r in answerable]),
        "questions": len(answerable),
        "rerank_calls": calls,
        # the right answer to these is nothing at all ("do not invent")
        "unanswerable_questions": len(unanswerable),
        "local_empty_on_unanswerable": mean([float(not r["local"]) for r in unanswerable]),
        "rerank_empty_on_unanswerable": mean([float(not r["rerank"]) for r in unanswerable]),
    }
    for kind in ("direct", "paraphrase"):
        subset = [r for r in answerable if r["kind"] == kind]
        result[f"{kind}_questions"] = len(subset)
        result[f"{kind}_local_recall_at_3"] = mean([r["local_recall"] for r in subset])
        result[f"{kind}_rerank_recall_at_3"] = mean([r["rerank_recall"] for r in subset])
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
