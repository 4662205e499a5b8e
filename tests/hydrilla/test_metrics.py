"""The metrics, in this process: counted where the facts are made (the job services, model loads,
the request middleware), the gauges read from the job table at scrape time, ``/metrics`` behind its
token, the GPU sampling through NVML (a fake module here: this machine has no GPU), and the JSON
log lines. Against the whole service: tests/hydrilla/test_metrics_service.py."""

import json
import os
import subprocess
import sys
import types
import urllib.error
import urllib.request

import pytest
from django.test import Client

from generation import gpu_metrics
from hydrilla import metrics
from jobs.api import throttles
from jobs.models import JobKind, Stage
from tests.factories import JobFactory
from tests.helpers.metrics import needs_promtool, promtool, sample
from tests.helpers.network import free_port
from tests.helpers.processes import ROOT

TOKEN = "scraper-token-for-tests"


# --- GET /metrics ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_off_while_the_token_is_empty(settings):
    settings.METRICS_TOKEN = ""

    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN])
def test_metrics_refuse_a_request_without_the_token(settings, authorization):
    settings.METRICS_TOKEN = TOKEN
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = Client().get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "hydrilla_" not in response.content.decode()


@pytest.mark.django_db
def test_requests_are_counted_by_route_template_and_never_by_job_id(settings, fresh_stage_means):
    settings.METRICS_TOKEN = TOKEN
    job = JobFactory(kind=JobKind.PREVIEW, user=None)  # an anonymous caller's: its id is its key
    labels = {"route": "/api/3d/status/<str:job_id>", "method": "GET", "status": "200"}
    before = sample("hydrilla_http_requests_total", **labels)
    client = Client()

    assert client.get(f"/api/3d/status/{job.pk}").status_code == 200
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert sample("hydrilla_http_requests_total", **labels) - before == 1
    text = response.content.decode()
    assert 'hydrilla_jobs_waiting{queue="preview"} 1.0' in text
    assert str(job.pk) not in text


@needs_promtool
@pytest.mark.django_db
def test_the_exposition_passes_promtool(settings, fresh_stage_means):
    settings.METRICS_TOKEN = TOKEN
    JobFactory(kind=JobKind.IMAGE_TO_3D, stage=Stage.IMAGE_TO_3D)
    Client().get("/api/3d/queue/info")

    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    result = promtool("check", "metrics", stdin=response.content)

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_worker_only_host_serves_the_same_on_its_port_behind_the_token():
    port = free_port()
    metrics.serve_on_port(port, TOKEN)
    url = f"http://127.0.0.1:{port}/metrics"

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    assert "# TYPE hydrilla_model_call_seconds histogram" in text
    assert "hydrilla_jobs_waiting" not in text  # the web host's, scraped there only


# --- Limits ----------------------------------------------------------------------------------


def test_open_streams_are_a_gauge_and_a_refused_one_is_counted_by_its_limit(settings):
    settings.MAX_STREAMS_PER_CALLER = 1
    open_before = sample("hydrilla_open_streams")
    refused_before = sample("hydrilla_limited_requests_total", limit="event-streams")

    slot = throttles.open_streams.take("ip:192.0.2.7")
    with pytest.raises(throttles.TooMany):
        throttles.open_streams.take("ip:192.0.2.7")
    assert sample("hydrilla_open_streams") - open_before == 1
    slot.release()
    slot.release()  # given back once only

    assert sample("hydrilla_open_streams") == open_before
    assert sample("hydrilla_limited_requests_total", limit="event-streams") - refused_before == 1


@pytest.mark.django_db
def test_a_request_over_a_submit_rate_is_counted_by_the_rate_s_scope(settings):
    settings.GENERATION_SUBMIT_RATE_ANON = "0/min"
    before = sample("hydrilla_limited_requests_total", limit="generation-submit-anon")

    response = Client().post("/text-to-3d", {"prompt": "a cup"}, content_type="application/json")

    assert response.status_code == 429
    assert sample("hydrilla_limited_requests_total", limit="generation-submit-anon") - before == 1


# --- GPUs, through NVML ----------------------------------------------------------------------


