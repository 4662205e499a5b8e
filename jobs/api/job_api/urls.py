from django.urls import path

from jobs.api.job_api import views as job_api

urlpatterns = [
    path("generate", job_api.generate),
    path("status/<str:job_id>", job_api.status),
    path("history", job_api.history),
    path("jobs/<str:job_id>/name", job_api.rename),
    path("jobs/<str:job_id>", job_api.delete),
    path("jobs/<str:job_id>/download", job_api.Download.as_view(), name="job-download"),
    path("jobs/<str:job_id>/remesh", job_api.remesh),
    path("register-job", job_api.register_job),
    path("upload-image", job_api.upload_image),
    path("upload-mesh", job_api.upload_mesh),
    path("queue/info", job_api.queue_info),
]
