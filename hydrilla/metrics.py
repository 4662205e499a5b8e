"""Every Prometheus metric of the service, defined once, and how a scraper reads them.

Processes count where the facts are made (the job services, the runner, the HTTP middleware) into
``prometheus_client``'s metrics. With ``PROMETHEUS_MULTIPROC_DIR`` set (``scripts/serve.sh``, the
compose services), every process of a host writes its values to files there, and a scrape of any
one process (``GET /metrics`` on the web port, or ``METRICS_PORT`` on a worker-only host) reads the
whole host; without it (tests, one-off commands) the metrics are the process's own.

Names follow Prometheus' conventions: counters end in ``_total`` (the client adds it to the names
below), times are ``_seconds``, and every label takes a bounded set of values (route templates,
kinds, stages, queues, error codes: never a job id). The README's "Metrics" table lists them all;
dashboards (deploy/grafana), alert rules (deploy/prometheus) and the autoscaler
(deploy/keda-scaledobject.yaml) read them by name: rename nothing.

Django-free, so that every process may import it; the gauges read from the database at scrape
time are in ``jobs.metrics``.
"""

import hmac
import logging
import os
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import ThreadingWSGIServer

logger = logging.getLogger(__name__)

# A process started with the folder named but not made yet (a one-off command) must not fail on
# its first metric.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# Seconds, from a fast answer to a long model call.
SHORT_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LONG_SECONDS = (0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)

# --- Web (hydrilla.middleware.count_requests, jobs' throttles and stream caps) -----------------
HTTP_REQUESTS = Counter(
    "hydrilla_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "hydrilla_http_request_seconds",
    "Time from a request reaching Django to its response (a stream: to its first byte).",
    ["route", "method"],
    buckets=SHORT_SECONDS,
)
OPEN_STREAMS = Gauge(
    "hydrilla_open_streams",
    "Server-sent event streams open now.",
    multiprocess_mode="livesum",
)
WAITING_PREVIEWS = Gauge(
    "hydrilla_waiting_previews",
    "/text-to-image requests waiting for their preview now.",
    multiprocess_mode="livesum",
)
LIMITED_REQUESTS = Counter(
    "hydrilla_limited_requests",
    "Requests answered 429 by a limit (a submit rate's scope, or a cap on things held at once).",
    ["limit"],
)

# --- Jobs (jobs.services) --------------------------------------------------------------------
JOBS_SUBMITTED = Counter(
    "hydrilla_jobs_submitted",
    "Jobs written and sent to their queue, by kind and API half (job, generation).",
    ["kind", "api"],
)
JOBS_FINISHED = Counter(
    "hydrilla_jobs_finished",
    "Jobs that ended, by kind, outcome (completed, failed, cancelled) and error code "
    '("" when completed).',
    ["kind", "outcome", "error_code"],
)
JOB_WAIT_SECONDS = Histogram(
    "hydrilla_job_wait_seconds",
    "Time from a job's submission to the start of its first model call (the end of its wait).",
    ["kind"],
    buckets=LONG_SECONDS,
)
STAGE_SECONDS = Histogram(
    "hydrilla_stage_seconds",
    "Time a worker spent in one stage of a job, from its claim to its handoff or end.",
    ["stage"],
    buckets=LONG_SECONDS,
)
STAGE_ATTEMPTS = Counter(
    "hydrilla_job_attempts",
    "Attempts begun at jobs: a job's first claim, and each takeover after it.",
    ["kind"],
)
STAGE_TAKEOVERS = Counter(
    "hydrilla_stage_takeovers",
    "Stages taken over from a worker that stopped (orphaned, or its process gone).",
    ["stage"],
)
SWEEP_REPUBLISHED = Counter(
    "hydrilla_sweep_republished",
    "Stage messages the workers' sweep sent again, by reason (orphaned, unconfirmed).",
    ["reason"],
)
WEBHOOK_DELIVERIES = Counter(
    "hydrilla_webhook_deliveries",
    "Webhook deliveries, by outcome (delivered, failed, retrying, ...).",
    ["outcome"],
)

