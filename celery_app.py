"""The Celery app. Its options are the CELERY_ settings (hydrilla/settings.py: broker, queues,
routes, delivery guarantees); its queues and task names are in hydrilla.queues."""

import functools
import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")

app = Celery("hydrilla")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["generation", "jobs", "idempotency", "webhooks"])


@signals.worker_init.connect
@signals.before_task_publish.connect
def make_the_embedded_broker_s_folders(**_):
    """The filesystem broker writes into folders it does not make: made before its first use."""
    _make_the_embedded_broker_s_folders()


@functools.cache  # once per process, not at every publish
def _make_the_embedded_broker_s_folders() -> None:
    options = app.conf.broker_transport_options
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if key in options:
            Path(options[key]).mkdir(parents=True, exist_ok=True)
