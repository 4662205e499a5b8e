"""The job lifecycle through a real Celery worker process, its broker and storage, with the tiny
models: what a client of the API sees from submission to the end."""

import io
import os
import signal
import time

import pytest
import trimesh
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image, ImageDraw

from celery_app import app as celery
from jobs import storage
from jobs.models import Job, JobKind, JobState
from jobs.plan import stage_task
from jobs.services import clients
from tests.factories import JobFactory, UserFactory
from tests.helpers.processes import WorkerProcess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT_SECONDS = 120


def worker_settings(tiny_models_dir, **overrides) -> dict[str, str]:
    return {
        "TINY_MODELS_DIR": str(tiny_models_dir),
        "MESH_GRID_SIZE": "32",
        "HEARTBEAT_SECONDS": "1",
        "ORPHAN_AFTER_SECONDS": "4",
        "SWEEP_SECONDS": "1",
        **overrides,
    }


@pytest.fixture(scope="module")
def start_worker(tiny_models_dir, django_db_setup):
    started = []

    def start(queues="gpu,preview,cpu", **overrides) -> WorkerProcess:
        process = WorkerProcess(queues=queues, env=worker_settings(tiny_models_dir, **overrides))
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def worker(start_worker):
    """One worker for the module: starting one costs seconds (torch, diffusers imports)."""
    return start_worker()


SLOW_QUEUE = "test-slow"


# Enough text-to-image steps to catch a job in its first model call (seconds, with the load).
SLOW_TEXT_TO_IMAGE = {"TEXT_TO_IMAGE_STEPS": "40"}


@pytest.fixture(scope="module")
def slow_worker(start_worker):
    """A slow first model call, on a queue of its own; the job's later stages go to the real
    queues (the module's worker)."""
    return start_worker(queues=SLOW_QUEUE, **SLOW_TEXT_TO_IMAGE)


def deliver(job: Job, queue: str) -> None:
    """Send the message of a job's current stage to a given queue (the services always use the
    stage's own queue)."""
    celery.send_task(stage_task(job.stage), args=[str(job.pk)], queue=queue)


def in_its_first_model_call(job: Job) -> bool:
    return job.state == JobState.PROCESSING and job.message == "Generating preview image…"


def wait_for(
    job: Job, predicate, timeout=JOB_TIMEOUT_SECONDS, worker: WorkerProcess | None = None
) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if predicate(job):
            return job
        time.sleep(0.2)
    log = worker.output()[-4000:] if worker else ""
    raise AssertionError(f"job stuck at {job.state} {job.progress}% {job.message!r}\n{log}")


def finished(job: Job) -> bool:
    return job.state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


def glb_faces(job: Job) -> int:
    mesh = trimesh.load(io.BytesIO(storage.read(job.result_glb)), file_type="glb", force="mesh")
    return len(mesh.faces)


