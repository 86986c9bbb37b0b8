from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts import services
from accounts.forms import MODEL_FIELDS, _clean_key
from accounts.models import ApiCredential, ChatProtocol, QuotaSettings, User, UserQuota
from chat.quota import zone_name
from chat.usage import site_usage

admin.site.site_header = "古月今话 · 策展后台"
admin.site.site_title = "古月今话"
admin.site.index_title = "人物、史料与密钥"


@admin.register(User)
class GuyueUserAdmin(UserAdmin):
    fieldsets = UserAdmin.fieldsets + (("资料", {"fields": ("display_name",)}),)
    list_display = ("username", "display_name", "is_staff", "is_active", "date_joined")


class SiteCredentialForm(forms.ModelForm):
    # Write-only: the stored key is never rendered back into the page.
    new_key = forms.CharField(
        label="密钥", required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="新建时必填；修改时留空表示保留原密钥。",
    )

    base_url = forms.URLField(label="接口地址", required=False, max_length=300, assume_scheme="https")

    class Meta:
        model = ApiCredential
        fields = ("kind", "label", "region", "base_url", "chat_protocol", *MODEL_FIELDS, "is_default")
        labels = {"kind": "预设"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["chat_protocol"].required = False  # a form posted without it means OpenAI's

    def clean_chat_protocol(self) -> str:
        return self.cleaned_data["chat_protocol"] or ChatProtocol.OPENAI

    def clean_new_key(self) -> str:
        value = self.cleaned_data["new_key"]
        if not value.strip():
            if not self.instance.pk:
                raise forms.ValidationError("请填写密钥。")
            return ""
        return _clean_key(value)


@admin.register(ApiCredential)
class SiteCredentialAdmin(admin.ModelAdmin):
    """Site-wide credentials only: a user's own key is theirs, not the curators'."""

    form = SiteCredentialForm
    list_display = ("label", "kind", "region", "key_hint", "is_default", "status", "validated_at")
    list_filter = ("kind", "status")
    search_fields = ("label",)
    readonly_fields = ("key_hint", "status", "validated_at", "last_error", "model_warnings")
    actions = ("revalidate",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(owner=None)

    def save_model(self, request, obj, form, change):
        obj.owner = None
        new_key = form.cleaned_data.get("new_key") or None
        services.credential_save(credential=obj, api_key=new_key)

    @admin.display(description="模型核对")
    def model_warnings(self, obj: ApiCredential) -> str:
        if not obj.listed_models:
            return "尚无接口列出的模型（验证后显示）"
        unlisted = obj.unlisted_models()
        if not unlisted:
            return f"所填模型均在接口列出的 {len(obj.listed_models)} 个模型中"
        return "；".join(f"{label}「{model}」不在接口列出的模型中" for label, model in unlisted)

    @admin.action(description="重新验证所选密钥")
    def revalidate(self, request, queryset):
        for credential in queryset:
            services.credential_validate(credential)
        self.message_user(request, f"已验证 {queryset.count()} 个密钥。")


@admin.register(QuotaSettings)
class QuotaSettingsAdmin(admin.ModelAdmin):
    """「用量与额度」: its list is the site's usage report (docs/usage.md); its one row, the default quota."""

    fields = ("daily_token_quota",)

    def has_add_permission(self, request) -> bool:
        return False  # one row, made on first use

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        data = request.GET.copy()
        data.setdefault("days", "30")
        form = UsageFilterForm(data)
        choice = form.cleaned_data if form.is_valid() else {}
        days = int(choice.get("days") or 30)
        report = site_usage(days=days, user_id=getattr(choice.get("user"), "pk", None),
                            credential_id=getattr(choice.get("key"), "pk", None))
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "用量与额度", "form": form,
            "report": report, "days": days, "site": QuotaSettings.load(), "zone_name": zone_name(),
            "can_change": self.has_change_permission(request),
            "can_set_user": request.user.has_perm("accounts.add_userquota"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/accounts/usage.html", context)


class UsageFilterForm(forms.Form):
    days = forms.TypedChoiceField(label="时间", choices=[(7, "近 7 天"), (30, "近 30 天"), (90, "近 90 天")],
                                  coerce=int, required=False)
    user = forms.ModelChoiceField(label="用户", queryset=User.objects.all(), to_field_name="username",
                                  required=False, widget=forms.TextInput(attrs={"placeholder": "用户名"}),
                                  error_messages={"invalid_choice": "没有这个用户。"})
    key = forms.ModelChoiceField(label="站点密钥", queryset=ApiCredential.objects.filter(owner=None),
                                 required=False, empty_label="全部")


class UserQuotaForm(forms.ModelForm):
    # A user name, not a list of every user: curators may not browse users, and a site has many.
    user = forms.ModelChoiceField(label="用户", queryset=User.objects.all(), to_field_name="username",
                                  widget=forms.TextInput, error_messages={"invalid_choice": "没有这个用户。"})

    class Meta:
        model = UserQuota
        fields = ("user", "daily_token_quota", "note")


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    form = UserQuotaForm
    list_display = ("user", "daily_token_quota", "note", "updated_at")
    search_fields = ("user__username", "note")
    list_select_related = ("user",)
