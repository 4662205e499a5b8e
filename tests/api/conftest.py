"""Fixtures for the generation API tests.

Nothing here reaches beyond loopback: names are resolved from a table (never by DNS), every socket
connection is checked to be a loopback one, and jobs are not handed to the real broker unless a
test asks for it.
"""

import ipaddress
import socket

import pytest

from jobs import remote_images, services
from jobs.watch import watcher

REAL_ENQUEUE = services.enqueue

# Public-looking answers for the names tests submit. Submitting only resolves a name; nothing is
# fetched from these addresses (tests that fetch use their own loopback server).
PUBLIC_NAMES = {
    "images.example.com": ["93.184.215.14"],
    "cdn.example.org": ["2606:4700::6810:84e5"],
}
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX and friends
        return True
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except ValueError:
        return False  # a name: it would need a resolver
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in LOOPBACK)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any connection to an address other than loopback fails the test before a packet leaves."""
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def checked(method):
        def guarded(sock, address):
            assert _is_loopback(address), f"a test tried to connect to {address!r}"
            return method(sock, address)

        return guarded

    monkeypatch.setattr(socket.socket, "connect", checked(connect))
    monkeypatch.setattr(socket.socket, "connect_ex", checked(connect_ex))


@pytest.fixture(autouse=True)
def names(monkeypatch):
    """The resolver the URL guard uses by default: a table, that tests may extend."""
    table = {name: list(addresses) for name, addresses in PUBLIC_NAMES.items()}

    def resolve(host, port):
        try:
            return [str(ipaddress.ip_address(host))]  # literals resolve to themselves
        except ValueError:
            pass
        if host.lower() not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host.lower()])

    monkeypatch.setattr(remote_images, "system_resolver", resolve)
    return table


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Ids of the jobs handed to the broker (not published: tests/jobs covers the real broker)."""
    sent = []
    monkeypatch.setattr(services, "enqueue", lambda job: sent.append(str(job.pk)))
    return sent


@pytest.fixture(autouse=True)
def watcher_left_idle():
    """Every waiting request and stream ends its watch, and the watcher thread then stops."""
    yield
    assert watcher.wait_until_idle(timeout=5), "a job watch was left open"
