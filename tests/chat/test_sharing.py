"""Share links: one frozen branch, readable by anyone with the link, and nothing else."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.urls import reverse

from chat import services
from chat.models import Memory, Message, ShareLink, share_token_hash
from chat.sharing.services import MAX_LINKS_PER_CONVERSATION
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
COMPLETE = Message.Status.COMPLETE


@pytest.fixture
def conversation(alice):
    conversation = services.conversation_start(owner=alice, persona=make_persona("li-bai", "李白"))
    asked = services.message_add_user(conversation=conversation, text="饮否？")
    services.reply_save(conversation=conversation, parent=asked, content="不饮。", status=COMPLETE)
    services.reply_save(conversation=conversation, parent=asked, content="且饮**三百杯**！", status=COMPLETE)
    services.conversation_rename(conversation=conversation, title="alice 的私房话")
    Memory.objects.create(owner=alice, persona=conversation.persona, content="我住在长安西市")
    conversation.refresh_from_db()
    return conversation


def _create(client, conversation):
    return client.post(reverse("chat:share_create", args=[conversation.pk]), **HTMX)


def _share(alice_client, conversation) -> tuple[ShareLink, str]:
    html = _create(alice_client, conversation).content.decode()
    link = conversation.share_links.get()
    url = re.search(r'value="(http://testserver/chat/shared/[^"]+/)"', html).group(1)
    return link, url.removeprefix("http://testserver")


def test_the_owner_makes_a_link_whose_token_is_stored_only_hashed_and_encrypted(alice_client, conversation):
    response = _create(alice_client, conversation)
    assert response.status_code == 200
    html = response.content.decode()
    link = conversation.share_links.get()
    token = re.search(r"/chat/shared/([^/\"]+)/", html).group(1)
    assert len(token) >= 32 and link.leaf_id == conversation.active_leaf_id
    assert link.token_hash == share_token_hash(token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT token, token_hash FROM chat_sharelink")
        [(stored, stored_hash)] = cursor.fetchall()
    assert token not in stored and token not in stored_hash
    assert "已生成" in html and "撤销" in html


def test_two_links_have_different_tokens(alice_client, conversation):
    _create(alice_client, conversation)
    _create(alice_client, conversation)
    assert len({link.token for link in conversation.share_links.all()}) == 2


@pytest.mark.parametrize("visitor", ["client", "bob_client"])
def test_a_visitor_sees_the_shared_branch_and_nothing_else(request, alice_client, conversation, visitor):
    link, url = _share(alice_client, conversation)
    response = request.getfixturevalue(visitor).get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "饮否？" in html and "且饮<strong>三百杯</strong>！" in html and "幸会。" in html
    assert "不饮。" not in html  # the other branch
    assert "alice" not in html and "私房话" not in html and "长安西市" not in html
    assert "/ws/" not in html and "js/chat.js" not in html and "data-id" not in html
    for message in conversation.messages.all():
        assert f"message-{message.pk}" not in html
    assert f"/chat/{conversation.pk}/" not in html
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-cache" in response["Cache-Control"]


def test_what_is_said_after_sharing_does_not_appear(alice_client, client, conversation):
    link, url = _share(alice_client, conversation)
    asked = services.message_add_user(conversation=conversation, text="后来的话")
    services.reply_save(conversation=conversation, parent=asked, content="后来的回答", status=COMPLETE)
    services.branch_switch(conversation=conversation, message=conversation.messages.get(content="不饮。"))
    html = client.get(url).content.decode()
    assert "且饮<strong>三百杯</strong>！" in html
    assert "后来的" not in html and "不饮。" not in html


def test_a_revoked_link_is_a_404(alice_client, client, conversation):
    link, url = _share(alice_client, conversation)
    response = alice_client.post(reverse("chat:share_revoke", args=[conversation.pk, link.pk]), **HTMX)
    assert response.status_code == 200 and "已撤销" in response.content.decode()
    assert not ShareLink.objects.exists()
    assert client.get(url).status_code == 404
    assert alice_client.get(url).status_code == 404  # the owner too: the link is gone, not hidden


@pytest.mark.parametrize("token", ["wrong-token-0123456789abcdefghijkl", "x", "a" * 500])
def test_a_wrong_token_is_a_404(alice_client, client, conversation, token):
    _share(alice_client, conversation)
    assert client.get(reverse("chat:shared", args=[token])).status_code == 404


def test_a_closed_account_s_links_stop_working(alice, alice_client, client, conversation):
    _, url = _share(alice_client, conversation)
    alice.is_active = False
    alice.save()
    assert client.get(url).status_code == 404


def test_deleting_the_conversation_ends_its_links(alice_client, client, conversation):
    _, url = _share(alice_client, conversation)
    services.conversation_delete(conversation=conversation)
    assert client.get(url).status_code == 404


def test_another_user_can_neither_make_nor_revoke_a_link(alice_client, bob_client, conversation):
    assert _create(bob_client, conversation).status_code == 404
    link, url = _share(alice_client, conversation)
    response = bob_client.post(reverse("chat:share_revoke", args=[conversation.pk, link.pk]), **HTMX)
    assert response.status_code == 404
    assert ShareLink.objects.filter(pk=link.pk).exists()


def test_a_link_is_revoked_only_through_its_own_conversation(alice, alice_client, conversation):
    link, _ = _share(alice_client, conversation)
    other = services.conversation_start(owner=alice, persona=conversation.persona)
    response = alice_client.post(reverse("chat:share_revoke", args=[other.pk, link.pk]), **HTMX)
    assert response.status_code == 404


def test_anonymous_visitors_cannot_make_links(client, conversation):
    response = _create(client, conversation)
    assert response.status_code == 302 and not ShareLink.objects.exists()


def test_model_text_is_sanitised_and_the_users_words_escaped(alice_client, client, conversation):
    asked = services.message_add_user(conversation=conversation, text="<b>粗体</b><script>alert(1)</script>")
    services.reply_save(conversation=conversation, parent=asked, status=COMPLETE,
                        content='<img src=x onerror=alert(1)>[点我](javascript:alert(2)) <a href="https://example.org">出处</a>')
    _, url = _share(alice_client, conversation)
    html = client.get(url).content.decode()
    assert "&lt;b&gt;粗体&lt;/b&gt;&lt;script&gt;" in html
    assert "<script>alert" not in html and "<img" not in html and "javascript:" not in html


def test_a_reply_still_being_written_cannot_be_shared_yet(alice_client, conversation):
    asked = services.message_add_user(conversation=conversation, text="再饮？")
    services.reply_begin(conversation=conversation, parent=asked, content="且")
    html = _create(alice_client, conversation).content.decode()
    assert "回答还在书写中，写完再分享。" in html and not ShareLink.objects.exists()


def test_links_per_conversation_are_bounded(alice_client, conversation):
    for _ in range(MAX_LINKS_PER_CONVERSATION):
        _create(alice_client, conversation)
    html = _create(alice_client, conversation).content.decode()
    assert f"已有 {MAX_LINKS_PER_CONVERSATION} 个" in html
    assert conversation.share_links.count() == MAX_LINKS_PER_CONVERSATION


def test_the_chat_page_lists_the_links_with_revoke(alice_client, conversation):
    link, url = _share(alice_client, conversation)
    html = alice_client.get(reverse("chat:page", args=[conversation.pk])).content.decode()
    assert f'value="http://testserver{url}"' in html
    assert reverse("chat:share_revoke", args=[conversation.pk, link.pk]) in html and ">撤销<" in html
    assert "至「且饮**三百杯**！」" in html
