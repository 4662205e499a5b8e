"""Load benchmark of the web tier: throughput of status polls against a bare DRF view, pollers at
the
spec's cadence, many open streams and waiting previews, slow clients, and the per-caller limits.

Everything runs on this machine, over loopback, for a bounded time: its own PostgreSQL database
(``hydrilla_bench``), Redis for the shared cache, and the service as `scripts/serve.sh web` starts
it (uvicorn workers under gunicorn), beside today's gthread setup for the yardstick. No Celery
worker
runs: submitted jobs stay waiting. Throughput and latency come from wrk; the open streams, waiting
previews and slow clients from an asyncio client in this process.

    .venv/bin/python benchmarks/web_load.py                  # the whole run, some 10 minutes
    .venv/bin/python benchmarks/web_load.py --levels 10 --streams 1000 --previews 100
    .venv/bin/python benchmarks/web_load.py --only database-load --load-seconds 10
    .venv/bin/python benchmarks/web_load.py --metrics-cost   # the status poll with and without
                                                             # the metrics middleware, alone

The database's load (``database-load``): the service with 2 and then 4 web processes
(``--web-processes``), and the transactions per second the database commits
(pg_stat_database's ``xact_commit`` + ``xact_rollback``, less the benchmark's own) with no
client, with 200 pollers at the spec's 2 s cadence while nothing changes, and with those pollers
while a worker-like writer changes the polled job ten times a second.
"""

