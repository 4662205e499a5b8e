"""The gauges read from the job table when Prometheus scrapes the web process: jobs waiting and
running per queue and per stage, the longest wait, and the scaling signal for the GPU workers.

One grouped query per scrape (``selectors.stage_load``), never a scan per request; the mean stage
times behind the scaling signal are read at most once a minute. Only the web process serves these
(``hydrilla.monitoring``): a worker-only host's ``METRICS_PORT`` leaves them out, so that no series
is scraped twice.

The scaling signal: ``hydrilla_gpu_workers_needed`` = ceil(``hydrilla_gpu_backlog_seconds`` /
``GPU_DRAIN_TARGET_SECONDS``), where the backlog is, for every active 3D job, the mean seconds of
each GPU stage it has still to run (its current one included), from the latest completed jobs'
``stage_runs``: a GPU worker is busy for a whole GPU stage, its model call and the handoff around
it.
"""

import math
import threading
import time

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from hydrilla.queues import CeleryQueue
from jobs import plan, selectors
from jobs.plan import Stage

GPU_STAGES = tuple(stage for stage, queue in plan.QUEUES.items() if queue == CeleryQueue.GPU)
# How long the mean stage times are kept between two reads of the finished jobs.
STAGE_MEANS_MAX_AGE_SECONDS = 60


class _StageMeans:
    """The mean seconds of each GPU stage, read again once they are older than a minute."""

    def __init__(self):
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._means: dict[str, float] = {}

    def get(self) -> dict[str, float]:
        with self._lock:
            if time.monotonic() - self._read_at > STAGE_MEANS_MAX_AGE_SECONDS:
                self._means = selectors.recent_stage_seconds(GPU_STAGES)
                self._read_at = time.monotonic()
            fallback = settings.ESTIMATE_FALLBACK_SECONDS["3d"] / len(GPU_STAGES)
            return {stage: self._means.get(stage, fallback) for stage in GPU_STAGES}


stage_means = _StageMeans()


def gpu_seconds_left(kind: str, stage: str, means: dict[str, float]) -> float:
    """The GPU seconds a job of ``kind`` at ``stage`` has still to spend, its current stage
    included."""
    sequence = plan.stages(kind)
    return sum(means.get(later, 0.0) for later in sequence[sequence.index(stage) :])


def gpu_workers_needed(backlog_seconds: float) -> int:
    return math.ceil(backlog_seconds / settings.GPU_DRAIN_TARGET_SECONDS)


class QueueCollector:
    """A Prometheus collector over the job table (registered per scrape)."""

    def collect(self):
        load = selectors.stage_load()
        means = stage_means.get()
        now = timezone.now()
        by_queue = {queue: {"waiting": 0, "running": 0, "oldest": 0.0} for queue in CeleryQueue}
        by_stage = {stage: {"waiting": 0, "running": 0} for stage in Stage}
        backlog = 0.0
        for group in load:
            if not group["stage"]:
                continue
            queue, stage = by_queue[plan.QUEUES[group["stage"]]], by_stage[group["stage"]]
            for count in ("waiting", "running"):
                queue[count] += group[count]
                stage[count] += group[count]
            if group["waiting_since"] is not None:
                waited = (now - group["waiting_since"]).total_seconds()
                queue["oldest"] = max(queue["oldest"], waited)
            jobs = group["waiting"] + group["running"]
            backlog += jobs * gpu_seconds_left(group["kind"], group["stage"], means)

        yield _family(
            "hydrilla_jobs_waiting",
            "Job stages waiting for a worker of their queue now.",
            "queue",
            {queue: counts["waiting"] for queue, counts in by_queue.items()},
        )
        yield _family(
            "hydrilla_jobs_running",
            "Job stages a worker of their queue holds now.",
            "queue",
            {queue: counts["running"] for queue, counts in by_queue.items()},
        )
        yield _family(
            "hydrilla_jobs_oldest_wait_seconds",
            "How long the longest-waiting stage of each queue has waited for a worker.",
            "queue",
            {queue: counts["oldest"] for queue, counts in by_queue.items()},
        )
        yield _family(
            "hydrilla_stage_jobs_waiting",
            "Jobs waiting for a worker to run their current stage now.",
            "stage",
            {stage: counts["waiting"] for stage, counts in by_stage.items()},
        )
        yield _family(
            "hydrilla_stage_jobs_running",
            "Jobs whose current stage a worker runs now.",
            "stage",
            {stage: counts["running"] for stage, counts in by_stage.items()},
        )
        yield _family(
            "hydrilla_gpu_stage_mean_seconds",
            "Mean seconds of each GPU stage in the latest completed 3D jobs (the backlog's unit).",
            "stage",
            means,
        )
        yield GaugeMetricFamily(
            "hydrilla_gpu_backlog_seconds",
            "GPU seconds the active 3D jobs have still to run, from the mean stage times.",
            value=backlog,
        )
        yield GaugeMetricFamily(
            "hydrilla_gpu_workers_needed",
            "GPU workers that would run the backlog within GPU_DRAIN_TARGET_SECONDS: the signal "
            "to scale the GPU workers on.",
            value=gpu_workers_needed(backlog),
        )


def _family(name: str, documentation: str, label: str, values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value_of_label, value in values.items():
        family.add_metric([str(value_of_label)], value)
    return family
