"""compose.yaml stays valid and describes the stack the README promises (Docker does not run
here: the tests mirror it with processes, see tests/test_frontend_workflows.py)."""

import shutil
import subprocess

import pytest
import yaml

from tests.worker_process import ROOT


def resolved_compose() -> dict:
    """The file as docker-compose reads it: YAML anchors and merge keys applied."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_docker_compose_accepts_the_file():
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_stack_has_its_services_and_the_gpu_worker_consumes_only_the_gpu_queue():
    services = resolved_compose()["services"]

    assert {"postgres", "rabbitmq", "minio", "web", "worker-gpu", "worker"} <= set(services)
    gpu_worker = services["worker-gpu"]
    assert " -Q gpu " in f" {gpu_worker['command']} "
    devices = gpu_worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in devices)
    assert "gpu" not in services["worker"]["command"].split("-Q", 1)[1].split()[0].split(",")


def test_the_gpu_worker_runs_one_child_per_listed_gpu_of_a_multi_gpu_host():
    gpu_worker = resolved_compose()["services"]["worker-gpu"]

    assert gpu_worker["environment"]["GPU_DEVICES"] == "${GPU_DEVICES:-0}"
    assert "--concurrency" not in gpu_worker["command"]  # one child per GPU_DEVICES entry
    [devices] = gpu_worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices["count"] == "all"
    assert gpu_worker["environment"]["DATABASE_URL"].startswith("postgres://")  # the shared settings too
