"""The pipeline API (the spec's "Python backend", its "generation API"): ``/text-to-image``,
``/text-to-3d``,
``/image-to-3d``, ``/status``, ``/stream``, ``/cancel``, ``/queue/info``, ``/health``.

Same jobs as the job API, shown in this half's words (``pending`` … ``cancelled``) and shapes.
``/status`` and ``/stream`` answer by job id alone, as the spec says: the id is a random UUID, a
capability that only its submitter knows, and browsers' EventSource cannot send a token anyway.
They (and the health checks) do not look at tokens at all, so a stale one cannot break them.

Requests that wait on a job (``/text-to-image``, ``/stream``) are coroutines: while they wait they
hold no thread and no database connection, and the process's watcher wakes them (jobs.watch).
"""

import functools

from adrf.decorators import api_view as async_api_view
from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, renderers
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    permission_classes,
    renderer_classes,
    throttle_classes,
)
from rest_framework.response import Response

from hydrilla import callers, errors
from idempotency.http import idempotent
from jobs import health, selectors, storage
from jobs.api import openapi, outputs, throttles
from jobs.api.common import (
    JOB_NOT_FOUND,
    job_for,
    job_webhook,
    release_soon,
    save_uploaded_image,
    site,
    submit,
)
from jobs.api.inputs import ImageTo3DInput, ImageTo3DUpload, PromptInput
from jobs.api.pipeline_api import events
from jobs.models import EXTRA_VIEWS, FINAL_STATES, JobKind, JobState
from jobs.services import clients
from jobs.watch import in_thread, watcher

PREVIEW_RETRY_AFTER_SECONDS = 5
SUBMITTED_MESSAGE = "Job created successfully. Use /status/{job_id} to check progress."
CANCEL_MESSAGE = "Job cancellation requested. It will stop at the next checkpoint."
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "application/json")
TAG = {"tags": [openapi.PIPELINE_API_TAG]}
GENERATION = clients.ApiHalf.GENERATION


def _submission(request, input_class) -> tuple[dict, object]:
    """The validated input, and whose job it is to be."""
    form = input_class(data=request.data)
    form.is_valid(raise_exception=True)
    return form.validated_data, _owner(request, form.validated_data.get("user_id"))


def _owner(request, claimed_user_id: str | None):
    """Jobs belong to the caller's verified identity; a ``user_id`` field cannot claim another's."""
    user = request.user
    if claimed_user_id:
        if user is None:
            # 401 "Authentication required", with WWW-Authenticate
            raise exceptions.NotAuthenticated()
        if claimed_user_id != user.pk:
            raise errors.forbidden("user_id does not match the authenticated user")
    return user


class TokenRequiredWhenConfigured(permissions.BasePermission):
    """``GENERATION_API_REQUIRE_TOKEN``: the submit endpoints of this half take signed-in callers
    only."""

    @property
    def allows_anonymous(self) -> bool:
        """For the schema's ``security`` (jobs.api.openapi.AutoSchema)."""
        return not settings.GENERATION_API_REQUIRE_TOKEN

    def has_permission(self, request, view):
        return request.user is not None or self.allows_anonymous


def submit_endpoint(view):
    """What this half's submit endpoints share: a token where required, the throttles, and
    ``Idempotency-Key``."""
    view = permission_classes([TokenRequiredWhenConfigured])(idempotent(view))
    return throttle_classes(throttles.GENERATION_API_SUBMIT)(view)


def _submitted(job) -> Response:
    return Response(
        outputs.JobSubmitted.render(
            {
                "job_id": job.pk,
                "status": JobState.PENDING,
                "message": SUBMITTED_MESSAGE,
                "status_url": f"/status/{job.pk}",
                "stream_url": f"/stream/{job.pk}",
            }
        )
    )


SUBMIT_RESPONSES = {
    200: outputs.JobSubmitted,
    400: openapi.error("Invalid input, or a webhook receiver that is refused."),
    401: openapi.error(
        "An invalid token, a user_id given without a "
        "valid token, or no token where one is required."
    ),
    403: openapi.error("user_id is not the caller's."),
    429: openapi.SUBMISSIONS_LIMITED,
    503: openapi.error("The job could not be queued."),
}


