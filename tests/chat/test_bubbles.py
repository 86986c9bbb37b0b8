from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from chat.bubbles import ERROR_EXPLANATIONS, message_payload, render_bubble
from chat.models import Message
from personas.models import Persona

# Bubbles are pure rendering: unsaved objects are enough, and no test here needs the database.
PERSONA = Persona(name="李白", slug="li-bai")
SETTINGS_URL = "/accounts/settings/"


def _message(pk=7, *, role="assistant", content="举杯邀明月", status="complete", error_kind="", parent_id=6):
    return Message(pk=pk, conversation_id=3, parent_id=parent_id, role=role, content=content, status=status,
                   error_kind=error_kind, created_at=timezone.now())


def _render(message, siblings=None):
    return render_bubble(message, siblings=siblings or [message.pk], persona=PERSONA)


def test_it_marks_up_the_bubble_for_the_script():
    html = _render(_message())
    assert html.startswith('<article class="message message-assistant" id="message-7" data-id="7" data-parent-id="6"')
    assert 'data-role="assistant" data-status="complete"' in html
    assert "李白" in html and "已停止" not in html and "出错" not in html


def test_a_root_message_has_an_empty_parent_id():
    assert 'data-parent-id=""' in _render(_message(parent_id=None))


def test_assistant_text_is_markdown_and_sanitised():
    html = _render(_message(content="**将进酒**\n\n<script>alert(1)</script><img src=x onerror=alert(1)>"))
    assert "<strong>将进酒</strong>" in html
    assert "<script" not in html and "<img" not in html and "onerror" not in html


def test_user_text_is_escaped_with_its_line_breaks():
    html = _render(_message(role="user", content="**不是粗体** <b>x</b>\n第二行"))
    assert "**不是粗体** &lt;b&gt;x&lt;/b&gt;<br>第二行" in html
    assert "<strong>" not in html


def test_a_stopped_reply_has_a_badge_and_no_error():
    html = _render(_message(status="stopped"))
    assert '<span class="badge badge-stopped">已停止</span>' in html
    assert "message-error" not in html


@pytest.mark.parametrize("kind", sorted(ERROR_EXPLANATIONS))
def test_an_error_reply_is_explained_in_chinese(kind):
    html = _render(_message(status="error", error_kind=kind, content=""))
    assert '<span class="badge badge-error">出错</span>' in html
    assert ERROR_EXPLANATIONS[kind] in html
    assert (SETTINGS_URL in html) == (kind in {"no_key", "auth", "no_vision"})


def test_every_kind_of_the_protocol_has_its_own_explanation():
    kinds = {"no_key", "auth", "billing", "rate_limit", "moderation", "timeout", "upstream", "bad_request",
             "unavailable", "interrupted", "internal", "no_vision"}
    assert set(ERROR_EXPLANATIONS) == kinds
    assert len(set(ERROR_EXPLANATIONS.values())) == len(kinds)


def test_the_key_errors_link_to_the_key_settings():
    assert reverse("accounts:settings") == SETTINGS_URL
    html = _render(_message(status="error", error_kind="no_key", content=""))
    assert f'<a href="{SETTINGS_URL}">前往密钥设置</a>' in html


def test_an_unknown_error_kind_still_reads_as_an_error():
    html = _render(_message(status="error", error_kind="mystery"))
    assert "回答出错了" in html and SETTINGS_URL not in html


def test_an_error_keeps_the_partial_text():
    html = _render(_message(status="error", error_kind="interrupted", content="床前明月"))
    assert "床前明月" in html and ERROR_EXPLANATIONS["interrupted"] in html


def test_assistant_replies_to_a_question_can_be_regenerated():
    html = _render(_message())
    assert 'data-action="regenerate" data-message-id="7"' in html
    assert 'data-action="edit"' not in html and 'data-action="copy"' in html


def test_the_greeting_cannot_be_regenerated():
    assert 'data-action="regenerate"' not in _render(_message(parent_id=None))


def test_a_scenes_second_greeting_cannot_be_regenerated_either():
    greeting = _message()
    greeting.provider = "greeting"
    assert 'data-action="regenerate"' not in _render(greeting)


def test_user_messages_can_be_edited_not_regenerated():
    html = _render(_message(role="user"))
    assert 'data-action="edit" data-message-id="7"' in html
    assert 'data-action="regenerate"' not in html


def test_no_switcher_for_an_only_child():
    assert "sibling-switcher" not in _render(_message(), siblings=[7])


def test_the_switcher_posts_to_the_neighbours():
    html = _render(_message(), siblings=[5, 7, 9])
    assert '<span class="switch-position">2/3</span>' in html
    assert f'hx-post="{reverse("chat:switch", args=[3, 5])}"' in html
    assert f'hx-post="{reverse("chat:switch", args=[3, 9])}"' in html
    assert 'hx-target="#message-list"' in html


def test_the_switcher_disables_the_ends():
    html = _render(_message(pk=5), siblings=[5, 7])
    assert '<span class="switch-position">1/2</span>' in html
    assert 'class="switch-prev" disabled' in html
    assert f'hx-post="{reverse("chat:switch", args=[3, 7])}"' in html


def test_the_payload_is_the_protocols_message_object():
    message = _message(status="error", error_kind="timeout", content="半句")
    payload = message_payload(message, siblings=[7], persona=PERSONA)
    assert set(payload) == {"id", "parent_id", "role", "status", "error_kind", "html"}
    assert payload["id"] == 7 and payload["parent_id"] == 6 and payload["role"] == "assistant"
    assert payload["status"] == "error" and payload["error_kind"] == "timeout"
    assert payload["html"] == _render(message)
    json.dumps(payload)


async def test_it_renders_from_async_code_without_touching_relations():
    payload = await sync_to_async(message_payload)(_message(), siblings=[7], persona=PERSONA)
    assert payload["html"].startswith('<article class="message message-assistant"')


@pytest.mark.django_db
def test_rendering_a_saved_message_makes_no_queries(alice, django_assert_num_queries):
    from chat import services
    from tests.personas.factories import make_persona

    persona = make_persona("li-bai", "李白")
    conversation = services.conversation_start(owner=alice, persona=persona)
    message = Message.objects.get(pk=conversation.active_leaf_id)
    with django_assert_num_queries(0):
        render_bubble(message, siblings=[message.pk], persona=persona)
