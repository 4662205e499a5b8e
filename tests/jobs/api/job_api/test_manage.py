"""PATCH /api/3d/jobs/:jobId/name and DELETE /api/3d/jobs/:jobId."""

import uuid

import pytest

from jobs import storage
from jobs.models import Job, JobKind, JobState
from tests.factories import JobFactory, UserFactory


def rename(client, job_id, payload):
    return client.patch(f"/api/3d/jobs/{job_id}/name", payload, format="json")


def delete(client, job_id):
    return client.delete(f"/api/3d/jobs/{job_id}")


# --- Rename ----------------------------------------------------------------------------------


def test_the_owner_renames_a_job(auth_client, user):
    job = JobFactory(user=user)

    response = rename(auth_client(user), job.pk, {"name": "  My Custom Name  "})

    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Job name updated"}
    assert (
        auth_client(user).get(f"/api/3d/status/{job.pk}").json()["job"]["name"] == "My Custom Name"
    )


def test_staff_rename_any_job(auth_client, user):
    job = JobFactory(user=user)
    assert (
        rename(auth_client(UserFactory(is_staff=True)), job.pk, {"name": "Tidy"}).status_code == 200
    )
    job.refresh_from_db()
    assert job.name == "Tidy"


def test_another_user_may_not_rename(auth_client, user):
    job = JobFactory(user=user, name="Mine")

    response = rename(auth_client(UserFactory()), job.pk, {"name": "Theirs"})

    assert response.status_code == 403
    assert response.json() == {"error": "You don't have permission to rename this job"}
    job.refresh_from_db()
    assert job.name == "Mine"


@pytest.mark.parametrize(
    "payload", [{}, {"name": ""}, {"name": "   "}, {"name": None}, {"name": "x" * 256}]
)
def test_an_invalid_name_is_a_400(auth_client, user, payload):
    job = JobFactory(user=user, name="Kept")

    response = rename(auth_client(user), job.pk, payload)

    assert response.status_code == 400
    assert response.json()["error"].startswith("name: ")
    job.refresh_from_db()
    assert job.name == "Kept"


def test_rename_requires_authentication(api_client, user):
    job = JobFactory(user=None)
    response = rename(api_client, job.pk, {"name": "x"})
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required"}


# --- Delete ----------------------------------------------------------------------------------


def test_the_owner_deletes_a_job(auth_client, user, django_capture_on_commit_callbacks):
    job = JobFactory(user=user)

    with django_capture_on_commit_callbacks(execute=True):
        response = delete(auth_client(user), job.pk)

    assert response.status_code == 200
    assert response.json() == {"success": True, "message": "Job deleted"}
    assert auth_client(user).get(f"/api/3d/status/{job.pk}").status_code == 404
    assert auth_client(user).get("/api/3d/history").json() == {"jobs": []}


def test_staff_delete_any_job(auth_client, user):
    job = JobFactory(user=user)
    assert delete(auth_client(UserFactory(is_staff=True)), job.pk).status_code == 200
    assert not Job.objects.filter(pk=job.pk).exists()


def test_another_user_may_not_delete(auth_client, user):
    job = JobFactory(user=user)

    response = delete(auth_client(UserFactory()), job.pk)

    assert response.status_code == 403
    assert response.json() == {"error": "You don't have permission to delete this job"}
    assert Job.objects.filter(pk=job.pk).exists()


def test_delete_requires_authentication(api_client, user):
    job = JobFactory(user=user)
    response = delete(api_client, job.pk)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required"}
    assert Job.objects.filter(pk=job.pk).exists()


def test_an_ownerless_job_is_renamed_or_deleted_by_nobody_but_staff(auth_client, user):
    """Its id may have leaked: holding it proves nothing about who submitted the job."""
    job = JobFactory(user=None, name="Anonymous")

    renamed = rename(auth_client(user), job.pk, {"name": "Adopted"})
    deleted = delete(auth_client(user), job.pk)

    assert (renamed.status_code, renamed.json()) == (
        403,
        {"error": "You don't have permission to rename this job"},
    )
    assert (deleted.status_code, deleted.json()) == (
        403,
        {"error": "You don't have permission to delete this job"},
    )
    job.refresh_from_db()
    assert job.name == "Anonymous"
    staff = auth_client(UserFactory(is_staff=True))
    assert rename(staff, job.pk, {"name": "Tidied"}).status_code == 200
    assert delete(staff, job.pk).status_code == 200
    assert not Job.objects.filter(pk=job.pk).exists()


@pytest.mark.parametrize("job_id", [uuid.uuid4(), "not-a-uuid", "12345"])
def test_unknown_and_malformed_ids_are_404(auth_client, user, job_id):
    for response in (
        rename(auth_client(user), job_id, {"name": "x"}),
        delete(auth_client(user), job_id),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "Job not found"}


# --- Delete and storage ----------------------------------------------------------------------


def stored(prefix, filename, data=b"file body"):
    return storage.save(prefix, filename, data)


def test_delete_removes_the_jobs_files(
    media, auth_client, user, django_capture_on_commit_callbacks
):
    job = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        result_glb=stored("results", "mesh.glb"),
        preview_image=stored("previews", "preview.png"),
        processed_image=stored("processed", "cutout.png"),
    )
    files = [job.result_glb, job.preview_image, job.processed_image]
    assert all(media.exists(name) for name in files)

    with django_capture_on_commit_callbacks(execute=True):
        assert delete(auth_client(user), job.pk).status_code == 200

    assert [name for name in files if media.exists(name)] == []


def test_delete_keeps_a_preview_another_job_still_uses(
    media, auth_client, user, django_capture_on_commit_callbacks
):
    shared = stored("previews", "car.png")
    preview = JobFactory(
        user=user, kind=JobKind.PREVIEW, state=JobState.COMPLETED, preview_image=shared
    )
    model = JobFactory(
        user=user,
        state=JobState.COMPLETED,
        preview_image=shared,
        result_glb=stored("results", "car.glb"),
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert delete(auth_client(user), model.pk).status_code == 200
    assert not media.exists(model.result_glb)
    assert media.exists(shared)
    assert auth_client(user).get(f"/api/3d/status/{preview.pk}").json()["job"]["previewImageUrl"]

    with django_capture_on_commit_callbacks(execute=True):
        assert delete(auth_client(user), preview.pk).status_code == 200
    assert not media.exists(shared)
