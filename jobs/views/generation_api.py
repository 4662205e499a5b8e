"""The generation API (the spec's "Python backend"): ``/text-to-image``, ``/text-to-3d``,
``/image-to-3d``, ``/status``, ``/stream``, ``/cancel``, ``/queue/info``, ``/health``.

Same jobs as the job API, shown in this half's words (``pending`` … ``cancelled``) and shapes.
``/status`` and ``/stream`` answer by job id alone, as the spec says: the id is a random UUID, a
capability that only its submitter knows, and browsers' EventSource cannot send a token anyway.
They (and the health checks) do not look at tokens at all, so a stale one cannot break them.

Requests that wait on a job (``/text-to-image``, ``/stream``) give their database connection
back while they wait; the process's one watcher thread reads the jobs they wait on.
"""

import json
import time

from django.conf import settings
from django.db import connection, transaction
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers
from rest_framework import serializers as drf
from rest_framework.decorators import api_view, authentication_classes, renderer_classes
from rest_framework.response import Response

from jobs import errors, health, openapi, selectors, serializers, services, storage
from jobs.models import FINAL_STATES, JobKind, JobState
from jobs.views.common import caller, create_job_or_503, job_for, save_uploaded_image
from jobs.watch import watcher

STREAM_KEEPALIVE_SECONDS = 15
PREVIEW_RETRY_AFTER_SECONDS = 5
SUBMITTED_MESSAGE = "Job created successfully. Use /status/{job_id} to check progress."
CANCEL_MESSAGE = "Job cancellation requested. It will stop at the next checkpoint."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "application/json")
TAG = {"tags": [openapi.GENERATION_TAG]}


class PromptInput(drf.Serializer):
    prompt = serializers.StrictCharField(max_length=serializers.MAX_PROMPT_LENGTH, trim_whitespace=True)
    user_id = serializers.StrictCharField(
        required=False, allow_blank=True, max_length=64,
        help_text="Optional; when given, it must be the caller's own (Clerk token) user id.",
    )


class ImageTo3DInput(drf.Serializer):
    image_url = serializers.HttpUrlField(
        required=False, allow_blank=True, max_length=2048,
        help_text="Required unless image_file is sent. http(s) to a public address.",
    )
    user_id = serializers.StrictCharField(required=False, allow_blank=True, max_length=64)


