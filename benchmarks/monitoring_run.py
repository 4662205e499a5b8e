"""A monitored run: the service as `make run` starts it (embedded defaults, tiny models, in a folder
of its own), Prometheus scraping its /metrics every 5 s with deploy/prometheus's alert rules, and a
mix of jobs through the HTTP API — photos that complete, blank photos that fail INVALID_IMAGE,
text-to-3D jobs cancelled at once, a burst over the anonymous submit limit — while a frontend
polls. Then the dashboard's panels are drawn from what Prometheus holds
(deploy/grafana/render_panels.py) into docs/dashboard.png.

Needs Debian's prometheus (`apt-get install prometheus`) and python3-matplotlib for the drawing.

    .venv/bin/python benchmarks/monitoring_run.py --minutes 6
"""

import argparse
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
TOKEN = "monitoring-run"
USER = "user_monitoring"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def photo(with_object: bool) -> bytes:
    image = Image.new("RGB", (256, 256), (236, 236, 232))
    if with_object:
        box = [random.randint(40, 80), random.randint(40, 80)]
        ImageDraw.Draw(image).rounded_rectangle(
            (*box, box[0] + 130, box[1] + 140), radius=20, fill=(200, 40, 40)
        )
    data = io.BytesIO()
    image.save(data, format="JPEG")
    return data.getvalue()


def start(command, env, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def wait_for(url: str, process: subprocess.Popen, log: Path, **kwargs) -> None:
    for _ in range(240):
        if process.poll() is not None:
            sys.exit(f"{url} never answered; see {log}")
        try:
            if requests.get(url, timeout=5, **kwargs).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    sys.exit(f"{url} never answered; see {log}")


def drive(base: str, session: requests.Session, minutes: float) -> dict:
    """Submit the mix of jobs for ``minutes`` while a frontend polls; returns what was sent."""
    sent = {"completed": 0, "blank": 0, "cancelled": 0, "throttled": 0}
    polled: list[str] = []
    end = time.monotonic() + minutes * 60
    stop_polling = threading.Event()

    def poll():
        while not stop_polling.is_set():
            for job_id in list(polled[-5:]):
                session.get(f"{base}/api/3d/status/{job_id}", timeout=10)
            time.sleep(0.5)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    round_number = 0
    while time.monotonic() < end:
        round_number += 1
        for with_object in (True, True, True, round_number % 2 == 0):
            url = requests.post(
                f"{base}/api/3d/upload-image",
                files={"image": ("photo.jpg", photo(with_object))},
                timeout=30,
            ).json()["url"]
            answer = session.post(f"{base}/api/3d/generate", json={"imageUrl": url}, timeout=10)
            if answer.ok:
                polled.append(answer.json()["jobId"])
                sent["completed" if with_object else "blank"] += 1
        if round_number % 3 == 0:
            answer = session.post(f"{base}/text-to-3d", json={"prompt": "a tin robot"}, timeout=10)
            if answer.ok:
                session.post(f"{base}/cancel/{answer.json()['job_id']}", timeout=10)
                sent["cancelled"] += 1
        if round_number % 4 == 0:  # anonymous callers over GENERATION_SUBMIT_RATE_ANON
            for _ in range(4):
                answer = requests.post(f"{base}/text-to-3d", json={"prompt": "a cup"}, timeout=10)
                sent["throttled"] += answer.status_code == 429
        time.sleep(random.uniform(8, 20))
    stop_polling.set()
    poller.join()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=6, help="how long jobs are submitted")
    parser.add_argument("--out", default=str(ROOT / "docs" / "dashboard.png"))
    options = parser.parse_args()
    if shutil.which("prometheus") is None:
        sys.exit("needs Debian's prometheus: apt-get install prometheus")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")
    from accounts.dev_keys import ensure_keys, mint_token

    _, public_key = ensure_keys()
    folder = Path(tempfile.mkdtemp(prefix="hydrilla-monitoring-"))
    port, prometheus_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "S3_BUCKET", "CACHE_URL")
    } | {
        "DATABASE_URL": f"sqlite:///{folder}/db.sqlite3",
        "CELERY_BROKER_DIR": str(folder / "broker"),
        "MEDIA_ROOT": str(folder / "media"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
        "METRICS_TOKEN": TOKEN,
        "CLERK_JWT_KEY": public_key,
        "PORT": str(port),
        "WEB_PROCESSES": "1",
        "MESH_GRID_SIZE": "32",
        "GENERATION_SUBMIT_RATE_ANON": "2/min",
        "MAX_WAITING_JOBS_PER_CALLER": "100",
        "SUBMIT_RATE_USER": "1000/min",
        "SUBMIT_RATE_IP": "1000/min",
        "ACCESS_LOG": "/dev/null",
    }
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    (folder / "metrics-token").write_text(TOKEN)
    shutil.copy(ROOT / "deploy" / "prometheus" / "alerts.yml", folder / "alerts.yml")
    # deploy's configuration with this run's one target and a shorter interval.
    config = config.split("scrape_configs:")[0].replace("15s", "5s") + (
        "scrape_configs:\n  - job_name: web\n    authorization:\n"
        "      credentials_file: metrics-token\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    (folder / "prometheus.yml").write_text(config)
    service = start([str(ROOT / "scripts" / "serve.sh")], env, folder / "service.log")
    prometheus = start(
        [
            "prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        os.environ,
        folder / "prometheus.log",
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health", service, folder / "service.log")
        wait_for(
            f"http://127.0.0.1:{prometheus_port}/-/ready", prometheus, folder / "prometheus.log"
        )
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {mint_token(USER, hours=2)}"
        began = time.time()
        sent = drive(base, session, options.minutes)
        time.sleep(60)  # the last jobs end, and Prometheus scrapes them
        print(f"sent: {sent}")
        subprocess.run(
            [
                "/usr/bin/python3",  # Debian's, with python3-matplotlib
                str(ROOT / "deploy" / "grafana" / "render_panels.py"),
                "--prometheus",
                f"http://127.0.0.1:{prometheus_port}",
                "--start",
                str(int(began)),
                "--out",
                options.out,
            ],
            check=True,
        )
    finally:
        stop(prometheus)
        stop(service)
    print(f"logs and data in {folder}")


if __name__ == "__main__":
    main()
