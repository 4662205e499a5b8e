"""The service as one ASGI application.

Views that wait (``/stream``, the ``/text-to-image`` wait) are coroutines and run on Django's ASGI
handler: a waiting request is a suspended coroutine, holding no thread and no database connection.
Every other view is synchronous and runs on Django's WSGI handler in a pool of ``WEB_THREADS``
threads: Django's ASGI handler would run each of them through a thread hop per middleware and a new
thread per request, which measured at less than half the throughput (benchmarks/web_load.py).

A request body is read in full here, within ``REQUEST_BODY_TIMEOUT_SECONDS`` and no larger than
``REQUEST_BODY_MAX_BYTES``, before any thread is given to the request: a client that uploads slowly
holds a coroutine, not one of the threads.
"""

import asyncio
import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")

from a2wsgi import WSGIMiddleware
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.urls import Resolver404, resolve

django_asgi = get_asgi_application()

from hydrilla import request_id  # noqa: E402
from hydrilla.middleware import refused_body  # noqa: E402
from hydrilla.wsgi import application as django_wsgi  # noqa: E402

threaded_wsgi = WSGIMiddleware(django_wsgi, workers=settings.WEB_THREADS)


def waits(path: str) -> bool:
    """Whether the view at ``path`` is a coroutine (a view that waits)."""
    try:
        return iscoroutinefunction(resolve(path).func)
    except Resolver404:
        return False


async def serve(scope, receive, send):
    if scope["type"] != "http":
        return await django_asgi(scope, receive, send)
    receive = await _read_body(scope, receive, send)
    if receive is None:
        return
    if waits(scope["path"]):
        await django_asgi(scope, receive, send)
    else:
        await threaded_wsgi(scope, receive, send)


# Every answer carries its X-Request-ID, those refused here before Django sees the request too.
application = request_id.asgi_application(serve)


async def _read_body(scope, receive, send):
    """The request's ``receive`` with its body read in advance, or None once refused."""
    headers = dict(scope["headers"])
    declared = headers.get(b"content-length")
    refused = refused_body(declared.decode("latin-1") if declared is not None else None)
    if refused:
        await _json_error(send, *refused)
        return None
    chunks, size = [], 0
    try:
        async with asyncio.timeout(settings.REQUEST_BODY_TIMEOUT_SECONDS):
            while True:
                event = await receive()
                if event["type"] == "http.disconnect":
                    return None
                chunks.append(event.get("body", b""))
                size += len(chunks[-1])
                refused = refused_body(str(size))  # a chunked body declares no length
                if refused:
                    await _json_error(send, *refused)
                    return None
                if not event.get("more_body", False):
                    break
    except TimeoutError:
        await _json_error(send, 408, "Request body not received in time")
        return None
    body = b"".join(chunks)
    delivered = False

    async def replay():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # then only the disconnect

    return replay


async def _json_error(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
