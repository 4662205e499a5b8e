"""The tests' helpers, each defined once for every folder: driving jobs as a worker would (through
jobs.services), jobs in the past, the job API's upload, reading event streams, checking responses
against the published OpenAPI schema, the S3 endpoint and broker queues, and the generation
library's inputs and outputs."""

import asyncio
import functools
import io
import json
import socket
import threading
import time
from datetime import datetime, timedelta

import boto3
import PIL.Image
import PIL.ImageDraw
import trimesh
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from generation import processes
from jobs import plan, storage
from jobs.models import ACTIVE_STATES, Job, Stage
from jobs.services import workers
from jobs.watch import watcher

WORKER = "gpu@test"


def settled(job_id, timeout=3) -> None:
    """Wait until this process's watcher has seen a write to the job, as it sees another process's
    writes (at its next tick); at once when the watcher does not follow jobs."""
    written = Job.objects.filter(pk=job_id).values_list("updated_at", flat=True).first()
    deadline = time.monotonic() + timeout
    while watcher.follow and (job := watcher.job(job_id)) is not None and job.updated_at != written:
        assert time.monotonic() < deadline, "the watcher never saw the write"
        time.sleep(0.02)


# --- A worker's side -------------------------------------------------------------------------

# What each stage before the last hands on: the job field and the file name it stores.
HANDED_ON = {
    Stage.TEXT_TO_IMAGE: ("preview_image", "preview.png"),
    Stage.PREPARE: ("processed_image", "processed.png"),
    Stage.IMAGE_TO_3D: ("raw_mesh", "raw.ply"),
}


def start(job_id) -> workers.Lease:
    """Run the job's stages as their workers would, up to its first model call: the job runs."""
    lease = claim(job_id)
    while not plan.starts_job(lease.stage):
        lease = hand_on(job_id, lease)
    settled(job_id)
    return lease


def claim(job_id) -> workers.Lease:
    """Claim the job's current stage, as a live worker of its queue would."""
    stage = Job.objects.values_list("stage", flat=True).get(pk=job_id)
    lease = workers.claim_stage(job_id, stage, worker=WORKER, process=processes.current())
    assert lease is not None, "the job could not be claimed"
    return lease


def end_stage(lease: workers.Lease) -> bool:
    """End the lease's stage with its file and hand the job to the next stage; False when the
    lease no longer holds the job."""
    field, filename = HANDED_ON[lease.stage]
    kind = Job.objects.values_list("kind", flat=True).get(pk=lease.job_id)
    stored = {field: f"{storage.job_folder(lease.job_id)}/{filename}"}
    return workers.hand_over(lease, plan.after(kind, lease.stage), **stored)


def hand_on(job_id, lease: workers.Lease) -> workers.Lease:
    """End the lease's stage with its file, and claim the next one."""
    assert end_stage(lease)
    return claim(job_id)


def finish_preview(job_id, lease: workers.Lease) -> None:
    assert workers.complete_job(lease, preview_image=f"{storage.job_folder(job_id)}/preview.png")
    settled(job_id)


def finish_3d(job_id, lease: workers.Lease) -> None:
    while lease.stage != Stage.FINISH:
        lease = hand_on(job_id, lease)
    assert workers.complete_job(lease, result_glb=f"{storage.job_folder(job_id)}/model.glb")
    settled(job_id)


def run_inline(job_id, worker=WORKER) -> Job:
    """Run every stage of the job in this process, as each stage's worker would, to its end."""
    from generation import runner  # the model stack: imported by the tests that run stages only

    while (job := Job.objects.get(pk=job_id)).state in ACTIVE_STATES:
        runner.run_stage(str(job_id), job.stage, worker=worker)
    return job


def fail(
    job_id,
    lease: workers.Lease,
    code="MODEL_ERROR",
    message="The mesh could not be generated",
) -> None:
    assert workers.end_job_unsuccessfully(lease, code=code, message=message) == "failed"
    settled(job_id)


class Background:
    """Run ``target`` in a thread (with its own database connection, closed at the end)."""

    def __init__(self, target, *args):
        self.error = None
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(target, *args), daemon=True)
        self.thread.start()

    def _run(self, target, *args):
        try:
            self.result = target(*args)
        except BaseException as exc:  # re-raised in the test's thread by join()
            self.error = exc
        finally:
            connection.close()

    def join(self, timeout=15):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the background thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


# --- Server-Sent Events ----------------------------------------------------------------------


def chunks_of(response):
    """A test client's streamed response, chunk by chunk as it is produced: the stream is a
    coroutine's, stepped here on an event loop of its own (closing it ends the stream)."""
    stream = response.streaming_content
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(stream))
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(stream.aclose())
        loop.close()


