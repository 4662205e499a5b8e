"""A service reachable from outside refuses to start with development secrets (issue #10). The
production-like settings pass ``manage.py check --deploy`` in `make test` (its check-deploy
step)."""

import os
import subprocess
import sys

import pytest

from tests.helpers.processes import ROOT

PUBLIC = {"ALLOWED_HOSTS": "api.example.com", "CLERK_AUTHORIZED_PARTIES": "https://app.example.com"}
STRONG_KEY = "a-long-random-looking-key-" + "x7Qp2Lm9Zr4Tv8Wn" * 3


def start(**variables) -> subprocess.CompletedProcess:
    """``manage.py check`` in a process with these settings, the way the service starts."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in ("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "ALLOWED_HOSTS", "CLERK_AUTHORIZED_PARTIES")
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment | variables,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "variables, missing",
    [
        (PUBLIC, "DJANGO_SECRET_KEY"),
        ({**PUBLIC, "ALLOWED_HOSTS": "*"}, "DJANGO_SECRET_KEY"),
        (
            {"ALLOWED_HOSTS": "api.example.com", "DJANGO_SECRET_KEY": STRONG_KEY},
            "CLERK_AUTHORIZED_PARTIES",
        ),
    ],
    ids=["dev key", "dev key, any host", "no authorized parties"],
)
def test_a_public_service_refuses_to_start_without_its_secrets(variables, missing):
    result = start(**variables)

    assert result.returncode != 0
    assert f"set {missing}" in result.stderr and "ImproperlyConfigured" in result.stderr


@pytest.mark.parametrize(
    "variables",
    [
        {**PUBLIC, "DJANGO_SECRET_KEY": STRONG_KEY},
        {"ALLOWED_HOSTS": "localhost,127.0.0.1"},  # this machine only: the defaults will do
        {**PUBLIC, "DJANGO_DEBUG": "true"},  # a developer's machine with a name
    ],
    ids=["production", "local", "debug"],
)
def test_it_starts_when_configured_or_not_public(variables):
    result = start(**variables)

    assert result.returncode == 0, result.stderr
