import pytest
from rest_framework.test import APIClient

from accounts import clerk
from tests.clerk_tokens import TokenMinter
from tests.fakes.clerk import FakeClerk


@pytest.fixture(scope="session")
def _fake_clerk_server():
    server = FakeClerk().start()
    yield server
    server.stop()


@pytest.fixture
def fake_clerk(_fake_clerk_server, token_minter):
    """The fake Backend API, fresh for each test, serving the test key pair's JWK."""
    fake = _fake_clerk_server
    fake.come_back()
    fake.reset()
    fake.serve_keys(token_minter.jwk())
    yield fake
    fake.come_back()
    fake.reset()


@pytest.fixture(autouse=True)
def _fresh_jwks_cache():
    clerk.clear_jwks_cache()
    yield
    clerk.clear_jwks_cache()


@pytest.fixture
def clerk_secret_key(settings, clerk_public_key, fake_clerk):
    """Keys and profiles from the fake Backend API, as with ``CLERK_SECRET_KEY`` in production."""
    settings.CLERK_JWT_KEY = ""
    settings.CLERK_JWKS_URL = ""
    settings.CLERK_SECRET_KEY = fake_clerk.secret_key
    settings.CLERK_API_URL = fake_clerk.url
    return fake_clerk


@pytest.fixture(scope="session")
def rotated_minter():
    """The instance's next signing key, under a new kid."""
    return TokenMinter(kid="ins_test_key_rotated")


@pytest.fixture(scope="session")
def forger():
    """Someone else's key pair, claiming the instance's kid."""
    return TokenMinter()


@pytest.fixture
def bearer(token_minter):
    """A client presenting ``Authorization: Bearer <token>``; a user id mints a fresh valid
    token."""

    def make(token=None, *, user_id=None, **claims):
        if token is None:
            token = token_minter.token(user_id, **claims)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


class FakeClock:
    def __init__(self, now: float = 10.0):
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    """``accounts.clerk``'s monotonic clock, under the test's control (starts 10 s after boot)."""
    fake = FakeClock()
    monkeypatch.setattr(clerk, "time", fake)
    return fake
