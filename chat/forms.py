from __future__ import annotations

from django import forms

from personas.models import Persona, StylePreset


class ConversationSettingsForm(forms.Form):
    """Life stage and style preset: used to start a conversation and to change one."""

    life_stage = forms.ModelChoiceField(
        queryset=None, required=False, label="人生阶段", empty_label="不限（整个生平）",
        error_messages={"invalid_choice": "所选人生阶段不属于这位人物。"},
    )
    style_preset = forms.ModelChoiceField(
        queryset=StylePreset.objects.all(), required=False, label="语言风格", empty_label="人物本色",
        error_messages={"invalid_choice": "所选语言风格不存在。"},
    )

    def __init__(self, *args, persona: Persona, **kwargs):
        super().__init__(*args, **kwargs)
        # Scoped to the figure, so a stage of another figure is an invalid choice, not a lookup.
        self.fields["life_stage"].queryset = persona.life_stages.all()


GUEST_FIELDS = ("guest_1", "guest_2", "guest_3")  # up to MAX_GUESTS (chat/models.py)


class StartForm(ConversationSettingsForm):
    """Settings plus up to three more figures, for a scene or a salon (雅集; chosen only at the start)."""

    def __init__(self, *args, persona: Persona, **kwargs):
        super().__init__(*args, persona=persona, **kwargs)
        others = Persona.objects.published().exclude(pk=persona.pk)
        for number, name in enumerate(GUEST_FIELDS, 1):
            self.fields[name] = forms.ModelChoiceField(
                queryset=others, required=False, label=f"同场人物{'一二三'[number - 1]}（可选）",
                empty_label="无", error_messages={"invalid_choice": "所选同场人物不存在。"},
                help_text="选一至三位人物同场：各以自己的口吻说话，只知道各自生前之事与席间所言。" if number == 1 else "",
            )

    def clean(self):
        cleaned = super().clean()
        guests = [cleaned.get(name) for name in GUEST_FIELDS if cleaned.get(name) is not None]
        if len({guest.pk for guest in guests}) != len(guests):
            raise forms.ValidationError("同场人物不能重复。")
        cleaned["guests"] = guests
        return cleaned

    def start_arguments(self) -> dict:
        data = self.cleaned_data
        return {"life_stage": data.get("life_stage"), "style_preset": data.get("style_preset"), "guests": data["guests"]}


class RenameForm(forms.Form):
    title = forms.CharField(
        label="标题", max_length=100, strip=True,
        error_messages={"required": "标题不能为空。", "max_length": "标题不能超过 %(limit_value)d 个字（现有 %(show_value)d 个）。"},
    )


class SearchForm(forms.Form):
    q = forms.CharField(
        label="搜索", max_length=100, required=False, strip=True,
        error_messages={"max_length": "搜索词不能超过 %(limit_value)d 个字（现有 %(show_value)d 个）。"},
    )


class MemoryForm(forms.Form):
    """Add or edit one memory. `figure` empty means the profile every figure shares."""

    content = forms.CharField(
        label="内容", max_length=300, strip=True, widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "记忆内容不能为空。", "max_length": "记忆不能超过 %(limit_value)d 个字（现有 %(show_value)d 个）。"},
    )
    figure = forms.ModelChoiceField(
        queryset=None, required=False, label="记在谁那里", empty_label="所有人物共享（个人资料）",
        error_messages={"invalid_choice": "所选人物不存在。"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["figure"].queryset = Persona.objects.published()


class PreferenceForm(forms.Form):
    personality = forms.CharField(label="个性倾向", max_length=200, required=False, strip=True,
                                  error_messages={"max_length": "个性倾向不能超过 %(limit_value)d 个字。"})
    knowledge = forms.CharField(label="知识偏好", max_length=200, required=False, strip=True,
                                error_messages={"max_length": "知识偏好不能超过 %(limit_value)d 个字。"})
    language_style = forms.CharField(label="语言风格", max_length=200, required=False, strip=True,
                                     error_messages={"max_length": "语言风格不能超过 %(limit_value)d 个字。"})


class UserPersonaForm(forms.Form):
    name = forms.CharField(label="称呼", max_length=30, required=False, strip=True,
                           error_messages={"max_length": "称呼不能超过 %(limit_value)d 个字。"})
    description = forms.CharField(label="自我介绍", max_length=300, required=False, strip=True,
                                  error_messages={"max_length": "自我介绍不能超过 %(limit_value)d 个字。"})
