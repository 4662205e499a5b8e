"""Fixtures for the job API tests: storage backends (S3 on moto, local files), the real broker's
``gpu`` queue, and outages of both."""

import importlib.util
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from celery import Celery
from django.conf import settings as django_settings
from django.utils import timezone
from kombu import Connection

import celery_app
from hydrilla.queues import CeleryQueue
import hydrilla.urls
from jobs import services
from jobs.models import Job
from tests.conftest import s3_client

STATICFILES = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}


def closed_loopback_port():
    """A loopback port bound but never listening: connecting to it is refused at once.

    Returns the socket too; keep it open for as long as the port must stay closed."""
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    return placeholder, placeholder.getsockname()[1]


def set_age(job: Job, *, seconds: float, field: str = "created_at") -> Job:
    """Move a timestamp into the past (``auto_now_add`` fields can only be changed by UPDATE)."""
    moment = timezone.now() - timedelta(seconds=seconds)
    Job.objects.filter(pk=job.pk).update(**{field: moment})
    setattr(job, field, moment)
    return job


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
    spec = importlib.util.spec_from_file_location("tests.jobs._hydrilla_urls", hydrilla.urls.__file__)
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


class QueueReader:
    def __init__(self, queue):
        self.queue = queue

    def messages(self) -> list:
        """Everything now in the queue, taken off it."""
        taken = []
        while (message := self.queue.get(no_ack=True)) is not None:
            taken.append(message)
        return taken

    def wait(self, count=1, timeout=2.0) -> list:
        """At least ``count`` messages taken off the queue, or what came within ``timeout``."""
        messages, deadline = [], time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            messages += self.messages()
            if len(messages) < count:
                time.sleep(0.02)
        return messages


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
        self.monkeypatch.setattr(services, "celery", self.outage)

    def up(self):
        self.monkeypatch.setattr(services, "celery", celery_app.app)

    def close(self):
        self.outage.close()
        self.placeholder.close()


@pytest.fixture
def broker(monkeypatch):
    switch = BrokerSwitch(monkeypatch)
    yield switch
    switch.close()


@pytest.fixture
def broker_down(broker):
    """The job service with a broker that refuses connections."""
    broker.down()
