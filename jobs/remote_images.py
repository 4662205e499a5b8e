"""Fetching user-supplied image URLs, and sending webhooks to user-supplied receivers (``send``),
without letting them reach inside our network.

Every address a host name resolves to must be public; the connection then goes to the checked
address itself (so a second DNS answer cannot swap in a private one), an image's redirects are
followed by hand and checked again (a webhook's are not followed), and the body is counted while it
streams (and must decode as an image).
The whole download (connections, TLS handshakes, headers, body, every redirect) has one wall-clock
deadline: when it passes, every connection made for it is shut down, whatever the sender's pace.

Both decisions can be injected (``resolver``, ``is_allowed``): tests map names to addresses of
their choosing and allow one loopback test server, and nothing else is ever contacted.
"""

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3

from jobs import uploads
from jobs.error_codes import ErrorCode

MAX_REDIRECTS = 3
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
# However slowly a server trickles its bytes, the whole download ends within this.
TOTAL_TIMEOUT_SECONDS = 60
CHUNK_BYTES = 64 * 1024
REDIRECT_STATUSES = (301, 302, 303, 307, 308)

# Addresses no fetch may reach, whatever the running Python's ``is_global`` says (its tables
# change between releases): IANA special-purpose ranges and cloud metadata services.
_FORBIDDEN_V4 = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "168.63.129.16/32",  # Azure's host endpoint (metadata, DNS, health), public-looking
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")
_FORBIDDEN_V6 = tuple(
    ipaddress.ip_network(network)
    for network in ("2001::/23", "2001:db8::/32", "3fff::/20")  # IETF protocols, Teredo, docs
)
# IPv6 forms that reach an IPv4 host: judged by the host they reach.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


class RemoteImageError(Exception):
    """Why a URL was refused or failed, with a stable code for the job's ``errorCode``; ``reason``
    says it without naming an image (a webhook's delivery records it)."""

    def __init__(self, code: str, message: str, reason: str = ""):
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason or message


class UnsafeUrl(RemoteImageError):
    def __init__(self, reason: str):
        super().__init__(
            ErrorCode.IMAGE_URL_FORBIDDEN, f"The image URL is not allowed: {reason}", reason
        )


class ImageTooLarge(RemoteImageError):
    def __init__(self, limit: int):
        super().__init__(
            ErrorCode.IMAGE_TOO_LARGE, f"The image is larger than {limit // (1024 * 1024)} MB"
        )


class FetchFailed(RemoteImageError):
    def __init__(self, reason: str):
        super().__init__(
            ErrorCode.IMAGE_FETCH_FAILED, f"The image could not be downloaded: {reason}", reason
        )


class NotAnImage(RemoteImageError):
    def __init__(self, reason: str):
        super().__init__(
            ErrorCode.INVALID_IMAGE, f"The URL did not return a usable image: {reason}"
        )


def is_public_address(address: str) -> bool:
    """Whether a connection to ``address`` (as resolved, IPv4 or IPv6) may be made."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip in _SIX_TO_FOUR:
            embedded = ip.sixtofour
        if embedded is not None:
            return is_public_address(str(embedded))
        # Only global unicast; this also refuses IPv4-compatible ::a.b.c.d, local-use NAT64
        # (64:ff9b:1::/48), unique-local, link-local, site-local and multicast.
        if ip not in _GLOBAL_UNICAST_V6 or any(ip in network for network in _FORBIDDEN_V6):
            return False
    elif any(ip in network for network in _FORBIDDEN_V4):
        return False
    return ip.is_global and not ip.is_multicast


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolves ``host`` to (tests replace this; see
    ``resolve_public``)."""
    return [answer[4][0] for answer in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def resolve_public(url: str, *, resolver=None, is_allowed=None) -> tuple[str, int, str]:
    """Check a URL; return (scheme, port, first resolved address) or raise UnsafeUrl.

    ``resolver(host, port)`` returns addresses (default: ``system_resolver``); ``is_allowed
    (address)`` decides each of them (default: ``is_public_address``). Every address must pass,
    so a name that also resolves to a private address is refused outright.
    """
    resolver = resolver or system_resolver
    is_allowed = is_allowed or is_public_address
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are accepted")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in URLs are not accepted")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("the port is invalid") from None
    # One refusal for a name that does not resolve and for one that resolves to a private
    # address: telling them apart would let anyone map our internal DNS names.
    not_public = UnsafeUrl(f"{parts.hostname} is not a public host")
    try:
        addresses = list(resolver(parts.hostname, port))
    except (OSError, UnicodeError, ValueError):
        raise not_public from None
    if not addresses or not all(is_allowed(address) for address in addresses):
        raise not_public
    return scheme, port, addresses[0]


