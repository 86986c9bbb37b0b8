from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("settings/", views.settings_page, name="settings"),
    path("settings/keys/add/", views.credential_add, name="credential_add"),
    path("settings/keys/<int:pk>/replace/", views.credential_replace, name="credential_replace"),
    path("settings/keys/<int:pk>/edit/", views.credential_edit, name="credential_edit"),
    path("settings/keys/<int:pk>/check/", views.credential_revalidate, name="credential_revalidate"),
    path("settings/keys/<int:pk>/delete/", views.credential_delete, name="credential_delete"),
]
