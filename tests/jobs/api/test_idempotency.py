"""Idempotency-Key on every POST of both halves that creates something: a retry gets the first
answer and creates nothing, another body is a 422; of 50 racing duplicates over HTTP, one job."""

import threading
import uuid

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from jobs.models import Job, JobKind, JobState, Upload
from jobs.services import shared
from tests.factories import JobFactory
from tests.helpers.images import png
from tests.helpers.jobs import finish_preview, start

SOME_PREVIEW = "3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11"


def finished_source(user) -> Job:
    return JobFactory(
        user=user,
        state=JobState.COMPLETED,
        result_glb="jobs/source/model.glb",
        source_mesh="jobs/source/source.ply",
    )


# (path, body, its other body, format); a callable path takes the user.
CREATING_POSTS = {
    "generate": ("/api/3d/generate", {"prompt": "a mug"}, {"prompt": "a cup"}, "json"),
    "text-to-3d": ("/text-to-3d", {"prompt": "a mug"}, {"prompt": "a cup"}, "json"),
    "image-to-3d": (
        "/image-to-3d",
        {"image_url": "https://images.example.com/mug.png"},
        {"image_url": "https://images.example.com/cup.png"},
        "json",
    ),
    "register-job": (
        "/api/3d/register-job",
        {"job_id": SOME_PREVIEW, "previewImageUrl": "https://cdn.example.org/p.png"},
        {"job_id": SOME_PREVIEW, "previewImageUrl": "https://cdn.example.org/q.png"},
        "json",
    ),
    "remesh": (
        lambda user: f"/api/3d/jobs/{finished_source(user).pk}/remesh",
        {"faceCount": 500},
        {"faceCount": 900},
        "json",
    ),
}


def made() -> tuple[int, int]:
    return Job.objects.count(), Upload.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", CREATING_POSTS)
def test_a_retry_gets_the_first_answer_and_creates_nothing(auth_client, user, endpoint):
    path, body, other, media = CREATING_POSTS[endpoint]
    path = path(user) if callable(path) else path
    client = auth_client(user)
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = client.post(path, body, format=media, headers=key)
    before = made()
    retry = client.post(path, body, format=media, headers=key)
    reused = client.post(path, other, format=media, headers=key)

    assert first.status_code == 200, first.content
    assert (retry.status_code, retry.content) == (200, first.content)
    assert retry["Idempotent-Replayed"] == "true"
    assert reused.status_code == 422 and "another request" in reused.json()["error"]
    assert made() == before


@pytest.mark.django_db
def test_a_retried_upload_stores_one_file(auth_client, user, local_media):
    client = auth_client(user)

    def upload(data: bytes):
        image = {"image": SimpleUploadedFile("photo.png", data, content_type="image/png")}
        return client.post("/api/3d/upload-image", image, headers={"Idempotency-Key": "up-1"})

    first = upload(png())
    retry = upload(png())
    other = upload(png(size=(20, 10)))

    assert first.status_code == 200 and retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true" and other.status_code == 422
    assert Upload.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_retried_preview_waits_for_nothing_and_makes_no_second_preview(
    api_client, monkeypatch, settings
):
    def run_at_once(job):
        finish_preview(job.pk, start(job.pk))

    monkeypatch.setattr(shared, "enqueue", run_at_once)
    settings.PREVIEW_WAIT_SECONDS = 5
    key = {"Idempotency-Key": "preview-1"}

    first = api_client.post("/text-to-image", {"prompt": "a mug"}, format="json", headers=key)
    retry = api_client.post("/text-to-image", {"prompt": "a mug"}, format="json", headers=key)

    assert first.status_code == 200, first.content
    assert retry.content == first.content and retry["Idempotent-Replayed"] == "true"
    assert Job.objects.filter(kind=JobKind.PREVIEW).count() == 1


@pytest.mark.django_db
def test_a_refused_submission_keeps_no_answer(auth_client, user, settings):
    settings.MAX_WAITING_JOBS_PER_CALLER = 0
    client = auth_client(user)
    key = {"Idempotency-Key": "full"}

    refused = client.post("/api/3d/generate", {"prompt": "a mug"}, format="json", headers=key)
    settings.MAX_WAITING_JOBS_PER_CALLER = 10
    accepted = client.post("/api/3d/generate", {"prompt": "a mug"}, format="json", headers=key)

    assert refused.status_code == 429
    assert accepted.status_code == 200 and "Idempotent-Replayed" not in accepted
    assert Job.objects.count() == 1


RACERS = 50


@pytest.mark.django_db(transaction=True)
def test_50_racing_submits_with_one_key_make_one_job(asgi_server, token_minter, user, no_limits):
    start_line = threading.Barrier(RACERS)
    answers, errors = [], []
    headers = {
        "Authorization": f"Bearer {token_minter.token(user.pk)}",
        "Idempotency-Key": "race-1",
    }

    def submit():
        try:
            start_line.wait()
            response = requests.post(
                f"{asgi_server.url}/api/3d/generate",
                json={"prompt": "a racing mug"},
                headers=headers,
                timeout=30,
            )
            answers.append((response.status_code, response.json()))
        except Exception as exc:  # any failure of a racer fails the test below
            errors.append(exc)
        finally:
            connection.close()

    racers = [threading.Thread(target=submit) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)

    [job] = Job.objects.all()
    assert errors == []
    assert answers == [(200, {"jobId": str(job.pk)})] * RACERS
