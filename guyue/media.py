"""The one public media view: figure portraits, and nothing else under MEDIA_ROOT."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils.functional import empty
from django.views.static import serve

PORTRAITS = "portraits"


def portrait_path(media_root: Path, path: str) -> Path | None:
    """The file `path` names inside media_root/portraits, or None if it names anything else.

    `path` is already percent-decoded. Every spelling that could climb out (`..`, `.`, empty
    segments from `//` or a leading `/`, backslashes, NUL) is refused before touching the disk,
    and the real path, symlinks followed, must still be a file under the portraits directory.
    """
    if not path or "\\" in path or "\x00" in path:
        return None
    if any(part in ("", ".", "..") for part in path.split("/")):
        return None
    root = (media_root / PORTRAITS).resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


def portrait(request: HttpRequest, path: str) -> HttpResponse:
    if not isinstance(default_storage._wrapped if default_storage._wrapped is not empty else _setup(), FileSystemStorage):
        return _stored_portrait(path)
    # MEDIA_ROOT is read per request, not frozen into the URLconf, so tests can point it elsewhere.
    media_root = Path(settings.MEDIA_ROOT)
    target = portrait_path(media_root, path)
    if target is None:
        raise Http404
    root = (media_root / PORTRAITS).resolve()
    return serve(request, target.relative_to(root).as_posix(), document_root=str(root))


def _setup():
    default_storage._setup()
    return default_storage._wrapped


def _stored_portrait(path: str) -> HttpResponse:
    """A shared store (docs/storage.md): the same refusals, then the object read through the storage API."""
    if not path or "\\" in path or "\x00" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise Http404
    name = f"{PORTRAITS}/{path}"
    if not default_storage.exists(name):
        raise Http404
    response = FileResponse(default_storage.open(name, "rb"), content_type=mimetypes.guess_type(path)[0]
                            or "application/octet-stream")  # fmt: skip
    response["Cache-Control"] = "public, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response
