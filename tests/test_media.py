"""The public media route serves portraits and nothing else: every spelling of a way out of
media/portraits/ is a 404, whatever it would have reached."""

from __future__ import annotations

import os

import pytest

SECRET = b"\x89PNG another user's generated image"
PORTRAIT = b"\x89PNG li bai"

# Percent-decoded before routing, so each of these reaches the view as a path that climbs out.
TRAVERSALS = [
    "/media/portraits/../images/7/secret.png",
    "/media/portraits/%2e%2e/images/7/secret.png",
    "/media/portraits/%2E%2E/images/7/secret.png",
    "/media/portraits/.%2e/images/7/secret.png",
    "/media/portraits/..%2fimages%2f7%2fsecret.png",
    "/media/portraits/..%5cimages%5c7%5csecret.png",
    "/media/portraits/..\\images\\7\\secret.png",
    "/media/portraits/./../images/7/secret.png",
    "/media/portraits/sub/../../images/7/secret.png",
    "/media/portraits//images/7/secret.png",
    "/media/portraits/%2fimages/7/secret.png",
    "/media/portraits/leak.png",  # a symlink to the secret
    "/media/portraits/linked/7/secret.png",  # a symlinked directory
    "/media/images/7/secret.png",
]


@pytest.fixture
def media(settings):
    root = settings.MEDIA_ROOT
    (root / "images" / "7").mkdir(parents=True)
    (root / "images" / "7" / "secret.png").write_bytes(SECRET)
    (root / "portraits" / "sub").mkdir(parents=True)
    (root / "portraits" / "li-bai.png").write_bytes(PORTRAIT)
    os.symlink(root / "images" / "7" / "secret.png", root / "portraits" / "leak.png")
    os.symlink(root / "images", root / "portraits" / "linked")
    return root


def test_it_serves_a_portrait(client, media):
    response = client.get("/media/portraits/li-bai.png")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PORTRAIT
    assert response["Content-Type"] == "image/png"


@pytest.mark.parametrize("path", TRAVERSALS)
def test_it_refuses_every_way_out_of_the_portraits_directory(client, media, path):
    response = client.get(path)
    assert response.status_code == 404
    assert SECRET not in b"".join(getattr(response, "streaming_content", [response.content]))


def test_it_refuses_an_absolute_path(client, media):
    response = client.get("/media/portraits/" + str(media / "images" / "7" / "secret.png"))
    assert response.status_code == 404


def test_it_refuses_a_directory(client, media):
    assert client.get("/media/portraits/sub/").status_code == 404
    assert client.get("/media/portraits/sub").status_code == 404
