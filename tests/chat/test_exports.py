"""Exports of the whole tree: JSON Lines that rebuild the tree, and Markdown with every branch."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from chat import selectors, services
from chat.models import Message
from chat.tree import Node, Tree
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

COMPLETE = Message.Status.COMPLETE


@pytest.fixture
def conversation(alice):
    return services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))


@pytest.fixture
def branched(conversation):
    """A regenerated reply, then an edited user message under the second reply, each answered:
    three branches, the last one shown."""
    asked = services.message_add_user(conversation=conversation, text="饮否？")
    services.reply_save(conversation=conversation, parent=asked, content="饮！", status=COMPLETE)
    again = services.reply_save(conversation=conversation, parent=asked, content="且饮三百杯！", status=COMPLETE)
    moon = services.message_add_user(conversation=conversation, text="月在何处？")
    services.reply_save(conversation=conversation, parent=moon, content="月在青天。", status=Message.Status.STOPPED)
    edited = services.message_edit(conversation=conversation, original=moon, text="青天有月来几时？")
    services.reply_save(conversation=conversation, parent=edited, content="我今停杯一问之。", status=COMPLETE)
    conversation.refresh_from_db()
    assert again.pk in selectors.conversation_tree(conversation).path_to(conversation.active_leaf_id)
    return conversation


def _get(client, name, conversation, scope):
    return client.get(reverse(f"chat:{name}", args=[conversation.pk]), {"scope": scope})


def _rows(response) -> list[dict]:
    return [json.loads(line) for line in response.content.decode().splitlines()]


def test_the_tree_jsonl_rebuilds_the_tree_in_the_database(alice_client, branched):
    response = _get(alice_client, "export_jsonl", branched, "tree")
    assert response["Content-Disposition"] == f'attachment; filename="guyue-li-bai-{branched.pk}-tree.jsonl"'
    rows = _rows(response)

    stored = {m.pk: m for m in branched.messages.all()}
    assert {r["id"]: r["parent_id"] for r in rows} == {pk: m.parent_id for pk, m in stored.items()}
    for row in rows:
        message = stored[row["id"]]
        assert (row["role"], row["content"], row["status"]) == (message.role, message.content, message.status)
        assert row["created_at"] == message.created_at.isoformat()
    # A parent always comes before its children, so a reader can rebuild in one pass.
    seen = set()
    for row in rows:
        assert row["parent_id"] is None or row["parent_id"] in seen
        seen.add(row["id"])

    [leaf] = [r["id"] for r in rows if r["active_leaf"]]
    rebuilt = Tree(Node(r["id"], r["parent_id"]) for r in rows)
    assert rebuilt.path_to(leaf) == [m.pk for m in selectors.branch_messages(branched)]
    assert sorted(rebuilt.leaves()) == sorted(selectors.conversation_tree(branched).leaves())
    assert len(rebuilt.leaves()) == 3


def test_the_branch_jsonl_is_still_the_shown_branch_only(alice_client, branched):
    rows = _rows(_get(alice_client, "export_jsonl", branched, "branch"))
    assert [r["content"] for r in rows] == ["幸会。", "饮否？", "且饮三百杯！", "青天有月来几时？", "我今停杯一问之。"]
    assert [r["active_leaf"] for r in rows] == [False] * 4 + [True]


def test_the_tree_markdown_writes_every_branch_once(alice_client, branched):
    response = _get(alice_client, "export_md", branched, "tree")
    assert response["Content-Disposition"] == f'attachment; filename="guyue-li-bai-{branched.pk}-tree.md"'
    body = response.content.decode()
    assert "- 分支：共 3 条" in body
    assert body.count("## 分支 ") == 3 and "## 分支 1（当前显示）" in body
    for text in ("饮否？", "饮！", "且饮三百杯！", "月在何处？", "月在青天。", "青天有月来几时？", "我今停杯一问之。"):
        assert body.count(f": {text}") == 1, text
    shown, rest = body.split("## 分支 2", 1)
    assert "**李白**: 且饮三百杯！" in shown and "**我**: 青天有月来几时？" in shown and "饮！" not in shown
    # Each other branch starts where it parts from one already written.
    assert "*前 2 条同分支 1（至我：「饮否？」），此后：*" in rest
    assert "*前 3 条同分支 1（至李白：「且饮三百杯！」），此后：*" in rest
    assert "此回答已被停止" in rest


def test_the_page_offers_both_scopes_for_both_formats(alice_client, branched):
    html = alice_client.get(reverse("chat:page", args=[branched.pk])).content.decode()
    assert 'name="scope" value="branch" checked' in html and 'name="scope" value="tree"' in html
    assert f'action="{reverse("chat:export_md", args=[branched.pk])}"' in html
    assert f'formaction="{reverse("chat:export_jsonl", args=[branched.pk])}"' in html


@pytest.mark.parametrize("name", ["export_md", "export_jsonl"])
def test_another_users_tree_is_a_404(bob_client, branched, name):
    assert _get(bob_client, name, branched, "tree").status_code == 404
