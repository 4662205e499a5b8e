"""The service's URLs plus ``/bench/bare``: a DRF view with no query and no authentication that
returns a body the size of a status poll's, the yardstick the load benchmark divides by."""

from django.urls import path
from rest_framework.decorators import api_view, authentication_classes
from rest_framework.response import Response

from hydrilla.urls import urlpatterns as service_urlpatterns

STATUS_SIZED_BODY = {
    "job_id": "6f1c2d9e-3b0a-4c55-9a7e-2f1d0c9b8a77",
    "user_id": "user_2abcdefghijklmnopqrstuvwxyz",
    "status": "pending",
    "progress": 0,
    "message": "Queued",
    "created_at": 1764619200,
    "updated_at": 1764619200,
    "queue": {
        "position": 4,
        "jobs_ahead": 4,
        "estimated_wait_seconds": 520,
        "estimated_total_seconds": 650,
        "queue_length": 12,
        "currently_processing": True,
    },
}


@api_view(["GET"])
@authentication_classes([])
def bare(request):
    return Response(STATUS_SIZED_BODY)


urlpatterns = [path("bench/bare", bare), *service_urlpatterns]
