from __future__ import annotations

import pytest
from django.http import Http404

from chat import selectors, services
from chat.models import Message
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(alice):
    persona = make_persona("li-bai", "李白")
    return services.conversation_start(owner=alice, persona=persona, life_stage=persona.life_stages.first())


def _contents(conversation):
    conversation.refresh_from_db()
    return [m.content for m in selectors.branch_messages(conversation)]


def _reply(conversation, parent, text, status=Message.Status.COMPLETE):
    return services.reply_save(conversation=conversation, parent=parent, content=text, status=status)


def test_a_conversation_opens_with_the_greeting(conversation):
    assert _contents(conversation) == ["幸会。"]


def test_the_users_message_is_saved_and_shown(conversation):
    services.message_add_user(conversation=conversation, text="  问君何所之？ ")
    assert _contents(conversation) == ["幸会。", "问君何所之？"]


@pytest.mark.parametrize(("text", "message"), [
    ("", "请输入"), ("   \n", "请输入"), ("字" * 4001, "太长"), (["床前"], "必须是文字"), (42, "必须是文字"),
    ({"text": "x"}, "必须是文字"), (None, "必须是文字"), ("\x00\x01 ", "请输入"),
])
def test_empty_or_oversized_messages_are_refused_and_nothing_changes(conversation, text, message):
    with pytest.raises(services.MessageRejected, match=message):
        services.message_add_user(conversation=conversation, text=text)
    assert conversation.messages.count() == 1


def test_lone_surrogates_and_control_characters_are_cleaned_before_saving(conversation):
    message = services.message_add_user(conversation=conversation, text="月\ud83c下\x00独酌\x1b\t一壶\n酒")
    message.refresh_from_db()
    assert message.content == "月\ufffd下独酌\t一壶\n酒"
    message.content.encode("utf-8")  # storable anywhere, sendable in a frame


def test_regenerate_adds_a_sibling_and_switching_goes_back(conversation):
    question = services.message_add_user(conversation=conversation, text="饮否？")
    first = _reply(conversation, question, "饮！")
    second = _reply(conversation, first.parent, "且饮三百杯！")
    assert _contents(conversation) == ["幸会。", "饮否？", "且饮三百杯！"]
    tree = selectors.conversation_tree(conversation)
    assert tree.siblings(second.pk) == [first.pk, second.pk]
    services.branch_switch(conversation=conversation, message=first)
    assert _contents(conversation) == ["幸会。", "饮否？", "饮！"]


def test_edit_and_resend_keeps_the_original_branch(conversation):
    question = services.message_add_user(conversation=conversation, text="君在何处？")
    _reply(conversation, question, "在长安。")
    edited = services.message_edit(conversation=conversation, original=question, text="君今在何处？")
    assert _contents(conversation) == ["幸会。", "君今在何处？"]
    _reply(conversation, edited, "在当涂。")
    # Switching back to the original question lands on its reply, not on the bare question.
    services.branch_switch(conversation=conversation, message=question)
    assert _contents(conversation) == ["幸会。", "君在何处？", "在长安。"]


def test_a_stopped_reply_keeps_its_partial_text(conversation):
    question = services.message_add_user(conversation=conversation, text="作诗一首")
    reply = _reply(conversation, question, "床前明月", status=Message.Status.STOPPED)
    reply.refresh_from_db()
    assert reply.status == "stopped" and reply.content == "床前明月"


def test_only_user_messages_edit(conversation):
    services.message_add_user(conversation=conversation, text="问")
    with pytest.raises(services.MessageRejected):
        services.message_edit(conversation=conversation, original=conversation.active_leaf.parent, text="x")


def test_another_users_conversation_is_a_404(conversation, bob):
    with pytest.raises(Http404):
        selectors.get_conversation_for_user(bob, conversation.pk)
    assert selectors.get_conversation_for_user(conversation.owner, conversation.pk) == conversation


