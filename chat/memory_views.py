"""The 记忆 page, "记住这句", and per-figure preferences. Every row is fetched through its owner."""

from __future__ import annotations

import json
from itertools import groupby

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chat import selectors, userpersona
from chat.forms import MemoryForm, PreferenceForm, UserPersonaForm
from chat.models import Memory, Message
from chat.recall import memories as memory_services
from chat.services import MessageRejected
from personas.models import Persona

PAGE = "memory/index.html"


def _groups(user) -> list[dict]:
    rows = Memory.objects.for_user(user).select_related("persona").order_by("persona__name", "-pinned", "-updated_at")
    groups = []
    for persona, items in groupby(rows, key=lambda m: m.persona):
        groups.append({"persona": persona, "memories": list(items)})
    groups.sort(key=lambda g: g["persona"] is not None)  # the shared profile first
    return groups


def _list(request: HttpRequest, form: MemoryForm | None = None, notice: str = "") -> HttpResponse:
    """The list with its add form, for an htmx swap."""
    context = {"groups": _groups(request.user), "form": form or MemoryForm(), "notice": notice}
    return render(request, f"{PAGE}#memory-list", context)


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, PAGE, {"groups": _groups(request.user), "form": MemoryForm(),
                                  "user_persona_form": user_persona_form_for(request.user, None)})


@login_required
@require_POST
def add(request: HttpRequest) -> HttpResponse:
    form = MemoryForm(request.POST)
    if form.is_valid():
        try:
            _, new = memory_services.memory_add(
                owner=request.user, persona=form.cleaned_data["figure"], content=form.cleaned_data["content"],
            )
        except MessageRejected as exc:
            form.add_error("content", str(exc))
        else:
            if not request.htmx:
                messages.success(request, "已记下。" if new else "这条已经记着了。")
                return redirect("chat:memories")
            return _list(request, notice="已记下。" if new else "这条已经记着了。")
    if not request.htmx:
        return render(request, PAGE, {"groups": _groups(request.user), "form": form}, status=400)
    return _list(request, form)  # 200: htmx 2 does not swap 4xx responses


def _memory(request: HttpRequest, pk: int) -> Memory:
    return get_object_or_404(Memory.objects.for_user(request.user).select_related("persona"), pk=pk)


@login_required
@require_POST
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    memory = _memory(request, pk)
    error = ""
    try:
        memory_services.memory_update(memory=memory, content=request.POST.get("content", ""))
    except MessageRejected as exc:
        error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("chat:memories")
    memory.refresh_from_db()
    return render(request, f"{PAGE}#memory-item", {"memory": memory, "edit_error": error, "edit_value": request.POST.get("content", "")})


@login_required
@require_POST
def pin(request: HttpRequest, pk: int) -> HttpResponse:
    memory = memory_services.memory_update(memory=_memory(request, pk), pinned=request.POST.get("pinned") == "yes")
    if not request.htmx:
        return redirect("chat:memories")
    return render(request, f"{PAGE}#memory-item", {"memory": memory})


@login_required
@require_POST
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    memory_services.memory_delete(memory=_memory(request, pk))
    if not request.htmx:
        messages.success(request, "已删除这条记忆。")
        return redirect("chat:memories")
    return HttpResponse("")  # the item swaps itself out


