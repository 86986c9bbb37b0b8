from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import ApiCredential, CredentialStatus
from chat import selectors, services
from chat.models import Conversation, Message
from chat.views import MESSAGES_PER_PAGE
from personas.models import LifeStage, StylePreset
from tests.personas.factories import make_persona

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def persona():
    return make_persona("li-bai", "李白")


@pytest.fixture
def conversation(alice, persona):
    return services.conversation_start(owner=alice, persona=persona)


@pytest.fixture
def preset():
    return StylePreset.objects.create(slug="tang", name="唐风文言", instructions="以唐人文言作答。")


def _ask(conversation, question, answer, status=Message.Status.COMPLETE):
    asked = services.message_add_user(conversation=conversation, text=question)
    return services.reply_save(conversation=conversation, parent=asked, content=answer, status=status)


def _regenerated(conversation):
    """A question with two replies, the second one shown."""
    first = _ask(conversation, "饮否？", "饮！")
    second = services.reply_save(conversation=conversation, parent=first.parent, content="且饮三百杯！",
                                 status=Message.Status.COMPLETE)
    return first, second


def _url(name, conversation, **extra):
    return reverse(f"chat:{name}", kwargs={"pk": conversation.pk, **extra})


# --- ownership ------------------------------------------------------------------------------------

OWNED_VIEWS = [
    ("get", "page", {}), ("get", "messages", {}), ("post", "switch", None), ("post", "rename", {"title": "夺"}),
    ("post", "archive", {}), ("get", "delete", {}), ("post", "delete", {"confirm": "yes"}),
    ("post", "settings", {}), ("get", "export_md", {}), ("get", "export_jsonl", {}),
]


@pytest.mark.parametrize("intruder", ["bob_client", "charlie_client"])
@pytest.mark.parametrize(("method", "name", "data"), OWNED_VIEWS, ids=[f"{m}-{n}" for m, n, _ in OWNED_VIEWS])
def test_it_answers_404_for_another_users_conversation(request, conversation, intruder, method, name, data):
    client = request.getfixturevalue(intruder)
    extra = {"message_id": conversation.active_leaf_id} if name == "switch" else {}
    response = getattr(client, method)(_url(name, conversation, **extra), data or {})
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "与李白对话" and not conversation.archived


@pytest.mark.parametrize(("method", "name"), [("get", "page"), ("post", "rename"), ("get", "export_md")])
def test_it_sends_anonymous_visitors_to_the_login_page(client, conversation, method, name):
    response = getattr(client, method)(_url(name, conversation))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


# --- start ----------------------------------------------------------------------------------------

def test_it_starts_a_conversation_on_post_and_redirects_to_it(alice_client, alice, persona):
    response = alice_client.post(reverse("chat:start", args=[persona.slug]))
    conversation = Conversation.objects.get(owner=alice)
    assert response.status_code == 302
    assert response.url == _url("page", conversation)
    assert conversation.messages.get().content == "幸会。"


def test_it_never_creates_a_conversation_on_get(alice_client, persona):
    response = alice_client.get(reverse("chat:start", args=[persona.slug]))
    assert response.status_code == 200
    assert not Conversation.objects.exists()
    html = response.content.decode()
    assert f'method="post" action="{reverse("chat:start", args=[persona.slug])}"' in html
    assert "开始对话" in html


def test_get_offers_the_newest_conversation_and_a_new_one_with_stage_and_partner(alice_client, alice, persona):
    older = services.conversation_start(owner=alice, persona=persona)
    newer = services.conversation_start(owner=alice, persona=persona)
    services.conversation_archive_toggle(conversation=newer)
    make_persona("wang-yangming", "王阳明")
    response = alice_client.get(reverse("chat:start", args=[persona.slug]))
    assert response.status_code == 200  # no redirect: a stage and a second figure stay reachable
    html = response.content.decode()
    assert f'href="{_url("page", older)}"' in html and f'href="{_url("page", newer)}"' not in html
    assert "继续上次的对话" in html and "开始新对话" in html
    assert 'name="life_stage"' in html and 'name="guest_1"' in html and "王阳明" in html
    assert f'method="post" action="{reverse("chat:start", args=[persona.slug])}"' in html
    assert Conversation.objects.count() == 2


