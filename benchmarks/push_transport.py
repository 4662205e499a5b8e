"""How a web process should learn of job changes and check a copy of a job: PostgreSQL's
LISTEN/NOTIFY against Redis pub/sub, and a primary-key lookup against a Redis GET.

For each transport, a committed write followed by its notice, timed from the write's start to
the listener's receipt; then the wall time and the client's CPU time of the read a poll would
add to check its copy. Loopback only: the benchmark database (``BENCH_DATABASE_URL``) and Redis
(``BENCH_CACHE_URL``, db 9), in a table of its own that it drops at the end.

    .venv/bin/python benchmarks/push_transport.py --json docs/push-transport-2026-12-02.json
"""

import argparse
import json
import os
import platform
import select
import time
import uuid
from datetime import UTC, datetime

import psycopg2
import redis

DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hydrilla_bench")
CACHE = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/9")
TABLE = "bench_push_transport"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * share) - 1, 0)]


def latency_figures(seconds: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(seconds, 0.5) * 1e3, 3),
        "p99_ms": round(percentile(seconds, 0.99) * 1e3, 3),
    }


def per_call(call, count: int) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        call()
    return {
        "wall_us": round((time.perf_counter() - started) / count * 1e6, 1),
        "client_cpu_us": round((time.process_time() - cpu) / count * 1e6, 1),
    }


def database(url: str = DATABASE):
    try:
        return psycopg2.connect(url)
    except psycopg2.OperationalError:
        admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {url.rsplit('/', 1)[1]}")
        admin.close()
        return psycopg2.connect(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    writer = database()
    with writer.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id uuid PRIMARY KEY, at timestamptz)")
    writer.commit()
    listener = database()
    listener.autocommit = True
    with listener.cursor() as cursor:
        cursor.execute(f"LISTEN {TABLE}")
    cache = redis.Redis.from_url(CACHE)
    subscriber = cache.pubsub()
    subscriber.subscribe(TABLE)
    subscriber.get_message(timeout=1)  # the subscription's confirmation
    reader = database()
    reader.autocommit = True
    try:
        pushed = {"postgresql_notify": [], "redis_publish": []}
        for _ in range(args.count):
            key = str(uuid.uuid4())
            started = time.perf_counter()
            with writer.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {TABLE} VALUES (%s, now()); SELECT pg_notify(%s, %s)",
                    [key, TABLE, key],
                )
            writer.commit()
            while not listener.notifies:
                select.select([listener], [], [], 1)
                listener.poll()
            listener.notifies.clear()
            pushed["postgresql_notify"].append(time.perf_counter() - started)

            started = time.perf_counter()
            with writer.cursor() as cursor:
                cursor.execute(f"INSERT INTO {TABLE} VALUES (%s, now())", [str(uuid.uuid4())])
            writer.commit()
            cache.publish(TABLE, key)
            while subscriber.get_message(timeout=1) is None:
                pass
            pushed["redis_publish"].append(time.perf_counter() - started)

        cache.set(f"{TABLE}:{key}", "1")
        with reader.cursor() as cursor:

            def lookup():
                cursor.execute(f"SELECT at FROM {TABLE} WHERE id = %s", [key])
                cursor.fetchone()

            checks = {
                "postgresql_primary_key_lookup": per_call(lookup, args.count),
                "redis_get": per_call(lambda: cache.get(f"{TABLE}:{key}"), args.count),
            }
    finally:
        with writer.cursor() as cursor:
            cursor.execute(f"DROP TABLE {TABLE}")
        writer.commit()
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, shared with other work",
        "count": args.count,
        "write_to_listener": {name: latency_figures(values) for name, values in pushed.items()},
        "check_one_job": checks,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
