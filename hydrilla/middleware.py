from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import JsonResponse
from django.utils.decorators import sync_and_async_middleware


def refused_body(content_length: str | None) -> tuple[int, str] | None:
    """(status, message) when a request's declared length is refused; None when it may be read."""
    try:
        length = int(content_length or 0)
    except ValueError:
        return 400, "Invalid Content-Length"
    if length < 0:
        return 400, "Invalid Content-Length"
    if length > settings.REQUEST_BODY_MAX_BYTES:
        return (
            413,
            f"Request body too large (maximum {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MB)",
        )
    return None


@sync_and_async_middleware
def request_body_limit(get_response):
    """Refuse an oversized body from its Content-Length, on every path, before a byte of it is read
    or stored. (The ASGI server refuses it earlier still, see hydrilla/asgi.py; this covers any
    other way in.)"""

    def refusal(request):
        refused = refused_body(request.META.get("CONTENT_LENGTH"))
        return JsonResponse({"error": refused[1]}, status=refused[0]) if refused else None

    if iscoroutinefunction(get_response):

        async def middleware(request):
            return refusal(request) or await get_response(request)

    else:

        def middleware(request):
            return refusal(request) or get_response(request)

    return middleware