import argparse
import asyncio
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hydrilla_bench")
CACHE = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/9")
USER = "user_bench"
LOOSE_LIMITS = {
    "SUBMIT_RATE_USER": "100000/min",
    "SUBMIT_RATE_IP": "100000/min",
    "GENERATION_SUBMIT_RATE_ANON": "100000/min",
    "MAX_WAITING_JOBS_PER_CALLER": "100000",
    "MAX_STREAMS_PER_CALLER": "100000",
    "MAX_WAITING_PREVIEWS_PER_CALLER": "100000",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One web server process group on a loopback port."""

    def __init__(self, name: str, command: list[str], env: dict):
        self.name, self.port = name, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**env, "PORT": str(self.port)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not _answers(self.port, "/health"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {self.log.name}")
            time.sleep(0.3)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def _answers(port: int, path: str) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            connection.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            return connection.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def service_env(public_key: str, **overrides) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "benchmarks.web.settings",
        "DATABASE_URL": DATABASE,
        "CACHE_URL": CACHE,
        "CLERK_JWT_KEY": public_key,
        "ACCESS_LOG": "/dev/null",
        "LOG_LEVEL": "WARNING",
        "PREVIEW_WAIT_SECONDS": "600",
        **overrides,
    }


def gthread_command() -> list[str]:
    """Today's setup before this change, as the yardstick's second server."""
    return [
        str(ROOT / ".venv/bin/gunicorn"),
        "hydrilla.wsgi:application",
        "--bind",
        "127.0.0.1:$PORT",
        "--worker-class",
        "gthread",
        "--workers",
        "2",
        "--threads",
        "32",
        "--timeout",
        "120",
    ]


# --- Measuring -----------------------------------------------------------------------------------


def wrk(url: str, *, connections=32, seconds=8, headers=(), script: str | None = None) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = {
        p: _ms(v, unit)
        for p, v, unit in re.findall(r"\s(50|99)\.000%\s+([\d.]+)(us|ms|s)\b", output)
    }
    if not percentiles:
        percentiles = {
            p: _ms(v, unit)
            for p, v, unit in re.findall(r"\s+(50|99)%\s+([\d.]+)(us|ms|s)\b", output)
        }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rate,
        "p50_ms": percentiles.get("50"),
        "p99_ms": percentiles.get("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def cadence_script(folder: Path, token: str, seconds_between: float) -> str:
    """wrk Lua: every connection is one poller, waiting between its polls like the frontend."""
    path = folder / "cadence.lua"
    path.write_text(
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        f"function delay() return {int(seconds_between * 1000)} end\n"
    )
    return str(path)


async def open_streams(port: int, job_id: str, count: int) -> list:
    """``count`` event streams on one job, each read up to its first event."""
    streams, failed = [], 0
    semaphore = asyncio.Semaphore(256)  # connections being opened at once

    async def one():
        nonlocal failed
        async with semaphore:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**16)
                writer.write(
                    f"GET /stream/{job_id} HTTP/1.1\r\nHost: "
                    f"127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
                )
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                if b" 200 " not in head.split(b"\r\n")[0]:
                    raise ConnectionError(head[:40])
                await asyncio.wait_for(reader.readuntil(b"\n\n"), 60)
                streams.append(writer)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError):
                failed += 1

    await asyncio.gather(*(one() for _ in range(count)))
    return streams, failed


async def post_previews(port: int, count: int) -> tuple[list, int]:
    """``count`` /text-to-image requests, left waiting (no worker makes previews here)."""
    waiting, failed = [], 0
    semaphore = asyncio.Semaphore(256)

    async def one(n):
        nonlocal failed
        async with semaphore:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                body = f"prompt=a+waiting+teapot+{n}".encode()
                writer.write(
                    b"POST /text-to-image HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/x-www-form-urlencoded\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                waiting.append((reader, writer))
            except OSError:
                failed += 1

    await asyncio.gather(*(one(n) for n in range(count)))
    deadline = time.monotonic() + 300
    while int(psql("SELECT count(*) FROM jobs_job WHERE kind = 'text-to-image'")) < len(waiting):
        if time.monotonic() > deadline:  # measured all the same, and the shortfall reported
            failed += len(waiting) - int(
                psql("SELECT count(*) FROM jobs_job WHERE kind = 'text-to-image'")
            )
            break
        await asyncio.sleep(0.5)  # until every request is waiting on its preview
    return waiting, failed


async def slow_header_clients(port: int, count: int) -> list:
    clients = []
    for _ in range(count):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            clients.append(writer)
        except OSError:
            pass
    return clients


def close_all(writers) -> None:
    for writer in writers:
        writer.close()


# --- The database
# ----------------------------------------------------------------------------------


def psql(sql: str, database: str = DATABASE) -> str:
    return subprocess.run(
        ["psql", database, "-tAqc", sql], capture_output=True, text=True, check=True
    ).stdout.strip()


def transactions() -> int:
    """Transactions the benchmark database has committed or rolled back so far (this query
    included)."""
    return int(
        psql(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
    )


def prepare_database() -> None:
    server, name = DATABASE.rsplit("/", 1)
    psql(f"DROP DATABASE IF EXISTS {name}", f"{server}/postgres")
    psql(f"CREATE DATABASE {name}", f"{server}/postgres")
    subprocess.run(
        [str(ROOT / ".venv/bin/python"), "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": DATABASE},
    )
    psql(
        f"INSERT INTO accounts_user (id, email, first_name, "
        f"last_name, image_url, is_staff, created_at, updated_at) "
        f"VALUES ('{USER}', '', '', '', '', false, now(), now())"
    )


def fill_queue(waiting: int) -> str:
    """Exactly ``waiting`` waiting 3D jobs, oldest first; returns the id of the newest (the
    user's)."""
    psql("DELETE FROM jobs_job")
    psql(
        "INSERT INTO jobs_job (id, user_id, kind, state, prompt, "
        "input_image, generate_type, enable_pbr, result_glb, "
        "preview_image, processed_image, registered_preview_url, "
        "progress, message, cancel_requested, attempts, "
        "worker, downloads, source_mesh, step_seconds, "
        "stage_runs, stage, raw_mesh, worker_process, queued_at, "
        "created_at, updated_at) "
        f"SELECT gen_random_uuid(), CASE WHEN g = {waiting} THEN '{USER}' END, "
        "CASE WHEN g % 2 = 0 THEN 'text-to-3d' ELSE 'image-to-3d' "
        "END, 'pending', 'a mug', '', 'Normal', false, "
        "'', '', '', '', 0, 'Queued', false, 0, '', '{}', '', '{}', '[]', "
        "CASE WHEN g % 2 = 0 THEN 'text_to_image' ELSE 'prepare' END, '', '', now(), "
        "now() - ({n} - g) * interval '1 ms', now() "
        f"FROM generate_series(1, {waiting}) g".replace("{n}", str(waiting))
    )
    psql("VACUUM ANALYZE jobs_job")
    return psql(f"SELECT id FROM jobs_job WHERE user_id = '{USER}'")


# --- The run
# ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="10,10000,100000", help="waiting jobs, comma-separated")
    parser.add_argument("--seconds", type=int, default=8, help="wrk's duration per measurement")
    parser.add_argument("--streams", type=int, default=10000)
    parser.add_argument("--previews", type=int, default=1000)
    parser.add_argument("--slow-clients", type=int, default=500)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--only",
        choices=["throughput", "database-load"],
        help="run this part alone: the polls against the bare view and the 200 pollers, or the "
        "database's load",
    )
    parser.add_argument("--web-processes", default="2,4", help="for the database load")
    parser.add_argument("--load-seconds", type=int, default=10, help="per database-load figure")
    parser.add_argument(
        "--metrics-cost",
        action="store_true",
        help="only the status poll with and without the metrics middleware (--rounds of each)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="--metrics-cost's alternations")
    options = parser.parse_args()
    levels = [int(level) for level in options.levels.split(",")]

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")
    from accounts.dev_keys import ensure_keys, mint_token

    _, public_key = ensure_keys()
    token = mint_token(USER, hours=2)
    auth = f"Authorization: Bearer {token}"
    prepare_database()
    env = service_env(public_key, **LOOSE_LIMITS)
    if options.metrics_cost:
        figures = metrics_cost(env, auth, options.seconds, options.rounds)
    elif options.only == "database-load":
        figures = {
            "machine": f"{os.cpu_count()} CPUs",
            "date": time.strftime("%Y-%m-%d"),
            "database_load": database_load(options, env, token, levels[-1]),
        }
    if options.metrics_cost or options.only == "database-load":
        if options.json:
            Path(options.json).write_text(json.dumps(figures, indent=2))
        return
    servers = {
        "uvicorn (serve.sh web)": Server("uvicorn", [str(ROOT / "scripts/serve.sh"), "web"], env),
        "gthread (before)": Server("gthread", ["bash", "-c", " ".join(gthread_command())], env),
    }
    figures = {"machine": f"{os.cpu_count()} CPUs", "date": time.strftime("%Y-%m-%d"), "levels": {}}
    try:
        for waiting in levels:
            job_id = fill_queue(waiting)
            level = figures["levels"][waiting] = {}
            for name, server in servers.items():
                # The first poll reads and follows the job; the measurement starts after it.
                subprocess.run(
                    [
                        "curl",
                        "-s",
                        "-o",
                        "/dev/null",
                        "-H",
                        auth,
                        f"{server.base}/api/3d/status/{job_id}",
                    ]
                )
                level[name] = {
                    "bare": wrk(f"{server.base}/bench/bare", seconds=options.seconds),
                    "/api/3d/status": wrk(
                        f"{server.base}/api/3d/status/{job_id}",
                        seconds=options.seconds,
                        headers=[auth],
                    ),
                    "/status": wrk(f"{server.base}/status/{job_id}", seconds=options.seconds),
                }
            yardstick = max(level[name]["bare"]["rps"] for name in servers)
            level["yardstick_rps"] = yardstick
            for name in servers:
                for path in ("/api/3d/status", "/status"):
                    level[name][path]["ratio"] = round(level[name][path]["rps"] / yardstick, 2)
            report_level(waiting, level, servers)

        new = servers["uvicorn (serve.sh web)"]
        servers.pop("gthread (before)").stop()
        job_id = psql(f"SELECT id FROM jobs_job WHERE user_id = '{USER}'")
        with tempfile.TemporaryDirectory() as folder:
            script = cadence_script(Path(folder), token, 2.0)
            figures["pollers_200_at_2s"] = wrk(
                f"{new.base}/api/3d/status/{job_id}", connections=200, seconds=20, script=script
            )
        print(f"\n200 pollers every 2 s, {levels[-1]} waiting: {fmt(figures['pollers_200_at_2s'])}")
        if options.only == "throughput":
            return

        figures["streams"] = asyncio.run(
            under_load(
                new,
                "open streams",
                options.streams,
                lambda: open_streams(new.port, job_id, options.streams),
                job_id,
            )
        )
        figures["previews"] = asyncio.run(
            under_load(
                new,
                "waiting previews",
                options.previews,
                lambda: post_previews(new.port, options.previews),
                job_id,
            )
        )
        figures["slow_headers"] = asyncio.run(
            under_load(
                new,
                "slow-header clients",
                options.slow_clients,
                lambda: slow_header_clients(new.port, options.slow_clients),
                job_id,
            )
        )
        new.stop()
        servers.clear()

        limited = Server(
            "limited", [str(ROOT / "scripts/serve.sh"), "web"], service_env(public_key)
        )
        servers["limited"] = limited
        figures["abuse"] = abuse(limited)
    finally:
        for server in servers.values():
            server.stop()
        if options.json:
            Path(options.json).write_text(json.dumps(figures, indent=2))


def database_load(options, env: dict, token: str, waiting: int) -> dict:
    """Transactions per second with each number of web processes: idle, polled, polled while the
    polled job changes."""
    job_id = fill_queue(waiting)
    figures = {}
    seconds = options.load_seconds
    for processes in [int(n) for n in options.web_processes.split(",")]:
        server = Server(
            f"uvicorn-{processes}",
            [str(ROOT / "scripts/serve.sh"), "web"],
            {**env, "WEB_PROCESSES": str(processes)},
        )
        try:
            with tempfile.TemporaryDirectory() as folder:
                script = cadence_script(Path(folder), token, 2.0)
                url = f"{server.base}/api/3d/status/{job_id}"
                wrk(url, connections=4 * processes, seconds=2, script=script)  # all follow it
                pollers = functools.partial(
                    wrk, url, connections=200, seconds=seconds, script=script
                )
                row = figures[processes] = {
                    "idle": per_second(functools.partial(time.sleep, seconds), seconds),
                    "pollers_200_nothing_changes": per_second(pollers, seconds),
                    "pollers_200_job_changes_10_per_s": per_second(
                        functools.partial(changing, job_id, pollers), seconds, own_per_second=10
                    ),
                }
        finally:
            server.stop()
        print(
            f"\n{processes} web processes, database transactions/s: idle {row['idle']}, "
            f"200 pollers {row['pollers_200_nothing_changes']}, "
            f"200 pollers with changes {row['pollers_200_job_changes_10_per_s']}"
        )
    return figures


def per_second(action, seconds: int, own_per_second: float = 0) -> float:
    """The database's transactions per second while ``action`` runs, less the benchmark's own
    (the two counting queries, and ``own_per_second``)."""
    before = transactions()
    action()
    spent = transactions() - before - 1
    return round(spent / seconds - own_per_second, 1)


def changing(job_id: str, action) -> None:
    """``action`` while a writer changes the job's progress ten times a second, as a worker
    would."""
    stop = threading.Event()

    def write():
        sql = (
            "UPDATE jobs_job SET progress = (progress + 1) % 100, updated_at = now() "
            f"WHERE id = '{job_id}'"
        )
        while not stop.wait(0.1):
            psql(sql)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        action()
    finally:
        stop.set()
        writer.join()


def metrics_cost(env: dict, auth: str, seconds: int, rounds: int) -> dict:
    """The status poll's throughput on `serve.sh web` with the metrics middleware (and the
    multiprocess folder it writes to) and without it, alternating ``rounds`` times so that both
    see the same machine; the ratio is with / without."""
    job_id = fill_queue(10)
    with tempfile.TemporaryDirectory() as folder:
        servers = {
            "with metrics": Server(
                "with-metrics",
                [str(ROOT / "scripts/serve.sh"), "web"],
                {**env, "PROMETHEUS_MULTIPROC_DIR": f"{folder}/with", "METRICS_TOKEN": "bench"},
            ),
            "without": Server(
                "without-metrics",
                [str(ROOT / "scripts/serve.sh"), "web"],
                {
                    **env,
                    "PROMETHEUS_MULTIPROC_DIR": f"{folder}/without",
                    "BENCH_WITHOUT_METRICS": "1",
                },
            ),
        }
        runs = {name: [] for name in servers}
        try:
            for _ in range(rounds):
                for name, server in servers.items():
                    url = f"{server.base}/api/3d/status/{job_id}"
                    runs[name].append(wrk(url, seconds=seconds, headers=[auth]))
            counted = subprocess.run(
                [
                    "curl",
                    "-s",
                    "-H",
                    "Authorization: Bearer bench",
                    f"{servers['with metrics'].base}/metrics",
                ],
                capture_output=True,
                text=True,
            ).stdout
        finally:
            for server in servers.values():
                server.stop()
    rps = {name: sum(run["rps"] for run in results) / rounds for name, results in runs.items()}
    figures = {
        "machine": f"{os.cpu_count()} CPUs",
        "date": time.strftime("%Y-%m-%d"),
        "rounds": runs,
        "rps": rps,
        "ratio": round(rps["with metrics"] / rps["without"], 3),
    }
    # The middleware did count the polls it was measured on.
    assert 'route="/api/3d/status/<str:job_id>"' in counted, counted[:2000]
    print(
        f"status poll, {rounds} x {seconds} s each: with metrics {rps['with metrics']:.0f} req/s, "
        f"without {rps['without']:.0f} req/s, ratio {figures['ratio']:.3f}"
    )
    return figures


async def under_load(server: Server, what: str, count: int, opener, job_id: str) -> dict:
    """/health and status polls while ``count`` connections of a kind are held open."""
    started = time.monotonic()
    opened = await opener()
    held, failed = opened if isinstance(opened, tuple) else (opened, 0)
    open_seconds = round(time.monotonic() - started, 1)
    loop = asyncio.get_running_loop()
    health = await loop.run_in_executor(
        None, lambda: wrk(f"{server.base}/health", connections=8, seconds=8)
    )
    polls = await loop.run_in_executor(
        None, lambda: wrk(f"{server.base}/status/{job_id}", connections=16, seconds=8)
    )
    close_all(writer for writer in (item[1] if isinstance(item, tuple) else item for item in held))
    result = {
        "held": len(held),
        "failed": failed,
        "open_seconds": open_seconds,
        "health": health,
        "status_polls": polls,
    }
    print(
        f"\n{len(held)} {what} held ({failed} failed, opened in {open_seconds} s):"
        f"\n  /health  {fmt(health)}\n  /status  {fmt(polls)}"
    )
    await asyncio.sleep(2)  # the server lets go of them before the next part
    return result


def abuse(server: Server) -> dict:
    """What the default limits let through of two bursts that all got through before: 150
    anonymous /text-to-3d, and 10 anonymous 9 MB uploads (from a fresh start: no job, no count)."""
    import io

    import numpy
    import redis
    import requests
    from PIL import Image

    psql("DELETE FROM jobs_job")
    psql("DELETE FROM jobs_upload")
    redis.Redis.from_url(CACHE).flushdb()
    texts = [
        requests.post(
            f"{server.base}/text-to-3d", data={"prompt": f"spam {n}"}, timeout=10
        ).status_code
        for n in range(150)
    ]
    redis.Redis.from_url(CACHE).flushdb()  # each burst from a fresh start
    noise = Image.fromarray(
        numpy.random.default_rng(0).integers(0, 255, (1800, 1800, 3), dtype=numpy.uint8)
    )
    photo = io.BytesIO()
    noise.save(photo, format="PNG")  # some 9.3 MB: random pixels do not compress
    uploads = [
        requests.post(
            f"{server.base}/api/3d/upload-image",
            files={"image": ("a.png", photo.getvalue())},
            timeout=60,
        ).status_code
        for _ in range(10)
    ]
    result = {
        "text_to_3d_burst": {
            "sent": 150,
            "accepted": texts.count(200),
            "refused_429": texts.count(429),
        },
        "uploads": {
            "sent": 10,
            "bytes_each": len(photo.getvalue()),
            "accepted": uploads.count(200),
            "refused_429": uploads.count(429),
            "kept_for_deletion_after_a_day": int(psql("SELECT count(*) FROM jobs_upload")),
        },
    }
    print(
        f"\nDefault limits: 150 anonymous /text-to-3d in a burst: {result['text_to_3d_burst']}; "
        f"10 anonymous uploads: {result['uploads']}"
    )
    return result


def fmt(figures: dict) -> str:
    return (
        f"{figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.1f} "
        f"ms, p99 {figures['p99_ms']:.1f} ms"
        + (f", {figures['non_2xx']} non-2xx" if figures["non_2xx"] else "")
    )


def report_level(waiting: int, level: dict, servers: dict) -> None:
    print(
        f"\n{waiting} waiting jobs (yardstick: the faster "
        f"bare view, {level['yardstick_rps']:.0f} req/s)"
    )
    for name in servers:
        row = level[name]
        print(
            f"  {name:24} bare {row['bare']['rps']:7.0f}   "
            f"/api/3d/status {row['/api/3d/status']['rps']:7.0f} "
            f"({row['/api/3d/status']['ratio']:.2f})   /status "
            f"{row['/status']['rps']:7.0f} ({row['/status']['ratio']:.2f})"
        )


if __name__ == "__main__":
    main()