def fetch(
    url: str,
    *,
    max_bytes: int,
    time_limit: float = TOTAL_TIMEOUT_SECONDS,
    resolver=None,
    is_allowed=None,
) -> bytes:
    """Download an image: every hop checked, at most ``max_bytes``, all of it within
    ``time_limit`` seconds, and it must decode."""
    with _Deadline(time_limit) as deadline:
        for _ in range(MAX_REDIRECTS + 1):
            scheme, port, address = resolve_public(url, resolver=resolver, is_allowed=is_allowed)
            pool, response = _request(url, scheme, port, address, deadline, IMAGE_REQUEST)
            try:
                location = response.headers.get("Location")
                if response.status in REDIRECT_STATUSES and location:
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise FetchFailed(f"the server answered HTTP {response.status}")
                data = _read_limited(response, max_bytes, deadline)
            finally:
                response.release_conn()
                pool.close()
            try:
                uploads.validate_image(data)
            except uploads.InvalidImage as exc:
                raise NotAnImage(str(exc)) from None
            return data
    raise FetchFailed("too many redirects")


def send(
    url: str,
    body: bytes,
    headers: dict,
    *,
    time_limit: float,
    resolver=None,
    is_allowed=None,
) -> int:
    """POST ``body`` to a checked address, all of it within ``time_limit`` seconds, following no
    redirect; return the answer's status (its body is not read). Raises UnsafeUrl, or FetchFailed
    when no answer came in time."""
    with _Deadline(time_limit) as deadline:
        scheme, port, address = resolve_public(url, resolver=resolver, is_allowed=is_allowed)
        request = Request("POST", body, {"User-Agent": USER_AGENT, **headers})
        pool, response = _request(url, scheme, port, address, deadline, request)
        response.release_conn()
        pool.close()
        return response.status


class _Deadline:
    """A wall-clock limit on a whole download. Per-read timeouts cannot give one (a sender that
    drips a byte per read never trips them), so a timer shuts down every connection made under
    it when it passes: a blocked connect, handshake or read then ends at once."""

    def __init__(self, seconds: float):
        self.ends_at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        # Duplicates of the connections' sockets: shutting one down ends the connection, and
        # being ours, its descriptor can never be reused for someone else's socket meanwhile.
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        if self.expired or time.monotonic() >= self.ends_at:
            raise FetchFailed("the transfer took too long")
        return self.ends_at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shut_down(self._sockets[-1])

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by its peer


class _WatchedConnection:
    """A urllib3 connection whose socket is handed to the download's deadline once connected
    (before any TLS handshake)."""

    def __init__(self, *args, deadline: _Deadline, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def _new_conn(self):
        sock = super()._new_conn()
        self.deadline.watch(sock)
        return sock


class _HTTPConnection(_WatchedConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_WatchedConnection, urllib3.connection.HTTPSConnection):
    pass


class _HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


@dataclass(frozen=True)
class Request:
    method: str
    body: bytes | None
    headers: dict


USER_AGENT = "Hydrilla/1.0"
IMAGE_REQUEST = Request(
    "GET",
    None,
    {
        "User-Agent": USER_AGENT,
        "Accept": "image/*",
        # Counted bytes are the bytes that arrive: no compressed body expands behind the limit.
        "Accept-Encoding": "identity",
    },
)


def _request(url: str, scheme: str, port: int, address: str, deadline: _Deadline, request):
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = urllib3.Timeout(
        connect=min(CONNECT_TIMEOUT_SECONDS, deadline.remaining()), read=READ_TIMEOUT_SECONDS
    )
    if scheme == "https":
        pool = _HTTPSConnectionPool(
            address,
            port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=parts.hostname,
            assert_hostname=parts.hostname,
            deadline=deadline,
        )
    else:
        pool = _HTTPConnectionPool(address, port, timeout=timeout, retries=False, deadline=deadline)
    # The host as written: keeps an IPv6 literal's brackets and a given port.
    headers = {"Host": parts.netloc, **request.headers}
    try:
        response = pool.urlopen(
            request.method,
            target,
            body=request.body,
            headers=headers,
            redirect=False,
            preload_content=False,
            decode_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        pool.close()
        raise _transfer_failed(exc, deadline) from None
    return pool, response


def _read_limited(response, max_bytes: int, deadline: _Deadline) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > max_bytes:
        raise ImageTooLarge(max_bytes)
    body = bytearray()
    try:
        for chunk in response.stream(CHUNK_BYTES, decode_content=False):
            body += chunk
            if len(body) > max_bytes:
                raise ImageTooLarge(max_bytes)
    except urllib3.exceptions.HTTPError as exc:
        raise _transfer_failed(exc, deadline) from None
    if deadline.expired:  # shut down between two reads: the body may look complete but is not
        raise FetchFailed("the transfer took too long")
    return bytes(body)


def _transfer_failed(exc: Exception, deadline: _Deadline) -> FetchFailed:
    if deadline.expired:
        return FetchFailed("the transfer took too long")
    return FetchFailed(type(exc).__name__)