def sse_events(chunks):
    """(event name, JSON body) pairs from an event stream, as they arrive; comment lines are
    yielded as ("comment", text)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            name, data = "message", []
            for line in block.split("\n"):
                if line.startswith(":"):
                    yield "comment", line[1:].strip()
                elif line.startswith("event:"):
                    name = line[len("event:") :].strip()
                elif line.startswith("data:"):
                    data.append(line[len("data:") :].strip())
            if data:
                yield name, json.loads("\n".join(data))
    assert not buffer.strip(), f"the stream ended inside an event: {buffer!r}"


# --- The OpenAPI schema ----------------------------------------------------------------------


@functools.cache
def openapi_document() -> dict:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _json_schema(node, *, strict: bool):
    """OpenAPI 3.0 schema objects as JSON Schema: ``nullable`` becomes a null alternative, and
    (strict) objects accept no property that the schema does not describe."""
    if isinstance(node, list):
        return [_json_schema(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value, strict=strict) for key, value in node.items()}
    if strict and "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def response_schema(path: str, method: str, status: int, media_type="application/json") -> dict:
    document = openapi_document()
    operation = document["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, undocumented"
    content = responses[str(status)]["content"]
    assert media_type in content, f"{method} {path} {status}: {media_type} is undocumented"
    return content[media_type]["schema"]


def assert_matches_schema(response, path: str, method: str = "GET", body=None):
    """The response (or ``body``, for one event of a stream) is what the schema says ``path``
    answers with this status code: every documented field, of its type, and nothing else."""
    media_type = "application/json"
    schema = response_schema(path, method, response.status_code, media_type)
    document = openapi_document()
    validator = Draft202012Validator(
        {
            **_json_schema(schema, strict=True),
            "components": _json_schema(document["components"], strict=True),
        },
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    if body is None:
        assert response["Content-Type"].split(";")[0] == media_type, response["Content-Type"]
    instance = response.json() if body is None else body
    problems = sorted(str(error) for error in validator.iter_errors(instance))
    assert not problems, (
        f"{method} {path} {response.status_code} does not match the schema:\n" + "\n".join(problems)
    )
    return instance


# --- Jobs in the past ------------------------------------------------------------------------


def ago(**delta) -> datetime:
    """The moment ``timedelta(**delta)`` before now."""
    return timezone.now() - timedelta(**delta)


def backdate(job: Job, **ages: timedelta) -> Job:
    """Move timestamps (``created_at``, ``updated_at``, ...) into the past, in the row and on
    ``job``
    (``auto_now`` and ``auto_now_add`` fields can only be changed by UPDATE)."""
    now = timezone.now()
    moments = {field: now - age for field, age in ages.items()}
    Job.objects.filter(pk=job.pk).update(**moments)
    for field, moment in moments.items():
        setattr(job, field, moment)
    return job


def past_the_sweep_delay(*jobs) -> None:
    """Make waiting jobs old enough for the sweep to send their messages again."""
    for job in jobs:
        backdate(job, updated_at=timedelta(minutes=1))


# --- The job API -----------------------------------------------------------------------------

UPLOAD_URL = "/api/3d/upload-image"

# The fields of a job record in the job API's answers.
BACKEND_JOB_FIELDS = {
    "id",
    "userId",
    "status",
    "prompt",
    "imageUrl",
    "generateType",
    "faceCount",
    "enablePBR",
    "polygonType",
    "resultGlbUrl",
    "previewImageUrl",
    "errorCode",
    "errorMessage",
    "name",
    "createdAt",
    "updatedAt",
}


def upload(client, data: bytes, filename="photo.png", field="image"):
    return client.post(UPLOAD_URL, {field: SimpleUploadedFile(filename, data)}, format="multipart")


# --- Services on loopback: S3 and the broker -------------------------------------------------


def s3_client():
    """A boto3 client for the configured S3 endpoint (moto's server on loopback in tests)."""
    options = settings.STORAGES["default"]["OPTIONS"]
    return boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        region_name=options["region_name"],
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
    )


def closed_loopback_port():
    """A loopback port bound but never listening: connecting to it is refused at once.

    Returns the socket too; keep it open for as long as the port must stay closed."""
    placeholder = socket.socket()
    placeholder.bind(("127.0.0.1", 0))
    return placeholder, placeholder.getsockname()[1]


class QueueReader:
    def __init__(self, queue):
        self.queue = queue

    def messages(self) -> list:
        """Everything now in the queue, taken off it."""
        taken = []
        while (message := self.queue.get(no_ack=True)) is not None:
            taken.append(message)
        return taken

    def wait(self, count=1, timeout=2.0) -> list:
        """At least ``count`` messages taken off the queue, or what came within ``timeout``."""
        messages, deadline = [], time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            messages += self.messages()
            if len(messages) < count:
                time.sleep(0.02)
        return messages


def job_ids(messages) -> list[str]:
    return [message.decode()[0][0] for message in messages]


# --- The generation library's inputs and outputs ---------------------------------------------
# (generation.pipelines imports the model stack: imported by the tests that use it only)


def cancel_at(step):
    """A progress callback that cancels the job when it reports ``step``."""
    from generation.pipelines import JobCancelled

    def on_step(done, total):
        if done == step:
            raise JobCancelled()

    return on_step


def disc_cutout():
    from generation.pipelines import cut_out

    photo = PIL.Image.new("RGB", (96, 96), "white")
    PIL.ImageDraw.Draw(photo).ellipse((20, 20, 76, 76), fill=(40, 90, 200))
    return cut_out(photo)


def load_glb(glb: bytes) -> trimesh.Trimesh:
    """The GLB's only mesh, as a viewer reads it (the scene's geometry keeps vertex attributes)."""
    (mesh,) = trimesh.load(io.BytesIO(glb), file_type="glb", process=False).geometry.values()
    return mesh
