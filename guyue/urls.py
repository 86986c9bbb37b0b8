from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from guyue import media

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("chat/", include("chat.urls")),
    path("", include("personas.urls")),
]

if settings.SERVE_MEDIA:
    # Portraits are public; generated images are served only by chat:image_file, which checks the owner.
    urlpatterns += [re_path(r"^media/portraits/(?P<path>.+)$", media.portrait, name="portrait")]
