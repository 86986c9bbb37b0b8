"""Showing 李白 a picture in a real Chromium (docs/vision.md): a file that is no picture is refused with
the text kept, a landscape is attached, sent, reaches the scripted upstream as an image part for the
vision model, and stays in the user's bubble after a reload. Without a vision model the page says so."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image, ImageDraw

from tests.e2e.journeys import sign_up, start_chat, whole_reply

COMPLETIONS = "/api/v1/chat/completions"
VISION_MODEL = "qwen/qwen2.5-vl-72b-instruct"


def landscape() -> bytes:
    """Mountains, a river and a moon: something worth a thumbnail."""
    image = Image.new("RGB", (640, 400), (244, 238, 224))
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, 330), (150, 120), (290, 300), (420, 90), (640, 320), (640, 400), (0, 400)], fill=(70, 96, 86))
    draw.polygon([(0, 360), (200, 250), (380, 350), (640, 270), (640, 400), (0, 400)], fill=(40, 60, 58))
    draw.ellipse((500, 40, 560, 100), fill=(200, 70, 50))
    draw.line([(0, 385), (640, 375)], fill=(150, 180, 190), width=6)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def set_vision_model(app, model: str) -> None:
    app.manage_output("shell", "-c", "from accounts.models import ApiCredential; "
                      f"ApiCredential.objects.filter(owner=None).update(vision_model={model!r})")


def test_a_picture_reaches_the_vision_model_and_stays_in_the_bubble(app, upstream, page, shot):
    upstream.route("POST", COMPLETIONS, whole_reply("青山横北郭，白水绕东城。此画有我当年送友人时所见之景。"))
    set_vision_model(app, VISION_MODEL)
    sign_up(page, app.url, "viewer")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    assert page.locator("#chat-attach-button").is_enabled()

    # Not a picture: a clear message, nothing attached, the typed words still there.
    page.fill("#chat-input", "太白兄，请看这幅山水")
    page.set_input_files("#chat-image", files=[{"name": "fake.png", "mimeType": "image/png",
                                                "buffer": b"\x89PNG\r\n\x1a\n this is not a picture"}])
    page.wait_for_function("() => document.getElementById('chat-notice').textContent.includes('不是可以识别的图片')")
    assert page.locator("#chat-attach-preview").is_hidden()
    assert page.input_value("#chat-input") == "太白兄，请看这幅山水"
    shot("vision-refused")

    page.set_input_files("#chat-image", files=[{"name": "shan-shui.png", "mimeType": "image/png", "buffer": landscape()}])
    page.wait_for_selector("#chat-attach-preview:not([hidden]) img[src*='/attachments/']")
    page.wait_for_function("() => document.querySelector('#chat-attach-preview img').naturalWidth > 0")
    assert page.locator("#chat-notice").text_content() == ""
    shot("vision-attached")

    page.locator("#chat-send").click()
    page.wait_for_function("() => { const all = document.querySelectorAll('article.message[data-id]');"
                           " const last = all[all.length - 1];"
                           " return last?.dataset.role === 'assistant' && last.textContent.includes('白水绕东城'); }")
    user_image = page.locator("article.message-user .message-image img")
    user_image.wait_for()
    assert page.locator("#chat-attach-preview").is_hidden() and page.input_value("#chat-input") == ""
    shot("vision-answered")

    body = upstream.requests[-1].json()
    assert body["model"] == VISION_MODEL
    last = body["messages"][-1]
    assert last["role"] == "user" and isinstance(last["content"], list)
    text, picture = last["content"]
    assert text["type"] == "text" and "太白兄，请看这幅山水" in text["text"]
    assert picture["type"] == "image_url"
    prefix = "data:image/jpeg;base64,"
    assert picture["image_url"]["url"].startswith(prefix)
    sent = Image.open(io.BytesIO(base64.b64decode(picture["image_url"]["url"][len(prefix):])))
    assert (sent.format, sent.size) == ("JPEG", (640, 400))
    assert "image_url" not in json.dumps(body["messages"][:-1])

    # On reload the thumbnail is still there, served to its owner.
    page.reload()
    page.wait_for_selector("#chat-send:not([disabled])")
    page.wait_for_function("() => document.querySelector('article.message-user .message-image img')?.naturalWidth > 0")
    shot("vision-reloaded")
    src = page.locator("article.message-user .message-image img").get_attribute("src")

    # Another account gets a 404 for the same address.
    other = page.context.browser.new_context()
    stranger = other.new_page()
    sign_up(stranger, app.url, "stranger")
    assert stranger.request.get(app.url + src).status == 404
    other.close()


def test_without_a_vision_model_the_attach_button_says_so(app, page, shot):
    sign_up(page, app.url, "novision")
    start_chat(page, app.url)
    page.wait_for_selector("#chat-send:not([disabled])")
    button = page.locator("#chat-attach button")
    assert button.is_disabled() and button.text_content() == "附图"
    assert page.locator("#chat-attach-note").text_content() == "当前密钥不支持识图"
    assert page.locator("#chat-image").count() == 0
    shot("vision-unavailable")
