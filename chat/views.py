from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.services import credential_resolve
from chat import durable, exports, games, notify, selectors, services
from chat.bubbles import render_bubble
from chat.citations import citations_for
from chat.forms import ConversationSettingsForm, RenameForm, StartForm
from chat.jobs import queue as jobs
from chat.media.engines import offers_of
from chat.memory_views import preference_form_for, user_persona_form_for
from chat.models import BackgroundJob, Conversation, Message
from chat.quota import quota_for, refusal_text
from chat.recall import callback as callbacks
from chat.recall.memories import PREFERENCE_PRESETS
from chat.scenes import speaker_of
from chat.sharing.views import share_context
from chat.speech_input.services import dictation_offered
from chat.tools import registry as tool_registry
from chat.vision.checks import MAX_BYTES
from chat.vision.services import images_by_message, shown_image
from personas.models import Persona

PAGE = "chat/page.html"
# Messages rendered at first; older ones come with "加载更早的对话" a page at a time.
MESSAGES_PER_PAGE = 40


def _bubbles(conversation: Conversation, before: int | None = None, reaching: int | None = None) -> dict:
    tree = selectors.conversation_tree(conversation)
    window, earlier_id, earlier_count = selectors.branch_window(
        conversation, tree, before=before, limit=MESSAGES_PER_PAGE, reaching=reaching)
    durable.recover(window)  # a reply left streaming by a process that is gone shows as interrupted
    runs = selectors.tool_runs_by_message(window)
    cited = citations_for(m.content for m in window if m.role == Message.Role.ASSISTANT)
    _, notes = games.game_of(window)  # the site's rulings on a verse game's lines (a game begun in the window)
    bubbles = [render_bubble(m, siblings=tree.siblings(m.pk), persona=speaker_of(m, conversation), tool_runs=runs.get(m.pk, ()),
                             image=shown_image(m), citations=cited, note=notes.get(m.pk, ""))
               for m in window]
    return {"bubbles": bubbles, "earlier_id": earlier_id, "earlier_count": earlier_count}


def _list_context(request: HttpRequest, conversation: Conversation) -> dict:
    # `shown` only marks which entry the page is showing; it is never used to fetch anything.
    shown = request.POST.get("shown", "")
    conversations = selectors.conversations_with(request.user, conversation.persona)
    return {
        "conversation": conversation,
        "active": [c for c in conversations if not c.archived],
        "archived": [c for c in conversations if c.archived],
        "shown_id": int(shown) if shown.isdigit() else conversation.pk,
    }


def _settings_form(conversation: Conversation, data=None) -> ConversationSettingsForm:
    initial = {"life_stage": conversation.life_stage_id, "style_preset": conversation.style_preset_id}
    return ConversationSettingsForm(data, persona=conversation.persona, initial=initial)


