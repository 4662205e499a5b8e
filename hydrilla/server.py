"""The HTTP server's worker: uvicorn under gunicorn, with the connection rules a public service
needs.

uvicorn keeps idle connections for ``KEEP_ALIVE_SECONDS`` after a response but sets no deadline for
a request's head and no limit on its size: a client that sends its headers a byte at a time, or
without end, would keep its connection (and memory) for as long as it likes. This protocol adds
both, answers them, and any malformed request, with the spec's JSON error instead of plain text.
"""

import json
import logging
import os
from http import HTTPStatus

from django.conf import settings
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from hydrilla import request_id

ACCESS_LOG_FORMAT = "%(message)s [%(request_id)s]"

# gunicorn loads this worker class before the application, whose module says the same.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.head_timeout = settings.REQUEST_HEADER_TIMEOUT_SECONDS
        self.head_limit = settings.REQUEST_HEADER_MAX_BYTES
        self.reading_head = True
        self.head_bytes = 0  # as received, for a head that has not ended yet
        self.head_size = 0  # as parsed: the request line and the headers
        self.request_line_done = False
        self.head_timer = None
        self.refusal: tuple[HTTPStatus, str] | None = None

    def connection_made(self, transport):
        super().connection_made(transport)
        # A connection that never sends a request is an idle keep-alive connection from the start.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc):
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading_head:
            self.head_bytes += len(data)
            if self.head_timer is None:
                self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)
        super().data_received(data)
        if (
            self.reading_head
            and self.head_bytes > self.head_limit
            and not self.transport.is_closing()
        ):
            self.send_error(*self._too_large())

    def _too_large(self) -> tuple[HTTPStatus, str]:
        if self.request_line_done:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Request headers too large"
        return HTTPStatus.REQUEST_URI_TOO_LONG, "Request line too long"

    def _count_head(self, size: int) -> None:
        """Raising from a parser callback stops the parse; send_400_response answers the refusal."""
        self.head_size += size
        if self.head_size > self.head_limit:
            self.refusal = self._too_large()
            raise ValueError(self.refusal[1])

    # httptools callbacks: where a request's head ends and the next one may begin.
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.request_line_done = False
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.request_line_done = True
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self.head_bytes = 0
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True

    def send_400_response(self, msg: str) -> None:
        self.send_error(*(self.refusal or (HTTPStatus.BAD_REQUEST, "Invalid HTTP request")))

    def send_error(self, status: HTTPStatus, message: str) -> None:
        """Answer a request that never reached the application, and close the connection."""
        self._stop_head_timer()
        body = json.dumps({"error": message}).encode()
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.reading_head and not self.transport.is_closing():
            self.send_error(HTTPStatus.REQUEST_TIMEOUT, "Request headers not received in time")

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None


class Worker(UvicornWorker):
    """gunicorn's worker class for the service (``-k hydrilla.server.Worker``)."""

    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": GuardedHttpProtocol,
        "lifespan": "off",  # Django has no lifespan handlers
        # The client address is the socket's; X-Forwarded-For is read by DRF, from trusted proxies
        # only (TRUSTED_PROXY_COUNT), so no local process can claim another address.
        "proxy_headers": False,
        # Here rather than gunicorn's --keep-alive: the setting has one reader.
        "timeout_keep_alive": settings.KEEP_ALIVE_SECONDS,
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each access-log line ends with the request's id (hydrilla.request_id: the ASGI
        # application binds it before uvicorn logs the answer).
        for handler in logging.getLogger("uvicorn.access").handlers:
            handler.addFilter(request_id.RequestIdFilter())
            handler.setFormatter(logging.Formatter(ACCESS_LOG_FORMAT))
