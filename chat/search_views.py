"""Finding a conversation again: search every conversation of the user's, open a hit in its branch."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from chat import notify, search, selectors, services
from chat.forms import SearchForm

RECENT = 50


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    """Without words: the user's recent conversations with every figure; with them, the hits."""
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"] if form.is_valid() else ""
    context: dict = {"form": form, "query": query}
    if query:
        hits = search.message_hits(request.user, query)
        # A title is often the first question itself: a conversation with a hit of its own is listed once.
        listed = {hit.conversation.pk for hit in hits}
        titled = [c for c in search.title_hits(request.user, query) if c.pk not in listed]
        context.update(hits=hits, titled=titled, most=search.MAX_HITS)
    else:
        context.update(recent=selectors.recent_conversations(request.user, RECENT), most=RECENT)
    return render(request, "chat/search.html", context)


@login_required
@require_POST
def open_message(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    """A search hit: show the branch that holds the message, then the page scrolled to it."""
    conversation = selectors.get_conversation_for_user(request.user, pk)
    message = selectors.get_message_in(conversation, message_id)
    if services.branch_show(conversation=conversation, message=message):
        notify.conversation_changed(conversation.pk)  # an open socket must answer from the new branch
    url = reverse("chat:page", args=[conversation.pk])
    return redirect(f"{url}?message={message.pk}#message-{message.pk}")
