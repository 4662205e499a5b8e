from django.urls import path

from accounts import views

urlpatterns = [
    path("me", views.me),
    path("sync-user", views.sync_user),
    path("api-keys", views.api_key_list),
    path("api-keys/<int:key_id>", views.api_key_detail),
]
