#!/usr/bin/env bash
# The whole service in the foreground: the HTTP server and one Celery worker per kind of work.
# Settings come from the environment (see README). A part that dies is started again after
# RESTART_DELAY_SECONDS, while the others carry on; Ctrl-C (or TERM) stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT=${PORT:-4000}
RESTART_DELAY_SECONDS=${RESTART_DELAY_SECONDS:-2}

# Run "$@" in the background, and again whenever it exits, until this script is stopped. A TERM
# to the supervisor passes to its part, whose own shutdown is awaited: Celery's warm shutdown
# hands back its unfinished message. Production uses its own supervisor instead (README).
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

pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

# Threads, not processes, carry concurrency: requests mostly wait on the database, storage or a
# running job (long polls, event streams), so a waiting request must cost a thread, not a process.
supervise web $BIN/gunicorn hydrilla.wsgi:application \
  --bind "${HOST:-127.0.0.1}:$PORT" \
  --worker-class gthread --workers "${WEB_PROCESSES:-2}" --threads "${WEB_THREADS:-32}" \
  --timeout 120 --graceful-timeout 20 --access-logfile -

# The GPU queue: one job at a time per GPU. Prefork: the model loads in the child, after the
# fork, and a child killed mid-job is replaced while the broker redelivers its job. With
# GPU_DEVICES, one child per listed GPU, each pinned to its own (celery_app, generation.tasks).
gpu_concurrency=(--concurrency "${GPU_WORKER_CONCURRENCY:-1}")
if [ -n "${GPU_DEVICES:-}" ]; then gpu_concurrency=(); fi
supervise gpu-worker $BIN/celery -A celery_app worker -Q gpu --hostname "gpu@%h" \
  --pool prefork "${gpu_concurrency[@]}" --loglevel INFO

# Previews and housekeeping, apart so that a preview never waits behind a 3D job.
supervise preview-worker $BIN/celery -A celery_app worker -Q preview,default --hostname "preview@%h" \
  --pool prefork --concurrency "${PREVIEW_WORKER_CONCURRENCY:-1}" --loglevel INFO

echo "Hydrilla is serving on http://${HOST:-127.0.0.1}:$PORT (Ctrl-C stops it)"
wait
