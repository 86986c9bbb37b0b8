from __future__ import annotations

import io
import json
import zipfile

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import path

from accounts.services import credential_resolve
from chat.guard import scripted
from chat.prompting import PromptInputs, build_prompt, estimate_tokens, system_prompt_text
from chat.speech.voices import DEFAULTS, NEUTRAL, VOICES
from chat.streaming import provider_config
from guyue.lib.netguard import UnsafeURL
from personas import probes
from personas.cardimport import (
    MAX_CARD_FILE_BYTES,
    CardReading,
    ImportChoice,
    card_conflict,
    card_file_read,
    card_read,
    free_slug,
    persona_import,
)
from personas.cardpng import png_card_write, portrait_image, seal_image
from personas.cards import CardError, card_as_v2, persona_to_card
from personas.models import (
    SIGNATURE_CATEGORIES,
    Dynasty,
    FigureRelation,
    KnowledgeEntry,
    LifeStage,
    Persona,
    PersonaProbe,
    ScreenPortrayal,
    StylePreset,
)  # fmt: skip

PREVIEW_CANARY = "gy-预览标记"
ROLE_LABELS = {"system": "系统（system）", "user": "用户（user）", "assistant": "人物（assistant）"}
BEHAVIOUR_LABELS = {
    "benign": "正常作答（benign）",
    "obedient_attacker": "言听计从的攻击目标（obedient_attacker）",
    "leaky": "总是复述设定（leaky）",
    "modern": "满口现代事物（modern）",
}


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
        if "voice" in self.fields:
            self._speech_fields()

    def _speech_fields(self) -> None:
        """The usual voices to pick from; a voice typed elsewhere (a relay's own) stays selectable."""
        default = DEFAULTS.get(self.instance.slug or "", NEUTRAL)
        choices = [("", f"默认（{default}）"), *VOICES]
        current = self.instance.voice
        if current and current not in dict(VOICES):
            choices.append((current, current))
        field = self.fields["voice"]
        field.widget = forms.Select(choices=choices)
        field.help_text = ("朗读此人物的回答所用的音色。留空用默认：本站为种子人物各配了一个（如李白 fable、"
                           "李清照 shimmer、张飞 onyx），其他人物用中性的 alloy。音色须为密钥的朗读模型所支持。")
        speed = self.fields["speech_speed"]
        speed.required, speed.help_text = False, "0.25—4.0，1.0 为正常语速；留空即 1.0。"

    def clean_speech_speed(self):
        speed = self.cleaned_data.get("speech_speed")
        return 1.0 if speed is None else speed

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


class FigureRelationInline(admin.StackedInline):
    model = FigureRelation
    fk_name = "figure"
    extra = 0
    autocomplete_fields = ("other",)
    fields = (("other", "kind", "since_year"), "note", "source")


