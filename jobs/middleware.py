from django.conf import settings
from django.http import JsonResponse


class RequestBodyLimitMiddleware:
    """Refuse an oversized body from its Content-Length, before a byte of it is read or stored."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": "Invalid Content-Length"}, status=400)
        if length > settings.REQUEST_BODY_MAX_BYTES and not request.path.startswith("/admin/"):
            limit_mb = settings.UPLOAD_MAX_BYTES // (1024 * 1024)
            return JsonResponse({"error": f"Request body too large (maximum {limit_mb} MB)"}, status=413)
        return self.get_response(request)
