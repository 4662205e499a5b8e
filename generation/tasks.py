"""Celery tasks: thin, they hand the job to the runner. Names and queues are in celery_app."""

import logging
import threading
import time

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from django.conf import settings
from django.db import connection

from celery_app import RUN_3D_JOB, RUN_PREVIEW_JOB, RUN_REMESH_JOB
from generation import registry, runner
from jobs import services

logger = logging.getLogger(__name__)


@shared_task(name=RUN_3D_JOB, bind=True)
def run_3d_job(self, job_id: str) -> None:
    runner.run_job(job_id, worker=self.request.hostname)


@shared_task(name=RUN_PREVIEW_JOB, bind=True)
def run_preview_job(self, job_id: str) -> None:
    runner.run_job(job_id, worker=self.request.hostname)


@shared_task(name=RUN_REMESH_JOB, bind=True)
def run_remesh_job(self, job_id: str) -> None:
    runner.run_job(job_id, worker=self.request.hostname)


@worker_ready.connect
def watch_for_orphaned_jobs(**_):
    """Requeue, now and every little while, running jobs whose worker was killed: brokers with
    acknowledgements redeliver them anyway, the embedded one cannot. Runs in the worker's main
    process, which takes no jobs itself."""
    threading.Thread(target=_sweep_forever, name="orphan-sweeper", daemon=True).start()


def _sweep_forever():
    while True:
        try:
            for job in services.recover_orphaned_jobs():
                logger.warning("Requeued job %s, whose worker stopped", job.pk)
        except Exception:
            logger.exception("Orphaned-job sweep failed; trying again later")
        finally:
            # Never keep a connection open in the process that forks the pool.
            connection.close()
        time.sleep(settings.ORPHAN_AFTER_SECONDS / 2)


@worker_process_init.connect
def preload_models(**_):
    """Load in the child process, after the fork, so CUDA is initialised only where it is used."""
    for model in settings.PRELOAD_MODELS:
        registry.LOADERS[model]()
