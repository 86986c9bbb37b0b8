from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("chat/", include("chat.urls")),
    path("", include("personas.urls")),
]

if settings.SERVE_MEDIA:
    # Portraits are public; anything private gets its own owner-checked view.
    urlpatterns += [re_path(r"^media/(?P<path>portraits/.*)$", serve, {"document_root": settings.MEDIA_ROOT})]
