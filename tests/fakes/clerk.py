"""A fake of Clerk's Backend API: a real HTTP server on 127.0.0.1, on a port the OS picks.

It serves what Hydrilla asks Clerk for, in Clerk's own JSON shapes:

- ``GET /v1/jwks``: the instance's signing keys, only with ``Authorization: Bearer <secret key>``;
- ``GET /v1/users/{id}``: a user (``email_addresses``, ``primary_email_address_id``,
  ``first_name``, ``last_name``, ``image_url``, ``created_at`` in milliseconds), same auth;
- ``GET /.well-known/jwks.json``: the same keys without auth, as a Frontend API serves them
  (for ``CLERK_JWKS_URL``).

Every request is counted by path (``requests_to``) and kept (``requests``), so tests can assert what
was cached. ``fail_with(500)`` makes every answer an error; ``go_down()`` closes the listening
socket
(connection refused) and ``come_back()`` listens again on the same port.
"""

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_KEY = "sk_test_hydrilla_fake_clerk_secret"
PUBLIC_JWKS_PATH = "/.well-known/jwks.json"
_USER_PATH = re.compile(r"^/v1/users/(?P<user_id>[^/]+)$")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    authorization: str | None


class FakeClerk:
    def __init__(self, secret_key: str = SECRET_KEY):
        self.secret_key = secret_key
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self.reset()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> "FakeClerk":
        server = ThreadingHTTPServer(("127.0.0.1", self.port or 0), _handler_for(self))
        server.daemon_threads = True
        self._server, self.port = server, server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-clerk",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def go_down(self) -> None:
        """Stop listening: requests to ``url`` now fail with connection refused."""
        self.stop()

    def come_back(self) -> None:
        if self._server is None:
            self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_jwks_url(self) -> str:
        return self.url + PUBLIC_JWKS_PATH

    # --- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.keys: list[dict] = []
            self.users: dict[str, dict] = {}
            self.failure_status: int | None = None
            self.requests: list[Request] = []
            self._counts: Counter = Counter()

    def serve_keys(self, *jwks: dict) -> None:
        """The keys ``/v1/jwks`` answers with from now on (replacing earlier ones)."""
        with self._lock:
            self.keys = [dict(jwk) for jwk in jwks]

    def add_user(
        self,
        user_id: str,
        *,
        emails: tuple[str, ...] = (),
        primary: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        image_url: str = "https://img.clerk.com/default.png",
        created_at_ms: int = 1704067200000,
    ) -> dict:
        """A Clerk user; ``primary`` (one of ``emails``) defaults to the first address."""
        addresses = [
            {
                "id": f"idn_{user_id}_{index}",
                "object": "email_address",
                "email_address": email,
                "verification": {"status": "verified", "strategy": "email_code"},
                "linked_to": [],
            }
            for index, email in enumerate(emails)
        ]
        primary_id = None
        if addresses:
            primary_id = addresses[emails.index(primary) if primary else 0]["id"]
        user = {
            "id": user_id,
            "object": "user",
            "username": None,
            "first_name": first_name,
            "last_name": last_name,
            "image_url": image_url,
            "has_image": bool(image_url),
            "primary_email_address_id": primary_id,
            "primary_phone_number_id": None,
            "email_addresses": addresses,
            "phone_numbers": [],
            "public_metadata": {},
            "private_metadata": {},
            "unsafe_metadata": {},
            "banned": False,
            "locked": False,
            "last_sign_in_at": created_at_ms + 1000,
            "created_at": created_at_ms,
            "updated_at": created_at_ms + 1000,
        }
        with self._lock:
            self.users[user_id] = user
        return user

    def update_user(self, user_id: str, **fields) -> None:
        with self._lock:
            self.users[user_id].update(fields)

    def fail_with(self, status: int | None = 500) -> None:
        """Answer every request with this status (None: answer normally again)."""
        with self._lock:
            self.failure_status = status

    def requests_to(self, path: str) -> int:
        with self._lock:
            return self._counts[path]

    def user_path(self, user_id: str) -> str:
        return f"/v1/users/{user_id}"

    # --- serving ----------------------------------------------------------------------------

    def _answer(self, method: str, path: str, authorization: str | None) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(Request(method, path, authorization))
            self._counts[path] += 1
            if self.failure_status is not None:
                return self.failure_status, _errors("internal_error", "Fake Clerk outage")
            if method != "GET":
                return 405, _errors("method_not_allowed", "Only GET is faked")
            if path == PUBLIC_JWKS_PATH:
                return 200, {"keys": list(self.keys)}
            if authorization != f"Bearer {self.secret_key}":
                return 401, _errors("authentication_invalid", "Unauthorized request")
            if path == "/v1/jwks":
                return 200, {"keys": list(self.keys)}
            match = _USER_PATH.match(path)
            if match and match["user_id"] in self.users:
                return 200, json.loads(json.dumps(self.users[match["user_id"]]))
            return 404, _errors("resource_not_found", "not found")


def _errors(code: str, message: str) -> dict:
    return {"errors": [{"code": code, "message": message, "long_message": message}]}


def _handler_for(fake: FakeClerk):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _respond(self):
            path = self.path.split("?", 1)[0]
            status, body = fake._answer(self.command, path, self.headers.get("Authorization"))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _respond

        def log_message(self, format, *args):  # keep test output quiet
            pass

    return Handler
