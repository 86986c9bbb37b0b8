from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("start/<slug:slug>/", views.start, name="start"),
]