def test_a_message_of_another_conversation_is_a_404(conversation, alice):
    other = services.conversation_start(owner=alice, persona=conversation.persona)
    with pytest.raises(Http404):
        selectors.get_message_in(conversation, other.active_leaf_id)


def test_a_life_stage_of_another_figure_is_refused(alice, conversation):
    other = make_persona("du-fu", "杜甫")
    with pytest.raises(services.MessageRejected):
        services.conversation_start(owner=alice, persona=other, life_stage=conversation.persona.life_stages.first())


def test_the_branch_costs_two_queries_at_any_length(conversation, django_assert_num_queries):
    parent = conversation.active_leaf
    for i in range(30):
        parent = services.message_add_user(conversation=conversation, text=f"问{i}", parent=parent)
        parent = _reply(conversation, parent, f"答{i}")
    conversation.refresh_from_db()
    with django_assert_num_queries(2):
        messages = selectors.branch_messages(conversation)
    assert len(messages) == 61


@pytest.mark.django_db(transaction=True)  # async ORM calls run in another thread
async def test_the_async_selector_filters_by_owner(conversation, bob):
    assert await selectors.aget_conversation_for_user(bob, conversation.pk) is None
    found = await selectors.aget_conversation_for_user(conversation.owner, conversation.pk)
    assert found.pk == conversation.pk


def _greeted(alice, persona, partner=None):
    conversation = services.conversation_start(owner=alice, persona=persona, guests=[partner] if partner else [])
    return conversation, selectors.conversation_tree(conversation)


def test_alternate_greetings_are_siblings_of_the_first_and_the_first_is_shown(alice):
    persona = make_persona("li-bai", "李白")
    persona.alternate_greetings = ["君自何方来？", "", "君自何方来？", 7, "且饮一杯。"]  # blanks, repeats, non-text
    persona.save()
    conversation, tree = _greeted(alice, persona)
    roots = list(conversation.messages.order_by("id"))
    assert [m.content for m in roots] == ["幸会。", "君自何方来？", "且饮一杯。"]
    assert {m.provider for m in roots} == {"greeting"} and {m.parent_id for m in roots} == {None}
    assert tree.siblings(roots[0].pk) == [m.pk for m in roots]
    assert _contents(conversation) == ["幸会。"]
    services.branch_switch(conversation=conversation, message=roots[2])
    assert _contents(conversation) == ["且饮一杯。"]
    # The user's first words follow the greeting they chose.
    question = services.message_add_user(conversation=conversation, text="饮！")
    assert question.parent_id == roots[2].pk


def test_in_a_scene_the_second_figure_greets_after_each_greeting(alice):
    persona = make_persona("li-bai", "李白")
    persona.alternate_greetings = ["君自何方来？"]
    persona.save()
    partner = make_persona("du-fu", "杜甫")
    conversation, tree = _greeted(alice, persona, partner)
    roots = tree.children[None]
    assert len(roots) == 2 and _contents(conversation) == ["幸会。", "幸会。"]
    services.branch_switch(conversation=conversation, message=conversation.messages.get(pk=roots[1]))
    conversation.refresh_from_db()
    assert [m.content for m in selectors.branch_messages(conversation)] == ["君自何方来？", "幸会。"]
    assert conversation.active_leaf.speaker_id == partner.pk


def test_a_card_without_alternates_opens_with_one_greeting(alice):
    conversation, tree = _greeted(alice, make_persona("li-bai", "李白"))
    assert conversation.messages.count() == 1 and len(tree.children[None]) == 1


def test_greetings_fill_in_the_card_macros(alice):
    persona = make_persona("li-bai", "李白")
    persona.first_mes = "{{user}}来了！{{char}}正要饮酒。"
    persona.alternate_greetings = ["{{char}}拱手：{{user}}请坐。"]
    persona.save()
    conversation = services.conversation_start(owner=alice, persona=persona)
    texts = sorted(conversation.messages.values_list("content", flat=True))
    assert texts == sorted(["你来了！李白正要饮酒。", "李白拱手：你请坐。"])
