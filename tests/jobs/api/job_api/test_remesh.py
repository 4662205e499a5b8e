"""POST /api/3d/jobs/:jobId/remesh: a new job from the stored full-resolution mesh, on the CPU
queue, owned like its source, in history; it runs with no model loaded."""

import io

import numpy as np
import pytest
import trimesh

from generation import registry, runner
from generation.pipelines import prepare_mesh, save_source_mesh
from hydrilla.queues import CeleryQueue
from jobs import plan, storage
from jobs.models import Job, JobKind, JobState, Stage
from tests.factories import JobFactory, UserFactory


@pytest.fixture
def source_job(local_media, user):
    sphere = trimesh.creation.icosphere(subdivisions=4)  # 5120 faces
    colours = np.tile(np.array([200, 40, 40, 255], dtype=np.uint8), (len(sphere.vertices), 1))
    source = prepare_mesh(
        trimesh.Trimesh(sphere.vertices, sphere.faces, vertex_colors=colours, process=False)
    )
    return JobFactory(
        user=user,
        state=JobState.COMPLETED,
        face_count=5000,
        preview_image=storage.save("jobs/source", "preview.png", b"png"),
        result_glb=storage.save("jobs/source", "model.glb", b"glb"),
        source_mesh=storage.save("jobs/source", "source.ply", save_source_mesh(source)),
    )


def remesh(client, job, payload):
    return client.post(f"/api/3d/jobs/{job.pk}/remesh", payload, format="json")


def test_a_remesh_is_a_new_job_of_the_sources_owner_on_the_cpu_queue(
    auth_client, source_job, enqueued, django_capture_on_commit_callbacks
):
    staff = UserFactory(is_staff=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = remesh(
            auth_client(staff), source_job, {"faceCount": 300, "generateType": "LowPoly"}
        )

    assert response.status_code == 200
    job = Job.objects.get(pk=response.json()["jobId"])
    assert enqueued == [str(job.pk)] and job.stage == Stage.REMESH
    assert (job.kind, job.state, job.user_id) == (
        JobKind.REMESH,
        JobState.PENDING,
        source_job.user_id,
    )
    assert (job.face_count, job.generate_type, job.enable_pbr) == (
        300,
        "LowPoly",
        source_job.enable_pbr,
    )
    assert job.source_mesh == source_job.source_mesh and job.prompt == source_job.prompt
    assert (
        plan.stages(JobKind.REMESH) == (Stage.REMESH,)
        and plan.QUEUES[Stage.REMESH] == CeleryQueue.CPU
    )
    history = auth_client(source_job.user).get("/api/3d/history").json()["jobs"]
    assert [entry["id"] for entry in history][:1] == [str(job.pk)]
    assert history[0]["status"] == "WAIT" and history[0]["faceCount"] == 300


def test_the_remesh_job_runs_with_no_model_loaded(auth_client, source_job, enqueued, monkeypatch):
    def no_model():
        raise AssertionError("a remesh loaded a model")

    monkeypatch.setattr(registry, "text_to_image_pipeline", no_model)
    monkeypatch.setattr(registry, "image_to_3d_pipeline", no_model)
    job_id = remesh(auth_client(source_job.user), source_job, {"faceCount": 800}).json()["jobId"]

    runner.run_stage(job_id, Stage.REMESH, worker="cpu@test")

    job = Job.objects.get(pk=job_id)
    assert job.state == JobState.COMPLETED, job.error_message
    (mesh,) = trimesh.load(
        io.BytesIO(storage.read(job.result_glb)), file_type="glb"
    ).geometry.values()
    assert 0 < len(mesh.faces) <= 800 and mesh.visual.material.baseColorTexture is not None
    body = auth_client(source_job.user).get(f"/api/3d/status/{job_id}").json()
    assert body["job"]["status"] == "DONE" and body["job"]["resultGlbUrl"] and body["formats"]


def test_deleting_the_source_keeps_the_mesh_its_remesh_still_uses(
    auth_client, source_job, enqueued, local_media, django_capture_on_commit_callbacks
):
    client = auth_client(source_job.user)
    job_id = remesh(client, source_job, {}).json()["jobId"]

    with django_capture_on_commit_callbacks(execute=True):
        client.delete(f"/api/3d/jobs/{source_job.pk}")

    assert local_media.exists(source_job.source_mesh)
    assert not local_media.exists(source_job.result_glb)
    with django_capture_on_commit_callbacks(execute=True):
        client.delete(f"/api/3d/jobs/{job_id}")
    assert not local_media.exists(source_job.source_mesh) and not local_media.exists(
        source_job.preview_image
    )


def test_remeshing_needs_a_stored_mesh_valid_options_and_the_right_owner(
    auth_client, api_client, source_job, user
):
    without_mesh = JobFactory(user=user, state=JobState.COMPLETED, result_glb="jobs/old/model.glb")
    client = auth_client(user)

    no_mesh = remesh(client, without_mesh, {"faceCount": 500})
    quads = remesh(client, source_job, {"polygonType": "quadrilateral"})
    too_few = remesh(client, source_job, {"faceCount": 10})
    stranger = remesh(auth_client(UserFactory()), source_job, {})
    anonymous = remesh(api_client, source_job, {})

    assert no_mesh.status_code == 409
    assert no_mesh.json() == {"error": "This job has no full-resolution mesh to remesh"}
    assert quads.status_code == 400 and "quadrilateral" in quads.json()["error"]
    assert too_few.status_code == 400 and too_few.json()["error"].startswith("faceCount")
    assert stranger.status_code == 403
    assert stranger.json() == {"error": "You don't have permission to remesh this job"}
    assert anonymous.status_code == 401
    assert Job.objects.filter(kind=JobKind.REMESH).count() == 0
