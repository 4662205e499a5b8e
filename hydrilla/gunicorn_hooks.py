"""gunicorn's hooks for the web server (``scripts/serve.sh``:
``--config python:hydrilla.gunicorn_hooks``)."""

from hydrilla import metrics


def child_exit(server, worker):
    """A server process ended: its live gauges (open streams, waiting previews) leave the sums."""
    metrics.mark_process_dead(worker.pid)
