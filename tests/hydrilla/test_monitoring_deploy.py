"""deploy/'s monitoring: Prometheus' configuration and alert rules pass Prometheus' own checks and
unit tests (promtool, from Debian's prometheus package), they scrape every worker and the web
service of compose.yaml, and the dashboard, the alerts and the autoscaler read only metrics the
service exposes."""

import json
import re
import shutil

import pytest
import yaml
from django.test import Client

from tests.helpers.metrics import needs_promtool, promtool
from tests.helpers.processes import ROOT
from tests.hydrilla.test_compose import SECRETS, docker_compose_config, needs_docker_compose

DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
TOKEN = "deploy-test-token"


@pytest.fixture
def prometheus_config_copy(tmp_path):
    """deploy/prometheus as compose's prometheus service runs it: a copy, with the token file."""
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS, copy)
    (copy / "metrics-token").write_text(TOKEN)
    return copy


@needs_promtool
def test_the_prometheus_configuration_passes_promtool(prometheus_config_copy):
    result = promtool("check", "config", str(prometheus_config_copy / "prometheus.yml"))

    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"SUCCESS: 1 rule files found" in result.stdout


@needs_promtool
def test_the_alert_rules_pass_promtool_and_their_unit_tests():
    checked = promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))
    tested = promtool("test", "rules", str(PROMETHEUS / "alerts.test.yml"))

    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert tested.returncode == 0, tested.stdout.decode() + tested.stderr.decode()


def test_every_alert_has_a_unit_test():
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }

    assert alerts == tested


def scrape_targets() -> dict[str, list[str]]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    return {
        job["job_name"]: [target for group in job["static_configs"] for target in group["targets"]]
        for job in config["scrape_configs"]
    }


def test_prometheus_scrapes_the_web_service_and_every_worker_of_compose_with_the_token():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {target for targets in scrape_targets().values() for target in targets}
    workers = [
        name
        for name, service in services.items()
        if " worker " in f" {service.get('command', '')} "
    ]

    assert sorted(workers) == ["worker", "worker-cpu", "worker-gpu", "worker-webhooks"]
    for name in workers:
        port = services[name]["environment"]["METRICS_PORT"]
        assert f"{name}:{port}" in targets
    assert f"web:{services['web']['environment']['PORT']}" in targets
    for job in config["scrape_configs"]:
        if job["job_name"] != "prometheus":
            assert job["authorization"]["credentials_file"] == "metrics-token"


def test_the_monitoring_profile_publishes_on_loopback_only_and_asks_for_its_credentials():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    monitoring = {
        name for name, service in services.items() if "monitoring" in service.get("profiles", [])
    }

    assert monitoring == {"prometheus", "grafana", "flower"}
    for name in monitoring:
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name
    assert 'test -n "$$FLOWER_BASIC_AUTH"' in services["flower"]["command"][-1]
    assert 'test -n "$$METRICS_TOKEN"' in services["prometheus"]["command"][-1]
    assert 'test -n "$$GF_SECURITY_ADMIN_PASSWORD"' in services["grafana"]["command"][-1]


@needs_docker_compose
def test_docker_compose_accepts_the_monitoring_profile():
    result = docker_compose_config(**SECRETS, COMPOSE_PROFILES="monitoring")

    assert result.returncode == 0, result.stderr


# --- What the dashboard, the alerts and the autoscaler read ----------------------------------

METRIC = re.compile(r"\bhydrilla_[a-z_]+")
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def metrics_read_by(text: str) -> set[str]:
    return {HISTOGRAM_SERIES.sub("", name) for name in METRIC.findall(text)}


def exposed_metric_names(settings) -> set[str]:
    settings.METRICS_TOKEN = TOKEN
    text = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))


@pytest.mark.django_db
def test_the_dashboard_alerts_and_autoscaler_read_only_metrics_the_service_exposes(settings):
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "hydrilla.json").read_text())
    queries = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    read = {
        "dashboard": metrics_read_by(queries),
        "alerts": metrics_read_by((PROMETHEUS / "alerts.yml").read_text()),
        "autoscaler": metrics_read_by((DEPLOY / "keda-scaledobject.yaml").read_text()),
    }
    exposed = exposed_metric_names(settings)

    for reader, names in read.items():
        assert names and names <= exposed, (reader, names - exposed)
    assert read["autoscaler"] == {"hydrilla_gpu_workers_needed"}


def test_the_dashboard_shows_what_the_issue_asks_for():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "hydrilla.json").read_text())
    queries = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )

    for metric in (
        "hydrilla_jobs_waiting",  # queue length per queue
        "hydrilla_job_wait_seconds_bucket",  # wait
        "hydrilla_stage_seconds_bucket",  # stage times
        "hydrilla_gpu_busy_ratio",
        "hydrilla_jobs_finished_total",  # error codes
        "hydrilla_http_request_seconds_bucket",  # web latency
    ):
        assert metric in queries
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {"prometheus"}
