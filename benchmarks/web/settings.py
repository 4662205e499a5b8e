"""The service's own settings, plus the bare yardstick view (benchmarks/web/urls.py)."""

import os

from hydrilla.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.web.urls"

# web_load.py --metrics-cost: the same server without the metrics middleware, for the ratio.
if os.environ.get("BENCH_WITHOUT_METRICS"):
    MIDDLEWARE = [m for m in MIDDLEWARE if m != "hydrilla.monitoring.count_requests"]  # noqa: F405
