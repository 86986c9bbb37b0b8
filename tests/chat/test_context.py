"""chat/context.py: what a reply reads before its call, in one statement, agrees with the ORM helpers."""

from __future__ import annotations

import pytest

from chat import services
from chat.context import reply_context
from chat.models import FigurePreference, UserPersona
from chat.recall.memories import preference_for, preference_text
from chat.userpersona import user_persona_rows, user_persona_text
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db


def test_one_statement_reads_what_the_orm_helpers_read(alice, bob, django_assert_num_queries):
    li, du = make_persona("li-bai", "李白"), make_persona("du-fu", "杜甫")
    conversation = services.conversation_start(owner=alice, persona=li)
    conversation.__class__.objects.filter(pk=conversation.pk).update(summary="谈过黄鹤楼。", title_origin="auto")
    FigurePreference.objects.create(owner=alice, persona=li, personality="豪放", language_style="多用文言")
    FigurePreference.objects.create(owner=alice, persona=du, personality="沉郁")
    FigurePreference.objects.create(owner=bob, persona=li, personality="别人的")
    UserPersona.objects.create(owner=alice, persona=li, name="小友")
    UserPersona.objects.create(owner=alice, persona=None, name="阿明", description="一名中学语文老师")
    UserPersona.objects.create(owner=bob, persona=None, name="鲍勃")
    with django_assert_num_queries(1):
        context = reply_context(conversation.pk, alice.pk, li.pk)
    assert (context.summary, context.title_origin) == ("谈过黄鹤楼。", "auto")
    assert preference_text(context.preference) == preference_text(preference_for(alice, li)) == "个性倾向：豪放；语言风格：多用文言"
    assert user_persona_text(context.user_persona) == user_persona_text(user_persona_rows(alice, li))
    assert user_persona_text(context.user_persona) == "称呼：小友；自述：一名中学语文老师"


def test_nothing_set_and_no_conversation(alice):
    li = make_persona("li-bai", "李白")
    conversation = services.conversation_start(owner=alice, persona=li)
    context = reply_context(conversation.pk, alice.pk, li.pk)
    assert context.preference is None and context.user_persona == [] and context.summary == ""
    assert reply_context(conversation.pk + 1000, alice.pk, li.pk) is None
