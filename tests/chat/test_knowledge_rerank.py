"""历史知识库 through the connection's reranker (POST {base}/rerank), against a scripted upstream."""

from __future__ import annotations

import httpx
import pytest

from accounts.models import ApiCredential, CredentialStatus
from chat import services
from chat.tools import registry
from chat.tools.knowledge import search_knowledge
from chat.tools.registry import ToolContext
from personas.models import KnowledgeEntry
from tests.fakes.reranker import StandInReranker, tfidf_scores
from tests.fakes.upstream import Reply, json_reply
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "sk-rerank-test-0001"
TITLES = ["安史之乱", "赐金放还", "长流夜郎"]  # the local order for the question below


@pytest.fixture
def li_bai():
    persona = make_persona("li-bai", "李白")
    persona.knowledge_entries.all().delete()  # the factory's own entry: these three are the whole base
    for order, (title, content, keys) in enumerate([
        ("安史之乱", "天宝十四载，安禄山反于范阳，李白避乱庐山。", ["安史之乱", "安禄山"]),
        ("赐金放还", "天宝三载，李白恳求还山，玄宗赐金放还。", ["赐金放还"]),
        ("长流夜郎", "李白因永王之事获罪，长流夜郎，途中遇赦。", ["夜郎"]),
    ]):
        KnowledgeEntry.objects.create(persona=persona, title=title, content=content, trigger_keys=keys,
                                      source_book="《新唐书》", label="史载", order=order)
    return persona


@pytest.fixture
def rerank_credential(alice, settings, upstream):
    settings.USER_BASE_URL_ALLOWED_HOSTS = ["127.0.0.1"]  # a user's connection: the guard is on
    settings.KNOWLEDGE_RERANK = "auto"
    settings.KNOWLEDGE_RERANK_TIMEOUT = 1.0
    credential = ApiCredential(owner=alice, kind="openai_compatible", label="本地", base_url=f"{upstream.url}/v1",
                               rerank_model="jina-reranker-v2-base-multilingual", status=CredentialStatus.VALID)
    credential.set_key(KEY)
    credential.save()
    return credential


QUESTION = "安史之乱时李白在哪里？赐金放还以后呢？夜郎"


def titles(entries) -> list[str]:
    return [entry.title for entry in entries]


def scores(*pairs):
    return json_reply(200, {"results": [{"index": i, "relevance_score": s} for i, s in pairs],
                            "usage": {"prompt_tokens": 10, "total_tokens": 10}})


def history(alice, persona, query=QUESTION):
    conversation = services.conversation_start(owner=alice, persona=persona)
    question = services.message_add_user(conversation=conversation, text=query)
    context = ToolContext(user=alice, conversation=conversation, persona=persona, question=question)
    _, _, result = registry.run("history_search", f'{{"query": "{query}"}}', context)
    return result


def test_the_local_order_without_a_connection(li_bai):
    assert titles(search_knowledge(li_bai, QUESTION)) == TITLES


def test_the_request_has_the_jina_shape(alice, li_bai, rerank_credential, upstream):
    upstream.route("POST", "/v1/rerank", scores((0, 0.9)))
    history(alice, li_bai)
    [request] = upstream.requests
    assert request.path == "/v1/rerank" and request.headers["authorization"] == f"Bearer {KEY}"
    body = request.json()
    assert set(body) == {"model", "query", "documents", "top_n"}
    assert body["model"] == "jina-reranker-v2-base-multilingual" and body["query"] == QUESTION and body["top_n"] == 3
    assert body["documents"][1] == "赐金放还\n天宝三载，李白恳求还山，玄宗赐金放还。"
    assert [d.split("\n")[0] for d in body["documents"]] == TITLES


def test_the_tool_follows_the_upstreams_scores(alice, li_bai, rerank_credential, upstream):
    # Unsorted on purpose: the order is the scores', not the list's.
    upstream.route("POST", "/v1/rerank", scores((1, 0.31), (2, 0.87), (0, 0.02)))
    result = history(alice, li_bai)
    assert [item["标题"] for item in result.data["结果"]] == ["长流夜郎", "赐金放还", "安史之乱"]


def test_an_entry_the_reranker_scores_zero_is_left_out(alice, li_bai, rerank_credential, upstream):
    upstream.route("POST", "/v1/rerank", scores((2, 0.5), (0, 0.0)))
    assert titles(search_knowledge(li_bai, QUESTION, credential=rerank_credential)) == ["长流夜郎"]


@pytest.mark.parametrize("reply", [
    json_reply(404, {"error": {"message": "Not Found"}}),
    json_reply(500, {"error": {"message": "internal error"}}),
    json_reply(200, {"data": []}),  # not the rerank shape
    json_reply(200, {"results": [{"index": 7, "relevance_score": 0.9}]}),  # no such document
    Reply(status=None, end="hang"),  # never answers: the timeout
], ids=["404", "500", "wrong-shape", "bad-index", "timeout"])
def test_a_failing_reranker_leaves_the_local_order(alice, li_bai, rerank_credential, upstream, reply):
    upstream.route("POST", "/v1/rerank", reply)
    result = history(alice, li_bai)
    assert result.ok and [item["标题"] for item in result.data["结果"]] == TITLES
    assert len(upstream.requests) == 1


def test_no_call_without_a_rerank_model(alice, li_bai, rerank_credential, upstream):
    rerank_credential.rerank_model = ""
    rerank_credential.save()
    assert [item["标题"] for item in history(alice, li_bai).data["结果"]] == TITLES
    assert upstream.requests == []


def test_no_call_when_switched_off(alice, li_bai, rerank_credential, upstream, settings):
    settings.KNOWLEDGE_RERANK = "off"
    assert titles(search_knowledge(li_bai, QUESTION, credential=rerank_credential)) == TITLES
    assert upstream.requests == []


def test_no_call_when_nothing_in_the_base_shares_a_word(alice, li_bai, rerank_credential, upstream):
    result = history(alice, li_bai, "赤壁鏖兵")
    assert result.data["结果"] == [] and "不要编造" in result.data["提示"]
    assert upstream.requests == []


def test_a_users_connection_to_an_internal_address_is_refused_and_local_order_kept(alice, li_bai, rerank_credential,
                                                                                   upstream, settings):
    settings.USER_BASE_URL_ALLOWED_HOSTS = []  # 127.0.0.1 is no longer trusted for a user's key
    assert titles(search_knowledge(li_bai, QUESTION, credential=rerank_credential)) == TITLES
    assert upstream.requests == []


def test_the_stand_in_reranker_ranks_by_content(upstream):
    documents = ["韩信受胯下之辱，忍而不发。", "诸葛亮五丈原病逝。", "李白醉后入水捉月，是后世传说。"]
    ranked = tfidf_scores("李白是不是醉后捉月而死", documents)
    assert max(range(3), key=ranked.__getitem__) == 2 and ranked[1] == 0.0
    upstream.route("POST", "/v1/rerank", StandInReranker())
    body = httpx.post(f"{upstream.url}/v1/rerank", json={"model": "m", "query": "五丈原", "documents": documents,
                                                          "top_n": 1}).json()
    assert [r["index"] for r in body["results"]] == [1]
