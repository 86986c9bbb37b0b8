"""Create bench users, one conversation each with 李白, and a logged-in session per user.

    python -m bench.setup_data <users> <out.json>      (with the bench's DATABASE_URL etc.)

Writes [{"user": name, "conversation": id, "sessionid": key}, ...]. Sessions are made the way
django.contrib.auth.login() makes them (user id, backend, password hash), which is what the
websocket's AuthMiddlewareStack reads from the `sessionid` cookie.
"""

from __future__ import annotations

import json
import os
import sys


def main(users: int, out: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guyue.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from chat import services
    from personas.models import Persona

    persona = Persona.objects.get(slug="li-bai")
    User = get_user_model()
    backend = settings.AUTHENTICATION_BACKENDS[0]
    rows = []
    for i in range(users):
        user = User(username=f"bench{i:04d}", display_name=f"压测{i}")
        user.set_unusable_password()  # no login form in the way: the session is made directly
        user.save()
        conversation = services.conversation_start(owner=user, persona=persona)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = backend
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        rows.append({"user": user.username, "conversation": conversation.pk, "sessionid": session.session_key})
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(rows, fh)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
