from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.vary import vary_on_headers

from accounts.services import credential_resolve
from personas.models import Dynasty, Persona


@vary_on_headers("HX-Request")  # the same URL serves a full page or the htmx partial
def gallery(request: HttpRequest) -> HttpResponse:
    personas = Persona.objects.published()
    present = set(personas.values_list("dynasty", flat=True))
    dynasties = [(value, label) for value, label in Dynasty.choices if value in present]
    selected = request.GET.get("dynasty", "")
    if selected in present:
        personas = personas.filter(dynasty=selected)
    else:
        selected = ""
    template = "personas/gallery.html"
    if request.htmx:
        template += "#figure-browser"
    return render(request, template, {"personas": personas, "dynasties": dynasties, "selected": selected})


def profile(request: HttpRequest, slug: str) -> HttpResponse:
    persona = get_object_or_404(
        Persona.objects.published().prefetch_related("life_stages", "portrayals", "knowledge_entries"), slug=slug
    )
    credential = credential_resolve(request.user) if request.user.is_authenticated else None
    return render(request, "personas/profile.html", {"persona": persona, "credential": credential})