@login_required
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest, slug: str) -> HttpResponse:
    persona = get_object_or_404(Persona.objects.published(), slug=slug)
    form = StartForm(request.POST if request.method == "POST" else None, persona=persona)
    if request.method == "POST" and form.is_valid():
        conversation = services.conversation_start(owner=request.user, persona=persona, **form.start_arguments())
        return redirect("chat:page", conversation.pk)
    # Opening a figure never creates anything: it offers the newest conversation to continue and a
    # new one with a life stage and a second figure, so neither choice is lost once one exists.
    latest = selectors.latest_conversation_with(request.user, persona)
    context = {"persona": persona, "form": form, "latest": latest, "credential": credential_resolve(request.user)}
    return render(request, "chat/start.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
@never_cache  # back from the search page (or any page) must show what was said since, not a cached copy
def page(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    found = request.GET.get("message", "")  # a search hit: the window reaches back to it
    credential = credential_resolve(request.user)
    context = {
        **_list_context(request, conversation),
        **_bubbles(conversation, reaching=int(found) if found.isdigit() else None),
        "figures": Persona.objects.published(),
        "settings_form": _settings_form(conversation),
        "credential": credential,
        "dictation_offered": dictation_offered(credential),
        "dictation_seconds": settings.DICTATION_MAX_SECONDS,
        "vision": credential is not None and credential.offers("vision"),  # the attach button (docs/vision.md)
        "attach_max_bytes": MAX_BYTES,
        "speech_offered": credential is not None and credential.offers("speech"),  # 朗读 (docs/voice.md)
        "media_offers": offers_of(credential),  # 修改, 成片, 谱曲, Midjourney (docs/media.md)
        "max_chars": settings.MAX_MESSAGE_CHARS,
        "preference_form": preference_form_for(request.user, conversation.persona),
        "user_persona_form": user_persona_form_for(request.user, conversation.persona),
        "presets": PREFERENCE_PRESETS,
        "callback_offer": callbacks.offered(request.user, conversation),
        **_callback_state(conversation),
        "chat_tools": list(tool_registry.tools().values()),
        **share_context(request, conversation),
    }
    return render(request, PAGE, context)


def _callback_state(conversation: Conversation, *, followed: bool = False) -> dict:
    """A callback greeting being written shows as a line the page polls; a page that followed the
    job and finds no greeting shows why."""
    latest = conversation.background_jobs.filter(kind=BackgroundJob.Kind.CALLBACK).order_by("-pk").first()
    if latest is not None and latest.status in BackgroundJob.ACTIVE:
        return {"callback_pending": True}
    if followed and latest is not None and latest.status == BackgroundJob.Status.FAILED:
        return {"callback_notice": latest.error}
    return {}


@login_required
@require_POST
def callback(request: HttpRequest, pk: int) -> HttpResponse:
    """The figure greets a returning user with a callback to their last conversation: a job for the
    worker (docs/jobs.md); the list that comes back follows it."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    context = {"conversation": conversation}
    if callbacks.previous_for(request.user, conversation) is None:
        context["callback_notice"] = "没有可以接续的上一段对话。"
    elif (quota := quota_for(request.user)).exceeded:
        context["callback_notice"] = refusal_text(quota)
    elif credential_resolve(request.user) is None:
        context["callback_notice"] = callbacks.NO_KEY_NOTICE
    else:
        jobs.enqueue(BackgroundJob.Kind.CALLBACK, conversation.pk)  # a second click joins the waiting one
        context.update(_callback_state(conversation))
    return render(request, f"{PAGE}#message-list", {**_bubbles(conversation), **context})


@login_required
@require_GET
def message_list(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    before = request.GET.get("before", "")
    if before.isdigit():  # an older page, swapped in place of its "加载更早的对话" button
        return render(request, f"{PAGE}#earlier-messages", {"conversation": conversation,
                                                            **_bubbles(conversation, int(before))})
    followed = request.GET.get("callback") == "1"  # the pending callback line polls this
    return render(request, f"{PAGE}#message-list", {"conversation": conversation, **_bubbles(conversation),
                                                    **_callback_state(conversation, followed=followed)})


@login_required
@require_GET
def bubble(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    """One message's bubble: a reply streaming elsewhere is followed with this until it ends."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    message = selectors.get_message_in(conversation, message_id)
    durable.recover([message])
    tree = selectors.conversation_tree(conversation)
    runs = selectors.tool_runs_by_message([message])
    return HttpResponse(render_bubble(message, siblings=tree.siblings(message.pk), persona=speaker_of(message, conversation),
                                      tool_runs=runs.get(message.pk, ()), image=images_by_message([message]).get(message.pk),
                                      citations=citations_for([message.content])))


@login_required
@require_POST
def switch(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    message = selectors.get_message_in(conversation, message_id)
    services.branch_switch(conversation=conversation, message=message)
    notify.conversation_changed(conversation.pk)  # an open socket must answer from the new branch
    if not request.htmx:
        return redirect("chat:page", conversation.pk)
    return render(request, f"{PAGE}#message-list", {"conversation": conversation, **_bubbles(conversation)})


def _conversation_list(request: HttpRequest, conversation: Conversation, status: int = 200, **extra) -> HttpResponse:
    context = {**_list_context(request, conversation), **extra}
    return render(request, f"{PAGE}#conversation-list", context, status=status)


@login_required
@require_POST
def rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    form = RenameForm(request.POST)
    if form.is_valid():
        services.conversation_rename(conversation=conversation, title=form.cleaned_data["title"])
    if not request.htmx:
        for error in form.errors.get("title", []):
            messages.error(request, error)
        return redirect("chat:page", conversation.pk)
    # Errors come back with 200: htmx 2 does not swap 4xx responses, and the message must show.
    return _conversation_list(request, conversation, rename_form=form, rename_id=conversation.pk)


@login_required
@require_POST
def archive(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    services.conversation_archive_toggle(conversation=conversation)
    if not request.htmx:
        messages.info(request, "已归档。" if conversation.archived else "已取消归档。")
        return redirect("chat:page", conversation.pk)
    return _conversation_list(request, conversation)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    remembered = conversation.memories.filter(owner=request.user).count()
    if request.method == "GET" or request.POST.get("confirm") != "yes" or (remembered and "memories" not in request.POST):
        # Memories were drawn from it: the confirmation page asks whether they go too.
        if request.htmx and request.method == "POST":
            return HttpResponseClientRedirect(reverse("chat:delete", args=[conversation.pk]))
        return render(request, "chat/confirm_delete.html", {"conversation": conversation, "remembered": remembered})
    title, persona = conversation.title or "未命名对话", conversation.persona
    shown = request.POST.get("shown", "")
    services.conversation_delete(conversation=conversation, with_memories=request.POST.get("memories") == "delete")
    if request.htmx and shown.isdigit() and int(shown) != pk:
        # Another entry of the list was deleted: the shown conversation stays, only the list changes.
        return _conversation_list(request, selectors.get_conversation_for_user(request.user, int(shown)))
    messages.success(request, f"已删除「{title}」。")
    target = reverse("chat:start", args=[persona.slug])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@login_required
@require_POST
def update_settings(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    form = _settings_form(conversation, request.POST)
    saved = form.is_valid()
    if saved:
        services.conversation_settings_update(conversation=conversation, **form.cleaned_data)
        notify.conversation_changed(conversation.pk)
    if not request.htmx:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("chat:page", conversation.pk)
    context = {"conversation": conversation, "settings_form": form, "saved": saved}
    return render(request, f"{PAGE}#conversation-settings", context)  # 200 either way, as for rename


def _attachment(body: str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _export_scope(request: HttpRequest, conversation: Conversation) -> tuple[bool, list]:
    """?scope=tree exports every branch; anything else the shown one."""
    if request.GET.get("scope") == "tree":
        return True, selectors.all_messages(conversation)
    return False, selectors.branch_messages(conversation)


@login_required
@require_GET
def export_markdown(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    tree, messages = _export_scope(request, conversation)
    body = (exports.tree_markdown if tree else exports.branch_markdown)(conversation, messages)
    return _attachment(body, "text/markdown; charset=utf-8", exports.export_filename(conversation, "md", tree=tree))


@login_required
@require_GET
def export_jsonl(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    tree, messages = _export_scope(request, conversation)
    body = exports.messages_jsonl(conversation, messages)
    return _attachment(body, "application/x-ndjson; charset=utf-8",
                       exports.export_filename(conversation, "jsonl", tree=tree))
