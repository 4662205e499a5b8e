#!/usr/bin/env bash
# The whole service in the foreground: the HTTP server and one Celery worker per kind of work.
# Settings come from the environment (see README); Ctrl-C or the end of any part stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-4000}

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

# Threads, not processes, carry concurrency: requests mostly wait on the database, storage or a
# running job (long polls, event streams), so a waiting request must cost a thread, not a process.
$BIN/gunicorn hydrilla.wsgi:application \
  --bind "${HOST:-127.0.0.1}:$PORT" \
  --worker-class gthread --workers "${WEB_PROCESSES:-2}" --threads "${WEB_THREADS:-32}" \
  --timeout 120 --graceful-timeout 20 --access-logfile - &
pids+=($!)

# The GPU queue: one job at a time per GPU. Prefork with one child: the model loads in the child,
# after the fork, and a child killed mid-job is replaced while the broker redelivers its job.
$BIN/celery -A celery_app worker -Q gpu --hostname "gpu@%h" \
  --pool prefork --concurrency "${GPU_WORKER_CONCURRENCY:-1}" --loglevel INFO &
pids+=($!)

# Previews and housekeeping, apart so that a preview never waits behind a 3D job.
$BIN/celery -A celery_app worker -Q preview,default --hostname "preview@%h" \
  --pool prefork --concurrency "${PREVIEW_WORKER_CONCURRENCY:-1}" --loglevel INFO &
pids+=($!)

# Remeshing finished models: CPU only, and no model ever loads in it.
PRELOAD_MODELS= $BIN/celery -A celery_app worker -Q cpu --hostname "cpu@%h" \
  --pool prefork --concurrency "${CPU_WORKER_CONCURRENCY:-1}" --loglevel INFO &
pids+=($!)

echo "Hydrilla is serving on http://${HOST:-127.0.0.1}:$PORT (Ctrl-C stops it)"
wait -n "${pids[@]}"
