"""The spec's "Examples" workflows, as the frontend runs them: over HTTP, against the whole service
(scripts/serve.sh: gunicorn and the Celery workers) with the tiny models."""

import io
import os
import signal
import time
from pathlib import Path

import pytest
import requests
import trimesh
from PIL import Image, ImageDraw

from tests.helpers.processes import Service, log_text, serving

pytestmark = [pytest.mark.worker, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

JOB_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def service(django_db_setup, token_minter, tmp_path_factory, tiny_models_dir):
    env = {
        "CLERK_JWT_KEY": token_minter.public_pem,
        "CLERK_AUTHORIZED_PARTIES": "http://localhost:3000",
        "TINY_MODELS_DIR": str(tiny_models_dir),
        "MESH_GRID_SIZE": "32",
        "WEB_PROCESSES": "1",
        "WEB_THREADS": "8",
        "METRICS_TOKEN": "",  # metrics off: tests/hydrilla/test_metrics_service.py turns them on
    }
    with serving(tmp_path_factory.mktemp("service"), env) as running:
        yield running


@pytest.fixture
def frontend(service, token_minter):
    """What the Next.js app sends: a Clerk bearer token to the job API."""
    session = requests.Session()
    # Clerk's tokens live a minute and the browser refreshes them; one token for the whole test
    # here.
    token = token_minter.token("user_frontend", exp=int(time.time()) + 3600)
    session.headers["Authorization"] = f"Bearer {token}"
    return service.base, session


def poll_until_done(base: str, session: requests.Session, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        response = session.get(f"{base}/api/3d/status/{job_id}", timeout=10)
        assert response.ok, response.text
        job, queue = response.json()["job"], response.json()["queue"]
        assert set(queue) >= {"position", "jobs_ahead", "estimated_total_seconds"}
        if job["status"] in ("DONE", "FAIL"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def glb_faces(url: str) -> int:
    response = requests.get(url, timeout=30)
    assert response.ok
    return len(trimesh.load(io.BytesIO(response.content), file_type="glb", force="mesh").faces)


def test_text_to_3d_with_a_preview_and_register_job(frontend):
    base, session = frontend
    preview = requests.post(
        f"{base}/text-to-image",
        data={"prompt": "A red sports car"},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert preview.ok, preview.text
    preview = preview.json()
    assert requests.get(preview["image_url"], timeout=10).content[:8] == b"\x89PNG\r\n\x1a\n"

    registered = session.post(
        f"{base}/api/3d/register-job",
        json={
            "job_id": preview["preview_id"],
            "prompt": "A red sports car",
            "previewImageUrl": preview["image_url"],
        },
        timeout=10,
    )
    assert registered.json() == {"success": True, "job_id": preview["preview_id"]}

    job_id = session.post(
        f"{base}/api/3d/generate", json={"prompt": "A red sports car"}, timeout=10
    ).json()["jobId"]
    job = poll_until_done(base, session, job_id)

    assert job["status"] == "DONE", job["errorMessage"]
    assert glb_faces(job["resultGlbUrl"]) > 0
    # The 3D job reused the registered preview instead of generating a second one.
    reused = requests.get(job["previewImageUrl"], timeout=10).content
    assert reused == requests.get(preview["image_url"], timeout=10).content


def test_image_to_3d_with_an_upload_then_rename_and_history(frontend):
    base, session = frontend
    photo = Image.new("RGB", (256, 256), (238, 238, 234))
    ImageDraw.Draw(photo).rounded_rectangle((70, 60, 190, 200), radius=20, fill=(40, 120, 60))
    upload = io.BytesIO()
    photo.save(upload, format="JPEG")
    url = requests.post(
        f"{base}/api/3d/upload-image", files={"image": ("toy.jpg", upload.getvalue())}, timeout=30
    ).json()["url"]

    job_id = session.post(f"{base}/api/3d/generate", json={"imageUrl": url}, timeout=10).json()[
        "jobId"
    ]
    job = poll_until_done(base, session, job_id)
    assert job["status"] == "DONE", job["errorMessage"]
    assert glb_faces(job["resultGlbUrl"]) > 0

    renamed = session.patch(
        f"{base}/api/3d/jobs/{job_id}/name", json={"name": "My Custom Model Name"}, timeout=10
    )
    assert renamed.json() == {"success": True, "message": "Job name updated"}
    jobs = session.get(f"{base}/api/3d/history", timeout=10).json()["jobs"]
    assert jobs[0]["id"] == job_id and jobs[0]["name"] == "My Custom Model Name"
    assert [entry["createdAt"] for entry in jobs] == sorted(
        (entry["createdAt"] for entry in jobs), reverse=True
    )


def gpu_worker_main_process(service: Service) -> int | None:
    """The pid of the gpu worker's main process (not its pool child) in the service's session."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            in_service = os.getpgid(int(entry.name)) == service.process.pid
            parent_command = Path(f"/proc/{parent}/cmdline").read_bytes()
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile
        if in_service and b"gpu@%h" in command and b"celery" not in parent_command:
            return int(entry.name)
    return None


def test_a_worker_that_dies_is_started_again_while_the_api_keeps_answering(frontend, service):
    base, session = frontend
    doomed = gpu_worker_main_process(service)
    assert doomed is not None, log_text(service.log)
    ready_before = log_text(service.log, tail=None).count(" ready.")

    os.kill(doomed, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while not (
        log_text(service.log, tail=None).count(" ready.") > ready_before
        and gpu_worker_main_process(service)
    ):
        assert time.monotonic() < deadline, (
            f"the gpu worker was not started again:\n{log_text(service.log)}"
        )
        assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok"}
        time.sleep(0.5)

    assert gpu_worker_main_process(service) != doomed
    assert "gpu-worker exited with status 137" in log_text(service.log, tail=None)  # 128 + SIGKILL
    job_id = session.post(
        f"{base}/api/3d/generate", json={"prompt": "a phoenix"}, timeout=10
    ).json()["jobId"]
    job = poll_until_done(base, session, job_id)
    assert job["status"] == "DONE", job["errorMessage"]


def test_metrics_are_off_while_no_token_is_set(service):
    response = requests.get(
        f"{service.base}/metrics", headers={"Authorization": "Bearer "}, timeout=10
    )

    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}
