"""POST /api/3d/generate: input, validation, the job it writes. (Queueing:
tests/jobs/services/test_enqueue.py.)"""

import uuid

import pytest

from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory, UserFactory

URL = "/api/3d/generate"
# A public address written as an IP literal: the check that image URLs lead outside our network
# resolves host names, and the tests make no DNS queries.
IMAGE_URL = "https://1.1.1.1/images/chair.png"


def generate(client, payload):
    return client.post(URL, payload, format="json")


def test_text_prompt_creates_a_waiting_job_owned_by_the_caller(auth_client, user):
    response = generate(auth_client(user), {"prompt": "  A red sports car  "})

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["jobId"]
    job = Job.objects.get(pk=uuid.UUID(body["jobId"]))
    assert (job.kind, job.state, job.user_id) == (JobKind.TEXT_TO_3D, JobState.PENDING, user.pk)
    assert job.prompt == "A red sports car"
    assert job.image_url is None

    seen = auth_client(user).get(f"/api/3d/status/{body['jobId']}").json()["job"]
    assert seen["status"] == "WAIT"
    assert seen["userId"] == user.pk
    assert (seen["generateType"], seen["faceCount"], seen["enablePBR"], seen["polygonType"]) == (
        "Normal",
        None,
        False,
        None,
    )


def test_image_url_makes_an_image_to_3d_job(auth_client, user):
    response = generate(auth_client(user), {"imageUrl": IMAGE_URL, "prompt": None})

    assert response.status_code == 200
    job = Job.objects.get(pk=response.json()["jobId"])
    assert (job.kind, job.image_url, job.prompt) == (JobKind.IMAGE_TO_3D, IMAGE_URL, None)
    seen = auth_client(user).get(f"/api/3d/status/{job.pk}").json()["job"]
    assert (seen["imageUrl"], seen["prompt"]) == (IMAGE_URL, None)


def test_an_s3_outage_while_checking_our_own_image_url_is_a_503(
    s3_down, auth_client, user, settings
):
    bucket = settings.STORAGES["default"]["OPTIONS"]["bucket_name"]

    response = generate(auth_client(user), {"imageUrl": f"{s3_down}/{bucket}/uploads/image-1.png"})

    assert response.status_code == 503
    assert response.json() == {"error": "External service unavailable. Please try again later."}
    assert not Job.objects.exists()


def test_an_address_of_ours_naming_a_file_outside_the_storage_is_a_foreign_url(
    media, auth_client, user, settings
):
    """``/media//etc/passwd``: not a file of ours, so checked like any foreign URL (and this one
    leads to loopback), not a storage error."""
    client = auth_client(user)
    if media.kind == "local":
        client.defaults["SERVER_NAME"] = "127.0.0.1"
        address = "http://127.0.0.1/media//etc/passwd"
    else:
        options = settings.STORAGES["default"]["OPTIONS"]
        address = f"{options['endpoint_url']}/{options['bucket_name']}//etc/passwd"

    response = generate(client, {"imageUrl": address})

    assert response.status_code == 400
    assert response.json() == {
        "error": "The image URL is not allowed: 127.0.0.1 is not a public host"
    }
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:5432/x.png", "http://10.0.0.7/x.png", "http://[::1]/x.png"]
)
def test_an_image_url_into_a_private_network_is_refused(auth_client, user, address):
    response = generate(auth_client(user), {"imageUrl": address})

    assert response.status_code == 400
    assert "not allowed" in response.json()["error"]
    assert not Job.objects.exists()


def test_options_are_stored_and_shown(auth_client, user):
    options = {
        "generateType": "LowPoly",
        "faceCount": 5000,
        "enablePBR": True,
        "polygonType": "triangle",
    }
    response = generate(auth_client(user), {"prompt": "a teapot", **options})

    assert response.status_code == 200
    job = auth_client(user).get(f"/api/3d/status/{response.json()['jobId']}").json()["job"]
    assert {key: job[key] for key in options} == options


@pytest.mark.parametrize("generate_type", ["Normal", "LowPoly", "Geometry", "Sketch"])
def test_every_generate_type_is_accepted(auth_client, user, generate_type):
    response = generate(auth_client(user), {"prompt": "a lamp", "generateType": generate_type})
    assert response.status_code == 200
    assert Job.objects.get(pk=response.json()["jobId"]).generate_type == generate_type


