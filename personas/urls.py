from django.urls import path

from personas import views

app_name = "personas"

urlpatterns = [
    path("", views.gallery, name="gallery"),
    path("figures/<slug:slug>/", views.profile, name="profile"),
]
