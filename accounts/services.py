"""Writes for accounts and API credentials."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiCredential, CredentialKind, CredentialRegion, CredentialStatus, User
from chat.providers import credit, keycheck
from guyue.lib.netguard import AddressGuard, UnresolvableHost, UnsafeURL, check_public_url

logger = logging.getLogger(__name__)

_OUTCOME_STATUS = {
    keycheck.VALID: CredentialStatus.VALID,
    keycheck.INVALID: CredentialStatus.INVALID,
    keycheck.UNREACHABLE: CredentialStatus.UNREACHABLE,
    keycheck.ERROR: CredentialStatus.ERROR,
}


def credential_guard(credential: ApiCredential) -> AddressGuard | None:
    """Where calls with this credential may connect. A user's base URL reaches public addresses
    only (or hosts in USER_BASE_URL_ALLOWED_HOSTS); site-wide credentials are trusted (None) and
    may point at a local model server."""
    if credential.is_site_wide:
        return None
    return AddressGuard.allowing(settings.USER_BASE_URL_ALLOWED_HOSTS)


def _check(credential: ApiCredential, base_url: str) -> keycheck.CheckResult:
    if not credential.is_site_wide:
        # Checked again right before the call: DNS may have changed since the form was saved
        # (and the connection itself is checked once more, see guyue/lib/netguard.py).
        try:
            check_public_url(base_url, settings.USER_BASE_URL_ALLOWED_HOSTS)
        except UnresolvableHost as exc:
            return keycheck.CheckResult(keycheck.UNREACHABLE, str(exc))
        except UnsafeURL as exc:
            return keycheck.CheckResult(keycheck.ERROR, str(exc))
    return keycheck.check_key(
        kind=credential.kind, base_url=base_url, api_key=credential.api_key, timeout=settings.KEYCHECK_TIMEOUT,
        guard=credential_guard(credential),
    )


def _other_region(credential: ApiCredential) -> str | None:
    """The DashScope region whose endpoint accepts this key, when the chosen one refuses it."""
    if credential.kind != CredentialKind.DASHSCOPE or credential.base_url:
        return None
    for region, base_url in settings.DASHSCOPE_REGIONS.items():
        if region != credential.region and _check(credential, base_url).outcome == keycheck.VALID:
            return region
    return None


def credential_validate(credential: ApiCredential) -> ApiCredential:
    result = _check(credential, credential.effective_base_url())
    status, message = _OUTCOME_STATUS[result.outcome], result.message
    if result.outcome == keycheck.INVALID:
        region = _other_region(credential)
        if region:
            status = CredentialStatus.WRONG_REGION
            message = f"该密钥属于「{CredentialRegion(region).label}」地域，请把地域改为它后重新保存。"
    credential.status = status
    credential.last_error = "" if status == CredentialStatus.VALID else message
    credential.validated_at = timezone.now()
    if result.models is not None:
        credential.listed_models = result.models
    credential.save(update_fields=["status", "last_error", "validated_at", "listed_models", "updated_at"])
    logger.info("credential %s checked: %s", credential.pk, status)
    if status == CredentialStatus.VALID:  # remaining credit, where the provider reports it (never fails)
        credit.credit_refresh(credential, timeout=settings.KEYCHECK_TIMEOUT, guard=credential_guard(credential))
    return credential


def credential_save(*, credential: ApiCredential, api_key: str | None) -> ApiCredential:
    """Save a new or changed credential (api_key None keeps the stored key), then validate it."""
    if api_key is not None:
        credential.set_key(api_key)
    credential.status = CredentialStatus.UNCHECKED
    credential.save()
    return credential_validate(credential)


def credential_mark_rejected(credential: ApiCredential) -> None:
    """The provider refused the key during a chat (401): say so where the key's status is shown (设置,
    or the admin for a site-wide key), and stop choosing it until it is checked again or replaced."""
    ApiCredential.objects.filter(
        pk=credential.pk, status__in=[CredentialStatus.VALID, CredentialStatus.UNCHECKED]
    ).update(status=CredentialStatus.INVALID, last_error="对话时服务商拒绝了这个密钥（401），请检查或替换。",
             validated_at=timezone.now(), updated_at=timezone.now())
    logger.info("credential %s refused by its provider during a chat", credential.pk)


def credential_delete(*, credential: ApiCredential) -> None:
    credential.delete()


def credential_resolve(user: User | None) -> ApiCredential | None:
    """The user's own valid credential, else the site-wide default, else None (no call is made).

    One query: every reply resolves its key, so the own-then-site fallback is an ORDER BY."""
    # Written as SQL through raw(): it runs before every reply, and compiling it through the ORM cost more
    # than running it. The model's own columns, so the key field decrypts as usual.
    owner = user.pk if user is not None and user.is_authenticated else None
    rows = ApiCredential.objects.raw(_RESOLVE_SQL.format(table=ApiCredential._meta.db_table),
                                     [owner, CredentialStatus.VALID, CredentialStatus.VALID, CredentialStatus.UNCHECKED])
    return next(iter(rows), None)


# Own valid key first (owner_id NULL sorts last), then the site's default, then the newest site key.
_RESOLVE_SQL = """
SELECT * FROM {table}
 WHERE (owner_id = %s AND status = %s) OR (owner_id IS NULL AND status IN (%s, %s))
 ORDER BY (owner_id IS NULL), is_default DESC, updated_at DESC
 LIMIT 1"""


_ENV_CREDENTIALS = {
    CredentialKind.DASHSCOPE: ("DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", "环境变量：百炼"),
    CredentialKind.OPENROUTER: ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "环境变量：OpenRouter"),
}


@transaction.atomic
def site_credentials_sync_from_env(environ: Mapping[str, str] = os.environ) -> list[ApiCredential]:
    """Create or update the site-wide credential for each provider key set in the environment."""
    synced = []
    for kind, (key_var, url_var, label) in _ENV_CREDENTIALS.items():
        key = environ.get(key_var, "").strip()
        if not key:
            continue
        credential = ApiCredential.objects.filter(owner=None, kind=kind, label=label).first()
        if credential is None:
            credential = ApiCredential(owner=None, kind=kind, label=label)
        if credential.api_key != key or credential.base_url != environ.get(url_var, "").strip():
            credential.set_key(key)
            credential.base_url = environ.get(url_var, "").strip()
            credential.status = CredentialStatus.UNCHECKED
        if not ApiCredential.objects.filter(owner=None, is_default=True).exclude(pk=credential.pk).exists():
            credential.is_default = True
        credential.save()
        synced.append(credential)
    return synced
