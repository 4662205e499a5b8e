from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hydrilla.monitoring import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/3d/", include("jobs.job_api_urls")),
    path("", include("jobs.pipeline_api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", metrics_view, name="metrics"),
]

if settings.SERVE_MEDIA:
    # Without S3 the service serves its own files, so every URL it returns can be fetched.
    urlpatterns.append(
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})
    )

handler400 = "jobs.errors.json_bad_request"
handler403 = "jobs.errors.json_permission_denied"
handler404 = "jobs.errors.json_not_found"
handler500 = "jobs.errors.json_server_error"
