"""The metrics of the whole service as `make run` starts it (scripts/serve.sh: gunicorn and the
Celery workers, each process writing to one multiprocess folder), scraped over HTTP: after a known
set of jobs (completed, failed with a known code, cancelled, throttled) the counters moved by
exactly those jobs, the exposition passes promtool, no label holds a job id, and /metrics refuses
a scraper without the token."""

import io
import re
import time

import pytest
import requests
from PIL import Image, ImageDraw
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.metrics import needs_promtool, promtool
from tests.helpers.processes import log_text, serving

pytestmark = [pytest.mark.worker, pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

TOKEN = "service-scraper-token"
JOB_TIMEOUT_SECONDS = 120
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def service(django_db_setup, token_minter, tmp_path_factory, tiny_models_dir):
    folder = tmp_path_factory.mktemp("metrics-service")
    env = {
        "CLERK_JWT_KEY": token_minter.public_pem,
        "CLERK_AUTHORIZED_PARTIES": "http://localhost:3000",
        "TINY_MODELS_DIR": str(tiny_models_dir),
        "MESH_GRID_SIZE": "32",
        "WEB_PROCESSES": "2",  # two server processes: a scrape must sum both
        "WEB_THREADS": "8",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
        # Every anonymous submission to the generation half is over its limit: a known refusal.
        "GENERATION_SUBMIT_RATE_ANON": "0/min",
    }
    with serving(folder, env) as running:
        yield running


@pytest.fixture
def session(service, token_minter):
    session = requests.Session()
    token = token_minter.token("user_metrics", exp=int(time.time()) + 3600)
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def scrape(base: str) -> str:
    response = requests.get(
        f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.text


def samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of an exposition."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def moved(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def jpeg(draw_object: bool) -> bytes:
    photo = Image.new("RGB", (256, 256), (238, 238, 234))
    if draw_object:
        ImageDraw.Draw(photo).rounded_rectangle((70, 60, 190, 200), radius=20, fill=(40, 120, 60))
    data = io.BytesIO()
    photo.save(data, format="JPEG")
    return data.getvalue()


def photo_job(base: str, session: requests.Session, photo: bytes) -> str:
    url = requests.post(
        f"{base}/api/3d/upload-image", files={"image": ("photo.jpg", photo)}, timeout=30
    ).json()["url"]
    response = session.post(f"{base}/api/3d/generate", json={"imageUrl": url}, timeout=10)
    assert response.ok, response.text
    return response.json()["jobId"]


def wait_for_end(base: str, session: requests.Session, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        job = session.get(f"{base}/api/3d/status/{job_id}", timeout=10).json()["job"]
        if job["status"] in ("DONE", "FAIL"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end")


def test_the_counters_move_by_exactly_the_jobs_that_ran(service, session):
    base = service.base
    before = samples(scrape(base))

    done = photo_job(base, session, jpeg(draw_object=True))
    blank = photo_job(base, session, jpeg(draw_object=False))  # no object to cut out
    cancelled = session.post(f"{base}/text-to-3d", json={"prompt": "a tin robot"}, timeout=10)
    assert cancelled.ok, cancelled.text
    cancelled = cancelled.json()["job_id"]
    assert session.post(f"{base}/cancel/{cancelled}", timeout=10).ok
    for _ in range(2):  # anonymous, over GENERATION_SUBMIT_RATE_ANON: refused, nothing written
        refused = requests.post(f"{base}/text-to-3d", json={"prompt": "a cup"}, timeout=10)
        assert refused.status_code == 429

    assert wait_for_end(base, session, done)["status"] == "DONE"
    failed = wait_for_end(base, session, blank)
    assert (failed["status"], failed["errorCode"]) == ("FAIL", "INVALID_IMAGE")
    assert wait_for_end(base, session, cancelled)["status"] == "FAIL"
    after = samples(scrape(base))

    def finished(kind, outcome, code=""):
        name = "hydrilla_jobs_finished_total"
        return moved(before, after, name, kind=kind, outcome=outcome, error_code=code)

    assert finished("image-to-3d", "completed") == 1
    assert finished("image-to-3d", "failed", "INVALID_IMAGE") == 1
    assert finished("text-to-3d", "cancelled", "CANCELLED") == 1
    ended = {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key[0] == "hydrilla_jobs_finished_total" and after[key] != before.get(key, 0.0)
    }
    assert sum(ended.values()) == 3, ended  # nothing else ended, nothing twice
    submitted = "hydrilla_jobs_submitted_total"
    assert moved(before, after, submitted, kind="image-to-3d", api="job") == 2
    assert moved(before, after, submitted, kind="text-to-3d", api="generation") == 1
    limited = "hydrilla_limited_requests_total"
    assert moved(before, after, limited, limit="generation-submit-anon") == 2
    refused = {"route": "/text-to-3d", "method": "POST", "status": "429"}
    assert moved(before, after, "hydrilla_http_requests_total", **refused) == 2
    # The three submissions and the cancel, answered 200, by route template.
    generate = {"route": "/api/3d/generate", "method": "POST", "status": "200"}
    assert moved(before, after, "hydrilla_http_requests_total", **generate) == 2
    cancel = {"route": "/cancel/<str:job_id>", "method": "POST", "status": "200"}
    assert moved(before, after, "hydrilla_http_requests_total", **cancel) == 1
    # The stages ran on the workers, whose processes are in the same scrape: one prepare, model
    # call and finish for each photo, the prepare alone for the blank one (it failed there).
    assert moved(before, after, "hydrilla_stage_seconds_count", stage="prepare") >= 2
    assert moved(before, after, "hydrilla_stage_seconds_count", stage="image_to_3d") >= 1
    assert moved(before, after, "hydrilla_model_call_seconds_count", backend="silhouette") >= 1
    # Nothing waits any more.
    assert after[("hydrilla_jobs_waiting", (("queue", "gpu"),))] == 0
    # No job id anywhere in a label.
    assert not any(UUID.search(value) for _, labels in after for _, value in labels)


@needs_promtool
def test_a_scrape_of_the_whole_service_passes_promtool(service, session):
    session.get(f"{service.base}/api/3d/queue/info", timeout=10)
    result = promtool("check", "metrics", stdin=scrape(service.base).encode())

    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_the_scrape_covers_the_workers_processes_too(service):
    text = scrape(service.base)

    # Each kind of worker's main process reports the pool processes consuming its queues.
    for queue in ("gpu", "preview", "cpu", "default"):
        assert re.search(rf'^hydrilla_worker_consumers{{queue="{queue}"}} [1-9]', text, re.M), (
            queue,
            log_text(service.log),
        )


@pytest.mark.parametrize("authorization", [None, "Bearer not-the-token"])
def test_metrics_refuse_a_scraper_without_the_token(service, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = requests.get(f"{service.base}/metrics", headers=headers, timeout=10)

    assert response.status_code == 401
    assert response.json() == {"error": "Authentication credentials were not provided."}
