"""POST /text-to-3d and /image-to-3d: the job is created, queued and described as the spec says."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from jobs import storage
from jobs.models import Job, JobKind, JobState
from tests.factories import UserFactory
from tests.helpers import images
from tests.helpers.schema import assert_matches_schema

pytestmark = pytest.mark.django_db

SUBMITTED_MESSAGE = "Job created successfully. Use /status/{job_id} to check progress."


def images_file(name, data):
    return SimpleUploadedFile(name, data, content_type="image/png")


def assert_submitted(response, path) -> Job:
    assert response.status_code == 200, response.content
    body = assert_matches_schema(response, path, "POST")
    job = Job.objects.get(pk=body["job_id"])
    assert body == {
        "job_id": str(job.pk),
        "status": "pending",
        "message": SUBMITTED_MESSAGE,
        "status_url": f"/status/{job.pk}",
        "stream_url": f"/stream/{job.pk}",
    }
    assert job.state == JobState.PENDING
    return job


def test_text_to_3d_from_a_urlencoded_form_as_the_frontend_sends_it(
    api_client, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/text-to-3d",
            "prompt=A+red+sports+car",
            content_type="application/x-www-form-urlencoded",
        )

    job = assert_submitted(response, "/text-to-3d")
    assert (job.kind, job.prompt, job.user_id) == (JobKind.TEXT_TO_3D, "A red sports car", None)
    assert enqueued == [str(job.pk)]


def test_text_to_3d_from_multipart_and_json(api_client):
    multipart = api_client.post("/text-to-3d", {"prompt": "a teapot"}, format="multipart")
    as_json = api_client.post("/text-to-3d", {"prompt": "a kettle"}, format="json")

    assert assert_submitted(multipart, "/text-to-3d").prompt == "a teapot"
    assert assert_submitted(as_json, "/text-to-3d").prompt == "a kettle"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "prompt: This field is required."),
        ({"prompt": "   "}, "prompt: This field may not be blank."),
        ({"prompt": "x" * 1001}, "prompt: Ensure this field has no more than 1000 characters."),
        ({"prompt": "a\x00b"}, "prompt: Null characters are not allowed."),
    ],
)
def test_text_to_3d_refuses_a_bad_prompt(api_client, form, error):
    response = api_client.post("/text-to-3d", form)

    assert response.status_code == 400
    assert assert_matches_schema(response, "/text-to-3d", "POST") == {"error": error}
    assert not Job.objects.exists()


def test_a_user_id_must_be_the_callers_own(api_client, auth_client, user):
    anonymous = api_client.post("/text-to-3d", {"prompt": "a mug", "user_id": user.pk})
    someone_else = auth_client(UserFactory()).post(
        "/text-to-3d", {"prompt": "a mug", "user_id": user.pk}
    )
    own = auth_client(user).post("/text-to-3d", {"prompt": "a mug", "user_id": user.pk})

    assert anonymous.status_code == 401
    assert assert_matches_schema(anonymous, "/text-to-3d", "POST") == {
        "error": "Authentication required"
    }
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="api"'
    assert someone_else.status_code == 403
    assert someone_else.json() == {"error": "user_id does not match the authenticated user"}
    assert assert_submitted(own, "/text-to-3d").user_id == user.pk
    assert Job.objects.count() == 1


def test_a_job_submitted_with_a_token_belongs_to_its_user(auth_client, user):
    job = assert_submitted(
        auth_client(user).post("/text-to-3d", {"prompt": "a vase"}), "/text-to-3d"
    )

    assert job.user_id == user.pk


def test_image_to_3d_from_a_public_url(api_client, enqueued, django_capture_on_commit_callbacks):
    url = "https://images.example.com/chair.png"

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post("/image-to-3d", {"image_url": url})

    job = assert_submitted(response, "/image-to-3d")

    assert (job.kind, job.image_url, job.input_image) == (JobKind.IMAGE_TO_3D, url, "")
    assert enqueued == [str(job.pk)]


def test_image_to_3d_from_an_uploaded_file_keeps_it_by_storage_name(api_client):
    upload = images_file("chair.png", images.png())

    response = api_client.post("/image-to-3d", {"image_file": upload}, format="multipart")

    job = assert_submitted(response, "/image-to-3d")
    assert job.input_image.startswith("uploads/") and default_storage.exists(job.input_image)
    assert job.image_url.startswith("http")


def test_an_image_url_into_our_own_storage_is_read_from_storage(api_client):
    uploaded = api_client.post(
        "/api/3d/upload-image", {"image": images_file("a.png", images.png())}, format="multipart"
    )
    url = uploaded.json()["url"]  # a loopback URL (the test S3 endpoint), yet ours: accepted

    job = assert_submitted(api_client.post("/image-to-3d", {"image_url": url}), "/image-to-3d")

    assert job.input_image.startswith("uploads/")


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "image_url or image_file is required"),
        ({"image_url": ""}, "image_url or image_file is required"),
        ({"image_url": "ftp://images.example.com/a.png"}, "image_url: Enter a valid http(s) URL."),
        ({"image_url": "not a url"}, "image_url: Enter a valid http(s) URL."),
        (
            {"image_url": "http://127.0.0.1/a.png"},
            "The image URL is not allowed: 127.0.0.1 is not a public host",
        ),
        (
            {"image_url": "http://169.254.169.254/latest/meta-data/"},
            "The image URL is not allowed: 169.254.169.254 is not a public host",
        ),
        (
            {"image_url": "http://intranet.corp.example/a.png"},
            "The image URL is not allowed: intranet.corp.example is not a public host",
        ),
        (
            {"image_url": "http://user:secret@images.example.com/a.png"},
            "The image URL is not allowed: credentials in URLs are not accepted",
        ),
        (
            {"image_url": "http://nowhere.invalid/a.png"},
            "The image URL is not allowed: nowhere.invalid is not a public host",
        ),
    ],
)
def test_image_to_3d_refuses_a_bad_or_forbidden_url_before_a_job_exists(
    api_client, names, enqueued, form, error
):
    names["intranet.corp.example"] = ["93.184.215.14", "10.1.2.3"]  # one private answer is enough

    response = api_client.post("/image-to-3d", form)

    assert response.status_code == 400
    assert assert_matches_schema(response, "/image-to-3d", "POST") == {"error": error}
    assert not Job.objects.exists() and enqueued == []


def test_image_to_3d_refuses_a_file_that_is_not_an_image(api_client, monkeypatch):
    stored = []
    monkeypatch.setattr(storage, "save", lambda *args: stored.append(args))

    response = api_client.post(
        "/image-to-3d", {"image_file": images_file("x.png", b"not an image")}, format="multipart"
    )

    assert response.status_code == 400
    assert assert_matches_schema(response, "/image-to-3d", "POST") == {
        "error": "File is not a valid image"
    }
    assert stored == [] and not Job.objects.exists()


def test_the_job_api_refuses_a_forbidden_image_url_too(auth_client, user):
    response = auth_client(user).post(
        "/api/3d/generate", {"imageUrl": "http://[::ffff:10.0.0.1]/a.png"}, format="json"
    )

    assert response.status_code == 400
    assert "not allowed" in assert_matches_schema(response, "/api/3d/generate", "POST")["error"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/text-to-3d", "/text-to-image"])
def test_a_job_the_broker_cannot_take_is_a_503_and_no_job(api_client, broker_down, path):
    response = api_client.post(path, {"prompt": "a lamp"})

    assert response.status_code == 503
    assert assert_matches_schema(response, path, "POST") == {
        "error": "External service unavailable. Please try again later."
    }
    assert not Job.objects.exists()
