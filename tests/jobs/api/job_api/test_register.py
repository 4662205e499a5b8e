"""POST /api/3d/register-job: recording a preview the client already has."""

import uuid

import pytest
from django.core.files.storage import default_storage

from jobs import storage
from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory, UserFactory

URL = "/api/3d/register-job"
FOREIGN_PREVIEW = "https://cdn.example.com/previews/car.png"


def register(client, job_id, preview_url=FOREIGN_PREVIEW, **fields):
    payload = {"job_id": str(job_id), "previewImageUrl": preview_url, **fields}
    return client.post(URL, payload, format="json")


def test_a_preview_is_recorded_as_a_finished_job(auth_client, user):
    job_id = uuid.uuid4()

    response = register(auth_client(user), job_id, prompt="A red sports car")

    assert response.status_code == 200
    assert response.json() == {"success": True, "job_id": str(job_id)}
    record = auth_client(user).get(f"/api/3d/status/{job_id}").json()["job"]
    assert {
        key: record[key]
        for key in ("id", "userId", "status", "prompt", "previewImageUrl", "resultGlbUrl")
    } == {
        "id": str(job_id),
        "userId": user.pk,
        "status": "DONE",
        "prompt": "A red sports car",
        "previewImageUrl": FOREIGN_PREVIEW,
        "resultGlbUrl": None,
    }
    assert [job["id"] for job in auth_client(user).get("/api/3d/history").json()["jobs"]] == [
        str(job_id)
    ]


def test_registering_again_changes_nothing(auth_client, user):
    job_id = uuid.uuid4()
    first = register(auth_client(user), job_id, prompt="A red sports car")
    again = register(
        auth_client(user), job_id, "https://cdn.example.com/other.png", prompt="Something else"
    )

    assert again.status_code == 200
    assert again.json() == first.json()
    job = Job.objects.get()
    assert (job.prompt, job.registered_preview_url, job.user_id) == (
        "A red sports car",
        FOREIGN_PREVIEW,
        user.pk,
    )


def test_an_anonymous_registration_is_claimed_by_the_first_user_who_registers_it(
    api_client, auth_client, user
):
    job_id = uuid.uuid4()
    assert register(api_client, job_id).status_code == 200
    assert Job.objects.get(pk=job_id).user_id is None

    assert register(auth_client(user), job_id).status_code == 200

    assert Job.objects.get(pk=job_id).user_id == user.pk
    assert Job.objects.count() == 1


def test_registering_an_existing_preview_attaches_the_user(auth_client, user):
    """The row /text-to-image wrote: registration keeps its file and state, adds the owner."""
    preview = JobFactory(
        user=None, kind=JobKind.PREVIEW, state=JobState.PROCESSING, preview_image=""
    )

    assert register(auth_client(user), preview.pk, prompt="ignored").status_code == 200

    preview.refresh_from_db()
    assert (preview.user_id, preview.state, preview.registered_preview_url) == (
        user.pk,
        JobState.PROCESSING,
        "",
    )


@pytest.mark.parametrize("caller", ["another user", "anonymous"])
def test_someone_elses_job_cannot_be_registered_over(auth_client, api_client, user, caller):
    job = JobFactory(user=user, kind=JobKind.PREVIEW, state=JobState.COMPLETED)
    client = api_client if caller == "anonymous" else auth_client(UserFactory())

    response = register(client, job.pk)

    assert response.status_code == 403
    assert response.json() == {"error": "You don't have permission to modify this job"}
    job.refresh_from_db()
    assert (job.user_id, job.registered_preview_url) == (user.pk, "")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"previewImageUrl": FOREIGN_PREVIEW}, "job_id"),
        ({"job_id": "not-a-uuid", "previewImageUrl": FOREIGN_PREVIEW}, "job_id"),
        ({"job_id": str(uuid.uuid4())}, "previewImageUrl"),
        ({"job_id": str(uuid.uuid4()), "previewImageUrl": "file:///etc/passwd"}, "previewImageUrl"),
        (
            {"job_id": str(uuid.uuid4()), "previewImageUrl": FOREIGN_PREVIEW, "prompt": "x" * 1001},
            "prompt",
        ),
    ],
)
def test_invalid_input_is_a_400(api_client, db, payload, field):
    response = api_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: ")
    assert not Job.objects.exists()


# --- Previews in our own storage -------------------------------------------------------------


