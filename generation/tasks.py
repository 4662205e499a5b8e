"""Celery tasks: thin, they hand the job to the runner. One per stage of jobs.plan, named there;
the queues are in hydrilla.queues."""

import logging
import os
import threading
import time

from billiard.process import current_process
from celery import shared_task
from celery.exceptions import Reject
from celery.signals import (
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from django.conf import settings
from django.db import DatabaseError, connection

from generation import gpu_metrics, registry, runner
from generation.database import DatabaseUnreachable
from hydrilla import log_context, metrics, request_id
from hydrilla.queues import REQUEST_ID_HEADER
from jobs.models import Stage
from jobs.plan import stage_task
from jobs.services import shared, workers

logger = logging.getLogger(__name__)


def _stage_task(stage: Stage):
    """The task that runs ``stage`` of a job (its queue is chosen by the sender: jobs.plan)."""

    @shared_task(name=stage_task(stage), bind=True)
    def run(task, job_id: str) -> None:
        # The stage's log lines name the request that made the job (hydrilla.request_id), the job,
        # its stage and (set by the runner once it has claimed the stage) its attempt.
        with (
            request_id.bound((task.request.headers or {}).get(REQUEST_ID_HEADER)),
            log_context.bound(job_id=job_id, stage=stage, attempt=None),
        ):
            try:
                runner.run_stage(job_id, stage, worker=task.request.hostname)
            except DatabaseUnreachable as exc:
                # Acknowledging now would lose the job: the broker takes the message back and
                # delivers it again (a message is acknowledged only once its stage is claimed or
                # finished).
                logger.error("Handing job %s back to the broker: %s", job_id, exc)
                raise Reject(str(exc), requeue=True) from exc

    return run


STAGE_TASKS = {stage: _stage_task(stage) for stage in Stage}


@worker_ready.connect
def sweep_for_stranded_jobs(**_):
    """Every SWEEP_SECONDS: send again the messages of stages whose worker was killed (brokers
    with acknowledgements redeliver them anyway, the embedded one cannot), and those of stages
    waiting for a worker that the broker never confirmed. Runs in the worker's main process, which
    takes
    no jobs itself."""
    threading.Thread(target=_sweep_forever, name="stranded-job-sweeper", daemon=True).start()


def _sweep_forever():
    while True:
        try:
            for job in workers.recover_orphaned_jobs():
                logger.warning(
                    "Queued the %s stage of job %s again: its worker stopped", job.stage, job.pk
                )
            for job in workers.republish_unconfirmed_jobs():
                logger.warning("Queued job %s again: its message was never confirmed", job.pk)
        except shared.QueueUnavailable:
            logger.warning("Broker unavailable; the sweep sends the waiting jobs' messages later")
        except DatabaseError as exc:
            logger.warning("Database unreachable; sweeping again later: %s", exc)
        except Exception:
            logger.exception("Stranded-job sweep failed; trying again later")
        finally:
            # Never keep a connection open in the process that forks the pool.
            connection.close()
        time.sleep(settings.SWEEP_SECONDS)


@worker_ready.connect
def count_consumers_and_serve_metrics(sender, **_):
    """In the worker's main process: how many pool processes consume each of its queues (the
    alert for a kind of worker with none reads it), and, on a host of its own (METRICS_PORT),
    the host's metrics for Prometheus."""
    for queue in sender.app.amqp.queues.consume_from:
        metrics.WORKER_CONSUMERS.labels(queue=queue).set(sender.controller.concurrency)
    if settings.METRICS_PORT:
        metrics.serve_on_port(settings.METRICS_PORT, settings.METRICS_TOKEN)


@worker_shutdown.connect
@worker_process_shutdown.connect
def drop_live_gauges(**_):
    metrics.mark_process_dead(os.getpid())


@worker_process_init.connect
def pin_gpu_and_preload_models(**_):
    """In the child process, after the fork, so CUDA is initialised only where it is used: its
    GPU first (the pool index survives a child's replacement), then the models; its GPU's
    metrics are sampled from then on (NVML reads the driver, never CUDA)."""
    gpu = registry.pin_to_gpu(current_process().index)
    gpu_metrics.start_sampling(gpu, settings.GPU_METRICS_SECONDS)
    for model in settings.PRELOAD_MODELS:
        registry.LOADERS[model]()
