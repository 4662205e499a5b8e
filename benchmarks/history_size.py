"""How large and how slow ``GET /api/3d/history`` is for a user with many jobs: the unpaged answer
(the spec's, every job in one body), one page of it (``?limit=``), and ``GET /api/3d/me`` as the
bare baseline (the same authentication and a two-query answer), all in one run.

In process (Django's test client, no HTTP server): what is measured is the view, its queries and
its rendering, with the storage's URL of each file as production makes them (signed when the bucket
is private: set S3_BUCKET and the AWS_* variables, e.g. through scripts/test-services.sh). Its own
PostgreSQL database (``test_`` + the name in BENCH_DATABASE_URL), made and dropped by the run.

    .venv/bin/python benchmarks/history_size.py                    # 10,000 jobs
    .venv/bin/python benchmarks/history_size.py --jobs 1000 --repeats 3 --json out.json
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hydrilla_bench")
USER = "user_history_bench"
PAGE = 100


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args(argv)

    os.environ["DATABASE_URL"] = DATABASE
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hydrilla.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        report = measure(args.jobs, args.repeats)
    finally:
        connection.creation.destroy_test_db(DATABASE.rsplit("/", 1)[1], verbosity=0)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


def measure(jobs: int, repeats: int) -> dict:
    from django.conf import settings
    from django.test import Client

    from accounts import api_keys
    from accounts.models import User

    user = User.objects.create(id=USER, email="bench@example.com")
    make_jobs(user, jobs)
    _, key = api_keys.create_key(user, name="bench")
    client = Client(headers={"Authorization": f"Bearer {key}"})

    def timed(path: str) -> dict:
        client.get(path)  # warm: connection, caches, first-call costs
        seconds, size = [], 0
        for _ in range(repeats):
            began = time.perf_counter()
            response = client.get(path)
            seconds.append(time.perf_counter() - began)
            assert response.status_code == 200, response.content[:200]
            size = len(response.content)
        return {"median_seconds": statistics.median(seconds), "bytes": size}

    baseline = timed("/api/3d/me")
    unpaged = timed("/api/3d/history")
    page = timed(f"/api/3d/history?limit={PAGE}")
    return {
        "jobs": jobs,
        "repeats": repeats,
        "storage": "S3 (signed URLs)" if settings.S3_BUCKET else "local files",
        "baseline_me": baseline,
        "unpaged": unpaged | {"ratio": unpaged["median_seconds"] / baseline["median_seconds"]},
        f"page_of_{PAGE}": page | {"ratio": page["median_seconds"] / baseline["median_seconds"]},
    }


def make_jobs(user, count: int) -> None:
    """Finished text-to-3D jobs, as a long-time user's history holds them: a prompt, a preview and
    a model each."""
    from jobs.models import Job, JobKind, JobState

    Job.objects.bulk_create(
        [
            Job(
                user=user,
                kind=JobKind.TEXT_TO_3D,
                state=JobState.COMPLETED,
                prompt=f"a hand-painted ceramic teapot with a bamboo handle, number {n}",
                name=f"Teapot {n}",
                result_glb=f"jobs/{n:08d}/model.glb",
                preview_image=f"jobs/{n:08d}/preview.png",
                progress=100,
                message="Done",
            )
            for n in range(count)
        ],
        batch_size=2000,
    )


def print_report(report: dict) -> None:
    print(f"{report['jobs']} jobs, {report['storage']}, median of {report['repeats']}:")
    for name in ("baseline_me", "unpaged", f"page_of_{PAGE}"):
        row = report[name]
        ratio = f"  {row['ratio']:8.1f}x /me" if "ratio" in row else ""
        print(
            f"  {name:<14} {row['median_seconds'] * 1000:9.1f} ms {row['bytes'] / 1024:10.1f} KiB"
            + ratio
        )


if __name__ == "__main__":
    main()