class PersonaProbeInline(admin.TabularInline):
    """Probes belong to their figure: whoever may change the figure may edit them."""

    model = PersonaProbe
    extra = 0
    fields = ("order", "prompt", "is_attack", "expected_category", "note")
    formfield_overrides = {models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 60})}}

    def has_view_permission(self, request, obj=None):
        return self._persona_allows(request, "view", obj) or self._persona_allows(request, "change", obj)

    def has_add_permission(self, request, obj=None):
        return self._persona_allows(request, "change", obj)

    def has_change_permission(self, request, obj=None):
        return self._persona_allows(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self._persona_allows(request, "change", obj)

    def _persona_allows(self, request, action: str, obj) -> bool:
        opts = self.parent_model._meta
        return request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")


class _StageStyleForm(forms.Form):
    life_stage = forms.ModelChoiceField(LifeStage.objects.none(), required=False, label="人生阶段",
                                        empty_label="（不选：知识截止于卒年）")
    style = forms.ModelChoiceField(StylePreset.objects.all(), required=False, label="语言风格", empty_label="（不加风格）")

    def __init__(self, *args, persona: Persona, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["life_stage"].queryset = persona.life_stages.all()


class PromptPreviewForm(_StageStyleForm):
    message = forms.CharField(label="示例用户消息", max_length=2000, required=False,
                              widget=forms.TextInput(attrs={"size": 60}))


class ProbeRunForm(_StageStyleForm):
    behaviour = forms.ChoiceField(label="脚本模型行为", initial="benign",
                                  choices=[(name, BEHAVIOUR_LABELS.get(name, name)) for name in scripted.BEHAVIOURS])
    use_real = forms.BooleanField(label="同时调用已配置的真实模型", required=False, initial=True)


def _sample_message(persona: Persona) -> str:
    return f"久仰{persona.name}大名，想听你说说平生最得意的一件事。"


class CardUploadForm(forms.Form):
    card = forms.FileField(label="角色卡文件", help_text="JSON 或 PNG（SillyTavern 等工具导出的图片角色卡）")

    def clean_card(self):
        upload = self.cleaned_data["card"]
        if upload.size > MAX_CARD_FILE_BYTES:
            raise forms.ValidationError(f"导入失败：文件过大，上限 {MAX_CARD_FILE_BYTES // 1024 // 1024} MB。")
        return upload


class CardConfirmForm(forms.Form):
    """The second step of an import: what to do when the figure exists, and what a foreign card lacks."""

    card_json = forms.CharField(widget=forms.HiddenInput)
    source = forms.CharField(widget=forms.HiddenInput, required=False, max_length=40)
    action = forms.ChoiceField(label="已有同名人物", widget=forms.RadioSelect, required=False)
    slug = forms.SlugField(label="新人物的网址标识", max_length=50, required=False,
                           help_text="新建或另建副本时使用；只用字母、数字与连字符")
    dynasty = forms.ChoiceField(label="朝代", required=False, choices=[("", "（请选择）"), *Dynasty.choices])
    birth_year = forms.IntegerField(label="生年", required=False, help_text="公元前用负数")
    death_year = forms.IntegerField(label="卒年", required=False, help_text="即人物的知识截止年份")

    def __init__(self, *args, reading: CardReading, target: Persona | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading, self.target = reading, target
        if target is None:
            del self.fields["action"]
        else:
            self.fields["action"].choices = [
                ("update", f"更新已有的「{target.name}」（{target.slug}）"),
                ("copy", "另建副本：用新的网址标识新建一位人物，暂不发布"),
            ]
        if reading.ours:
            for name in ("dynasty", "birth_year", "death_year"):
                del self.fields[name]

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action") if self.target is not None else "new"
        if not action:
            self.add_error("action", "请选择：更新已有的人物，或另建副本。")
        elif action != "update":
            self._check_new(cleaned)
        return cleaned

    def _check_new(self, cleaned) -> None:
        slug = cleaned.get("slug")
        if not slug and "slug" not in self.errors:
            self.add_error("slug", "请填写新人物的网址标识。")
        elif slug and Persona.objects.filter(slug=slug).exists():
            self.add_error("slug", f"网址标识「{slug}」已被占用，请换一个。")
        if self.reading.ours:
            return
        for name, label in (("dynasty", "朝代"), ("birth_year", "生年"), ("death_year", "卒年")):
            if cleaned.get(name) in (None, "") and name not in self.errors:
                self.add_error(name, f"请填写{label}。")
        birth, death = cleaned.get("birth_year"), cleaned.get("death_year")
        if birth is not None and death is not None and birth > death:
            self.add_error("death_year", "卒年不能早于生年。")

    def choice(self) -> ImportChoice:
        data = self.cleaned_data
        if self.target is not None and data.get("action") == "update":
            return ImportChoice(target=self.target)
        return ImportChoice(slug=data["slug"], copy=self.target is not None, dynasty=data.get("dynasty") or "",
                            birth_year=data.get("birth_year"), death_year=data.get("death_year"))


def card_png(persona: Persona) -> bytes:
    """The figure's card as a PNG with both chunks: `ccv3`, and `chara` for V2-only readers."""
    card = persona_to_card(persona)
    image = portrait_image(persona.portrait) if persona.portrait else None
    if image is None:
        image = seal_image(persona.seal_char, persona.name)
    return png_card_write(image, {"chara": card_as_v2(card), "ccv3": card})


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    form = PersonaAdminForm
    list_display = ("name", "nickname", "dynasty", "lifespan", "published", "updated_at")
    list_filter = ("dynasty", "published")
    search_fields = ("name", "nickname", "slug", "description")
    inlines = (LifeStageInline, KnowledgeEntryInline, ScreenPortrayalInline, FigureRelationInline, PersonaProbeInline)
    actions = ("export_cards", "export_card_pngs")
    fieldsets = (
        (None, {"fields": ("name", "nickname", "slug", "dynasty", ("birth_year", "death_year"), "portrait",
                           "reference_portrait", "published")}),
        ("角色卡", {"fields": ("description", "personality", "scenario", "first_mes", "alternate_greetings",
                              "mes_example", "system_prompt", "post_history_instructions", "creator_notes",
                              "tags", "character_version", "extensions")}),
        ("声口与立场", {"fields": ("speech_style", "values")}),
        ("朗读", {"fields": ("voice", "speech_speed")}),
        ("角色内应答", {"fields": tuple(f"sig_{key}" for key in SIGNATURE_CATEGORIES)}),
        ("模型", {"fields": ("chat_model",), "description": "仅在使用站点密钥时生效：用户自己的密钥未必提供这个模型"}),
    )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_card), name="personas_persona_import"),
            path("<path:object_id>/card.json", view(self.card_json), name="personas_persona_card_json"),
            path("<path:object_id>/card.png", view(self.card_png), name="personas_persona_card_png"),
            path("<path:object_id>/preview/", view(self.preview_prompt), name="personas_persona_preview"),
            path("<path:object_id>/probes/", view(self.run_probes), name="personas_persona_probes"),
        ] + super().get_urls()

    def _persona_for_curator(self, request: HttpRequest, object_id: str) -> Persona:
        """The figure, if this user may change it: the tools show its whole confidential setting."""
        persona = self.get_object(request, unquote(object_id))
        if persona is None:
            raise Http404("没有这位人物。")
        if not self.has_change_permission(request, persona):
            raise PermissionDenied
        return persona

    def _tool_context(self, request: HttpRequest, persona: Persona, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.opts, "original": persona, "title": title,
                "persona": persona, **extra}

    def preview_prompt(self, request: HttpRequest, object_id: str) -> HttpResponse:
        persona = self._persona_for_curator(request, object_id)
        form = PromptPreviewForm(request.GET or None, persona=persona, initial={"message": _sample_message(persona)})
        choice = form.cleaned_data if form.is_bound and form.is_valid() else {}
        life_stage, style = choice.get("life_stage"), choice.get("style")
        message = choice.get("message") or _sample_message(persona)
        system = system_prompt_text(persona, life_stage, style, canary=PREVIEW_CANARY)
        result = build_prompt(PromptInputs(
            persona=persona, life_stage=life_stage, style=style, new_message=message, canary=PREVIEW_CANARY,
            budget_tokens=settings.PROMPT_TOKEN_BUDGET, request_tokens=settings.PROMPT_REQUEST_TOKENS, reply_max_tokens=settings.REPLY_MAX_TOKENS,
        ))
        messages_shown = [{"role": ROLE_LABELS.get(m["role"], m["role"]), "content": m["content"],
                           "tokens": estimate_tokens(m["content"])} for m in result.messages]
        context = self._tool_context(
            request, persona, f"预览系统提示词：{persona.name}", form=form, system=system,
            system_tokens=estimate_tokens(system), messages_shown=messages_shown, prompt_tokens=result.prompt_tokens,
            prompt_limit=settings.PROMPT_TOKEN_BUDGET - settings.REPLY_MAX_TOKENS, canary=PREVIEW_CANARY,
            life_stage=life_stage, style=style,
        )
        return TemplateResponse(request, "admin/personas/persona/prompt_preview.html", context)

    def run_probes(self, request: HttpRequest, object_id: str) -> HttpResponse:
        persona = self._persona_for_curator(request, object_id)
        probe_list, defaults_used = probes.probes_for(persona)
        form = ProbeRunForm(request.POST if request.method == "POST" else None, persona=persona)
        context = self._tool_context(request, persona, f"运行探测：{persona.name}", form=form, probes=probe_list,
                                     defaults_used=defaults_used)
        if request.method == "POST" and form.is_valid():
            context.update(self._probe_results(request, persona, probe_list, form.cleaned_data))
        return TemplateResponse(request, "admin/personas/persona/probe_run.html", context)

    def _probe_results(self, request: HttpRequest, persona: Persona, probe_list, choice: dict) -> dict:
        config, real_note, real_name = None, "", ""
        if not choice["use_real"]:
            real_note = "未勾选，未调用真实模型。"
        elif (credential := credential_resolve(request.user)) is None:
            real_note = "未配置密钥，仅运行脚本模型"
        else:
            try:
                config = provider_config(credential, persona=persona)
            except UnsafeURL:
                real_note = "该密钥的接口地址未通过安全检查，未调用真实模型。"
            else:
                real_name = f"{credential.label} · {config.model}"
        rows = probes.probe_run(persona=persona, probes=probe_list, behaviour=choice["behaviour"], config=config,
                                life_stage=choice["life_stage"], style=choice["style"])
        return {
            "rows": rows, "behaviour_label": BEHAVIOUR_LABELS.get(choice["behaviour"], choice["behaviour"]),
            "real_note": real_note, "real_name": real_name, "scripted_tally": probes.tally(row.scripted for row in rows),
            "real_tally": probes.tally(row.real for row in rows) if config is not None else None,
        }

    @admin.action(description="导出角色卡（CCv3 JSON）")
    def export_cards(self, request, queryset):
        cards = [persona_to_card(p) for p in queryset.prefetch_related("life_stages", "knowledge_entries", "portrayals")]
        payload = cards[0] if len(cards) == 1 else cards
        response = JsonResponse(payload, safe=False, json_dumps_params={"ensure_ascii": False, "indent": 2})
        response["Content-Disposition"] = 'attachment; filename="persona-cards.json"'
        return response

    @admin.action(description="导出角色卡（PNG 图片，SillyTavern 可读）")
    def export_card_pngs(self, request, queryset):
        personas = list(queryset.prefetch_related("life_stages", "knowledge_entries", "portrayals"))
        if len(personas) == 1:
            return self._png_response(personas[0])
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for persona in personas:
                archive.writestr(f"{persona.slug}.png", card_png(persona))
        response = HttpResponse(out.getvalue(), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="persona-cards.zip"'
        return response

    def card_json(self, request: HttpRequest, object_id: str) -> HttpResponse:
        persona = self._persona_for_curator(request, object_id)
        response = JsonResponse(persona_to_card(persona), json_dumps_params={"ensure_ascii": False, "indent": 2})
        response["Content-Disposition"] = f'attachment; filename="{persona.slug}.json"'
        return response

    def card_png(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._png_response(self._persona_for_curator(request, object_id))

    def _png_response(self, persona: Persona) -> HttpResponse:
        response = HttpResponse(card_png(persona), content_type="image/png")
        response["Content-Disposition"] = f'attachment; filename="{persona.slug}.png"'
        return response

    def import_card(self, request) -> HttpResponse:
        """Step one: read the file. Our own card for a new figure is stored at once; anything else
        (a figure that exists, a card from another tool) goes to step two, with nothing stored."""
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            return HttpResponse(status=403)
        if request.method == "POST" and "card_json" in request.POST:
            return self._import_confirm(request)
        form = CardUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                card, source = card_file_read(form.cleaned_data["card"].read())
                reading = card_read(card, from_png=source != "JSON")
            except CardError as exc:
                form.add_error("card", f"导入失败：{exc}")
            else:
                target = card_conflict(reading)
                if reading.ours and target is None:
                    return self._imported(request, reading, ImportChoice(slug=reading.slug))
                confirm = CardConfirmForm(reading=reading, target=target, initial={
                    "card_json": reading.as_json(), "source": source, "slug": free_slug(reading.slug)})
                return self._confirm_page(request, confirm, reading, target, source)
        return self._upload_page(request, form)

    def _import_confirm(self, request) -> HttpResponse:
        source = request.POST.get("source", "")[:40]
        try:
            card = json.loads(request.POST["card_json"])
            if not isinstance(card, dict):
                raise CardError("这不是角色卡：应为一个 JSON 对象。")
            reading = card_read(card, from_png=source.startswith("PNG"))
        except (CardError, ValueError) as exc:
            form = CardUploadForm()
            form.add_error(None, f"导入失败：{exc}")
            return self._upload_page(request, form)
        target = card_conflict(reading)
        form = CardConfirmForm(request.POST, reading=reading, target=target)
        if form.is_valid():
            try:
                return self._imported(request, reading, form.choice())
            except CardError as exc:
                form.add_error(None, f"导入失败：{exc}")
        return self._confirm_page(request, form, reading, target, source)

    def _imported(self, request, reading: CardReading, choice: ImportChoice) -> HttpResponse:
        persona = persona_import(reading, choice)
        done = "已更新" if choice.target else ("已另建副本" if choice.copy else "已导入")
        self.message_user(request, f"{done}「{persona.name}」（网址标识 {persona.slug}）。", messages.SUCCESS)
        for note in reading.notes:
            self.message_user(request, note, messages.WARNING)
        return redirect("admin:personas_persona_change", persona.pk)

    def _upload_page(self, request, form) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "form": form, "title": "导入角色卡", "opts": self.model._meta}
        return render(request, "admin/personas/import_card.html", context)

    def _confirm_page(self, request, form, reading: CardReading, target, source: str) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "form": form, "reading": reading, "target": target,
                   "source": source, "title": f"导入角色卡：{reading.name}", "opts": self.model._meta}
        return render(request, "admin/personas/import_confirm.html", context)


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
