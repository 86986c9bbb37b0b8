from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.services import credential_resolve
from personas.models import Persona


@login_required
def start(request: HttpRequest, slug: str) -> HttpResponse:
    # Entry point from a figure's profile; the conversation page itself is built on top of this.
    persona = get_object_or_404(Persona.objects.published(), slug=slug)
    return render(request, "chat/start.html", {"persona": persona, "credential": credential_resolve(request.user)})
