from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hydrilla.monitoring import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/3d/", include("jobs.api.job_api.urls")),
    path("api/3d/", include("accounts.urls")),
    path("", include("jobs.api.pipeline_api.urls")),
    path("api/3d/", include("webhooks.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", metrics_view, name="metrics"),
]

if settings.SERVE_MEDIA:
    # Without S3 the service serves its own files, so every URL it returns can be fetched.
    urlpatterns.append(
        re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})
    )

handler400 = "hydrilla.errors.json_bad_request"
handler403 = "hydrilla.errors.json_permission_denied"
handler404 = "hydrilla.errors.json_not_found"
handler500 = "hydrilla.errors.json_server_error"
