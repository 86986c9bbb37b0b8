"""Share links (made and revoked by the owner on the chat page), the shared page anyone with the
link may read, and the 长卷 image of the shown branch."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import linebreaks
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from chat import durable, exports, selectors
from chat.citations import Citation, citable, citations_for
from chat.models import Conversation, Message
from chat.rendering import render_markdown
from chat.scenes import speaker_of
from chat.sharing import scroll
from chat.sharing import selectors as shares
from chat.sharing.services import ShareRefused, share_create, share_revoke
from guyue import ratelimit

MENU = "chat/_share_menu.html"
# Drawing a tall image takes about a second of CPU: a pace per user keeps one account from
# occupying a server with it.
SCROLL_IMAGES_PER_MINUTE = 10
SHARED = "chat/shared.html"


def share_context(request: HttpRequest, conversation: Conversation, **extra) -> dict:
    """What the chat page's 分享 panel lists: each link with its address and the branch's last words."""
    links = [
        {"link": link, "url": request.build_absolute_uri(reverse("chat:shared", args=[link.token])),
         "ends_with": exports.excerpt(link.leaf.content)}
        for link in shares.links_for(conversation)
    ]
    return {"conversation": conversation, "share_links": links, **extra}


def _panel(request: HttpRequest, conversation: Conversation, **extra) -> HttpResponse:
    # 200 even for a refusal: htmx swaps only successful responses, and the reason must show.
    return render(request, f"{MENU}#share-links", share_context(request, conversation, **extra))


@login_required
@require_POST
def create(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    try:
        link = share_create(conversation=conversation)
    except ShareRefused as refused:
        if not request.htmx:
            flash.error(request, str(refused))
            return redirect("chat:page", conversation.pk)
        return _panel(request, conversation, share_error=str(refused))
    if not request.htmx:
        flash.success(request, "已生成分享链接，见「分享」。")
        return redirect("chat:page", conversation.pk)
    return _panel(request, conversation, new_share_id=link.pk)


@login_required
@require_POST
def revoke(request: HttpRequest, pk: int, link_id: int) -> HttpResponse:
    conversation = selectors.get_conversation_for_user(request.user, pk)
    share_revoke(link=shares.get_link_in(conversation, link_id))
    if not request.htmx:
        return redirect("chat:page", conversation.pk)
    return _panel(request, conversation, share_revoked=True)


def _shared_item(message: Message, conversation: Conversation, cited: dict[int, Citation]) -> dict:
    is_assistant = message.role == Message.Role.ASSISTANT
    return {
        "is_assistant": is_assistant,
        "role": message.role,
        "status": message.status,
        "speaker": speaker_of(message, conversation) if is_assistant else None,
        # Model text is untrusted: only render_markdown's nh3 output is marked safe; the user's
        # words are escaped.
        "body": mark_safe(render_markdown(message.content, citable(cited, speaker_of(message, conversation)))
                          if is_assistant
                          else linebreaks(message.content, autoescape=True)),
    }


@never_cache  # a revoked link must stop working at once, in every cache on the way
@require_GET
def shared(request: HttpRequest, token: str) -> HttpResponse:
    """The branch a link was made for, and nothing else: no account, no ids, no socket."""
    link = shares.get_shared(token)
    conversation = link.conversation
    messages = [m for m in shares.branch_to(conversation, link.leaf_id) if m.content]
    cited = citations_for(m.content for m in messages if m.role == Message.Role.ASSISTANT)
    context = {
        "persona": conversation.persona, "guest_names": conversation.guest_names, "life_stage": conversation.life_stage,
        "items": [_shared_item(m, conversation, cited) for m in messages], "shared_at": link.created_at,
    }
    response = render(request, SHARED, context)
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"  # the address is the secret: links out must not carry it
    return response


@login_required
@require_GET
def scroll_png(request: HttpRequest, pk: int) -> HttpResponse:
    """The shown branch as a 长卷 PNG, to post elsewhere."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    key = ratelimit.cache_key("scroll", str(request.user.pk))
    if not ratelimit.hit(key, limit=SCROLL_IMAGES_PER_MINUTE, window=60):
        return HttpResponse("长卷生成太频繁，请一分钟后再试。", status=429, content_type="text/plain; charset=utf-8")
    messages = selectors.branch_messages(conversation)
    durable.recover(messages)
    response = HttpResponse(scroll.render_scroll(conversation, messages), content_type="image/png")
    response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(conversation, "png")}"'
    return response
