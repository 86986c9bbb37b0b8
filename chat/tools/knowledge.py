"""历史知识库 and 影视人物分析: curated rows of the figure (and its era), with their sources."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import Q

from accounts.services import credential_guard, credential_resolve
from chat.citations import ref_of
from chat.providers.rerank import RerankError, rerank
from chat.recall.tokens import index_text, query_terms
from chat.tools.registry import Tool, ToolContext, ToolResult, UserText, register
from personas.models import KnowledgeEntry

logger = logging.getLogger(__name__)

TOP = 3
CONTENT_CHARS = 300
# Curator-written: how the figure marks what it took from an entry (chat/citations.py turns the id
# into a mark; the label shown comes from the entry, whatever the model writes).
CITE_HINT = "回答中用到某条记载时，在用到它的那句话末尾写上它的编号，如〔K12〕；没有用到的不写，不要自造编号。"
RERANK_CANDIDATES = 50  # a figure has about 15-20 entries and its era a few: all of them go
RERANK_DOCUMENT_CHARS = 600


def _score(query: str, entry: KnowledgeEntry) -> int:
    grams, singles = index_text(" ".join([entry.title, entry.content, *map(str, entry.trigger_keys)]))
    have, chars = set(grams.split()), set(singles.split())
    score = 0
    for term in query_terms(query):
        token = term.tokens[0]
        if term.unigram:
            score += token in chars
        elif token in have:
            score += 3 if any(token in str(key) for key in entry.trigger_keys) else 2
    return score


def _candidates(persona, query: str) -> list[tuple[int, KnowledgeEntry]]:
    """Every enabled entry of the figure and its era with its local score, best first."""
    entries = KnowledgeEntry.objects.filter(enabled=True).filter(Q(persona=persona) | Q(persona__isnull=True,
                                                                                       dynasty=persona.dynasty))
    scored = [(_score(query, entry), entry) for entry in entries]
    scored.sort(key=lambda pair: (-pair[0], pair[1].persona_id is None, pair[1].order, pair[1].pk))
    return scored


def _document(entry: KnowledgeEntry) -> str:
    return f"{entry.title}\n{entry.content}"[:RERANK_DOCUMENT_CHARS]


def _reranked(credential, query: str, entries: list[KnowledgeEntry], limit: int) -> list[KnowledgeEntry]:
    """The connection's reranker's choice among `entries`; RerankError when it has none to give."""
    pairs = rerank(base_url=credential.effective_base_url(), api_key=credential.api_key,
                   model=credential.model_for("rerank"), query=query, documents=[_document(e) for e in entries],
                   top_n=limit, timeout=settings.KNOWLEDGE_RERANK_TIMEOUT, guard=credential_guard(credential))
    return [entries[index] for index, score in pairs if score > 0]  # 0 or less: the reranker says unrelated


def search_knowledge(persona, query: str, limit: int = TOP, credential=None) -> list[KnowledgeEntry]:
    """Up to `limit` entries for `query`: ranked by the connection's reranker (over all the figure's and
    its era's entries) when it offers one and KNOWLEDGE_RERANK is "auto", else (and whenever the
    reranker fails) by shared bigrams."""
    scored = _candidates(persona, query)
    local = [entry for score, entry in scored if score > 0][:limit]
    # No entry shares even a character with the question: the base has nothing on it, and a reranker
    # (which always ranks something first) would only hide that, so no call is made.
    if not local or settings.KNOWLEDGE_RERANK != "auto" or credential is None or not credential.offers("rerank"):
        return local
    try:
        return _reranked(credential, query, [entry for _, entry in scored[:RERANK_CANDIDATES]], limit)
    except RerankError as exc:
        logger.warning("rerank failed for credential %s, local order kept: %s", credential.pk, exc)
        return local


def _history(context: ToolContext, args: dict) -> ToolResult:
    query = args["query"]
    found = search_knowledge(context.persona, query, credential=credential_resolve(context.user))
    if not found:
        return ToolResult(True, {"查询": UserText(query), "结果": [], "提示": "知识库中没有相关记载。不要编造史实；可坦言史书未载，或只谈确知之事。"},
                          f"「{query}」：知识库中没有相关记载")
    items = [{
        "编号": ref_of(entry), "标题": entry.title, "内容": entry.content[:CONTENT_CHARS], "出处": entry.citation, "可信度": entry.label,
        "原文": entry.source_quote[:CONTENT_CHARS],
    } for entry in found]
    return ToolResult(True, {"查询": UserText(query), "结果": items,
                             "提示": "史载：史书有载；推测：据史料推断；演绎：后世演绎，不可当作史实。" + CITE_HINT},
                      f"「{query}」：找到 {len(items)} 条记载")


register(Tool(
    name="history_search", label="历史知识库", command="查",
    description="查询本人物及其时代的历史知识库，返回带出处（书、篇章）和可信度标注的记载。仅在用户要求查证史实时使用。",
    argument="query", argument_description="要查的人物、事件、年份或典故，简体中文",
    run=_history,
))


def _portrayals(context: ToolContext, args: dict) -> ToolResult:
    rows = list(context.persona.portrayals.order_by("year", "pk"))
    if not rows:
        return ToolResult(True, {"作品": [], "提示": "暂无收录的影视形象。"}, "暂无收录的影视形象")
    items = [{"作品": row.production, "年份": row.year, "演员": row.actor, "形象": row.depiction,
              "与史实出入": row.departures} for row in rows]
    note = ("这些是后世的影视演绎（你身后之事，你本不得知）。请以“听闻后人如此演我”的口吻评说，"
            "指出与史实的出入，不要把演绎当成史实。")
    return ToolResult(True, {"问题": UserText(args["question"]), "作品": items, "提示": note}, f"收录 {len(items)} 部影视作品")


register(Tool(
    name="screen_portrayals", label="影视人物分析", command="影视",
    description="列出本人物在影视作品中的形象（作品、年份、演员、如何塑造、与史实的出入）。仅在用户问到影视形象时使用。",
    argument="question", argument_description="用户关于影视形象的问题",
    run=_portrayals,
))
