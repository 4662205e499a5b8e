"""Loopback ports: a free one for a server to listen on, and one that refuses every connection."""

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def closed_loopback_port():
    """A loopback port bound but never listening: connecting to it is refused at once.

    Returns the socket too; keep it open for as long as the port must stay closed."""
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    return placeholder, placeholder.getsockname()[1]