def test_a_user_with_a_conversation_starts_a_scene_with_a_life_stage(alice_client, alice, persona):
    services.conversation_start(owner=alice, persona=persona)
    partner = make_persona("wang-yangming", "王阳明")
    stage = persona.life_stages.get()
    response = alice_client.post(reverse("chat:start", args=[persona.slug]),
                                 {"life_stage": stage.pk, "guest_1": partner.pk})
    started = Conversation.objects.get(owner=alice, seats__persona=partner)
    assert response.status_code == 302 and response.url == _url("page", started)
    assert started.life_stage == stage


def test_get_ignores_other_users_conversations(alice_client, bob, persona):
    theirs = services.conversation_start(owner=bob, persona=persona)
    response = alice_client.get(reverse("chat:start", args=[persona.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "继续上次的对话" not in html and _url("page", theirs) not in html


def test_it_starts_with_a_chosen_life_stage_and_style(alice_client, alice, persona, preset):
    stage = persona.life_stages.get()
    alice_client.post(reverse("chat:start", args=[persona.slug]), {"life_stage": stage.pk, "style_preset": preset.pk})
    conversation = Conversation.objects.get(owner=alice)
    assert (conversation.life_stage, conversation.style_preset) == (stage, preset)


def test_it_refuses_a_life_stage_of_another_figure(alice_client, persona):
    other_stage = LifeStage.objects.create(persona=make_persona("du-fu", "杜甫"), name="漂泊西南", start_year=759,
                                           end_year=770)
    response = alice_client.post(reverse("chat:start", args=[persona.slug]), {"life_stage": other_stage.pk})
    assert response.status_code == 400
    assert "所选人生阶段不属于这位人物。" in response.content.decode()
    assert not Conversation.objects.exists()


def test_it_refuses_a_style_preset_that_does_not_exist(alice_client, persona):
    response = alice_client.post(reverse("chat:start", args=[persona.slug]), {"style_preset": 9999})
    assert response.status_code == 400
    assert "所选语言风格不存在。" in response.content.decode()
    assert not Conversation.objects.exists()


def test_an_unpublished_figure_cannot_be_started(alice_client):
    hidden = make_persona("hidden", "无名", published=False)
    assert alice_client.post(reverse("chat:start", args=[hidden.slug])).status_code == 404
    assert not Conversation.objects.exists()


def test_the_profile_button_opens_the_start_page(client, persona):
    html = client.get(reverse("personas:profile", args=[persona.slug])).content.decode()
    assert f'<a class="button" href="{reverse("chat:start", args=[persona.slug])}">开始对话</a>' in html


# --- the page -------------------------------------------------------------------------------------

def test_the_page_is_never_kept_in_the_browser_cache(alice_client, conversation):
    # Going back to it (from search, say) must fetch it again: a cached copy lacks what was said since.
    response = alice_client.get(_url("page", conversation))
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]


def test_the_page_shows_the_branch_with_sanitised_html(alice_client, conversation):
    _ask(conversation, "<script>alert('q')</script>\n第二行", "**好诗**<script>alert('a')</script>")
    html = alice_client.get(_url("page", conversation)).content.decode()
    body = html.split('id="message-list"')[1]
    assert body.count('<article class="message') == 3
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt;<br>第二行" in body
    assert "<strong>好诗</strong>" in body
    assert "幸会。" in body


def test_the_page_shows_the_sibling_switcher_after_a_second_reply(alice_client, conversation):
    first, second = _regenerated(conversation)
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert "且饮三百杯！" in html and "饮！" not in html
    assert '<span class="switch-position">2/2</span>' in html
    assert f'hx-post="{_url("switch", conversation, message_id=first.pk)}"' in html


def test_the_page_shows_the_key_status(alice_client, conversation):
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert "尚未配置可用的密钥" in html
    site = ApiCredential(owner=None, kind="dashscope", label="站点", status=CredentialStatus.VALID, is_default=True)
    site.set_key("sk-abcdefgh12345678")
    site.save()
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert "正在使用站点提供的密钥" in html
    assert reverse("accounts:settings") in html


def test_the_page_lists_only_this_users_conversations_with_this_figure(alice_client, alice, bob, conversation):
    services.conversation_rename(conversation=services.conversation_start(owner=bob, persona=conversation.persona),
                                 title="鲍勃的对话")
    services.conversation_rename(conversation=services.conversation_start(owner=alice, persona=make_persona("du-fu", "杜甫")),
                                 title="与杜甫对话")
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert "与李白对话" in html
    assert "鲍勃的对话" not in html and "与杜甫对话" not in html
    assert f'data-ws-path="/ws/chat/{conversation.pk}/"' in html
    assert "js/chat.js" in html


@pytest.mark.parametrize("turns", [5, 30], ids=["11-messages", "61-messages"])
def test_the_page_costs_a_constant_number_of_queries(alice_client, conversation, django_assert_max_num_queries, turns):
    for i in range(turns):
        _ask(conversation, f"问{i}", f"答{i}")
    # 16 today: session, user, conversation and its salon seats, list, tree, branch, tool cards, keys, figures,
    # stages, presets, the figure preference, the user's persona, the leaf (is a callback greeting on offer?)
    # and the share links
    with django_assert_max_num_queries(17):
        response = alice_client.get(_url("page", conversation))
    assert response.content.decode().count('<article class="message') == min(2 * turns + 1, MESSAGES_PER_PAGE)


def _long(conversation, turns):
    for i in range(turns):
        _ask(conversation, f"问{i}", f"答{i}")
    return selectors.branch_messages(conversation)


def test_a_long_conversation_opens_with_only_its_latest_messages(alice_client, conversation):
    branch = _long(conversation, 45)  # 91 messages
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert html.count('<article class="message') == MESSAGES_PER_PAGE
    assert f'id="message-{branch[-1].pk}"' in html and f'id="message-{branch[-40].pk}"' in html
    assert f'id="message-{branch[-41].pk}"' not in html
    assert "加载更早的对话（还有 51 条）" in html
    assert f'{_url("messages", conversation)}?before={branch[-40].pk}' in html


def test_earlier_pages_load_until_the_first_message(alice_client, conversation):
    branch = _long(conversation, 45)
    html = alice_client.get(_url("messages", conversation) + f"?before={branch[-40].pk}", **HTMX).content.decode()
    assert "<html" not in html and 'id="message-list"' not in html
    assert html.count('<article class="message') == 40
    assert f'id="message-{branch[-41].pk}"' in html and f'id="message-{branch[-80].pk}"' in html
    assert "加载更早的对话（还有 11 条）" in html
    html = alice_client.get(_url("messages", conversation) + f"?before={branch[-80].pk}", **HTMX).content.decode()
    assert html.count('<article class="message') == 11 and "加载更早的对话" not in html
    assert f'id="message-{branch[0].pk}"' in html  # the greeting, first of all


def test_an_earlier_page_of_another_branch_is_empty(alice_client, conversation):
    first, second = _regenerated(conversation)
    html = alice_client.get(_url("messages", conversation) + f"?before={first.pk}", **HTMX).content.decode()
    assert "<article" not in html


def test_a_2000_message_conversation_opens_in_constant_work(alice_client, conversation, django_assert_max_num_queries):
    parent = selectors.branch_messages(conversation)[-1]
    rows = []
    for i in range(2000):  # built in bulk: the services would take minutes for this many
        rows.append(Message(conversation=conversation, role="user" if i % 2 == 0 else "assistant",
                            content=f"第{i}句。", status="complete"))
    Message.objects.bulk_create(rows)
    ids = list(conversation.messages.exclude(pk=parent.pk).order_by("pk").values_list("pk", flat=True))
    for pk in ids:
        Message.objects.filter(pk=pk).update(parent_id=parent.pk)
        parent = Message(pk=pk)
    conversation.active_leaf_id = ids[-1]
    conversation.save(update_fields=["active_leaf"])
    # the same queries as any page (test_the_page_costs_a_constant_number_of_queries), whatever the length
    with django_assert_max_num_queries(17):
        html = alice_client.get(_url("page", conversation)).content.decode()
    assert html.count('<article class="message') == MESSAGES_PER_PAGE
    assert "第1999句。" in html and "第1959句。" not in html
    assert "加载更早的对话（还有 1961 条）" in html


def test_the_messages_partial_is_only_the_list(alice_client, conversation):
    _ask(conversation, "问", "答")
    html = alice_client.get(_url("messages", conversation)).content.decode()
    assert html.strip().startswith('<div id="message-list"')
    assert "<html" not in html and html.count("<article") == 3


def test_the_greeting_offers_the_cards_alternate_greetings(alice_client, alice, persona):
    persona.alternate_greetings = ["<script>alert(1)</script>君自何方来？"]
    persona.save()
    alice_client.post(reverse("chat:start", args=[persona.slug]))
    conversation = Conversation.objects.get(owner=alice)
    first, other = conversation.messages.order_by("id")
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert '<span class="switch-position">1/2</span>' in html and "幸会。" in html
    response = alice_client.post(_url("switch", conversation, message_id=other.pk), **HTMX)
    html = response.content.decode()
    assert '<span class="switch-position">2/2</span>' in html and "幸会。" not in html
    assert "君自何方来？" in html and "<script>alert" not in html  # cleaned like any figure's words


# --- switching ------------------------------------------------------------------------------------

def test_switch_returns_the_list_with_the_other_sibling(alice_client, conversation):
    first, second = _regenerated(conversation)
    response = alice_client.post(_url("switch", conversation, message_id=first.pk), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith('<div id="message-list"')
    assert "饮！" in html and "且饮三百杯！" not in html
    assert '<span class="switch-position">1/2</span>' in html
    conversation.refresh_from_db()
    assert conversation.active_leaf_id == first.pk


def test_switch_without_htmx_redirects_to_the_page(alice_client, conversation):
    first, _ = _regenerated(conversation)
    response = alice_client.post(_url("switch", conversation, message_id=first.pk))
    assert response.status_code == 302 and response.url == _url("page", conversation)


def test_switch_needs_the_message_to_be_in_that_conversation(alice_client, alice, conversation):
    other = services.conversation_start(owner=alice, persona=conversation.persona)
    leaf = conversation.active_leaf_id
    response = alice_client.post(_url("switch", conversation, message_id=other.active_leaf_id), **HTMX)
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.active_leaf_id == leaf


def test_switch_refuses_get(alice_client, conversation):
    assert alice_client.get(_url("switch", conversation, message_id=conversation.active_leaf_id)).status_code == 405


# --- rename, archive, delete ----------------------------------------------------------------------

def test_it_renames_inline(alice_client, conversation):
    response = alice_client.post(_url("rename", conversation), {"title": "  月下独酌  "}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="conversation-list"' in html and "月下独酌" in html
    assert 'hx-swap-oob="true">月下独酌</h1>' in html
    conversation.refresh_from_db()
    assert conversation.title == "月下独酌"


@pytest.mark.parametrize(("title", "message"), [("", "标题不能为空。"), ("   ", "标题不能为空。"),
                                                ("月" * 101, "标题不能超过 100 个字")])
def test_it_refuses_a_bad_title_and_keeps_the_old_one(alice_client, conversation, title, message):
    response = alice_client.post(_url("rename", conversation), {"title": title}, **HTMX)
    assert message in response.content.decode()
    assert "hx-swap-oob" not in response.content.decode()
    response = alice_client.post(_url("rename", conversation), {"title": title}, follow=True)
    assert message in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.title == "与李白对话"


def test_a_title_of_exactly_100_characters_is_fine(alice_client, conversation):
    alice_client.post(_url("rename", conversation), {"title": "月" * 100})
    conversation.refresh_from_db()
    assert conversation.title == "月" * 100


def test_archive_toggles(alice_client, conversation):
    response = alice_client.post(_url("archive", conversation), **HTMX)
    assert "取消归档" in response.content.decode() and "已归档（1）" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.archived
    response = alice_client.post(_url("archive", conversation))
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert not conversation.archived


def test_delete_asks_for_confirmation_first(alice_client, conversation):
    response = alice_client.get(_url("delete", conversation))
    assert response.status_code == 200 and "确认删除" in response.content.decode()
    response = alice_client.post(_url("delete", conversation))
    assert response.status_code == 200 and 'name="confirm" value="yes"' in response.content.decode()
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_delete_with_confirmation_removes_the_conversation_and_its_messages(alice_client, conversation):
    _ask(conversation, "问", "答")
    response = alice_client.post(_url("delete", conversation), {"confirm": "yes"})
    assert response.status_code == 302
    assert response.url == reverse("chat:start", args=[conversation.persona.slug])
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_deleting_the_shown_conversation_with_htmx_redirects_the_browser(alice_client, conversation):
    response = alice_client.post(_url("delete", conversation), {"confirm": "yes", "shown": conversation.pk}, **HTMX)
    assert response["HX-Redirect"] == reverse("chat:start", args=[conversation.persona.slug])


def test_deleting_another_entry_with_htmx_redraws_the_list(alice_client, alice, conversation):
    other = services.conversation_start(owner=alice, persona=conversation.persona)
    services.conversation_rename(conversation=other, title="另一段")
    response = alice_client.post(_url("delete", other), {"confirm": "yes", "shown": conversation.pk}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and 'id="conversation-list"' in html
    assert "另一段" not in html and "与李白对话" in html
    assert list(Conversation.objects.all()) == [conversation]


# --- settings -------------------------------------------------------------------------------------

def test_settings_update_the_conversation(alice_client, conversation, preset):
    stage = conversation.persona.life_stages.get()
    response = alice_client.post(_url("settings", conversation), {"life_stage": stage.pk, "style_preset": preset.pk},
                                 **HTMX)
    assert "已保存" in response.content.decode()
    conversation.refresh_from_db()
    assert (conversation.life_stage, conversation.style_preset) == (stage, preset)
    alice_client.post(_url("settings", conversation), {"life_stage": "", "style_preset": ""})
    conversation.refresh_from_db()
    assert conversation.life_stage is None and conversation.style_preset is None


def test_settings_refuse_a_life_stage_of_another_figure(alice_client, conversation):
    stage = make_persona("du-fu", "杜甫").life_stages.get()
    response = alice_client.post(_url("settings", conversation), {"life_stage": stage.pk}, **HTMX)
    assert "所选人生阶段不属于这位人物。" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.life_stage is None


# --- open sockets hear about changes --------------------------------------------------------------

@pytest.fixture
def notified(monkeypatch):
    calls = []
    monkeypatch.setattr("chat.views.notify.conversation_changed", calls.append)
    return calls


def test_switch_tells_open_sockets(alice_client, conversation, notified):
    first, _ = _regenerated(conversation)
    alice_client.post(_url("switch", conversation, message_id=first.pk), **HTMX)
    assert notified == [conversation.pk]


def test_settings_tell_open_sockets_only_when_saved(alice_client, conversation, preset, notified):
    alice_client.post(_url("settings", conversation), {"style_preset": "999"}, **HTMX)
    assert notified == []
    alice_client.post(_url("settings", conversation), {"style_preset": preset.pk}, **HTMX)
    assert notified == [conversation.pk]


# --- export ---------------------------------------------------------------------------------------

def test_export_markdown_has_the_shown_branch_and_marks_a_stopped_reply(alice_client, conversation):
    _regenerated(conversation)
    _ask(conversation, "月在何处？", "月在<b>青天</b>", status=Message.Status.STOPPED)
    response = alice_client.get(_url("export_md", conversation))
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="guyue-li-bai-{conversation.pk}.md"'
    body = response.content.decode()
    assert "**我**: 饮否？" in body and "**李白**: 且饮三百杯！" in body
    assert "**李白**: 饮！" not in body  # the sibling that is not shown
    assert "**李白**: 月在<b>青天</b>" in body  # a download keeps the words as written
    assert "此回答已被停止" in body


def test_export_jsonl_is_one_object_per_message_in_order(alice_client, conversation):
    import json

    _, second = _regenerated(conversation)
    response = alice_client.get(_url("export_jsonl", conversation))
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    rows = [json.loads(line) for line in response.content.decode().splitlines()]
    assert [(r["role"], r["content"]) for r in rows][-2:] == [("user", "饮否？"), ("assistant", "且饮三百杯！")]
    assert rows[-1]["id"] == second.pk and rows[-1]["parent_id"] == rows[-2]["id"]
    assert {"status", "error_kind", "model", "created_at"} <= rows[-1].keys()


def test_without_a_key_the_page_explains_kindly_how_to_get_one(alice_client, conversation):
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert "尚缺笔墨" in html and "只待一支笔" in html
    site = ApiCredential(owner=None, kind="dashscope", label="站点", status=CredentialStatus.VALID, is_default=True)
    site.set_key("sk-abcdefgh12345678")
    site.save()
    assert "只待一支笔" not in alice_client.get(_url("page", conversation)).content.decode()


def test_a_finished_reply_carries_the_seal_and_an_unfinished_one_does_not(alice_client, conversation):
    _ask(conversation, "问", "半句", status=Message.Status.STOPPED)
    html = alice_client.get(_url("page", conversation)).content.decode()
    assert html.count('class="finish-seal"') == 1  # the greeting's; the stopped reply has none
