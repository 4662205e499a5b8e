"""The image URL guard: which addresses it lets a fetch reach, and what it does with the answer.

Names are resolved by a fake resolver. The fetch tests talk to a tiny HTTP server on 127.0.0.1,
which the guard accepts only because each test injects an allow-decision that accepts exactly
that address; every other address keeps the real decision, so redirects and names pointing at
private addresses are refused before any connection is made.
"""

import http.server
import ipaddress
import socket
import threading
import time

import pytest

from jobs import remote_images
from jobs.remote_images import (
    FetchFailed,
    ImageTooLarge,
    NotAnImage,
    UnsafeUrl,
    is_public_address,
    resolve_public,
)
from tests.helpers import images
from tests.helpers.jobs import run_inline
from tests.helpers.network import closed_loopback_port

MB = 1024 * 1024
# How long the dripping routes would go on: far past the time limit of the fetches they serve.
DRIP_SECONDS = 30


def resolver_for(table):
    calls = []

    def resolve(host, port):
        calls.append(host)
        try:
            return [
                str(ipaddress.ip_address(host))
            ]  # a literal resolves to itself, as getaddrinfo does
        except ValueError:
            pass
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = table[host]
        return (
            answer.pop(0) if answer and isinstance(answer[0], list) else answer
        )  # a list of lists: one per call

    resolve.calls = calls
    return resolve


# --- The decision ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "0.0.0.0",
        "10.0.0.1",
        "10.255.255.255",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.100.100.200",  # Alibaba metadata (shared address space)
        "168.63.129.16",  # Azure host endpoint
        "192.0.0.192",  # Oracle metadata (IETF protocol assignments)
        "100.64.0.1",
        "198.18.0.1",
        "192.0.2.1",
        "203.0.113.9",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fd00:ec2::254",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",  # IPv4-mapped
        "::127.0.0.1",
        "::10.0.0.1",  # IPv4-compatible (deprecated, still routed by some stacks)
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b::a9fe:a9fe",  # NAT64 to private IPv4
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:a00:1::1",
        "2002:7f00:1::",  # 6to4 of private IPv4
        "2001::1",
        "2001:db8::1",
        "3fff::1",  # Teredo, documentation
        "not an address",
    ],
)
def test_private_reserved_and_disguised_addresses_are_refused(address):
    assert is_public_address(address) is False


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::6810:84e5",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_allowed(address):
    assert is_public_address(address) is True


@pytest.mark.parametrize(
    ("answers", "allowed"),
    [
        (["93.184.215.14"], True),
        (["93.184.215.14", "2606:4700::6810:84e5"], True),
        (["127.0.0.1"], False),
        (["10.0.0.1"], False),
        (["169.254.169.254"], False),
        (["::1"], False),
        (["::ffff:127.0.0.1"], False),
        (["::ffff:10.0.0.1"], False),
        (["64:ff9b::a00:1"], False),
        (["93.184.215.14", "10.0.0.1"], False),  # one private answer refuses the name
    ],
)
def test_a_name_is_allowed_only_if_every_address_it_resolves_to_is_public(answers, allowed):
    resolve = resolver_for({"images.test": answers})

    if allowed:
        assert resolve_public("https://images.test/a.png", resolver=resolve) == (
            "https",
            443,
            answers[0],
        )
    else:
        with pytest.raises(UnsafeUrl) as refused:
            resolve_public("https://images.test/a.png", resolver=resolve)
        assert refused.value.code == "IMAGE_URL_FORBIDDEN"
        assert (
            refused.value.message
            == "The image URL is not allowed: images.test is not a public host"
        )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http and https URLs are accepted"),
        ("gopher://images.test/", "only http and https URLs are accepted"),
        ("http:///a.png", "the URL has no host"),
        ("http://user:pw@images.test/a.png", "credentials in URLs are not accepted"),
        ("http://images.test:99999/a.png", "the port is invalid"),
    ],
)
def test_urls_refused_before_any_resolution(url, reason):
    resolve = resolver_for({"images.test": ["93.184.215.14"]})

    with pytest.raises(UnsafeUrl, match=reason):
        resolve_public(url, resolver=resolve)
    assert resolve.calls == []


@pytest.mark.parametrize(
    "answers", [None, [], ["10.0.0.1"]], ids=["no such name", "no address", "private"]
)
def test_a_name_that_does_not_resolve_is_refused_as_one_that_resolves_to_a_private_address(answers):
    """One message for both: telling them apart maps internal DNS names for anyone who asks."""
    table = {} if answers is None else {"nowhere.test": answers}
    with pytest.raises(UnsafeUrl) as refused:
        resolve_public("http://nowhere.test/a.png", resolver=resolver_for(table))

    assert (refused.value.code, refused.value.message) == (
        "IMAGE_URL_FORBIDDEN",
        "The image URL is not allowed: nowhere.test is not a public host",
    )