@extend_schema(
    summary="Generate a preview image",
    description="Runs a preview on the preview queue and answers when the image is stored. A "
    "request that would wait longer than PREVIEW_WAIT_SECONDS gets a 503 with the preview's id: "
    "the preview still finishes, and can be read at /status or registered.",
    parameters=[openapi.IDEMPOTENCY_KEY],
    request={media: PromptInput for media in FORM_TYPES},
    responses={
        200: outputs.PreviewReady,
        400: openapi.error("Invalid input, or a webhook receiver that is refused."),
        401: SUBMIT_RESPONSES[401],
        403: SUBMIT_RESPONSES[403],
        404: openapi.error("The preview was deleted while it ran."),
        409: openapi.error("The preview was cancelled while it ran."),
        429: openapi.error(
            "Too many submissions, or too many previews waited on at once, for this caller."
        ),
        500: openapi.error("The preview failed."),
        503: OpenApiResponse(
            outputs.PreviewTimeout,
            description="Not ready in time (the preview goes on), or the preview queue is down.",
        ),
    },
    **TAG,
)
@async_api_view(["POST"])
@submit_endpoint
async def text_to_image(request):
    data, user = _submission(request, PromptInput)
    webhook = await in_thread(job_webhook)(data, user)  # a name to resolve, a secret to make
    slot = await in_thread(throttles.waiting_previews.take)(callers.caller(request))
    try:
        job = await in_thread(submit)(
            request,
            api=GENERATION,
            kind=JobKind.PREVIEW,
            user=user,
            prompt=data["prompt"],
            **webhook,
        )
        snapshot = watcher.snapshot(job)
        queue = await in_thread(watcher.queue)(job)
        done = await watcher.until_ended(snapshot, settings.PREVIEW_WAIT_SECONDS)
    finally:
        release_soon(slot)
    if done is not None and done.state not in FINAL_STATES:
        return _preview_timeout(job)
    return await in_thread(_preview_ready)(done, queue, site(request))


def _preview_ready(done, queue: dict, site: str) -> Response:
    if done is None:
        raise errors.not_found("The preview was deleted")
    if done.state == JobState.CANCELLED:
        raise errors.conflict(done.error_message or "The preview was cancelled")
    if done.state != JobState.COMPLETED:
        raise errors.ApiError(done.error_message or "Preview generation failed", 500)
    return Response(
        outputs.PreviewReady.render(
            {
                "success": True,
                "preview_id": done.pk,
                "image_url": storage.url(done.preview_image, site),
                "prompt": done.prompt,
                "message": "Preview image generated successfully",
                "queue": queue,
            }
        )
    )


def _preview_timeout(job) -> Response:
    return Response(
        outputs.PreviewTimeout.render(
            {
                "error": "The preview is taking longer than expected. It will still be finished: "
                f"check /status/{job.pk}.",
                "preview_id": job.pk,
                "status_url": f"/status/{job.pk}",
            }
        ),
        status=503,
        headers={"Retry-After": str(PREVIEW_RETRY_AFTER_SECONDS)},
    )


@extend_schema(
    summary="Submit a text-to-3D job",
    parameters=[openapi.IDEMPOTENCY_KEY],
    request={media: PromptInput for media in FORM_TYPES},
    responses=SUBMIT_RESPONSES,
    **TAG,
)
@api_view(["POST"])
@submit_endpoint
def text_to_3d(request):
    data, user = _submission(request, PromptInput)
    job = submit(
        request,
        api=GENERATION,
        kind=JobKind.TEXT_TO_3D,
        user=user,
        prompt=data["prompt"],
        **job_webhook(data, user),
    )
    return _submitted(job)


@extend_schema(
    summary="Submit an image-to-3D job",
    description="From `image_url`, or from `image_file` (multipart; it wins when both are sent). "
    "An image URL into this service's storage is read from the storage; any other must be "
    "http(s) and resolve to public addresses only. The object's other views, for backends that "
    "read several: `left_image_file`/`left_image_url`, `back_…`, `right_…` (each checked, stored "
    "and cut out as the front one; 400 where the backend reads one photo).",
    parameters=[openapi.IDEMPOTENCY_KEY],
    request={
        "multipart/form-data": ImageTo3DUpload,
        "application/x-www-form-urlencoded": ImageTo3DInput,
        "application/json": ImageTo3DInput,
    },
    responses={
        **SUBMIT_RESPONSES,
        400: openapi.error(
            "Invalid input, an image URL that may not be fetched, or a webhook receiver that is "
            "refused."
        ),
        413: openapi.error("The image file is larger than 10 MB."),
        503: openapi.error("The job could not be queued, or the upload not stored."),
    },
    **TAG,
)
@api_view(["POST"])
@submit_endpoint
def image_to_3d(request):
    data, user = _submission(request, ImageTo3DInput)
    if "image_file" not in request.FILES and not data.get("image_url"):
        raise errors.bad_request("image_url or image_file is required")
    webhook = job_webhook(data, user)  # checked before any file is stored
    saved = []  # the files this request stored: deleted again if no job takes them
    try:
        urls = {}
        for view in ("image", *(f"{view}_image" for view in EXTRA_VIEWS)):
            if f"{view}_file" in request.FILES:
                saved.append(save_uploaded_image(request, f"{view}_file"))
                urls[view] = storage.url(saved[-1], site(request))
            elif data.get(f"{view}_url"):
                urls[view] = data[f"{view}_url"]
        front = urls.pop("image")
        views = {view.removesuffix("_image"): url for view, url in urls.items()}
        job = submit(
            request,
            api=GENERATION,
            kind=JobKind.IMAGE_TO_3D,
            user=user,
            image_url=front,
            view_urls=views,
            **webhook,
        )
    except errors.ApiError:
        storage.delete(*saved)  # no job, no orphan file
        raise
    return _submitted(job)