# --- Workers (generation) --------------------------------------------------------------------
MODEL_LOADS = Counter(
    "hydrilla_model_loads",
    "Models loaded by a worker process, by model (text-to-image, image-to-3d).",
    ["model"],
)
MODEL_LOAD_SECONDS = Histogram(
    "hydrilla_model_load_seconds",
    "Time a worker process took to load a model.",
    ["model"],
    buckets=LONG_SECONDS,
)
MODEL_CALL_SECONDS = Histogram(
    "hydrilla_model_call_seconds",
    "Time inside one model call, by backend (text-to-image, silhouette, shap-e, hunyuan3d).",
    ["backend"],
    buckets=LONG_SECONDS,
)
OUT_OF_MEMORY_RETRIES = Counter(
    "hydrilla_out_of_memory_retries",
    "Model calls tried again after the GPU ran out of memory.",
    ["backend"],
)
WORKER_CONSUMERS = Gauge(
    "hydrilla_worker_consumers",
    "Worker pool processes consuming each queue now.",
    ["queue"],
    multiprocess_mode="livesum",
)
# Per GPU, through NVML, from the worker process pinned to it (generation.gpu_metrics).
GPU_UTILIZATION = Gauge(
    "hydrilla_gpu_utilization_ratio",
    "Share of the last sample period in which the GPU ran a kernel, as NVML reports it (0-1).",
    ["gpu"],
    multiprocess_mode="livemax",
)
GPU_MEMORY_USED = Gauge(
    "hydrilla_gpu_memory_used_bytes",
    "GPU memory in use, as NVML reports it.",
    ["gpu"],
    multiprocess_mode="livemax",
)
GPU_MEMORY_TOTAL = Gauge(
    "hydrilla_gpu_memory_total_bytes",
    "GPU memory in all, as NVML reports it.",
    ["gpu"],
    multiprocess_mode="livemax",
)
GPU_BUSY_RATIO = Gauge(
    "hydrilla_gpu_busy_ratio",
    "Share of wall time the worker pinned to this GPU spent inside model calls, over the last "
    "GPU_METRICS_SECONDS (0-1).",
    ["gpu"],
    multiprocess_mode="livemax",
)

OUTCOMES = ("completed", "failed", "cancelled")


def job_finished(kind: str, outcome: str, error_code: str | None = None) -> None:
    JOBS_FINISHED.labels(kind=kind, outcome=outcome, error_code=error_code or "").inc()


def webhook_delivered(outcome: str) -> None:
    """Count one webhook delivery attempt's outcome (a short, fixed word: never a URL)."""
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


# --- Exposition ------------------------------------------------------------------------------


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class _Collectors:
    """A registry-like view over several collectors, for ``generate_latest``."""

    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def exposition(*extra_collectors) -> tuple[bytes, str]:
    """The text a scrape gets, and its content type: every process of this host (the
    multiprocess directory) or this process alone, plus ``extra_collectors``."""
    if multiprocess_dir():
        host = CollectorRegistry()
        multiprocess.MultiProcessCollector(host)
    else:
        host = REGISTRY
    return generate_latest(_Collectors(host, *extra_collectors)), CONTENT_TYPE_LATEST


def authorised(authorization: str | None, token: str) -> bool:
    """Whether an Authorization header carries ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def mark_process_dead(pid: int) -> None:
    """Drop a process's live gauges (streams, consumers, GPU samples) once it has exited; its
    counters and histograms stay in the totals."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def serve_on_port(port: int, token: str) -> None:
    """Serve this host's metrics on ``port`` (all addresses: a scraper on another host reads
    them), from a daemon thread, to ``Authorization: Bearer <token>`` only: the worker-only host's
    ``METRICS_PORT``. Any path answers; without a token nothing is served."""
    if not token:
        logger.warning("METRICS_PORT is set but METRICS_TOKEN is empty: no metrics served")
        return

    def app(environ, start_response):
        if not authorised(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/json"),
                    ("WWW-Authenticate", 'Bearer realm="metrics"'),
                ],
            )
            return [b'{"error": "Authentication credentials were not provided."}']
        body, content_type = exposition()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # one line per scrape would drown the worker's log
            pass

    try:
        server = make_server("", port, app, ThreadingWSGIServer, handler_class=QuietHandler)
    except OSError as exc:
        logger.error("Cannot serve metrics on port %d: %s", port, exc)
        return
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    logger.info("Serving this host's metrics on port %d", port)
