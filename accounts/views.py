from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from accounts import services
from accounts.forms import (
    CredentialEditForm,
    CredentialForm,
    CredentialReplaceForm,
    SignupForm,
    ThrottledAuthenticationForm,
)
from accounts.models import ApiCredential, CredentialStatus
from accounts.selectors import get_credential_for_user
from chat.quota import zone_name
from chat.usage import user_usage
from guyue import ratelimit


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return reverse(settings.LOGIN_REDIRECT_URL)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        key = ratelimit.cache_key("signup", ratelimit.client_ip(request))
        if not ratelimit.hit(key, limit=settings.SIGNUP_LIMIT_PER_HOUR, window=3600):
            form.add_error(None, "注册过于频繁，请一小时后再试。")
            return render(request, "accounts/signup.html", {"form": form}, status=429)
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "注册成功，欢迎来到古月今话。")
            return redirect(_safe_next(request))
    return render(request, "accounts/signup.html", {"form": form, "next": request.GET.get("next", "")})


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.locked:
            response.status_code = 429
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"


def _edit_prefix(credential: ApiCredential) -> str:
    return f"c{credential.pk}"  # one edit form per connection on the page: ids must not collide


def _settings_context(request: HttpRequest, **extra) -> dict:
    credentials = list(ApiCredential.objects.filter(owner=request.user))
    failed_edit = extra.pop("edit_form", None)
    for credential in credentials:
        credential.edit_form = (
            failed_edit if failed_edit is not None and failed_edit.instance.pk == credential.pk
            else CredentialEditForm(instance=credential, prefix=_edit_prefix(credential))
        )
    return {
        "credentials": credentials,
        "edit_pk": failed_edit.instance.pk if failed_edit is not None else None,
        "active_credential": services.credential_resolve(request.user),
        "form": extra.pop("form", None) or CredentialForm(),
        **extra,
    }


def _render_settings(request: HttpRequest, status: int = 200, **extra) -> HttpResponse:
    template = "accounts/settings.html"
    if request.htmx:
        template += "#credentials"
    return render(request, template, _settings_context(request, **extra), status=status)


@login_required
@vary_on_headers("HX-Request")
def settings_page(request: HttpRequest) -> HttpResponse:
    if request.htmx:  # only the keys' part is swapped
        return _render_settings(request)
    return _render_settings(request, usage=user_usage(request.user), zone_name=zone_name())


def _report_check(request: HttpRequest, what: str, credential: ApiCredential) -> None:
    """Say how the key check went: a key that failed it is an error, shown with the provider's reason."""
    text = f"{what}：{credential.get_status_display()}。"
    if credential.status in (CredentialStatus.VALID, CredentialStatus.UNCHECKED):
        messages.info(request, text)
    else:
        messages.error(request, text + (credential.last_error or ""))
    for label, model in credential.unlisted_models():
        messages.warning(request, f"{label}「{model}」不在该接口列出的模型中，请核对拼写。")


def _keycheck_allowed(request: HttpRequest) -> bool:
    # Each save or re-check makes an outbound call on the user's behalf: keep it to a human pace.
    key = ratelimit.cache_key("keycheck", str(request.user.pk))
    return ratelimit.hit(key, limit=settings.KEYCHECK_LIMIT_PER_10_MINUTES, window=600)


def _too_many_checks(request: HttpRequest, **extra) -> HttpResponse:
    messages.error(request, "验证过于频繁，请十分钟后再试。")
    return _render_settings(request, status=429, **extra)


@login_required
@require_POST
def credential_add(request: HttpRequest) -> HttpResponse:
    form = CredentialForm(request.POST)
    if form.is_valid() and not _keycheck_allowed(request):
        return _too_many_checks(request, form=form)
    if not form.is_valid():
        return _render_settings(request, status=400, form=form)
    credential = form.save(commit=False)
    credential.owner = request.user
    credential = services.credential_save(credential=credential, api_key=form.cleaned_data["key"])
    _report_check(request, f"已保存「{credential.label}」", credential)
    if not request.htmx:
        return redirect("accounts:settings")
    return _render_settings(request)


@login_required
@require_POST
def credential_replace(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_credential_for_user(request.user, pk)
    form = CredentialReplaceForm(request.POST)
    if not form.is_valid():
        return _render_settings(request, status=400, replace_form=form, replace_pk=credential.pk)
    if not _keycheck_allowed(request):
        return _too_many_checks(request)
    services.credential_save(credential=credential, api_key=form.cleaned_data["key"])
    _report_check(request, f"已替换「{credential.label}」的密钥", credential)
    if not request.htmx:
        return redirect("accounts:settings")
    return _render_settings(request)


@login_required
@require_POST
def credential_edit(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_credential_for_user(request.user, pk)
    form = CredentialEditForm(request.POST, instance=credential, prefix=_edit_prefix(credential))
    if not form.is_valid():
        return _render_settings(request, status=400, edit_form=form)
    if not _keycheck_allowed(request):
        return _too_many_checks(request, edit_form=form)
    credential = services.credential_save(credential=form.save(commit=False), api_key=form.cleaned_data["key"] or None)
    _report_check(request, f"已修改「{credential.label}」", credential)
    if not request.htmx:
        return redirect("accounts:settings")
    return _render_settings(request)


@login_required
@require_POST
def credential_revalidate(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_credential_for_user(request.user, pk)
    if not _keycheck_allowed(request):
        return _too_many_checks(request)
    services.credential_validate(credential)
    _report_check(request, f"已重新验证「{credential.label}」", credential)
    if not request.htmx:
        return redirect("accounts:settings")
    return _render_settings(request)


@login_required
@require_http_methods(["GET", "POST"])
def credential_delete(request: HttpRequest, pk: int) -> HttpResponse:
    credential = get_credential_for_user(request.user, pk)
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return render(request, "accounts/credential_confirm_delete.html", {"credential": credential})
    label = credential.label
    services.credential_delete(credential=credential)
    messages.success(request, f"已删除「{label}」。")
    if not request.htmx:
        return redirect("accounts:settings")
    return _render_settings(request)