@extend_schema(
    summary="A job's status",
    parameters=[openapi.JOB_ID],
    responses={200: outputs.GenerationJob, 404: openapi.NOT_FOUND},
    auth=[],
    **TAG,
)
@api_view(["GET"])
@authentication_classes([])
def status(request, job_id):
    job = watcher.job(job_id)
    if job is None:
        raise errors.not_found(JOB_NOT_FOUND)
    return Response(_status_body(job, site(request)))


@extend_schema(
    summary="Cancel a job",
    description="A waiting job is cancelled at once and never starts; a running one stops at its "
    "next step. A job with an owner can be cancelled by that owner (or staff) only.",
    parameters=[openapi.JOB_ID],
    request=None,
    responses={
        200: outputs.JobCancelled,
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
        clients.request_cancel(job)
    except clients.JobNotCancellable:
        ended = selectors.get_job(job.pk)
        state = ended.state if ended is not None else "deleted"
        raise errors.conflict(
            f"Job has already finished ({state}) and cannot be cancelled"
        ) from None
    return Response(
        outputs.JobCancelled.render(
            {"job_id": job.pk, "status": JobState.CANCELLED, "message": CANCEL_MESSAGE}
        )
    )


@extend_schema(**openapi.QUEUE_INFO, responses={200: outputs.QueueInfo}, auth=[], **TAG)
@api_view(["GET"])
@authentication_classes([])
def queue_info(request):
    return Response(outputs.QueueInfo.render(watcher.queue_info()))


@extend_schema(summary="Liveness", responses={200: outputs.Health}, auth=[], **TAG)
@api_view(["GET"])
@authentication_classes([])
def health_check(request):
    return Response(outputs.Health.render({"status": "ok"}))


@extend_schema(
    summary="Readiness",
    description="Database, broker and storage, and how many GPU workers consume the GPU queue "
    "(reported, not required: jobs wait for them).",
    responses={
        200: outputs.Readiness,
        503: OpenApiResponse(outputs.Readiness, description="A dependency is down."),
    },
    auth=[],
    **TAG,
)
@api_view(["GET"])
@authentication_classes([])
def readiness(request):
    report = health.readiness()
    return Response(
        outputs.Readiness.render(report), status=200 if report["status"] == "ok" else 503
    )


@extend_schema(
    summary="A job's status as Server-Sent Events",
    description="A `data:` event with the /status body now and at every change of status, "
    "progress or message; when the job ends, that last body again as an `end` event, and the "
    "stream closes. Comment lines keep idle connections open.",
    parameters=[openapi.JOB_ID, OpenApiParameter("format", exclude=True)],
    responses={
        (200, "text/event-stream"): OpenApiResponse(OpenApiTypes.STR, description="The events."),
        (404, "application/json"): openapi.NOT_FOUND,
        (429, "application/json"): openapi.error("Too many streams open at once from this caller."),
    },
    auth=[],
    **TAG,
)
@async_api_view(["GET"])
@authentication_classes([])
@renderer_classes([renderers.JSONRenderer, events.EventStreamRenderer])
async def stream(request, job_id):
    job = await in_thread(watcher.job)(job_id)
    if job is None:
        return errors.json_response(JOB_NOT_FOUND, 404)
    slot = await in_thread(throttles.open_streams.take)(callers.caller(request))
    status_body = in_thread(functools.partial(_status_body, site=site(request)))
    response = StreamingHttpResponse(
        events.job_events(watcher.snapshot(job), status_body, on_close=lambda: release_soon(slot)),
        content_type="text/event-stream; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response


def _status_body(job, site: str) -> dict:
    return outputs.GenerationJob.render(job, site=site, queue=watcher.queue(job))
