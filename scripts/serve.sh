#!/usr/bin/env bash
# The whole service in the foreground: the HTTP server and one Celery worker per kind of work.
# Settings come from the environment (see README). A part that dies is started again after
# RESTART_DELAY_SECONDS, while the others carry on; Ctrl-C (or TERM) stops them all.
# `serve.sh web` runs the HTTP server alone (the container image and compose.yaml use it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${PORT:-4000}
RESTART_DELAY_SECONDS=${RESTART_DELAY_SECONDS:-2}

# Prometheus' multiprocess mode: every process started here (the server's, the workers' pool
# children) writes its metrics into this folder, and a scrape of any of them reads them all
# (hydrilla.metrics). Emptied at start: what is there belongs to processes of an earlier run.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$PWD/var/metrics}
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete

# Run "$@" in the background, and again whenever it exits, until this script is stopped. A TERM
# to the supervisor passes to its part, whose own shutdown is awaited: Celery's warm shutdown
# hands back its unfinished message. Production uses its own supervisor instead (docs/operations.md).
supervise() {
  local name=$1
  shift
  (
    child=
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT
    while true; do
      "$@" &
      child=$!
      status=0
      wait "$child" || status=$?
      echo "serve.sh: $name exited with status $status; restarting in ${RESTART_DELAY_SECONDS} s" >&2
      sleep "$RESTART_DELAY_SECONDS"
    done
  ) &
  pids+=($!)
}

# The HTTP server: uvicorn workers under gunicorn (hydrilla/server.py, hydrilla/asgi.py). Waiting
# requests (streams, previews) are coroutines; other views run in WEB_THREADS threads per process.
# A connection is a file descriptor: 10,000 open streams need as many, plus the pool's own.
web() {
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  exec $BIN/gunicorn hydrilla.asgi:application \
    --bind "${HOST:-127.0.0.1}:$PORT" --backlog 4096 \
    --worker-class hydrilla.server.Worker --workers "${WEB_PROCESSES:-2}" \
    --timeout 120 --graceful-timeout 20 --config python:hydrilla.gunicorn_hooks \
    --access-logfile "${ACCESS_LOG:--}"
}
if [ "${1:-}" = web ]; then
  web
fi

pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

supervise web web

# The queues each kind of worker consumes (hydrilla.queues.WORKER_QUEUES).
queues() { $BIN/python -m hydrilla.queues "$1"; }

# Model calls only: one stage at a time per GPU. Prefork: the model loads in the child, after
# the fork, and a child killed mid-stage is replaced while the broker redelivers its message.
# With GPU_DEVICES, one child per listed GPU, each pinned to its own (celery_app, generation.tasks).
gpu_concurrency=(--concurrency "${GPU_WORKER_CONCURRENCY:-1}")
if [ -n "${GPU_DEVICES:-}" ]; then gpu_concurrency=(); fi
supervise gpu-worker $BIN/celery -A celery_app worker -Q "$(queues gpu)" --hostname "gpu@%h" \
  --pool prefork "${gpu_concurrency[@]}" --loglevel INFO

# Previews and housekeeping, apart so that a preview never waits behind a 3D job; the beat
# scheduler beside it sends the periodic housekeeping and the webhooks' sweep (compose.yaml runs it
# as a service of its own).
supervise preview-worker $BIN/celery -A celery_app worker -Q "$(queues preview)" --hostname "preview@%h" --beat \
  --pool prefork --concurrency "${PREVIEW_WORKER_CONCURRENCY:-1}" --loglevel INFO

# Everything of a 3D job around its model calls (fetching and cutting out the input, finishing,
# exporting and storing the mesh) and remeshing: CPU only, and no model ever loads in it.
supervise cpu-worker env PRELOAD_MODELS= $BIN/celery -A celery_app worker -Q "$(queues cpu)" --hostname "cpu@%h" \
  --pool prefork --concurrency "${CPU_WORKER_CONCURRENCY:-2}" --loglevel INFO

# Webhook deliveries and their sweep: a slow or dead receiver holds only these workers (each
# attempt ends within WEBHOOK_TIMEOUT_SECONDS), never one that runs jobs; no model loads in them.
supervise webhooks-worker env PRELOAD_MODELS= $BIN/celery -A celery_app worker -Q "$(queues webhooks)" --hostname "webhooks@%h" \
  --pool prefork --concurrency "${WEBHOOK_WORKER_CONCURRENCY:-2}" --loglevel INFO

echo "Hydrilla is serving on http://${HOST:-127.0.0.1}:$PORT (Ctrl-C stops it)"
wait
