from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts import services
from accounts.forms import _clean_key
from accounts.models import ApiCredential, User

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
        fields = ("kind", "label", "region", "base_url", "text_model", "image_model", "is_default")

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
    readonly_fields = ("key_hint", "status", "validated_at", "last_error")
    actions = ("revalidate",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(owner=None)

    def save_model(self, request, obj, form, change):
        obj.owner = None
        new_key = form.cleaned_data.get("new_key") or None
        services.credential_save(credential=obj, api_key=new_key)

    @admin.action(description="重新验证所选密钥")
    def revalidate(self, request, queryset):
        for credential in queryset:
            services.credential_validate(credential)
        self.message_user(request, f"已验证 {queryset.count()} 个密钥。")
