"""What the web process shows an operator: ``GET /metrics`` for Prometheus, and the middleware
that counts and times every request by its route template and binds the request's log context.

``/metrics`` answers only ``Authorization: Bearer <METRICS_TOKEN>`` (401 without it) and is off
(404) while ``METRICS_TOKEN`` is empty; the public never needs it, a scraper does.
"""

import time

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.decorators import sync_and_async_middleware

from hydrilla import metrics

UNMATCHED_ROUTE = "<unmatched>"
# Any other method a client invents is counted as "other": label values stay bounded.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def metrics_view(request):
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    if not metrics.authorised(request.headers.get("Authorization"), token):
        response = JsonResponse(
            {"error": "Authentication credentials were not provided."}, status=401
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from jobs.metrics import QueueCollector  # the job tables, read once per scrape

    body, content_type = metrics.exposition(QueueCollector())
    return HttpResponse(body, content_type=content_type)


def route_of(request) -> str:
    """The URL pattern that answered the request ("/api/3d/job/<str:uuid>"), never its path: a
    bounded label."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None else UNMATCHED_ROUTE


def _count(request, response, began: float) -> None:
    route = route_of(request)
    method = request.method if request.method in METHODS else "other"
    metrics.HTTP_REQUESTS.labels(route=route, method=method, status=response.status_code).inc()
    metrics.HTTP_REQUEST_SECONDS.labels(route=route, method=method).observe(
        time.perf_counter() - began
    )


@sync_and_async_middleware
def count_requests(get_response):
    """Count and time every request Django answers (first in MIDDLEWARE: refusals by the other
    middleware count too). Requests the ASGI server refuses before Django sees them (an oversized
    or late body, hydrilla/asgi.py) are the server's access log's."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            began = time.perf_counter()
            response = await get_response(request)
            _count(request, response, began)
            return response

    else:

        def middleware(request):
            began = time.perf_counter()
            response = get_response(request)
            _count(request, response, began)
            return response

    return middleware
