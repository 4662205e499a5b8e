"""A test API key's job through a real worker of the cpu queue alone, configured for weights it
does not have: the whole lifecycle on the weight-free path, every stage logged under the id of the
request that made the job."""

import io
import time

import pytest
import trimesh

from hydrilla import request_id
from jobs import storage
from jobs.models import Job, JobKind, JobState
from jobs.services import clients
from tests.factories import UserFactory
from tests.helpers.processes import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 120


@pytest.fixture
def cpu_worker(tiny_models_dir, django_db_setup):
    """A CPU worker whose live jobs could not run: the weights it is told to use are not there."""
    worker = WorkerProcess(
        queues="cpu",
        env={
            "TINY_MODELS_DIR": str(tiny_models_dir),
            "TEXT_TO_IMAGE_MODEL": "/no/such/text-to-image-weights",
            "IMAGE_TO_3D_BACKEND": "shap-e",
            "IMAGE_TO_3D_MODEL": "/no/such/shap-e-weights",
            "MESH_GRID_SIZE": "32",
            "HEARTBEAT_SECONDS": "1",
        },
    ).start()
    yield worker
    worker.stop()


def test_a_test_mode_job_runs_every_stage_on_the_cpu_worker_to_a_model(cpu_worker):
    with request_id.bound("trace-ci-7"):
        job = clients.create_job(
            api=clients.ApiHalf.JOB,
            kind=JobKind.TEXT_TO_3D,
            user=UserFactory(),
            prompt="a red ceramic mug",
            options=clients.JobOptions(face_count=500),
            test_mode=True,
        )

    deadline = time.monotonic() + TIMEOUT_SECONDS
    while job.state not in (JobState.COMPLETED, JobState.FAILED) and time.monotonic() < deadline:
        time.sleep(0.3)
        job.refresh_from_db()

    log = cpu_worker.output()
    assert job.state == JobState.COMPLETED, f"{job.error_message}\n{log[-4000:]}"
    assert [run["stage"] for run in job.stage_runs] == [
        "text_to_image",
        "prepare",
        "image_to_3d",
        "finish",
    ]
    assert {run["worker"].split("@")[0] for run in job.stage_runs} == {cpu_worker.name}
    mesh = trimesh.load(io.BytesIO(storage.read(job.result_glb)), file_type="glb", force="mesh")
    assert 0 < len(mesh.faces) <= 500
    assert "image-to-3D backend silhouette" in log and "/no/such" not in log
    for stage in ("text_to_image", "prepare", "image_to_3d", "finish"):
        assert f"[trace-ci-7] generation.runner: Stage {stage} of job {job.pk} done" in log, stage
    assert Job.objects.get(pk=job.pk).request_id == "trace-ci-7"
