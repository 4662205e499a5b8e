from django.urls import path

from jobs.views import generation_api

urlpatterns = [
    path("text-to-image", generation_api.text_to_image),
    path("text-to-3d", generation_api.text_to_3d),
    path("image-to-3d", generation_api.image_to_3d),
    path("status/<str:job_id>", generation_api.status),
    path("stream/<str:job_id>", generation_api.stream),
    path("cancel/<str:job_id>", generation_api.cancel),
    path("queue/info", generation_api.queue_info),
    path("health", generation_api.health_check),
    path("health/ready", generation_api.readiness),
]
