"""``webhookUrl`` and ``webhookEvents`` in the body of every submit, of both halves: kept on the job
of a signed-in caller; refused with a 400 and nothing written (no job, no stored upload)
otherwise."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import storage
from jobs.models import Job, JobState, Upload
from tests.factories import JobFactory
from tests.helpers import images
from webhooks.models import SigningSecret
from webhooks.services import default_events

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/in"


@pytest.fixture(autouse=True)
def hook_names(names):
    names["hooks.example.com"] = ["93.184.215.34"]
    names["hooks.internal.example.com"] = ["10.1.2.3"]


def png_file():
    return SimpleUploadedFile("chair.png", images.png(), content_type="image/png")


# Each submit endpoint, with a body that makes a job there (the webhook fields are added).
SUBMITS = {
    "/api/3d/generate": ({"prompt": "a mug"}, "json"),
    "/text-to-3d": ({"prompt": "a mug"}, "json"),
    "/image-to-3d": ({"image_url": "https://images.example.com/chair.png"}, "json"),
}


@pytest.mark.parametrize("path", SUBMITS)
def test_a_signed_in_submit_keeps_its_receiver_on_the_job(auth_client, user, path):
    body, media = SUBMITS[path]

    response = auth_client(user).post(
        path, {**body, "webhookUrl": HOOK, "webhookEvents": ["job.completed"]}, format=media
    )

    assert response.status_code == 200, response.content
    job = Job.objects.get()
    assert (job.webhook_url, job.webhook_events) == (HOOK, ["job.completed"])
    assert SigningSecret.objects.filter(user=user).exists()


def test_a_form_encoded_submit_takes_the_fields_too_and_events_default(auth_client, user):
    response = auth_client(user).post("/text-to-3d", {"prompt": "a mug", "webhookUrl": HOOK})

    assert response.status_code == 200, response.content
    job = Job.objects.get()
    assert (job.webhook_url, job.webhook_events) == (HOOK, default_events())


def test_a_remesh_takes_its_own_receiver(auth_client, user, local_media):
    source = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        source_mesh=storage.save("jobs/source", "source.ply", b"ply"),
    )

    response = auth_client(user).post(
        f"/api/3d/jobs/{source.pk}/remesh", {"webhookUrl": HOOK}, format="json"
    )

    assert response.status_code == 200, response.content
    assert Job.objects.get(pk=response.json()["jobId"]).webhook_url == HOOK


@pytest.mark.parametrize(
    "path, body, message",
    [
        (
            "/text-to-3d",
            {"prompt": "a mug", "webhookUrl": HOOK},
            "webhookUrl needs a signed-in caller: the webhook is signed with the user's secret",
        ),
        (
            "/image-to-3d",
            {"image_url": "https://images.example.com/chair.png", "webhookUrl": HOOK},
            "webhookUrl needs a signed-in caller: the webhook is signed with the user's secret",
        ),
        (
            "/text-to-3d",
            {"prompt": "a mug", "webhookEvents": ["job.completed"]},
            "webhookEvents needs a webhookUrl",
        ),
        (
            "/text-to-3d",
            {"prompt": "a mug", "webhookUrl": HOOK, "webhookEvents": ["job.exploded"]},
            "webhookEvents",
        ),
    ],
)
def test_an_anonymous_or_malformed_receiver_is_a_400_and_no_job(api_client, path, body, message):
    response = api_client.post(path, body, format="json")

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "https://hooks.internal.example.com/in",
            "The webhook URL is not allowed: hooks.internal.example.com is not a public host",
        ),
        ("http://hooks.example.com/in", "The webhook URL must be https"),
    ],
)
def test_a_receiver_that_may_not_receive_is_a_400_and_leaves_no_upload(
    auth_client, user, media, url, message
):
    response = auth_client(user).post(
        "/image-to-3d", {"image_file": png_file(), "webhookUrl": url}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert not Job.objects.exists() and not Upload.objects.exists()
    assert media.names("uploads") == set()


def test_an_anonymous_preview_with_a_receiver_is_a_400(api_client):
    response = api_client.post(
        "/text-to-image", {"prompt": "a mug", "webhookUrl": HOOK}, format="json"
    )

    assert response.status_code == 400
    assert "signed-in caller" in response.json()["error"]
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)  # the view's threads see the user
def test_a_signed_in_preview_keeps_its_receiver(auth_client, user, settings):
    settings.PREVIEW_WAIT_SECONDS = 0  # no preview worker here: answered at once, the job kept

    response = auth_client(user).post(
        "/text-to-image", {"prompt": "a mug", "webhookUrl": HOOK}, format="json"
    )

    assert response.status_code == 503
    assert Job.objects.get(pk=response.json()["preview_id"]).webhook_url == HOOK
