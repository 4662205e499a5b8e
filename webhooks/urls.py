"""The webhooks' routes, under /api/3d/ (hydrilla.urls)."""

from django.urls import path

from webhooks import views

urlpatterns = [
    path("webhooks", views.endpoints),
    path("webhooks/secret", views.secret),
    path("webhooks/<str:endpoint_id>", views.endpoint),
    path("webhooks/<str:endpoint_id>/deliveries", views.deliveries),
    path("webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/resend", views.resend),
]
