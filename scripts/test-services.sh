#!/usr/bin/env bash
# Runs a command with the real services the tests talk to: PostgreSQL, RabbitMQ, Redis and an S3
# endpoint (moto's standalone server on loopback). Starts whichever is down.
set -euo pipefail
cd "$(dirname "$0")/.."

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port, name
  for _ in $(seq 1 60); do listening "$1" && return 0; sleep 1; done
  echo "$2 did not come up on port $1" >&2; return 1
}

if ! listening 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_for 5432 PostgreSQL
fi
if ! listening 5672; then
  rabbitmq-server -detached
  wait_for 5672 RabbitMQ
fi
if ! listening 6379; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for 6379 Redis
fi

mkdir -p var  # moto's log, on a fresh checkout too
MOTO_PORT=${MOTO_PORT:-5077}
if ! listening "$MOTO_PORT"; then
  # Left running for the next run on this machine (parallel runs share it); loopback only.
  nohup .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" >var/moto.log 2>&1 &
  wait_for "$MOTO_PORT" "moto S3 server"
fi

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hydrilla}
if [ -z "${CELERY_BROKER_URL:-}" ]; then
  # A RabbitMQ virtual host of this run's own: tests read, purge and consume the real queues, and
  # two runs on one machine must not take each other's messages.
  vhost="hydrilla-test-$$"
  rabbitmqctl -q add_vhost "$vhost" >/dev/null
  rabbitmqctl -q set_permissions -p "$vhost" guest ".*" ".*" ".*" >/dev/null
  trap 'rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true' EXIT
  export CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
fi
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export S3_BUCKET=${S3_BUCKET:-hydrilla-test}
export S3_REGION=${S3_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
export AWS_S3_ENDPOINT_URL=${AWS_S3_ENDPOINT_URL:-http://127.0.0.1:$MOTO_PORT}
"$@"
