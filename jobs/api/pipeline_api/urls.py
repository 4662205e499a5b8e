from django.urls import path

from jobs.api.pipeline_api import views as pipeline_api

urlpatterns = [
    path("text-to-image", pipeline_api.text_to_image),
    path("text-to-3d", pipeline_api.text_to_3d),
    path("image-to-3d", pipeline_api.image_to_3d),
    path("status/<str:job_id>", pipeline_api.status),
    path("stream/<str:job_id>", pipeline_api.stream),
    path("cancel/<str:job_id>", pipeline_api.cancel),
    path("queue/info", pipeline_api.queue_info),
    path("health", pipeline_api.health_check),
    path("health/ready", pipeline_api.readiness),
]
