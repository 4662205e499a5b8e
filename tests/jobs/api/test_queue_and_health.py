"""GET /queue/info (the same on both halves), /health and the readiness check."""

import pytest
from celery import Celery
from django.conf import settings

from jobs import health
from jobs.models import JobKind, JobState
from tests.factories import JobFactory
from tests.helpers.network import closed_loopback_port
from tests.helpers.schema import assert_matches_schema


@pytest.mark.django_db
def test_queue_info_counts_both_queues_and_both_halves_agree(api_client):
    JobFactory.create_batch(2, state=JobState.PENDING)
    JobFactory(state=JobState.PROCESSING)
    JobFactory(kind=JobKind.PREVIEW, state=JobState.PENDING)
    JobFactory(state=JobState.COMPLETED)

    generation = api_client.get("/queue/info")
    job_api = api_client.get("/api/3d/queue/info")

    assert generation.status_code == job_api.status_code == 200
    body = assert_matches_schema(generation, "/queue/info")
    assert assert_matches_schema(job_api, "/api/3d/queue/info") == body
    assert (body["queue_length"], body["preview_queue_length"]) == (2, 1)


def test_health_answers_ok_without_touching_anything(api_client):
    api_client.credentials(
        HTTP_AUTHORIZATION="Bearer not-a-token"
    )  # ignored, as a probe's would be

    response = api_client.get("/health")

    assert response.status_code == 200
    assert assert_matches_schema(response, "/health") == {"status": "ok"}


@pytest.mark.django_db
@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("amqp"),
    reason="needs RabbitMQ (scripts/test-services.sh)",
)
def test_readiness_reports_each_dependency_and_the_gpu_workers(api_client):
    response = api_client.get("/health/ready")

    assert response.status_code == 200, response.content
    body = assert_matches_schema(response, "/health/ready")
    assert {key: body[key] for key in ("status", "database", "broker", "storage")} == {
        "status": "ok",
        "database": "ok",
        "broker": "ok",
        "storage": "ok",
    }
    assert isinstance(body["gpu_workers"], int) and body["gpu_workers"] >= 0


@pytest.fixture
def refused_port():
    placeholder, port = closed_loopback_port()
    yield port
    placeholder.close()


@pytest.mark.django_db
def test_readiness_is_a_503_naming_the_broker_when_it_is_down(
    api_client, monkeypatch, refused_port
):
    outage = Celery("hydrilla-readiness-outage", set_as_current=False)
    outage.config_from_object("django.conf:settings", namespace="CELERY")
    outage.conf.broker_url = outage.conf.broker_write_url = (
        f"amqp://guest:guest@127.0.0.1:{refused_port}//"
    )
    monkeypatch.setattr(health, "celery", outage)

    response = api_client.get("/health/ready")

    assert response.status_code == 503
    body = assert_matches_schema(response, "/health/ready")
    assert body["status"] == "unavailable"
    assert body["broker"].startswith("error: ")
    assert (body["database"], body["storage"], body["gpu_workers"]) == ("ok", "ok", None)
    outage.close()


@pytest.mark.django_db
def test_readiness_names_the_storage_when_it_is_down(api_client, settings, refused_port):
    default = settings.STORAGES["default"]
    if "endpoint_url" not in default.get("OPTIONS", {}):
        pytest.skip("S3 is not configured (run through scripts/test-services.sh)")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **default,
            "OPTIONS": {**default["OPTIONS"], "endpoint_url": f"http://127.0.0.1:{refused_port}"},
        },
    }

    response = api_client.get("/health/ready")

    assert response.status_code == 503
    body = assert_matches_schema(response, "/health/ready")
    assert (body["status"], body["database"]) == ("unavailable", "ok")
    assert body["storage"].startswith("error: ")