def drawn_photo() -> bytes:
    image = Image.new("RGB", (256, 256), (240, 240, 236))
    ImageDraw.Draw(image).ellipse((60, 50, 200, 210), fill=(30, 90, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def submit(kind=JobKind.TEXT_TO_3D, **fields) -> Job:
    return clients.create_job(
        api=clients.ApiHalf.JOB, kind=kind, user=fields.pop("user", None), **fields
    )


def test_the_gpu_worker_runs_only_model_calls_and_the_cpu_worker_everything_around_them(
    start_worker,
):
    """First in this module, before the module's worker of every queue starts: a worker of the
    gpu queue alone leaves a photo job waiting at its first stage (fetch and cut-out); once a
    worker of the cpu queue starts, each stage runs on the worker of its queue."""
    gpu = start_worker(queues="gpu")
    cpu = None
    try:
        name = storage.save("uploads", "photo.png", drawn_photo())
        job = submit(kind=JobKind.IMAGE_TO_3D, image_url=storage.url(name), input_image=name)
        time.sleep(3)
        job.refresh_from_db()
        assert (job.state, job.stage, job.attempts, job.stage_runs) == (
            JobState.PENDING,
            "prepare",
            0,
            [],
        )

        cpu = start_worker(queues="cpu")
        job = wait_for(job, finished, worker=cpu)

        assert job.state == JobState.COMPLETED, job.error_message
        ran_on = [(run["stage"], run["worker"].split("@")[0]) for run in job.stage_runs]
        assert ran_on == [("prepare", cpu.name), ("image_to_3d", gpu.name), ("finish", cpu.name)]
        assert (job.attempts, job.raw_mesh, job.progress) == (1, "", 100)
        assert glb_faces(job) > 0
    finally:
        gpu.stop()
        if cpu is not None:
            cpu.stop()


def test_text_to_3d_job_ends_done_with_a_glb_within_its_face_count(worker):
    process = worker
    job = submit(prompt="a red ceramic mug", options=clients.JobOptions(face_count=500))

    job = wait_for(job, finished, worker=process)

    assert job.state == JobState.COMPLETED, job.error_message
    assert (job.progress, job.message, job.attempts) == (100, "Completed", 1)
    assert 0 < glb_faces(job) <= 500
    assert job.preview_image and job.processed_image
    assert Image.open(io.BytesIO(storage.read(job.preview_image))).size[0] > 0
    assert job.started_at and job.finished_at and job.elapsed_seconds > 0
    assert job.worker.startswith("test-")
    assert set(job.step_seconds) == {
        "text_to_image",
        "handoff",
        "input",
        "cut_out",
        "image_to_3d",
        "post_processing",
        "export",
        "upload",
    }
    assert all(seconds > 0 for seconds in job.step_seconds.values())
    # Each stage on the queue it belongs to, in order; the raw mesh between them is gone.
    assert [run["stage"] for run in job.stage_runs] == [
        "text_to_image",
        "prepare",
        "image_to_3d",
        "finish",
    ]
    assert job.raw_mesh == ""


def test_image_to_3d_job_from_an_uploaded_photo(worker):
    process = worker
    name = storage.save("uploads", "photo.png", drawn_photo())
    job = submit(
        kind=JobKind.IMAGE_TO_3D,
        image_url=storage.url(name),
        input_image=name,
        options=clients.JobOptions(generate_type="LowPoly", enable_pbr=True),
    )

    job = wait_for(job, finished, worker=process)

    assert job.state == JobState.COMPLETED, job.error_message
    assert glb_faces(job) > 0
    cut_out = Image.open(io.BytesIO(storage.read(job.processed_image)))
    assert cut_out.mode == "RGBA" and cut_out.getpixel((0, 0))[3] == 0  # background removed


def test_a_photo_with_no_object_fails_with_a_code_the_user_can_act_on(worker):
    process = worker
    blank = io.BytesIO()
    Image.new("RGB", (128, 128), "white").save(blank, format="PNG")
    name = storage.save("uploads", "blank.png", blank.getvalue())
    job = submit(kind=JobKind.IMAGE_TO_3D, image_url=storage.url(name), input_image=name)

    job = wait_for(job, finished, worker=process)

    assert (job.state, job.error_code) == (JobState.FAILED, "INVALID_IMAGE")
    assert "object" in job.error_message
    assert job.result_glb == ""


def test_a_job_cancelled_while_waiting_never_runs(worker):
    job = JobFactory(kind=JobKind.TEXT_TO_3D, state=JobState.PENDING, user=None)
    clients.request_cancel(job)
    deliver(job, "gpu")
    follow_up = submit(prompt="a chair")  # delivered after the cancelled one, in queue order

    wait_for(follow_up, finished, worker=worker)
    job.refresh_from_db()

    assert (job.state, job.attempts, job.result_glb) == (JobState.CANCELLED, 0, "")


def test_a_running_job_stops_at_its_next_step_when_cancelled(slow_worker):
    process = slow_worker
    job = JobFactory(
        kind=JobKind.TEXT_TO_3D, state=JobState.PENDING, user=None, prompt="a slow teapot"
    )
    deliver(job, SLOW_QUEUE)
    wait_for(job, in_its_first_model_call, worker=process)

    clients.request_cancel(job)
    job = wait_for(job, finished, timeout=30, worker=process)

    assert (job.state, job.error_code, job.result_glb, job.preview_image) == (
        JobState.CANCELLED,
        "CANCELLED",
        "",
        "",
    )
    _, files = default_storage.listdir(storage.job_folder(job.pk))
    assert files == []


def test_a_worker_killed_mid_job_loses_nothing(start_worker, worker):
    doomed = start_worker(queues="test-doomed", **SLOW_TEXT_TO_IMAGE)
    job = JobFactory(
        kind=JobKind.TEXT_TO_3D, state=JobState.PENDING, user=None, prompt="a sturdy anvil"
    )
    deliver(job, "test-doomed")
    wait_for(job, in_its_first_model_call, worker=doomed)

    doomed.kill()
    # Nobody consumes the dead worker's queue any more: the job comes back only because the other
    # worker's sweep finds its heartbeat silent for ORPHAN_AFTER_SECONDS and sends its stage again.
    job = wait_for(job, finished, worker=worker)

    assert job.state == JobState.COMPLETED, job.error_message
    assert job.attempts == 2
    assert glb_faces(job) > 0


@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("amqp"), reason="needs a broker that redelivers"
)
def test_a_killed_pool_child_s_job_is_taken_over_as_soon_as_its_message_comes_back(
    start_worker, worker
):
    """Only the pool child dies: its parent hands the message back, the broker redelivers it at
    the head of the queue, and the new child takes the job over because its process is gone.
    The heartbeat rule cannot be what recovers it: it would need ORPHAN_AFTER_SECONDS (600)."""
    survivor = start_worker(
        queues="test-takeover", ORPHAN_AFTER_SECONDS="600", **SLOW_TEXT_TO_IMAGE
    )
    job = JobFactory(
        kind=JobKind.TEXT_TO_3D, state=JobState.PENDING, user=None, prompt="a brave lantern"
    )
    deliver(job, "test-takeover")
    job = wait_for(job, in_its_first_model_call, worker=survivor)

    os.kill(int(job.worker_process.split("/")[2]), signal.SIGKILL)
    job = wait_for(job, finished, worker=survivor)

    assert job.state == JobState.COMPLETED, job.error_message
    assert job.attempts == 2
    assert glb_faces(job) > 0


def test_requeue_command_runs_a_failed_job_again_from_a_clean_slate(worker, capsys):
    job = JobFactory(
        state=JobState.FAILED,
        error_code="MODEL_ERROR",
        error_message="boom",
        attempts=1,
        progress=40,
        user=UserFactory(),
    )
    process = worker

    call_command("requeue_jobs", str(job.pk))
    job = wait_for(job, finished, worker=process)

    assert job.state == JobState.COMPLETED, job.error_message
    assert (job.attempts, job.error_code, job.error_message) == (2, None, None)
    assert str(job.pk) in capsys.readouterr().out


def test_a_3d_job_reuses_the_preview_the_user_already_made(worker):
    user = UserFactory()
    process = worker
    preview = submit(kind=JobKind.PREVIEW, user=user, prompt="a green frog")
    preview = wait_for(preview, finished, worker=process)
    assert preview.state == JobState.COMPLETED, preview.error_message

    job = submit(user=user, prompt="a green frog")
    job = wait_for(job, finished, worker=process)

    assert job.state == JobState.COMPLETED, job.error_message
    assert job.preview_image == preview.preview_image
    assert Job.objects.filter(preview_image=preview.preview_image).count() == 2
