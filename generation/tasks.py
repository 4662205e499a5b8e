"""Celery tasks: thin, they hand the job to the runner. Names and queues are in celery_app."""

import logging
import threading
import time

from billiard.process import current_process
from celery import shared_task
from celery.exceptions import Reject
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import DatabaseError, connection

from celery_app import RUN_3D_JOB, RUN_PREVIEW_JOB, RUN_REMESH_JOB
from generation import registry, runner
from generation.database import DatabaseUnreachable
from jobs import services

logger = logging.getLogger(__name__)


@shared_task(name=RUN_3D_JOB, bind=True)
def run_3d_job(self, job_id: str) -> None:
    _run(self, job_id)


@shared_task(name=RUN_PREVIEW_JOB, bind=True)
def run_preview_job(self, job_id: str) -> None:
    _run(self, job_id)


def _run(task, job_id: str) -> None:
    try:
        runner.run_job(job_id, worker=task.request.hostname)
    except DatabaseUnreachable as exc:
        # Acknowledging now would lose the job: the broker takes the message back and delivers
        # it again (a message is acknowledged only once its job is claimed or finished).
        logger.error("Handing job %s back to the broker: %s", job_id, exc)
        raise Reject(str(exc), requeue=True) from exc


@shared_task(name=RUN_REMESH_JOB, bind=True)
def run_remesh_job(self, job_id: str) -> None:
    runner.run_job(job_id, worker=self.request.hostname)


@worker_ready.connect
def sweep_for_stranded_jobs(**_):
    """Every SWEEP_SECONDS: requeue running jobs whose worker was killed (brokers with
    acknowledgements redeliver them anyway, the embedded one cannot), and send the messages of
    waiting jobs that the broker never confirmed. Runs in the worker's main process, which takes
    no jobs itself."""
    threading.Thread(target=_sweep_forever, name="stranded-job-sweeper", daemon=True).start()


def _sweep_forever():
    while True:
        try:
            for job in services.recover_orphaned_jobs():
                logger.warning("Requeued job %s, whose worker stopped", job.pk)
            for job in services.republish_unconfirmed_jobs():
                logger.warning("Queued job %s again: its message was never confirmed", job.pk)
        except services.QueueUnavailable:
            logger.warning("Broker unavailable; the sweep sends the waiting jobs' messages later")
        except DatabaseError as exc:
            logger.warning("Database unreachable; sweeping again later: %s", exc)
        except Exception:
            logger.exception("Stranded-job sweep failed; trying again later")
        finally:
            # Never keep a connection open in the process that forks the pool.
            connection.close()
        time.sleep(settings.SWEEP_SECONDS)


@worker_process_init.connect
def pin_gpu_and_preload_models(**_):
    """In the child process, after the fork, so CUDA is initialised only where it is used: its
    GPU first (the pool index survives a child's replacement), then the models."""
    registry.pin_to_gpu(current_process().index)
    for model in settings.PRELOAD_MODELS:
        registry.LOADERS[model]()
