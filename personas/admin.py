from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import path

from personas.cards import CardError, persona_import_card, persona_to_card
from personas.models import SIGNATURE_CATEGORIES, KnowledgeEntry, LifeStage, Persona, ScreenPortrayal, StylePreset


class _PersonaAdminForm(forms.ModelForm):
    """Signature lines edited as one text box per guard category instead of raw JSON."""

    class Meta:
        model = Persona
        exclude = ("signature_lines",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lines = self.instance.signature_lines or {}
        for key in SIGNATURE_CATEGORIES:
            self.initial.setdefault(f"sig_{key}", lines.get(key, ""))

    def clean(self):
        cleaned = super().clean()
        self.instance.signature_lines = {key: cleaned.get(f"sig_{key}", "").strip() for key in SIGNATURE_CATEGORIES}
        return cleaned


# Declared on the class (not in __init__) so the admin's fieldsets can name them.
PersonaAdminForm = type("PersonaAdminForm", (_PersonaAdminForm,), {
    f"sig_{key}": forms.CharField(label=f"应答·{label}", widget=forms.Textarea(attrs={"rows": 2}))
    for key, label in SIGNATURE_CATEGORIES.items()
})


class LifeStageInline(admin.TabularInline):
    model = LifeStage
    extra = 0


class KnowledgeEntryInline(admin.StackedInline):
    model = KnowledgeEntry
    extra = 0
    fields = (("title", "label", "enabled"), "content", "trigger_keys", ("source_book", "source_chapter"), "source_quote")


class ScreenPortrayalInline(admin.StackedInline):
    model = ScreenPortrayal
    extra = 0


class CardUploadForm(forms.Form):
    card = forms.FileField(label="角色卡（JSON）")


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    form = PersonaAdminForm
    list_display = ("name", "nickname", "dynasty", "lifespan", "published", "updated_at")
    list_filter = ("dynasty", "published")
    search_fields = ("name", "nickname", "slug", "description")
    inlines = (LifeStageInline, KnowledgeEntryInline, ScreenPortrayalInline)
    actions = ("export_cards",)
    fieldsets = (
        (None, {"fields": ("name", "nickname", "slug", "dynasty", ("birth_year", "death_year"), "portrait", "published")}),
        ("角色卡", {"fields": ("description", "personality", "scenario", "first_mes", "alternate_greetings",
                              "mes_example", "system_prompt", "post_history_instructions", "creator_notes",
                              "tags", "character_version", "extensions")}),
        ("声口与立场", {"fields": ("speech_style", "values")}),
        ("角色内应答", {"fields": tuple(f"sig_{key}" for key in SIGNATURE_CATEGORIES)}),
    )

    def get_urls(self):
        return [path("import/", self.admin_site.admin_view(self.import_card), name="personas_persona_import")] + super().get_urls()

    @admin.action(description="导出角色卡（CCv3 JSON）")
    def export_cards(self, request, queryset):
        cards = [persona_to_card(p) for p in queryset.prefetch_related("life_stages", "knowledge_entries", "portrayals")]
        payload = cards[0] if len(cards) == 1 else cards
        response = JsonResponse(payload, safe=False, json_dumps_params={"ensure_ascii": False, "indent": 2})
        response["Content-Disposition"] = 'attachment; filename="persona-cards.json"'
        return response

    def import_card(self, request) -> HttpResponse:
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            return HttpResponse(status=403)
        form = CardUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                persona = persona_import_card(json.loads(form.cleaned_data["card"].read().decode("utf-8")))
            except (CardError, ValueError, UnicodeDecodeError) as exc:
                form.add_error("card", f"导入失败：{exc}")
            else:
                self.message_user(request, f"已导入「{persona.name}」。", messages.SUCCESS)
                return redirect("admin:personas_persona_change", persona.pk)
        context = {**self.admin_site.each_context(request), "form": form, "title": "导入角色卡", "opts": self.model._meta}
        return render(request, "admin/personas/import_card.html", context)


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ("title", "persona", "dynasty", "citation", "label", "enabled")
    list_filter = ("label", "dynasty", "enabled")
    search_fields = ("title", "content", "source_book", "source_chapter")
    autocomplete_fields = ("persona",)


@admin.register(StylePreset)
class StylePresetAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "order")
    search_fields = ("name", "instructions")
