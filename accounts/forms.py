from __future__ import annotations

import time

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.cache import cache

from accounts.models import ApiCredential, ChatProtocol, CredentialKind, User
from guyue import ratelimit
from guyue.lib.netguard import UnsafeURL, check_public_url


class SignupForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username",)
        labels = {"username": "用户名"}
        help_texts = {"username": "不超过 150 个字符，可用字母、数字和 @/./+/-/_。"}
        error_messages = {"username": {"unique": "该用户名已被使用，请换一个。"}}


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, locking a user name + IP after repeated failures, and an IP after
    many failures under any names (one address spraying a password across accounts)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "用户名或密码不正确。",
        "locked": "登录失败次数过多，请在 %(minutes)d 分钟后再试。",
        "ip_locked": "登录尝试过多，请在 %(minutes)d 分钟后再试。",
    }
    locked = False

    def _ip(self) -> str:
        return ratelimit.client_ip(self.request) if self.request else ""

    def _keys(self) -> tuple[str, str]:
        username = (self.data.get("username") or "").strip().lower()
        ip = self._ip()
        return ratelimit.cache_key("login-fail", username, ip), ratelimit.cache_key("login-lock", username, ip)

    def _refuse_if_locked(self, lock_key: str, code: str) -> None:
        locked_until = cache.get(lock_key)
        if locked_until:
            self.locked = True
            minutes = max(1, int((locked_until - time.time() + 59) // 60))
            raise forms.ValidationError(self.error_messages[code], code=code, params={"minutes": minutes})

    @staticmethod
    def _count_failure(fail_key: str, lock_key: str, limit: int) -> None:
        window = settings.LOGIN_LOCKOUT_SECONDS
        if not ratelimit.hit(fail_key, limit=limit - 1, window=window):
            cache.set(lock_key, time.time() + window, window)
            cache.delete(fail_key)

    def clean(self):
        fail_key, lock_key = self._keys()
        ip = self._ip()
        ip_fail_key, ip_lock_key = ratelimit.cache_key("login-ip-fail", ip), ratelimit.cache_key("login-ip-lock", ip)
        self._refuse_if_locked(ip_lock_key, "ip_locked")
        self._refuse_if_locked(lock_key, "locked")
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            self._count_failure(fail_key, lock_key, settings.LOGIN_FAILURE_LIMIT)
            # Not reset by a success: one account the attacker owns must not clear the count.
            self._count_failure(ip_fail_key, ip_lock_key, settings.LOGIN_IP_FAILURE_LIMIT)
            raise
        cache.delete(fail_key)
        return cleaned


def _clean_key(value: str) -> str:
    # Keys pasted from a console often carry spaces or line breaks; inner whitespace is never valid.
    key = "".join(value.split())
    if not key:
        raise forms.ValidationError("请填写密钥。")
    if len(key) < 8:
        raise forms.ValidationError("密钥太短，请检查是否复制完整。")
    if not key.isascii() or not key.isprintable():
        raise forms.ValidationError("密钥只能包含英文字母、数字和符号。")
    return key


KEY_ERRORS = {"required": "请填写密钥。"}
MODEL_FIELDS = ("text_model", "task_model", "image_model", "vision_model", "speech_model", "transcription_model",
                "rerank_model", "edit_model", "video_model", "music_model", "midjourney_model")
# Shown folded: a connection works with none of them (docs/connections.md).
OPTIONAL_CAPABILITIES = ("task_model", "vision_model", "speech_model", "transcription_model", "rerank_model",
                         "edit_model", "video_model", "music_model", "midjourney_model")


def _model_name(value: str) -> str:
    name = value.strip()
    if name and (not name.isprintable() or any(ch.isspace() for ch in name)):
        raise forms.ValidationError("模型名称不能包含空格或控制字符。")
    return name


class _ConnectionFields(forms.ModelForm):
    """What a connection's add and edit forms share: its address and the model of each capability."""

    base_url = forms.URLField(
        label="接口地址", required=False, max_length=300, assume_scheme="https", help_text="留空则使用平台默认地址",
        error_messages={"invalid": "请输入有效的网址，例如 https://example.com/v1。"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["text_model"].widget.attrs["placeholder"] = "留空使用默认（百炼为 qwen-plus）"
        self.fields["image_model"].widget.attrs["placeholder"] = "留空使用默认（百炼为 wan2.2-t2i-flash）"
        for name in MODEL_FIELDS:
            self.fields[name].widget.attrs.update(autocomplete="off", spellcheck="false")
        self.fields["chat_protocol"].required = False  # scripts and old pages send none: OpenAI's

    def clean_chat_protocol(self) -> str:
        return self.cleaned_data["chat_protocol"] or ChatProtocol.OPENAI

    def main_fields(self):
        return [self[name] for name in self.fields if name not in OPTIONAL_CAPABILITIES]

    def capability_fields(self):
        return [self[name] for name in OPTIONAL_CAPABILITIES]

    def clean_label(self) -> str:
        label = self.cleaned_data["label"].strip()
        if not label:
            raise forms.ValidationError("请填写名称。")
        return label

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].strip()
        if url:
            try:
                check_public_url(url, settings.USER_BASE_URL_ALLOWED_HOSTS)
            except UnsafeURL as exc:
                raise forms.ValidationError(str(exc)) from None
        return url

    def clean(self):
        cleaned = super().clean()
        for name in MODEL_FIELDS:
            if name in cleaned:
                try:
                    cleaned[name] = _model_name(cleaned[name])
                except forms.ValidationError as exc:
                    self.add_error(name, exc)
        # A refused URL already says what is wrong with the field; "fill it in" would contradict it.
        missing = not cleaned.get("base_url") and "base_url" not in self.errors
        kind = cleaned.get("kind", self.instance.kind)
        if kind == CredentialKind.OPENAI_COMPATIBLE and missing:
            self.add_error("base_url", "OpenAI 兼容接口需要填写接口地址。")
        return cleaned


class CredentialForm(_ConnectionFields):
    key = forms.CharField(label="密钥", widget=forms.PasswordInput(render_value=False), strip=False, error_messages=KEY_ERRORS)

    class Meta:
        model = ApiCredential
        fields = ("kind", "label", "region", "base_url", "chat_protocol", *MODEL_FIELDS)
        labels = {"kind": "预设"}
        help_texts = {"kind": "预设决定默认接口地址、默认模型与图像生成方式"}

    field_order = ("kind", "label", "key")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["label"].initial = "我的密钥"

    def clean_key(self) -> str:
        return _clean_key(self.cleaned_data["key"])


class CredentialEditForm(_ConnectionFields):
    """Change a saved connection's models, address or region, keeping its key. A key goes to a new
    address only when it is typed again: a borrowed session must not be able to send it elsewhere."""

    key = forms.CharField(label="密钥", required=False, strip=False, widget=forms.PasswordInput(render_value=False),
                          help_text="更改接口地址时需重新填写；其他修改留空即可")
    confirm = forms.CharField(widget=forms.HiddenInput, required=False)
    field_order = ("label", "region", "base_url", "key")

    class Meta:
        model = ApiCredential
        fields = ("label", "region", "base_url", "chat_protocol", *MODEL_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.old_base_url = self.instance.base_url
        listed = self.instance.listed_ids()
        if listed:
            for name in MODEL_FIELDS:
                self.fields[name].widget.attrs["list"] = f"models-{self.instance.pk}"

    def clean_key(self) -> str:
        value = self.cleaned_data["key"]
        return _clean_key(value) if value.strip() else ""

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("confirm") != "yes":
            self.add_error(None, "请确认修改。")  # a hidden field's own error would not be shown
        moved = "base_url" in cleaned and cleaned["base_url"] != self.old_base_url
        if moved and not cleaned.get("key") and "key" not in self.errors:
            self.add_error("key", "更改接口地址需要重新填写密钥。")
        return cleaned


class CredentialReplaceForm(forms.Form):
    key = forms.CharField(label="新密钥", widget=forms.PasswordInput(render_value=False), strip=False, error_messages=KEY_ERRORS)
    confirm = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean_key(self) -> str:
        return _clean_key(self.cleaned_data["key"])

    def clean_confirm(self) -> str:
        if self.cleaned_data["confirm"] != "yes":
            raise forms.ValidationError("请确认替换密钥。")
        return "yes"