# --- Fetching, from a loopback server --------------------------------------------------------


class ImageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests = []  # (path, Host header)
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def handle_error(self, request, client_address):
        pass  # a client that hangs up on purpose (size limits) is not a server error

    @property
    def port(self):
        return self.server_address[1]

    def url(self, path, host="images.test"):
        return f"http://{host}:{self.port}{path}"

    def stop(self):
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.requests.append((self.path, self.headers.get("Host")))
        route = getattr(
            self,
            "route_" + self.path.strip("/").split("?")[0].replace("-", "_").replace(".", "_"),
            None,
        )
        if route is None:
            return self._send(404, b"not found", "text/plain")
        route()

    def _send(self, status, body, content_type="image/png", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self._send(302, b"", "text/plain", [("Location", location)])

    def route_image_png(self):
        self._send(200, images.png())

    def route_redirect_relative(self):
        self._redirect("/image.png")

    def route_redirect_private(self):
        self._redirect(f"http://internal.test:{self.server.port}/image.png")

    def route_redirect_metadata(self):
        self._redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/")

    def route_redirect_mapped(self):
        self._redirect(f"http://[::ffff:10.0.0.1]:{self.server.port}/image.png")

    def route_loop(self):
        self._redirect("/loop")

    def route_text(self):
        self._send(200, b"<html>not an image</html>", "text/html")

    def route_declared_too_large(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(10 * MB + 1))
        self.end_headers()
        self.wfile.write(b"\x89PNG")  # and then nothing: the guard must not wait for the rest

    def route_streamed_too_large(self):
        """Chunked, no Content-Length: only counting while reading can stop it."""
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"\0" * (256 * 1024)
        try:
            for _ in range(10 * MB // len(chunk) + 8):  # a little over 10 MB, or until cut off
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route_slow(self):
        time.sleep(2)
        self._send(200, images.png())

    def _drip(self, head: bytes, piece: bytes):
        """``head`` at once, then ``piece`` every 0.2 s for up to DRIP_SECONDS: each read of the
        client gets a byte or so well within its read timeout, forever by a client's measure."""
        try:
            self.wfile.write(head)
            self.wfile.flush()
            for _ in range(int(DRIP_SECONDS / 0.2)):
                time.sleep(0.2)
                self.wfile.write(piece)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route_drip_headers(self):
        self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Padding: ", b"a")

    def route_drip_sized_body(self):
        self._drip(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n", b"\0"
        )

    def route_drip_chunked_body(self):
        self._drip(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1\r\n\0\r\n",
        )


@pytest.fixture
def server():
    server = ImageServer()
    yield server
    server.stop()


@pytest.fixture
def connections(monkeypatch):
    """Every (address, port) a fetch connects to."""
    made = []
    request = remote_images._request

    def spy(url, scheme, port, address, *rest):
        made.append((address, port))
        return request(url, scheme, port, address, *rest)

    monkeypatch.setattr(remote_images, "_request", spy)
    return made


def only_the_test_server(address):
    """The test's allow-decision: the loopback test server, and otherwise the real one."""
    return address == "127.0.0.1" or is_public_address(address)


def fetch(url, max_bytes=10 * MB, **table):
    names = {"images.test": ["127.0.0.1"], "internal.test": ["10.0.0.5"], **table}
    return remote_images.fetch(
        url, max_bytes=max_bytes, resolver=resolver_for(names), is_allowed=only_the_test_server
    )


def test_an_image_is_fetched(server, connections):
    assert fetch(server.url("/image.png")) == images.png()

    assert connections == [("127.0.0.1", server.port)]
    assert server.requests == [
        ("/image.png", f"images.test:{server.port}")
    ]  # the name, not the address


def test_redirects_are_followed_and_each_hop_checked(server, connections):
    assert fetch(server.url("/redirect-relative")) == images.png()

    assert [path for path, _ in server.requests] == ["/redirect-relative", "/image.png"]


@pytest.mark.parametrize("path", ["/redirect-private", "/redirect-metadata", "/redirect-mapped"])
def test_a_redirect_to_a_private_address_is_refused_without_connecting(server, connections, path):
    with pytest.raises(UnsafeUrl) as refused:
        fetch(server.url(path))

    assert refused.value.code == "IMAGE_URL_FORBIDDEN"
    assert connections == [("127.0.0.1", server.port)]  # the first hop only
    assert [path for path, _ in server.requests] == [path]


def test_the_connection_goes_to_the_address_that_was_checked(server, connections):
    """DNS rebinding: a second lookup would answer a private address; there is no second lookup."""
    table = {"images.test": [["127.0.0.1"], ["10.0.0.5"]]}
    resolve = resolver_for(table)

    data = remote_images.fetch(
        server.url("/image.png"), max_bytes=MB, resolver=resolve, is_allowed=only_the_test_server
    )

    assert data == images.png()
    assert resolve.calls == ["images.test"] and connections == [("127.0.0.1", server.port)]


def test_a_name_that_rebinds_to_a_private_address_later_is_refused_then(server, connections):
    table = {"images.test": [["10.0.0.5"]]}

    with pytest.raises(UnsafeUrl):
        remote_images.fetch(
            server.url("/image.png"),
            max_bytes=MB,
            resolver=resolver_for(table),
            is_allowed=only_the_test_server,
        )
    assert connections == []


def test_too_many_redirects_fail(server):
    with pytest.raises(FetchFailed, match="too many redirects"):
        fetch(server.url("/loop"))

    assert len(server.requests) == remote_images.MAX_REDIRECTS + 1


def test_a_declared_size_over_the_limit_is_refused_before_reading(server):
    started = time.monotonic()

    with pytest.raises(ImageTooLarge) as refused:
        fetch(server.url("/declared-too-large"))

    assert refused.value.code == "IMAGE_TOO_LARGE"
    assert (
        time.monotonic() - started < remote_images.READ_TIMEOUT_SECONDS
    )  # did not wait for the body


def test_a_body_over_the_limit_is_cut_off_while_streaming(server):
    with pytest.raises(ImageTooLarge, match="larger than 10 MB"):
        fetch(server.url("/streamed-too-large"))


def test_a_small_limit_applies_to_a_small_image(server):
    with pytest.raises(ImageTooLarge):
        fetch(server.url("/image.png"), max_bytes=len(images.png()) - 1)


def test_a_body_that_is_not_an_image_is_refused(server):
    with pytest.raises(NotAnImage) as refused:
        fetch(server.url("/text"))

    assert refused.value.code == "INVALID_IMAGE"


def test_an_http_error_is_a_fetch_failure(server):
    with pytest.raises(FetchFailed, match="HTTP 404"):
        fetch(server.url("/missing.png"))


def test_a_server_that_does_not_answer_in_time_is_a_fetch_failure(server, monkeypatch):
    monkeypatch.setattr(remote_images, "READ_TIMEOUT_SECONDS", 0.3)

    with pytest.raises(FetchFailed, match="ReadTimeoutError"):
        fetch(server.url("/slow"))


@pytest.mark.parametrize("path", ["/drip-headers", "/drip-sized-body", "/drip-chunked-body"])
def test_a_server_that_drips_is_stopped_at_the_time_limit_of_the_whole_download(server, path):
    """A byte every 0.2 s never trips the 15 s read timeout; only the whole-download limit can."""
    time_limit = 1.0
    started = time.monotonic()

    with pytest.raises(FetchFailed, match="took too long"):
        remote_images.fetch(
            server.url(path),
            max_bytes=MB,
            time_limit=time_limit,
            resolver=resolver_for({"images.test": ["127.0.0.1"]}),
            is_allowed=only_the_test_server,
        )

    assert time.monotonic() - started < time_limit + 1
    assert server.requests == [(path, f"images.test:{server.port}")]


def test_a_closed_port_is_a_fetch_failure():
    placeholder, port = closed_loopback_port()
    try:
        with pytest.raises(FetchFailed):
            fetch(f"http://images.test:{port}/image.png")
    finally:
        placeholder.close()


def test_without_the_injected_decision_the_loopback_server_is_refused(server, connections):
    with pytest.raises(UnsafeUrl):
        remote_images.fetch(
            server.url("/image.png"),
            max_bytes=MB,
            resolver=resolver_for({"images.test": ["127.0.0.1"]}),
        )

    assert connections == [] and server.requests == []


# --- Where a refusal shows --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_url_that_turns_private_after_submission_fails_the_job_with_a_code(
    api_client, names, connections
):
    """Accepted at submission (public then), refused by the worker (private now): the job ends
    FAIL with an errorCode saying why, and nothing was fetched."""
    job_id = api_client.post(
        "/image-to-3d", {"image_url": "https://images.example.com/a.png"}
    ).json()["job_id"]
    names["images.example.com"] = ["10.0.0.5"]

    run_inline(job_id)

    assert connections == []
    generation = api_client.get(f"/status/{job_id}").json()
    assert (generation["status"], generation["error_code"]) == ("failed", "IMAGE_URL_FORBIDDEN")
    assert "not allowed" in generation["error"]
    job = api_client.get(f"/api/3d/status/{job_id}").json()["job"]
    assert (job["status"], job["errorCode"]) == ("FAIL", "IMAGE_URL_FORBIDDEN")
