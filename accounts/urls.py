from django.urls import path

from accounts import views

urlpatterns = [
    path("me", views.me),
    path("sync-user", views.sync_user),
]
