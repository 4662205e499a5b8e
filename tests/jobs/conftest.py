"""Fixtures for the jobs package's tests: nothing reaches beyond loopback, storage backends (S3 on
moto, local files), the real broker's queues, outages of both, and jobs handed to the broker
without publishing.

Names are resolved from a table (never by DNS) and every socket connection is checked to be a
loopback one.
"""

import importlib.util
import ipaddress
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from celery import Celery
from django.conf import settings as django_settings
from kombu import Connection

import celery_app
import hydrilla.urls
from hydrilla.queues import CeleryQueue
from jobs import remote_images
from jobs.services import shared
from tests.helpers.broker import QueueReader
from tests.helpers.network import closed_loopback_port
from tests.helpers.storage import s3_client

STATICFILES = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
REAL_ENQUEUE = shared.enqueue

# --- Loopback only ---------------------------------------------------------------------------

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


# --- Storage ---------------------------------------------------------------------------------


def _s3_options():
    return django_settings.STORAGES["default"].get("OPTIONS", {})


@pytest.fixture(scope="session")
def s3_test_bucket():
    """A bucket of our own on the S3 endpoint, so listings are not disturbed by other suites."""
    if not django_settings.S3_BUCKET:
        pytest.skip("S3 is not configured (run through scripts/test-services.sh)")
    options = _s3_options()
    assert urlsplit(options["endpoint_url"]).hostname in ("127.0.0.1", "localhost", "::1")
    client = s3_client()
    bucket = f"hydrilla-jobs-tests-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    _empty(client, bucket)
    client.delete_bucket(Bucket=bucket)


def _empty(client, bucket):
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


class S3Media:
    kind = "s3"

    def __init__(self, client, bucket):
        self.client, self.bucket = client, bucket

    def names(self, prefix: str) -> set[str]:
        listing = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"{prefix}/")
        return {item["Key"] for item in listing.get("Contents", [])}

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey"):
                return False
            raise
        return True

    def fetch(self, url: str, client=None) -> bytes:
        """What anyone holding the URL gets: a plain HTTP GET to the (loopback) S3 endpoint."""
        assert urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"), url
        response = requests.get(url, timeout=5)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        return response.content


class LocalMedia:
    kind = "local"

    def __init__(self, root: Path):
        self.root = root

    def names(self, prefix: str) -> set[str]:
        folder = self.root / prefix
        if not folder.exists():
            return set()
        return {str(path.relative_to(self.root)) for path in folder.rglob("*") if path.is_file()}

    def exists(self, name: str) -> bool:
        return (self.root / name).is_file()

    def fetch(self, url: str, client) -> bytes:
        """Through the service's own media route, as a browser would fetch the URL."""
        parts = urlsplit(url)
        response = client.get(parts.path, SERVER_NAME=parts.hostname)
        assert response.status_code == 200, (url, response.status_code)
        return b"".join(response.streaming_content)


@pytest.fixture
def s3_media(settings, s3_test_bucket):
    """The S3 storage, on a bucket of its own that each test starts empty."""
    client, bucket = s3_test_bucket
    _empty(client, bucket)
    settings.STORAGES = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**_s3_options(), "bucket_name": bucket},
        },
        "staticfiles": STATICFILES,
    }
    return S3Media(client, bucket)


@pytest.fixture
def s3_down(s3_media, settings):
    """The S3 storage with its endpoint moved to a loopback port that refuses connections;
    returns that endpoint."""
    placeholder, port = closed_loopback_port()
    endpoint = f"http://127.0.0.1:{port}"
    default = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**default, "OPTIONS": {**default["OPTIONS"], "endpoint_url": endpoint}},
    }
    yield endpoint
    placeholder.close()


def _fresh_root_urlconf():
    """hydrilla/urls.py evaluated anew under the current settings, as the service would load it at
    start-up (its media route is decided at import time), without touching the loaded module."""
    spec = importlib.util.spec_from_file_location(
        "tests.jobs._hydrilla_urls", hydrilla.urls.__file__
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def local_media(settings, tmp_path):
    """Files on disk under a temporary MEDIA_ROOT, served by the service itself (no S3 bucket)."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": STATICFILES,
    }
    settings.SERVE_MEDIA = True
    settings.ROOT_URLCONF = _fresh_root_urlconf()
    return LocalMedia(root)


@pytest.fixture(params=["s3", "local"])
def media(request):
    return request.getfixturevalue(f"{request.param}_media")


# --- Broker ----------------------------------------------------------------------------------


def _read_queue(name):
    """The real broker's queue ``name``, declared as Celery declares it and emptied first."""
    if not celery_app.app.conf.broker_url.startswith("amqp://"):
        pytest.skip("needs RabbitMQ (run through scripts/test-services.sh)")
    with Connection(celery_app.app.conf.broker_url, connect_timeout=3) as connection:
        queue = celery_app.app.amqp.queues[name](connection.default_channel)
        queue.declare()
        queue.purge()
        yield QueueReader(queue)
        queue.purge()


@pytest.fixture
def gpu_queue():
    yield from _read_queue(CeleryQueue.GPU)


@pytest.fixture
def cpu_queue():
    yield from _read_queue(CeleryQueue.CPU)


class BrokerSwitch:
    """Points the job service at the real broker (``up``) or at one that refuses connections
    (``down``): the service's Celery app, configured as usual but with an unreachable broker.

    A separate app rather than the shared one re-pointed: the shared app's connection pool stays
    untouched, and Celery reads ``CELERY_BROKER_URL`` from the environment before its own conf.
    """

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.placeholder, port = closed_loopback_port()
        self.outage = Celery("hydrilla-broker-outage", set_as_current=False)
        self.outage.config_from_object("django.conf:settings", namespace="CELERY")
        self.outage.conf.broker_write_url = f"amqp://guest:guest@127.0.0.1:{port}//"

    def down(self):
        self.monkeypatch.setattr(shared, "celery", self.outage)

    def up(self):
        self.monkeypatch.setattr(shared, "celery", celery_app.app)

    def close(self):
        self.outage.close()
        self.placeholder.close()


@pytest.fixture
def broker(monkeypatch):
    switch = BrokerSwitch(monkeypatch)
    yield switch
    switch.close()


@pytest.fixture
def broker_down(broker, monkeypatch):
    """The job service's real publish, to a broker that refuses connections."""
    monkeypatch.setattr(shared, "enqueue", REAL_ENQUEUE)
    broker.down()


@pytest.fixture
def enqueued(monkeypatch):
    """Ids of the jobs handed to the broker, not published (tests/jobs/services and
    tests/jobs/management/test_requeue_jobs_broker.py cover the real broker)."""
    sent = []
    monkeypatch.setattr(shared, "enqueue", lambda job: sent.append(str(job.pk)))
    return sent
