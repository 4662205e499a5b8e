"""The request id: each request's ``X-Request-ID``, accepted from the client when it is a sane
token or made here, returned on the response, and written in every log line of the work it
causes: the web process's while it handles the request, and each worker stage's of a job the
request created (the job keeps it; ``jobs.services.shared.enqueue`` sends it with each stage's
message, and the stage's task binds it).

It travels in a context variable, which a logging filter (``RequestIdFilter``) copies onto every
record. It imports no app: the ASGI application, the middleware and the workers share it.
"""

import contextlib
import logging
import re
import uuid

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

from hydrilla import log_context

HEADER = "X-Request-ID"
META_KEY = "HTTP_X_REQUEST_ID"
# What a client may send: the ids of common tracers and proxies (UUIDs, hex trace ids, Heroku's
# and nginx's), bounded, and nothing that could forge a log line or a header.
ACCEPTED = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
NONE = "-"  # in the log lines of work that no request caused

# One variable with the other facts a log line is about (hydrilla.log_context: JSON logs' fields).
_current = log_context.request_id


def accepted_or_new(sent: str | None) -> str:
    """The id a client sent, when it is acceptable; a new one otherwise (a request is never
    refused over its id)."""
    if sent is not None and ACCEPTED.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def current() -> str:
    """The id of the request (or job stage) being handled; "" outside any."""
    return _current.get() or ""


@contextlib.contextmanager
def bound(request_id: str | None):
    """Log the work done inside under ``request_id`` (nothing changes for an empty one)."""
    token = _current.set(request_id or None)
    try:
        yield
    finally:
        _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every record ``request_id`` (``-`` outside a request), for the log format."""

    def filter(self, record):
        record.request_id = _current.get() or NONE
        return True


@sync_and_async_middleware
def request_id_middleware(get_response):
    """Bind the request's id (the client's, or a new one) while it is handled, and return it in
    the ``X-Request-ID`` header of the response."""

    def begun(request) -> str:
        request_id = accepted_or_new(request.META.get(META_KEY))
        request.META[META_KEY] = request_id
        return request_id

    if iscoroutinefunction(get_response):

        async def middleware(request):
            request_id = begun(request)
            with bound(request_id):
                response = await get_response(request)
            response[HEADER] = request_id
            return response

    else:

        def middleware(request):
            request_id = begun(request)
            with bound(request_id):
                response = get_response(request)
            response[HEADER] = request_id
            return response

    return middleware


def asgi_application(application):
    """``application`` with every response carrying the request's id, those it answers without
    Django too (a body too large, too slow), and Django told the id it is to use."""

    async def with_request_id(scope, receive, send):
        if scope["type"] != "http":
            return await application(scope, receive, send)
        header = HEADER.lower().encode()
        sent = next((value for name, value in scope["headers"] if name == header), None)
        request_id = accepted_or_new(sent.decode("latin-1") if sent is not None else None)
        headers = [(name, value) for name, value in scope["headers"] if name != header]
        scope = {**scope, "headers": [*headers, (header, request_id.encode())]}

        async def send_with_id(event):
            if event["type"] == "http.response.start":
                kept = [(n, v) for n, v in event.get("headers", []) if n.lower() != header]
                event = {**event, "headers": [*kept, (header, request_id.encode())]}
            await send(event)

        with bound(request_id):
            await application(scope, receive, send_with_id)

    return with_request_id
