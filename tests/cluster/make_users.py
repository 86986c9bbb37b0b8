"""Run in a subprocess against the cluster's database (DATABASE_URL): users with a password and one
conversation each with 李白. Prints [{"username", "password", "conversation"}, ...] as JSON.

    python tests/cluster/make_users.py NAME [NAME ...]
"""

import json
import os
import secrets
import sys

import django

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guyue.settings")
django.setup()

from accounts.models import User  # noqa: E402
from chat import services  # noqa: E402
from personas.models import Persona  # noqa: E402

persona = Persona.objects.get(slug="li-bai")
rows = []
for name in sys.argv[1:]:
    password = secrets.token_urlsafe(12)
    user = User.objects.create_user(username=name, password=password)
    conversation = services.conversation_start(owner=user, persona=persona)
    rows.append({"username": name, "password": password, "conversation": conversation.pk})
print(json.dumps(rows))
