from __future__ import annotations

from django.shortcuts import get_object_or_404

from accounts.models import ApiCredential, User


def get_credential_for_user(user: User, pk: int) -> ApiCredential:
    """The only way views fetch a credential: someone else's id is a 404, never a 403."""
    return get_object_or_404(ApiCredential, pk=pk, owner=user)
