"""ASGI entry point: plain HTTP through Django, websockets through Channels."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guyue.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: the routing pulls in models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.guard import learned  # noqa: E402
from chat.guard.decode import warm as warm_guard  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from guyue.lib.origins import SameOriginValidator  # noqa: E402

# The event loop streams every reply while one sync thread runs the database work and renders bubbles: a
# 1 ms GIL switch interval (Python's default is 5 ms) keeps that thread from holding up a reply's request
# or frames for long (docs/BENCHMARKS.md, Streaming, 2026-12-04).
sys.setswitchinterval(0.001)
warm_guard()  # the input guard's pinyin tables, before the first message rather than during it
learned.model()  # and its classifier's weights (about 0.1 s to read)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
