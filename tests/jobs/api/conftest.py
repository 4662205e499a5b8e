"""Fixtures for the HTTP tests of both halves of the API: jobs are not handed to the real broker
unless a test asks for it (``broker_down``), and every watch a request opened is closed."""

import time

import pytest

from jobs.watch import watcher


@pytest.fixture(autouse=True)
def not_published(enqueued):
    """Jobs are handed to ``enqueued`` instead of the broker, in every test here."""
    return enqueued


@pytest.fixture(autouse=True)
def watcher_left_idle():
    """Every waiting request and stream ends its watch, and the watcher thread then stops."""
    yield
    deadline = time.monotonic() + 5
    while watcher.waiting():
        assert time.monotonic() < deadline, "a job watch was left open"
        time.sleep(0.05)
