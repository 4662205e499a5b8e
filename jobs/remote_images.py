"""Fetching user-supplied image URLs without letting them reach inside our network.

Every address a host name resolves to must be public; the connection then goes to the checked
address itself (so a second DNS answer cannot swap in a private one), redirects are followed by
hand and checked again, and the body is counted while it streams.
"""

import ipaddress
import socket
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3


MAX_REDIRECTS = 3
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
CHUNK_BYTES = 64 * 1024


class RemoteImageError(Exception):
    """Why a URL was refused or failed, with a stable code for the job's ``errorCode``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


class UnsafeUrl(RemoteImageError):
    def __init__(self, reason: str):
        super().__init__("IMAGE_URL_FORBIDDEN", f"The image URL is not allowed: {reason}")


class ImageTooLarge(RemoteImageError):
    def __init__(self, limit: int):
        super().__init__("IMAGE_TOO_LARGE", f"The image is larger than {limit // (1024 * 1024)} MB")


class FetchFailed(RemoteImageError):
    def __init__(self, reason: str):
        super().__init__("IMAGE_FETCH_FAILED", f"The image could not be downloaded: {reason}")


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:10.0.0.1 and 64:ff9b::a00:1 reach IPv4 hosts: judge the host they reach.
        embedded = ip.ipv4_mapped or ip.sixtofour or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in ipaddress.ip_network("64:ff9b::/96") else None
        )
        if embedded is not None:
            return _is_public(str(embedded))
    return ip.is_global and not ip.is_multicast


def resolve_public(url: str, resolver=socket.getaddrinfo) -> tuple[str, int, str]:
    """Check a URL; return (scheme, port, first public address) or raise UnsafeUrl."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are accepted")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in URLs are not accepted")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("the port is invalid") from None
    try:
        answers = resolver(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"the host name does not resolve ({exc})") from None
    addresses = [answer[4][0] for answer in answers]
    if not addresses:
        raise FetchFailed("the host name does not resolve")
    private = [address for address in addresses if not _is_public(address)]
    if private:
        raise UnsafeUrl(f"{parts.hostname} resolves to a private or reserved address")
    return scheme, port, addresses[0]


def fetch(url: str, *, max_bytes: int, resolver=socket.getaddrinfo) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        scheme, port, address = resolve_public(url, resolver)
        response = _request(url, scheme, port, address)
        try:
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                raise FetchFailed(f"the server answered HTTP {response.status}")
            return _read_limited(response, max_bytes)
        finally:
            response.release_conn()
    raise FetchFailed("too many redirects")


def _request(url: str, scheme: str, port: int, address: str):
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(), server_hostname=parts.hostname, assert_hostname=parts.hostname,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    try:
        return pool.urlopen(
            "GET", target, headers={"Host": host_header, "User-Agent": "Hydrilla/1.0", "Accept": "image/*"},
            redirect=False, preload_content=False, assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as exc:
        raise FetchFailed(type(exc).__name__) from None


def _read_limited(response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ImageTooLarge(max_bytes)
    body = bytearray()
    try:
        for chunk in response.stream(CHUNK_BYTES):
            body += chunk
            if len(body) > max_bytes:
                raise ImageTooLarge(max_bytes)
    except urllib3.exceptions.HTTPError as exc:
        raise FetchFailed(type(exc).__name__) from None
    return bytes(body)