class OwnAddresses:
    """Addresses of stored files as a client holds them: for S3 without their signature (as if it
    had expired), for local storage under the host the client calls (``localhost``: URL
    validation refuses the test client's dotless ``testserver``)."""

    def __init__(self, media):
        self.local = media.kind == "local"

    def url(self, name):
        if self.local:
            return f"http://localhost/media/{name}"
        return default_storage.url(name).split("?", 1)[0]

    def client(self, client):
        if self.local:
            client.defaults["SERVER_NAME"] = "localhost"
        return client


@pytest.fixture
def own(media):
    return OwnAddresses(media)


def test_another_jobs_preview_is_kept_as_a_foreign_url_and_goes_with_its_own_job(
    media, own, auth_client, user, django_capture_on_commit_callbacks
):
    """A preview belongs to the job that made it: registering its URL under another id gives
    no claim on the file, and deleting the job that made it deletes it."""
    data = b"preview image bytes"
    name = storage.save("previews", "car.png", data)
    theirs = JobFactory(
        user=UserFactory(), kind=JobKind.PREVIEW, state=JobState.COMPLETED, preview_image=name
    )
    client = own.client(auth_client(user))
    job_id = uuid.uuid4()

    assert register(client, job_id, own.url(name)).status_code == 200

    job = Job.objects.get(pk=job_id)
    assert (job.preview_image, job.registered_preview_url) == ("", own.url(name))
    assert client.get(f"/api/3d/status/{job_id}").json()["job"]["previewImageUrl"] == own.url(name)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/3d/jobs/{job_id}").status_code == 200
    assert media.exists(name)

    with django_capture_on_commit_callbacks(execute=True):
        assert auth_client(theirs.user).delete(f"/api/3d/jobs/{theirs.pk}").status_code == 200
    assert not media.exists(name)


@pytest.mark.parametrize("name", ["previews/never-stored.png", "previews/../results/x.glb"])
def test_an_address_in_our_storage_without_a_file_is_kept_as_given(own, api_client, db, name):
    job_id = uuid.uuid4()
    assert register(own.client(api_client), job_id, own.url(name)).status_code == 200
    job = Job.objects.get(pk=job_id)
    assert (job.preview_image, job.registered_preview_url) == ("", own.url(name))


@pytest.mark.parametrize("prefix, field", [("results", "result_glb"), ("uploads", None)])
def test_deleting_a_registration_never_deletes_a_file_it_did_not_make(
    media, own, auth_client, user, prefix, field, django_capture_on_commit_callbacks
):
    """Another user's GLB (or uploaded image) registered as a "preview" stays theirs."""
    name = storage.save(prefix, "theirs.bin", b"someone else's file")
    if field:
        JobFactory(user=UserFactory(), state=JobState.COMPLETED, **{field: name})
    client = own.client(auth_client(user))
    job_id = uuid.uuid4()
    assert register(client, job_id, own.url(name)).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/3d/jobs/{job_id}").status_code == 200

    assert media.exists(name)


def test_registration_does_not_depend_on_the_storage(s3_down, api_client, db):
    job_id = uuid.uuid4()
    address = f"{s3_down}/{default_storage.bucket_name}/previews/car.png"

    assert register(api_client, job_id, address).status_code == 200

    assert Job.objects.get(pk=job_id).registered_preview_url == address


# --- Only previews ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [JobKind.TEXT_TO_3D, JobKind.IMAGE_TO_3D])
def test_an_anonymous_3d_job_cannot_be_claimed_by_registering_its_id(
    api_client, auth_client, user, kind
):
    """Its anonymous submitter keeps it: /cancel still works for them, nobody became its owner."""
    job = JobFactory(user=None, kind=kind, state=JobState.PENDING)

    response = register(auth_client(user), job.pk)

    assert response.status_code == 403
    assert response.json() == {"error": "You don't have permission to modify this job"}
    job.refresh_from_db()
    assert (job.user_id, job.registered_preview_url) == (None, "")
    assert api_client.post(f"/cancel/{job.pk}").status_code == 200


def test_a_users_own_3d_job_cannot_be_registered_over_either(auth_client, user):
    job = JobFactory(user=user, kind=JobKind.TEXT_TO_3D, state=JobState.COMPLETED)

    response = register(auth_client(user), job.pk)

    assert response.status_code == 403
    job.refresh_from_db()
    assert (job.kind, job.registered_preview_url) == (JobKind.TEXT_TO_3D, "")
