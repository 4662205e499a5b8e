"""Reading the metrics in tests: this process's samples, and Prometheus' own checker."""

import shutil
import subprocess

import pytest
from prometheus_client import REGISTRY

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="Debian's prometheus (promtool) is not installed"
)


def promtool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], input=stdin, capture_output=True, timeout=60)


def sample(name: str, **labels) -> float:
    """A sample of this process's metrics; 0 for one never set."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def finished(kind, outcome, code="") -> float:
    return sample("hydrilla_jobs_finished_total", kind=kind, outcome=outcome, error_code=code)


def collected(collector) -> dict:
    """{(name, sorted labels): value} of what a custom collector yields."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in collector.collect()
        for sample in family.samples
    }