@pytest.mark.parametrize(
    "payload",
    [{}, {"prompt": ""}, {"prompt": "   "}, {"imageUrl": ""}, {"prompt": None, "imageUrl": None}],
)
def test_prompt_or_image_url_is_required(auth_client, user, payload):
    response = generate(auth_client(user), payload)

    assert response.status_code == 400
    assert response.json() == {"error": "Either prompt or imageUrl is required"}
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("generateType", "Ultra"),
        ("generateType", "normal"),
        ("generateType", 1),
        ("generateType", None),
        ("faceCount", 99),
        ("faceCount", 1_500_001),
        ("faceCount", -5),
        ("faceCount", "5000"),
        ("faceCount", 5000.5),
        ("faceCount", True),
        ("enablePBR", "true"),
        ("enablePBR", 1),
        ("enablePBR", None),
        ("polygonType", "hexagon"),
        ("polygonType", 3),
        ("imageUrl", "ftp://example.com/a.png"),
        ("imageUrl", "javascript:alert(1)"),
        ("imageUrl", "not a url"),
        ("prompt", "x" * 1001),
    ],
)
def test_invalid_options_are_a_400_naming_the_field(auth_client, user, field, value):
    payload = {"prompt": "a chair", field: value}
    response = generate(auth_client(user), payload)

    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: ")
    assert not Job.objects.exists()


@pytest.mark.parametrize("face_count", [100, 1_500_000, None])
def test_face_count_bounds_are_inclusive_and_null_means_default(auth_client, user, face_count):
    response = generate(auth_client(user), {"prompt": "a chair", "faceCount": face_count})
    assert response.status_code == 200
    assert Job.objects.get(pk=response.json()["jobId"]).face_count == face_count


def test_quadrilateral_meshes_are_refused_with_a_clear_message(auth_client, user):
    response = generate(auth_client(user), {"prompt": "a chair", "polygonType": "quadrilateral"})

    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("polygonType: ")
    assert "quadrilateral" in message and "not supported" in message
    assert not Job.objects.exists()


@pytest.mark.parametrize("body", ["[1, 2]", '"a chair"', "{not json"])
def test_a_body_that_is_not_a_json_object_is_a_400(auth_client, user, body):
    response = auth_client(user).post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_anonymous_callers_get_401(api_client, db):
    response = generate(api_client, {"prompt": "a chair"})

    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required"}
    assert not Job.objects.exists()


# --- Reusing a preview -----------------------------------------------------------------------


def make_preview(user, prompt, image="previews/car.png", **fields):
    fields = {"state": JobState.COMPLETED, "preview_image": image, **fields}
    return JobFactory(kind=JobKind.PREVIEW, user=user, prompt=prompt, **fields)


def test_text_to_3d_reuses_the_callers_preview_for_the_same_prompt(auth_client, user):
    make_preview(user, "A red sports car", image="previews/old.png")
    make_preview(user, "A red sports car", image="previews/latest.png")

    response = generate(auth_client(user), {"prompt": "A red sports car"})

    job = Job.objects.get(pk=response.json()["jobId"])
    assert job.preview_image == "previews/latest.png"
    shown = auth_client(user).get(f"/api/3d/status/{job.pk}").json()["job"]
    assert "previews/latest.png" in shown["previewImageUrl"]


@pytest.mark.parametrize(
    "preview",
    [
        {"owner": "someone else"},
        {"prompt": "A blue sports car"},
        {"state": JobState.FAILED},
        {"state": JobState.PENDING},
        {"image": ""},
        {"test_mode": True},  # a test key's: the weight-free model's, no picture of the prompt
    ],
)
def test_no_preview_is_reused_unless_same_user_same_prompt_and_finished(auth_client, user, preview):
    owner = UserFactory() if preview.get("owner") else user
    extra = {key: preview[key] for key in ("state", "test_mode") if key in preview}
    make_preview(
        owner,
        preview.get("prompt", "A red sports car"),
        preview.get("image", "previews/x.png"),
        **extra,
    )

    response = generate(auth_client(user), {"prompt": "A red sports car"})

    assert Job.objects.get(pk=response.json()["jobId"]).preview_image == ""


def test_image_to_3d_does_not_take_a_preview(auth_client, user):
    make_preview(user, "A red sports car")
    response = generate(auth_client(user), {"prompt": "A red sports car", "imageUrl": IMAGE_URL})
    assert Job.objects.get(pk=response.json()["jobId"]).preview_image == ""
