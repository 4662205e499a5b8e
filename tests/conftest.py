import gc
import socket
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import uvicorn
from django.conf import settings
from django.core.cache import caches
from django.db import connections
from rest_framework.test import APIClient
from storages.backends.s3 import S3Storage

from jobs import metrics as queue_metrics
from jobs.watch import WAITING_VIEWS_POOL
from tests.clerk_tokens import TokenMinter
from tests.factories import UserFactory
from tests.helpers import watch
from tests.helpers.storage import s3_client


@pytest.fixture(scope="session", autouse=True)
def server_threads_end(django_db_setup):
    """At the end, the server's thread pools end too, and the connections their threads held
    with them, before the test database is dropped."""
    yield
    WAITING_VIEWS_POOL.shutdown(wait=True)
    if "hydrilla.asgi" in sys.modules:  # imported by the tests that serve it
        sys.modules["hydrilla.asgi"].threaded_wsgi.executor.shutdown(wait=True)
    gc.collect()  # the ended threads' connections close as they go


@pytest.fixture(autouse=True)
def new_web_process(request, monkeypatch):
    """Each test starts as a new web process would: no throttle or slot counts, no user or job
    remembered; the job watcher's thread (and its database connection) ends with the test.

    The watcher follows jobs (serves reads from what its thread last saw) in tests whose writes are
    committed; elsewhere its thread could not see the test's rows, and every read is fresh."""
    marker = request.node.get_closest_marker("django_db")
    committed = {"transactional_db", "live_server", "asgi_server"} & set(request.fixturenames) or (
        marker is not None and marker.kwargs.get("transaction")
    )
    if not committed:
        watch.read_from_the_database(monkeypatch)
    for cache in caches.all():
        cache.clear()
    watch.start_afresh()
    yield
    watch.start_afresh()


@pytest.fixture(scope="session")
def token_minter():
    return TokenMinter()


@pytest.fixture(autouse=True)
def clerk_public_key(settings, token_minter):
    """Networkless verification with the test key pair, unless a test configures otherwise."""
    settings.CLERK_JWT_KEY = token_minter.public_pem
    settings.CLERK_SECRET_KEY = ""
    settings.CLERK_JWKS_URL = ""
    settings.CLERK_AUTHORIZED_PARTIES = ["http://localhost:3000"]
    settings.CLERK_ISSUER = ""


@pytest.fixture(scope="session", autouse=True)
def shared_boto3_session():
    """S3 storages share one boto3 session per set of credentials.

    Each settings change builds a new storage, and a new boto3 session loads botocore's service
    models again (some 150 ms); one session makes the next resource cost some 20 ms.
    """
    sessions = {}
    create_session = S3Storage._create_session

    def shared(storage):
        key = (
            storage.session_profile,
            storage.access_key,
            storage.secret_key,
            storage.security_token,
        )
        if key not in sessions:
            sessions[key] = create_session(storage)
        return sessions[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S3Storage, "_create_session", shared)
        yield


@pytest.fixture(scope="session", autouse=True)
def s3_bucket():
    """The configured bucket exists on the S3 endpoint (moto's server) before any test stores."""
    if not settings.S3_BUCKET:
        return None
    client = s3_client()
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if settings.S3_BUCKET not in existing:
        client.create_bucket(Bucket=settings.S3_BUCKET)
    return client


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def auth_client(token_minter):
    """A client that presents a valid Clerk token for ``user``."""

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_minter.token(user.pk)}")
        return client

    return make


@pytest.fixture
def no_limits(settings):
    """Per-caller limits out of the way, for tests that submit or stream a lot from one address."""
    for rate in (
        "SUBMIT_RATE_USER",
        "SUBMIT_RATE_IP",
        "GENERATION_SUBMIT_RATE_ANON",
        "SUBMIT_RATE_API_KEY",
        "API_KEY_RATE",
    ):
        setattr(settings, rate, "10000/min")
    settings.MAX_WAITING_JOBS_PER_CALLER = settings.MAX_STREAMS_PER_CALLER = 10000
    settings.MAX_WAITING_PREVIEWS_PER_CALLER = 10000


@pytest.fixture
def asgi_server(transactional_db, settings):
    """The service as production serves it (hydrilla.asgi on uvicorn with hydrilla.server's
    protocol), in this process on a loopback port, so tests' settings and fakes apply."""
    from hydrilla.asgi import application
    from hydrilla.server import GuardedHttpProtocol

    # Requests give their connection back as they end: none is left open on the test database.
    for database in (settings.DATABASES["default"], connections.settings["default"]):
        database["CONN_MAX_AGE"] = 0
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        application,
        http=GuardedHttpProtocol,
        lifespan="off",
        log_level="warning",
        timeout_keep_alive=settings.KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.02)
    yield SimpleNamespace(
        url=f"http://127.0.0.1:{listener.getsockname()[1]}", port=listener.getsockname()[1]
    )
    server.should_exit = True
    thread.join(10)
    listener.close()


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    """The tiny models, built once per test session for every test that runs them."""
    from generation.tiny_models import ensure_tiny_models

    return ensure_tiny_models(tmp_path_factory.getbasetemp() / "models" / "tiny")


def pytest_collection_modifyitems(items):
    """``make test`` runs each test once: in the services suite, the embedded one (``embedded``) or
    on the GPU image's packages (``gpu_image``), never in two of them."""
    both = [
        item.nodeid
        for item in items
        if item.get_closest_marker("embedded") and item.get_closest_marker("gpu_image")
    ]
    if both:
        raise pytest.UsageError(f"marked for two suites: {both}")


@pytest.fixture
def fresh_stage_means(monkeypatch):
    """The GPU stages' mean times read afresh (they are kept a minute otherwise)."""
    monkeypatch.setattr(queue_metrics, "stage_means", queue_metrics._StageMeans())