@login_required
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    body = json.dumps(memory_services.memories_export(request.user), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="memories-{timezone.localdate():%Y%m%d}.json"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def wipe(request: HttpRequest) -> HttpResponse:
    count = Memory.objects.for_user(request.user).count()
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return render(request, "memory/confirm_wipe.html", {"count": count})
    deleted = memory_services.memories_delete(memories=Memory.objects.for_user(request.user))
    messages.success(request, f"已清空全部记忆（{deleted} 条）。")
    return redirect("chat:memories")


@login_required
@require_POST
def auto(request: HttpRequest) -> HttpResponse:
    request.user.memory_auto = request.POST.get("memory_auto") == "on"
    request.user.save(update_fields=["memory_auto"])
    if not request.htmx:
        messages.success(request, "已开启自动记忆。" if request.user.memory_auto else "已关闭自动记忆：不再自动从对话中提取要点。")
        return redirect("chat:memories")
    return render(request, f"{PAGE}#memory-auto", {"user": request.user, "auto_saved": True})


@login_required
@require_POST
def remember(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    """"记住这句": the message's text becomes a memory of the conversation's figure."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    message = selectors.get_message_in(conversation, message_id)
    error, new = "", False
    if message.status == Message.Status.ERROR or not message.content.strip():
        error = "这条消息没有可记的内容。"
    elif selectors.guard_withheld(message):
        error = "这条消息已被人物婉拒，不能记住。"
    else:
        try:
            _, new = memory_services.memory_add(
                owner=request.user, persona=conversation.persona, content=memory_services.memory_text_of(message),
                origin=Memory.Origin.ACTION, source_message=message,
            )
        except MessageRejected as exc:
            error = str(exc)
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(request, "已记住这句。")
        return redirect("chat:page", conversation.pk)
    return render(request, "memory/_remembered.html", {"error": error, "new": new})


def _save_checked(form, save) -> bool:
    """Validate `form` and save its values; a value the service refuses (too long, an attack) becomes
    that field's error. True when saved."""
    if not form.is_valid():
        return False
    try:
        save(**form.cleaned_data)
    except memory_services.PreferenceRejected as exc:
        form.add_error(exc.field, str(exc))
        return False
    return True


def _flash_errors(request: HttpRequest, form) -> None:
    """Without htmx the page is redirected: the form's errors go with it as messages."""
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)


@login_required
@require_POST
def preferences(request: HttpRequest, slug: str) -> HttpResponse:
    persona = get_object_or_404(Persona.objects.published(), slug=slug)
    form = PreferenceForm(request.POST)
    saved = _save_checked(form, lambda **values: memory_services.preference_update(
        owner=request.user, persona=persona, **values))
    if not request.htmx:
        _flash_errors(request, form)
        latest = selectors.latest_conversation_with(request.user, persona)
        return redirect("chat:page", latest.pk) if latest else redirect("chat:start", persona.slug)
    context = {"persona": persona, "preference_form": form, "preference_saved": saved,
               "presets": memory_services.PREFERENCE_PRESETS}
    return render(request, "memory/_preferences.html", context)


def preference_form_for(user, persona: Persona) -> PreferenceForm:
    preference = memory_services.preference_for(user, persona)
    initial = {}
    if preference is not None:
        initial = {"personality": preference.personality, "knowledge": preference.knowledge,
                   "language_style": preference.language_style}
    return PreferenceForm(initial=initial)


@login_required
@require_POST
def user_persona(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Save who the user says they are, for every figure or (slug) for one."""
    persona = get_object_or_404(Persona.objects.published(), slug=slug) if slug else None
    form = UserPersonaForm(request.POST)
    saved = _save_checked(form, lambda **values: userpersona.user_persona_update(
        owner=request.user, persona=persona, **values))
    if not request.htmx:
        _flash_errors(request, form)
        if saved:
            messages.success(request, "人设已保存。")
        latest = selectors.latest_conversation_with(request.user, persona) if persona else None
        return redirect("chat:page", latest.pk) if latest else redirect("chat:memories")
    context = {"persona": persona, "user_persona_form": form, "user_persona_saved": saved}
    return render(request, "memory/_user_persona.html", context)


def user_persona_form_for(user, persona: Persona | None) -> UserPersonaForm:
    row = next((r for r in userpersona.user_persona_rows(user, persona) if r.persona_id == getattr(persona, "pk", None)),
               None)
    return UserPersonaForm(initial={"name": row.name, "description": row.description} if row else {})
