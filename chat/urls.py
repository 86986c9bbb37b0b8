from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("start/<slug:slug>/", views.start, name="start"),
    path("<int:pk>/", views.page, name="page"),
    path("<int:pk>/messages/", views.message_list, name="messages"),
    path("<int:pk>/switch/<int:message_id>/", views.switch, name="switch"),
    path("<int:pk>/rename/", views.rename, name="rename"),
    path("<int:pk>/archive/", views.archive, name="archive"),
    path("<int:pk>/delete/", views.delete, name="delete"),
    path("<int:pk>/settings/", views.update_settings, name="settings"),
    path("<int:pk>/export.md", views.export_markdown, name="export_md"),
    path("<int:pk>/export.jsonl", views.export_jsonl, name="export_jsonl"),
]
