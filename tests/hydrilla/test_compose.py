"""compose.yaml stays valid and describes the stack the README promises (Docker does not run
here: the tests mirror it with processes, see tests/hydrilla/test_frontend_workflows.py)."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.helpers.processes import ROOT

# The secrets compose.yaml requires (issue #10: no default secrets), with throwaway values.
SECRETS = {
    "DJANGO_SECRET_KEY": "compose-test-secret-key",
    "POSTGRES_PASSWORD": "compose-test-postgres",
    "RABBITMQ_PASSWORD": "compose-test-rabbitmq",
    "MINIO_ROOT_USER": "compose-test-root",
    "MINIO_ROOT_PASSWORD": "compose-test-root-password",
    "S3_APP_ACCESS_KEY": "compose-test-app",
    "S3_APP_SECRET_KEY": "compose-test-app-secret",
}
needs_docker_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed"
)


def resolved_compose() -> dict:
    """The file as docker-compose reads it: YAML anchors and merge keys applied."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def docker_compose_config(**variables) -> subprocess.CompletedProcess:
    environment = {
        key: value for key, value in os.environ.items() if key not in SECRETS
    } | variables
    return subprocess.run(
        ["docker-compose", "config", "-q"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_docker_compose
def test_docker_compose_accepts_the_file():
    result = docker_compose_config(**SECRETS)
    assert result.returncode == 0, result.stderr


@needs_docker_compose
@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_docker_compose_refuses_to_start_without_each_secret(secret):
    result = docker_compose_config(
        **{key: value for key, value in SECRETS.items() if key != secret}
    )

    assert result.returncode != 0
    assert f"set {secret}" in result.stderr


def test_no_secret_has_a_default():
    text = (ROOT / "compose.yaml").read_text()
    for secret in SECRETS:
        uses = re.findall(r"\$\{" + secret + r"(:?[-?])?", text)
        assert uses and set(uses) == {":?"}, (secret, uses)


def test_the_minio_console_is_not_published_and_the_s3_api_is():
    minio = resolved_compose()["services"]["minio"]

    assert [port.split("#")[0].strip() for port in minio["ports"]] == ["9000:9000"]


def test_the_app_uses_its_own_key_limited_to_the_bucket_not_the_root_key():
    services = resolved_compose()["services"]
    for name in ("web", "worker", "worker-gpu"):
        environment = services[name]["environment"]
        assert environment["AWS_ACCESS_KEY_ID"].startswith("${S3_APP_ACCESS_KEY:?")
        assert environment["AWS_SECRET_ACCESS_KEY"].startswith("${S3_APP_SECRET_KEY:?")
    [script] = services["minio-bucket"]["command"]
    policy = (
        script.split("<<POLICY\n", 1)[1]
        .split("\nPOLICY\n", 1)[0]
        .replace("$$S3_BUCKET", "hydrilla")
    )
    statements = yaml.safe_load(policy)["Statement"]  # JSON is YAML
    assert {resource for statement in statements for resource in statement["Resource"]} == {
        "arn:aws:s3:::hydrilla",
        "arn:aws:s3:::hydrilla/*",
    }
    assert not any(
        "admin:" in action or action == "s3:*" for s in statements for action in s["Action"]
    )
    assert 'mc admin policy attach local hydrilla-app --user "$$S3_APP_ACCESS_KEY"' in script


def test_browsers_on_the_frontends_origins_may_load_files_from_the_bucket():
    minio = resolved_compose()["services"]["minio"]
    assert (
        minio["environment"]["MINIO_API_CORS_ALLOW_ORIGIN"]
        == "${CORS_ALLOWED_ORIGINS:-http://localhost:3000}"
    )


def test_the_stack_has_its_services_and_the_gpu_worker_consumes_only_the_gpu_queue():
    services = resolved_compose()["services"]

    assert {"postgres", "rabbitmq", "minio", "web", "worker-gpu", "worker"} <= set(services)
    gpu_worker = services["worker-gpu"]
    assert " -Q gpu " in f" {gpu_worker['command']} "
    devices = gpu_worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in devices
    )
    assert "gpu" not in services["worker"]["command"].split("-Q", 1)[1].split()[0].split(",")


def test_the_gpu_worker_runs_one_child_per_listed_gpu_of_a_multi_gpu_host():
    gpu_worker = resolved_compose()["services"]["worker-gpu"]

    assert gpu_worker["environment"]["GPU_DEVICES"] == "${GPU_DEVICES:-0}"
    assert "--concurrency" not in gpu_worker["command"]  # one child per GPU_DEVICES entry
    [devices] = gpu_worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices["count"] == "all"
    assert gpu_worker["environment"]["DATABASE_URL"].startswith(
        "postgres://"
    )  # the shared settings too


def test_each_kind_of_worker_consumes_the_queues_hydrilla_queues_gives_it_in_compose_and_serve_sh():
    from hydrilla.queues import WORKER_QUEUES, CeleryQueue

    services = resolved_compose()["services"]
    service_of_kind = {
        "gpu": "worker-gpu",
        "preview": "worker",
        "cpu": "worker-cpu",
        "webhooks": "worker-webhooks",
    }
    for kind, service in service_of_kind.items():
        consumed = services[service]["command"].split(" -Q ", 1)[1].split()[0]
        assert consumed == ",".join(WORKER_QUEUES[kind]), (service, consumed)
    serve_sh = (ROOT / "scripts" / "serve.sh").read_text()
    assert all(f'-Q "$(queues {kind})"' in serve_sh for kind in WORKER_QUEUES)
    # Every queue has its workers.
    assert {queue for queues in WORKER_QUEUES.values() for queue in queues} == set(CeleryQueue)