def test_the_busy_share_counts_the_time_inside_model_calls_within_each_period():
    now = [100.0]
    clock = gpu_metrics.BusyClock(clock=lambda: now[0])

    now[0] = 102.0
    clock.enter()
    now[0] = 105.0
    clock.leave()
    now[0] = 110.0
    assert clock.share() == pytest.approx(0.3)  # 3 s of 10

    clock.enter()  # a call that spans two periods counts in each for its part
    now[0] = 115.0
    assert clock.share() == pytest.approx(1.0)
    now[0] = 118.0
    clock.leave()
    now[0] = 120.0
    assert clock.share() == pytest.approx(0.6)
    now[0] = 130.0
    assert clock.share() == 0.0


def fake_nvml(used: int, total: int, utilisation: int) -> types.ModuleType:
    """pynvml's calls that gpu_metrics makes, on one GPU."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = type("NVMLError", (Exception,), {})
    nvml.opened = []
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByIndex = lambda index: nvml.opened.append(index) or f"gpu{index}"
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(used=used, total=total)
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: types.SimpleNamespace(gpu=utilisation)
    return nvml


def test_a_gpu_is_sampled_through_nvml_when_it_is_there(monkeypatch):
    nvml = fake_nvml(used=3 * 2**30, total=80 * 2**30, utilisation=87)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(gpu_metrics, "busy", gpu_metrics.BusyClock())

    assert gpu_metrics.load_nvml() is nvml
    with gpu_metrics.model_call("test-backend"):
        pass
    gpu_metrics.sample(nvml, gpu_metrics.own_gpu("3"))

    assert nvml.opened == [3]
    assert sample("hydrilla_gpu_utilization_ratio", gpu="3") == 0.87
    assert sample("hydrilla_gpu_memory_used_bytes", gpu="3") == 3 * 2**30
    assert sample("hydrilla_gpu_memory_total_bytes", gpu="3") == 80 * 2**30
    assert 0 < sample("hydrilla_gpu_busy_ratio", gpu="3") <= 1
    assert sample("hydrilla_model_call_seconds_count", backend="test-backend") == 1


def test_without_a_driver_there_is_no_gpu_sampling(monkeypatch):
    nvml = fake_nvml(used=0, total=0, utilisation=0)

    def no_driver():
        raise nvml.NVMLError("Driver Not Loaded")

    nvml.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", nvml)

    assert gpu_metrics.start_sampling("0", 1.0) is None


def test_an_unpinned_process_uses_cuda_s_default_device(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert gpu_metrics.own_gpu(None) == "2"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert gpu_metrics.own_gpu(None) == "0"


# --- Logs ------------------------------------------------------------------------------------


def log_lines(log_format: str) -> list[str]:
    """What a worker's log says about a job, in a fresh process on the settings' logging."""
    script = (
        "import django, logging; django.setup()\n"
        "from hydrilla import log_context\n"
        "with log_context.bound(job_id='job-1', stage='finish', attempt=2):\n"
        "    logging.getLogger('generation.runner').info('Stage done')\n"
        "logging.getLogger('celery').warning('Idle')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": log_format, "DJANGO_SETTINGS_MODULE": "hydrilla.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stderr.strip().splitlines()


def test_json_logs_are_one_object_a_line_with_the_job_s_fields_where_there_are_some():
    stage_done, idle = (json.loads(line) for line in log_lines("json"))

    assert stage_done["message"] == "Stage done"
    assert (stage_done["level"], stage_done["logger"]) == ("INFO", "generation.runner")
    assert (stage_done["job_id"], stage_done["stage"], stage_done["attempt"]) == (
        "job-1",
        "finish",
        2,
    )
    assert "time" in stage_done
    assert idle["message"] == "Idle" and "job_id" not in idle


def test_plain_logs_stay_text():
    [stage_done, _] = log_lines("plain")

    assert stage_done.endswith("INFO [-] generation.runner: Stage done")


def test_an_unknown_log_format_is_refused():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": "xml", "DJANGO_SETTINGS_MODULE": "hydrilla.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "LOG_FORMAT is 'xml': use plain or json" in result.stderr
