"""The service's own settings, plus the bare yardstick view (benchmarks/web/urls.py)."""

from hydrilla.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.web.urls"
