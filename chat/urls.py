from django.urls import path

from chat import memory_views, search_views, views
from chat.media import views as media
from chat.sharing import views as sharing
from chat.speech import views as speech
from chat.speech_input import views as speech_input
from chat.vision import views as vision

app_name = "chat"

urlpatterns = [
    path("start/<slug:slug>/", views.start, name="start"),
    path("<int:pk>/", views.page, name="page"),
    path("<int:pk>/messages/", views.message_list, name="messages"),
    path("<int:pk>/messages/<int:message_id>/", views.bubble, name="bubble"),
    path("<int:pk>/switch/<int:message_id>/", views.switch, name="switch"),
    path("<int:pk>/open/<int:message_id>/", search_views.open_message, name="open_message"),
    path("search/", search_views.search_page, name="search"),
    path("dictation/", speech_input.transcribe, name="dictation"),
    path("<int:pk>/rename/", views.rename, name="rename"),
    path("<int:pk>/archive/", views.archive, name="archive"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/settings/", views.update_settings, name="settings"),
    path("<int:pk>/export.md", views.export_markdown, name="export_md"),
    path("<int:pk>/export.jsonl", views.export_jsonl, name="export_jsonl"),
    path("<int:pk>/scroll.png", sharing.scroll_png, name="scroll_png"),
    path("<int:pk>/shares/", sharing.create, name="share_create"),
    path("<int:pk>/shares/<int:link_id>/revoke/", sharing.revoke, name="share_revoke"),
    path("shared/<str:token>/", sharing.shared, name="shared"),
    path("<int:pk>/remember/<int:message_id>/", memory_views.remember, name="remember"),
    path("<int:pk>/callback/", views.callback, name="callback"),
    path("<int:pk>/auto-read/", speech.auto_read, name="auto_read"),
    path("m/<int:message_id>/speech/<int:index>.mp3", speech.sentence, name="speech"),
    path("preferences/<slug:slug>/", memory_views.preferences, name="preferences"),
    path("persona/", memory_views.user_persona, name="user_persona"),
    path("persona/<slug:slug>/", memory_views.user_persona, name="user_persona_for"),
    path("memories/", memory_views.index, name="memories"),
    path("memories/add/", memory_views.add, name="memory_add"),
    path("memories/<int:pk>/edit/", memory_views.edit, name="memory_edit"),
    path("memories/<int:pk>/pin/", memory_views.pin, name="memory_pin"),
    path("memories/<int:pk>/delete/", memory_views.delete, name="memory_delete"),
    path("memories/export.json", memory_views.export, name="memory_export"),
    path("memories/wipe/", memory_views.wipe, name="memory_wipe"),
    path("memories/auto/", memory_views.auto, name="memory_auto"),
    path("<int:pk>/media/", media.gallery, name="media_gallery"),
    path("<int:pk>/media/panel/", media.panel, name="media_panel"),
    path("<int:pk>/media/new/", media.create, name="media_create"),
    path("<int:pk>/media/video/", media.video_form, name="media_video_form"),
    path("<int:pk>/media/video/new/", media.video, name="media_video"),
    path("<int:pk>/media/music/<int:message_id>/", media.music, name="media_music"),
    path("<int:pk>/media/<int:job_id>/", media.status, name="media_status"),
    path("<int:pk>/media/<int:job_id>/retry/", media.retry, name="media_retry"),
    path("<int:pk>/media/<int:job_id>/edit/", media.edit, name="media_edit"),
    path("<int:pk>/media/<int:job_id>/action/", media.midjourney_action, name="media_action"),
    path("<int:pk>/media/<int:job_id>/file/", media.media_file, name="media_file"),
    path("<int:pk>/attachments/", vision.upload, name="attachment_create"),
    path("<int:pk>/attachments/<int:image_id>/", vision.attachment_file, name="attachment_file"),
]
