"""`make demo`: the service on its embedded defaults, two real jobs through the HTTP API.

Starts scripts/serve.sh (web server + workers) with SQLite, the filesystem broker and local
storage under var/, signs in with a locally minted dev token, submits a text-to-3D job and an
image-to-3D job of a photo it draws, shows their progress, and prints where the GLB files are,
each with a picture of its model beside it (drawn by scripts/render_preview.py).
"""

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
# Run as a script (scripts/ first on the path) or imported (tests, benchmarks): the same imports.
sys.path.insert(0, str(ROOT))
from scripts.render_preview import load_model, picture  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
OUT = ROOT / "var" / "demo"
JOB_TIMEOUT_SECONDS = 600


def free_port(preferred: int) -> int:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage(*args: str, env=None) -> str:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


def draw_sample_photo() -> bytes:
    """A red mug with a handle on a plain light background: what a user would photograph."""
    image = Image.new("RGB", (512, 512), (236, 236, 232))
    draw = ImageDraw.Draw(image)
    draw.ellipse((330, 190, 430, 330), outline=(180, 30, 30), width=22)
    draw.rounded_rectangle((150, 150, 360, 390), radius=28, fill=(200, 40, 40))
    draw.ellipse((150, 135, 360, 175), fill=(150, 25, 25))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def wait_until_up(base: str, server: subprocess.Popen) -> None:
    for _ in range(120):
        if server.poll() is not None:
            sys.exit("The service exited while starting; see var/demo/service.log.")
        try:
            if requests.get(f"{base}/api/3d/queue/info", timeout=2).ok:
                return
        except requests.RequestException:
            pass  # not listening yet, or its processes still starting on a busy machine
        time.sleep(0.5)
    sys.exit("The service did not start within a minute.")


def follow(base: str, headers: dict, job_id: str, label: str, submitted: float) -> dict:
    """Print the job's progress until it ends, then how long it took from its submit
    (``submitted``, a monotonic time) to its end, as this client saw it."""
    last = None
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        body = requests.get(f"{base}/api/3d/status/{job_id}", headers=headers, timeout=10).json()
        job, queue = body["job"], body["queue"]
        line = f"  [{label}] {job['status']:<4} {job['progress']:>3}%  {job['message']}"
        if job["status"] == "WAIT":
            line += f"  (position {queue['position']}, ~{queue['estimated_wait_seconds']} s)"
        if line != last:
            print(line, flush=True)
            last = line
        if job["status"] in ("DONE", "FAIL"):
            print(
                f"  [{label}] {job['status']} {time.monotonic() - submitted:.1f} s after its submit"
            )
            return job
        time.sleep(0.2)
    sys.exit(f"[{label}] did not finish within {JOB_TIMEOUT_SECONDS} s")


def save_glb(job: dict, label: str) -> Path:
    """The job's GLB, and a picture of its model beside it (same name, .png)."""
    path = OUT / f"{label}.glb"
    glb = requests.get(job["resultGlbUrl"], timeout=30).content
    path.write_bytes(glb)
    faces = len(load_model(glb).faces)
    print(f"  [{label}] {path.relative_to(ROOT)}: {faces} faces, from {job['resultGlbUrl']}")
    image = path.with_suffix(".png")
    picture(glb).save(image)
    print(f"  [{label}] {image.relative_to(ROOT)}: the model from the front and three quarters")
    return path


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "S3_BUCKET")
    }
    port = free_port(int(env.get("PORT", 4000)))
    env.update(
        PORT=str(port), CLERK_JWT_KEY=manage("dev_token", "--public-key"), CLERK_SECRET_KEY=""
    )
    env.pop("CLERK_AUTHORIZED_PARTIES", None)
    token = manage("dev_token", "--user", "user_demo", "--email", "demo@example.com").strip()
    if not env.get("TEXT_TO_IMAGE_MODEL"):
        print(
            "No text-to-image weights are configured "
            "(TEXT_TO_IMAGE_MODEL): previews come from a tiny\n"
            "randomly-initialised model built locally. Every "
            "stage really runs, but previews are blobs."
        )
    if not env.get("IMAGE_TO_3D_MODEL") and "IMAGE_TO_3D_BACKEND" not in env:
        print(
            "No image-to-3D weights are configured (IMAGE_TO_3D_MODEL): 3D models come from the\n"
            "weight-free silhouette backend, which inflates the photo's cut-out into a solid.\n"
        )
    manage("migrate", "--noinput", env=env)
    base = f"http://127.0.0.1:{port}"
    log_path = OUT / "service.log"
    log = open(log_path, "w")
    print(f"Starting the service (web server and workers); its log: {log_path.relative_to(ROOT)}")
    server = subprocess.Popen(
        [str(ROOT / "scripts" / "serve.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_up(base, server)
        headers = {"Authorization": f"Bearer {token}"}
        print(f"Service up at {base}\n")

        prompt = "a red ceramic coffee mug"
        print(f"Text-to-3D: {prompt!r}")
        submitted = time.monotonic()
        text_id = requests.post(
            f"{base}/api/3d/generate", json={"prompt": prompt}, headers=headers, timeout=10
        ).json()["jobId"]
        text_job = follow(base, headers, text_id, "text-to-3d", submitted)

        print("\nImage-to-3D: a photo of a mug (drawn by this script), uploaded first")
        upload = requests.post(
            f"{base}/api/3d/upload-image",
            files={"image": ("mug.jpg", draw_sample_photo(), "image/jpeg")},
            timeout=30,
        ).json()
        print(f"  uploaded: {upload['url']}")
        submitted = time.monotonic()
        image_id = requests.post(
            f"{base}/api/3d/generate", json={"imageUrl": upload["url"]}, headers=headers, timeout=10
        ).json()["jobId"]
        image_job = follow(base, headers, image_id, "image-to-3d", submitted)

        print("\nResults:")
        failed = False
        for job, label in ((text_job, "text-to-3d"), (image_job, "image-to-3d")):
            if job["status"] == "DONE":
                save_glb(job, label)
            else:
                failed = True
                print(f"  [{label}] FAILED: {job['errorCode']}: {job['errorMessage']}")
        if failed:
            sys.exit(1)
    finally:
        # serve.sh passes the TERM to each of its parts, which shut down on their own (a TERM to
        # the whole process group would reach Celery's pool children behind their parent's back).
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


if __name__ == "__main__":
    main()