class ImageTo3DUpload(ImageTo3DInput):
    """Documentation only: the multipart form, with its file."""

    image_file = drf.FileField(required=False, help_text="A JPEG, PNG or WEBP image, 10 MB at most.")


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/event-stream`` (EventSource) through content negotiation; the stream
    itself is written by the view, and errors stay JSON."""

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return json.dumps(data).encode()


def _owner(request, claimed_user_id: str | None):
    """Jobs belong to the caller's verified identity; a ``user_id`` field cannot claim another's."""
    user = caller(request)
    if claimed_user_id:
        if user is None:
            raise exceptions.NotAuthenticated()  # 401 "Authentication required", with WWW-Authenticate
        if claimed_user_id != user.pk:
            raise errors.forbidden("user_id does not match the authenticated user")
    return user


def _release_database_connection() -> None:
    """A request about to wait gives its connection back (outside a transaction only: closing one
    inside would lose the transaction)."""
    if not connection.in_atomic_block:
        connection.close()


def _submitted(job) -> Response:
    return Response(
        {
            "job_id": str(job.pk),
            "status": JobState.PENDING.value,
            "message": SUBMITTED_MESSAGE,
            "status_url": f"/status/{job.pk}",
            "stream_url": f"/stream/{job.pk}",
        }
    )


SUBMIT_RESPONSES = {
    200: openapi.JobSubmitted,
    400: openapi.error("Invalid input."),
    401: openapi.error("An invalid token, or a user_id given without a valid token."),
    403: openapi.error("user_id is not the caller's."),
    503: openapi.error("The job could not be queued."),
}


@transaction.non_atomic_requests
@extend_schema(
    summary="Generate a preview image",
    description="Runs a preview on the preview queue and answers when the image is stored. A "
    "request that would wait longer than PREVIEW_WAIT_SECONDS gets a 503 with the preview's id: "
    "the preview still finishes, and can be read at /status or registered.",
    request={media: PromptInput for media in FORM_TYPES},
    responses={
        200: openapi.PreviewReady,
        400: openapi.error("Invalid input."),
        401: SUBMIT_RESPONSES[401],
        403: SUBMIT_RESPONSES[403],
        404: openapi.error("The preview was deleted while it ran."),
        409: openapi.error("The preview was cancelled while it ran."),
        500: openapi.error("The preview failed."),
        503: OpenApiResponse(
            openapi.PreviewTimeout,
            description="Not ready in time (the preview goes on), or the preview queue is down.",
        ),
    },
    **TAG,
)
@api_view(["POST"])
def text_to_image(request):
    form = PromptInput(data=request.data)
    form.is_valid(raise_exception=True)
    user = _owner(request, form.validated_data.get("user_id"))
    job = create_job_or_503(request, kind=JobKind.PREVIEW, user=user, prompt=form.validated_data["prompt"])
    snapshot = watcher.subscribe(job)
    queue = snapshot.queue
    _release_database_connection()
    deadline = time.monotonic() + settings.PREVIEW_WAIT_SECONDS
    try:
        while snapshot.job is not None and snapshot.job.state not in FINAL_STATES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _preview_timeout(job)
            snapshot = watcher.wait(job.pk, snapshot.version, remaining)
    finally:
        watcher.unsubscribe(job.pk)
    done = snapshot.job
    if done is None:
        raise errors.not_found("The preview was deleted")
    if done.state == JobState.CANCELLED:
        raise errors.conflict(done.error_message or "The preview was cancelled")
    if done.state != JobState.COMPLETED:
        raise errors.ApiError(done.error_message or "Preview generation failed", 500)
    return Response(
        {
            "success": True,
            "preview_id": str(done.pk),
            "image_url": storage.url(done.preview_image, request),
            "prompt": done.prompt,
            "message": "Preview image generated successfully",
            "queue": {
                "position": queue["position"],
                "previews_ahead": queue["jobs_ahead"],
                "estimated_wait_seconds": queue["estimated_wait_seconds"],
                "estimated_total_seconds": queue["estimated_total_seconds"],
                "queue_length": queue["queue_length"],
                "currently_generating": queue["currently_processing"],
            },
        }
    )


def _preview_timeout(job) -> Response:
    return Response(
        {
            "error": "The preview is taking longer than expected. It will still be finished: "
            f"check /status/{job.pk}.",
            "preview_id": str(job.pk),
            "status_url": f"/status/{job.pk}",
        },
        status=503,
        headers={"Retry-After": str(PREVIEW_RETRY_AFTER_SECONDS)},
    )


@extend_schema(
    summary="Submit a text-to-3D job",
    request={media: PromptInput for media in FORM_TYPES},
    responses=SUBMIT_RESPONSES,
    **TAG,
)
@api_view(["POST"])
def text_to_3d(request):
    form = PromptInput(data=request.data)
    form.is_valid(raise_exception=True)
    user = _owner(request, form.validated_data.get("user_id"))
    job = create_job_or_503(request, kind=JobKind.TEXT_TO_3D, user=user, prompt=form.validated_data["prompt"])
    return _submitted(job)


@extend_schema(
    summary="Submit an image-to-3D job",
    description="From `image_url`, or from `image_file` (multipart; it wins when both are sent). "
    "An image URL into this service's storage is read from the storage; any other must be "
    "http(s) and resolve to public addresses only.",
    request={
        "multipart/form-data": ImageTo3DUpload,
        "application/x-www-form-urlencoded": ImageTo3DInput,
        "application/json": ImageTo3DInput,
    },
    responses={
        **SUBMIT_RESPONSES,
        400: openapi.error("Invalid input, or an image URL that may not be fetched."),
        413: openapi.error("The image file is larger than 10 MB."),
        503: openapi.error("The job could not be queued, or the upload not stored."),
    },
    **TAG,
)
@api_view(["POST"])
def image_to_3d(request):
    form = ImageTo3DInput(data=request.data)
    form.is_valid(raise_exception=True)
    user = _owner(request, form.validated_data.get("user_id"))
    image_url = form.validated_data.get("image_url")
    if "image_file" not in request.FILES:
        if not image_url:
            raise errors.bad_request("image_url or image_file is required")
        return _submitted(create_job_or_503(request, kind=JobKind.IMAGE_TO_3D, user=user, image_url=image_url))
    name = save_uploaded_image(request, "image_file")
    try:
        job = create_job_or_503(request, kind=JobKind.IMAGE_TO_3D, user=user, image_url=storage.url(name, request))
    except errors.ApiError:
        storage.delete(name)  # no job, no orphan file
        raise
    return _submitted(job)


@extend_schema(
    summary="A job's status",
    parameters=[openapi.JOB_ID],
    responses={200: openapi.GenerationJob, 404: openapi.NOT_FOUND},
    auth=[],
    **TAG,
)
@api_view(["GET"])
@authentication_classes([])
def status(request, job_id):
    job = selectors.get_job(job_id)
    if job is None:
        raise errors.not_found()
    return Response(serializers.generation_status(job, selectors.job_queue(job), request))


@extend_schema(
    summary="Cancel a job",
    description="A waiting job is cancelled at once and never starts; a running one stops at its "
    "next step. A job with an owner can be cancelled by that owner (or staff) only.",
    parameters=[openapi.JOB_ID],
    request=None,
    responses={
        200: openapi.JobCancelled,
        401: openapi.error("The token sent is invalid or expired."),
        403: openapi.error("The job has another owner."),
        404: openapi.NOT_FOUND,
        409: openapi.error("The job has already ended."),
    },
    **TAG,
)
@api_view(["POST"])
def cancel(request, job_id):
    job = job_for(request, job_id, action="cancel")
    try:
        services.request_cancel(job)
    except services.JobNotCancellable:
        ended = selectors.get_job(job.pk)
        state = ended.state if ended is not None else "deleted"
        raise errors.conflict(f"Job has already finished ({state}) and cannot be cancelled") from None
    return Response({"job_id": str(job.pk), "status": JobState.CANCELLED.value, "message": CANCEL_MESSAGE})


@extend_schema(**openapi.QUEUE_INFO, responses={200: openapi.QueueInfo}, auth=[], **TAG)
@api_view(["GET"])
@authentication_classes([])
def queue_info(request):
    return Response(selectors.queue_info())


@extend_schema(summary="Liveness", responses={200: openapi.Health}, auth=[], **TAG)
@api_view(["GET"])
@authentication_classes([])
def health_check(request):
    return Response({"status": "ok"})


@extend_schema(
    summary="Readiness",
    description="Database, broker and storage, and how many GPU workers consume the GPU queue "
    "(reported, not required: jobs wait for them).",
    responses={
        200: openapi.Readiness,
        503: OpenApiResponse(openapi.Readiness, description="A dependency is down."),
    },
    auth=[],
    **TAG,
)
@api_view(["GET"])
@authentication_classes([])
def readiness(request):
    report = health.readiness()
    return Response(report, status=200 if report["status"] == "ok" else 503)


@transaction.non_atomic_requests
@extend_schema(
    summary="A job's status as Server-Sent Events",
    description="A `data:` event with the /status body now and at every change of status, "
    "progress or message; when the job ends, that last body again as an `end` event, and the "
    "stream closes. Comment lines keep idle connections open.",
    parameters=[openapi.JOB_ID, OpenApiParameter("format", exclude=True)],
    responses={
        (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="The events."),
        (404, "application/json"): openapi.NOT_FOUND,
    },
    auth=[],
    **TAG,
)
@api_view(["GET"])
@authentication_classes([])
@renderer_classes([renderers.JSONRenderer, EventStreamRenderer])
def stream(request, job_id):
    job = selectors.get_job(job_id)
    if job is None:
        return errors.json_response("Job not found", 404)
    events = _JobEvents(request, job.pk, watcher.subscribe(job))
    _release_database_connection()  # a stream can stay open for minutes
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response


class _JobEvents:
    """The events of one stream. Closing it (Django closes the response when the client has
    gone, even before the first event) ends its watch."""

    def __init__(self, request, job_id, snapshot):
        self.request, self.job_id, self.snapshot = request, job_id, snapshot
        self.closed = False

    def __iter__(self):
        current = self.snapshot
        while not self.closed:
            if current.job is None:
                yield _event({"error": "Job not found"}, name="error")
                break
            body = serializers.generation_status(current.job, current.queue, self.request)
            yield _event(body)
            if current.job.state in FINAL_STATES:
                yield _event(body, name="end")
                break
            seen = current.version
            while current.version == seen:
                current = watcher.wait(self.job_id, seen, STREAM_KEEPALIVE_SECONDS)
                if current.version == seen:
                    yield ": keepalive\n\n"
        self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            watcher.unsubscribe(self.job_id)


def _event(body: dict, name: str | None = None) -> str:
    """One event; unnamed ones reach EventSource's ``onmessage``."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(body)}\n\n"
