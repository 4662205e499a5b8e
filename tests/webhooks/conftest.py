"""Fixtures of the webhooks' tests: nothing reaches beyond loopback and names resolve from a table
(the jobs tests' guards, reused), loopback receivers, and users' endpoints."""

import pytest

from tests.factories import UserFactory
from tests.jobs.conftest import local_media, loopback_only, names
from tests.webhooks.receiver import Receiver
from webhooks import services
from webhooks.models import EventType

# The jobs tests' guards, autouse here too, and their local storage.
__all__ = ["local_media", "loopback_only", "names"]

ALL_EVENTS = list(EventType.values)


@pytest.fixture
def private_receivers(settings):
    """Receivers on loopback allowed, as in development (WEBHOOK_ALLOW_PRIVATE_ADDRESSES)."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True


@pytest.fixture
def receiver():
    """``receiver(statuses=..., hold=...)``: a loopback receiver, closed at the end."""
    made = []

    def make(**options) -> Receiver:
        made.append(Receiver(**options))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture
def endpoint(db, private_receivers):
    """``endpoint(url, events=every event, user=a new one)``: an account endpoint."""

    def make(url, events=ALL_EVENTS, user=None):
        return services.create_endpoint(user or UserFactory(), url, events)

    return make
