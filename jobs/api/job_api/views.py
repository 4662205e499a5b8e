"""The job API, ``/api/3d/*`` (the spec's "Node.js backend"); its account endpoints, ``/me`` and
``/sync-user``, are accounts.views."""

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, permission_classes, throttle_classes
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import DEFAULTS, APISettings
from rest_framework.views import APIView

from hydrilla import errors
from idempotency.http import idempotent
from jobs import formats, mesh_uploads, selectors, storage
from jobs.api import inputs, throttles
from jobs.api.common import job_for, job_webhook, save_uploaded_image, site, submit
from jobs.api.openapi import (
    IDEMPOTENCY_KEY,
    INVALID_TOKEN,
    JOB_API_TAG,
    JOB_ID,
    NOT_FOUND,
    QUEUE_INFO,
    STORAGE_DOWN,
    SUBMISSIONS_LIMITED,
    UNAUTHENTICATED,
    error,
)
from jobs.api.outputs import (
    Done,
    ImageUploaded,
    JobCreated,
    JobHistory,
    JobRegistered,
    JobStatus,
    QueueInfo,
)
from jobs.models import JobKind
from jobs.services import clients, shared
from jobs.watch import watcher
from webhooks.services import WebhookRefused


@extend_schema(
    summary="Submit a 3D job",
    description="Text-to-3D from `prompt`, image-to-3D from `imageUrl` (which wins when both "
    "are given). A URL to a private or reserved address is refused here. Additions: "
    "`imageUrls` (the object's views, for backends that read several; a backend that reads one "
    "refuses them with a 400), `polygonType: quadrilateral` (OBJ, FBX and USDZ hold the quads), "
    "`heightMm` (the printed height of the stl and 3mf downloads).",
    parameters=[IDEMPOTENCY_KEY],
    request={"application/json": inputs.GenerateInput},
    responses={
        200: JobCreated,
        400: error(
            "Invalid input, an image URL that may not be fetched, or a webhook receiver that is "
            "refused."
        ),
        401: UNAUTHENTICATED,
        429: SUBMISSIONS_LIMITED,
        503: error("The job could not be queued."),
    },
    tags=[JOB_API_TAG],
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@throttle_classes(throttles.JOB_API_SUBMIT)
@idempotent
def generate(request):
    form = inputs.GenerateInput(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    job = submit(
        request,
        api=clients.ApiHalf.JOB,
        kind=JobKind.IMAGE_TO_3D if data.get("imageUrl") else JobKind.TEXT_TO_3D,
        user=request.user,
        prompt=data.get("prompt"),
        image_url=data.get("imageUrl"),
        **job_webhook(data, request.user),
        view_urls={view: url for view, url in data.get("imageUrls", {}).items() if view != "front"},
        options=clients.JobOptions(
            generate_type=data["generateType"],
            face_count=data.get("faceCount"),
            enable_pbr=data["enablePBR"],
            polygon_type=data.get("polygonType"),
            height_mm=data.get("heightMm"),
        ),
    )
    return Response(JobCreated.render(job))


@extend_schema(
    summary="A job's status",
    parameters=[JOB_ID],
    responses={
        200: JobStatus,
        401: INVALID_TOKEN,
        403: error("The job has another owner."),
        404: NOT_FOUND,
    },
    tags=[JOB_API_TAG],
)
@api_view(["GET"])
def status(request, job_id):
    job = job_for(request, job_id, action="view", read=watcher.job)
    return Response(JobStatus.render(job, site=site(request), queue=watcher.queue(job)))


class FileFormatQuery(DefaultContentNegotiation):
    """``?format=`` names the file to download here, not DRF's response format."""

    settings = APISettings({"URL_FORMAT_OVERRIDE": None}, DEFAULTS)


class Download(APIView):
    content_negotiation_class = FileFormatQuery

    @extend_schema(
        summary="Download a finished model",
        description="The model in `format`: "
        + "; ".join(f"`{name}`: {format.description}" for name, format in formats.FORMATS.items())
        + ". Each format is made on its first download and kept until the job is deleted.",
        parameters=[
            JOB_ID,
            OpenApiParameter(
                "format",
                str,
                enum=list(formats.FORMATS),
                default=formats.DEFAULT_FORMAT,
                required=False,
            ),
            OpenApiParameter(
                "heightMm",
                float,
                required=False,
                description="stl and 3mf: the printed height in millimetres (1–10000); the "
                "job's own, or PRINT_HEIGHT_MM, when not given.",
            ),
        ],
        responses={
            **{
                (200, format.content_type): OpenApiTypes.BINARY
                for format in formats.FORMATS.values()
            },
            400: error("Unknown format."),
            401: INVALID_TOKEN,
            403: error("The job has another owner."),
            404: NOT_FOUND,
            409: error("The job has no finished model."),
            422: error("The model could not be converted to this format."),
            503: STORAGE_DOWN,
        },
        tags=[JOB_API_TAG],
    )
    def get(self, request, job_id):
        job = job_for(request, job_id, action="download")
        name = request.query_params.get("format", formats.DEFAULT_FORMAT)
        if name not in formats.FORMATS:
            raise errors.bad_request(
                f"Unknown format {name!r}; use one of {', '.join(formats.FORMATS)}"
            )
        query = inputs.DownloadQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        height = query.validated_data.get("heightMm")
        try:
            data = storage.read(clients.download(job, name, height))
        except clients.NoModel:
            raise errors.conflict("This job has no finished model to download") from None
        except formats.ConversionFailed as exc:
            raise errors.ApiError(str(exc), 422) from None
        except storage.StorageUnavailable:
            raise errors.service_unavailable() from None
        file_format = formats.FORMATS[name]
        filename = f"hydrilla-{job.pk}{'-obj' if name == 'obj' else ''}.{file_format.extension}"
        return HttpResponse(
            data,
            content_type=file_format.content_type,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )


@extend_schema(
    summary="Remesh a finished model",
    description="A new job (in the caller's history, owned like its source) that finishes the "
    "source's stored full-resolution mesh with these options on a CPU worker, no model running. "
    "An option not given keeps the source's.",
    parameters=[JOB_ID, IDEMPOTENCY_KEY],
    request={"application/json": inputs.RemeshInput},
    responses={
        200: JobCreated,
        400: error("Invalid options, or a webhook receiver that is refused."),
        401: UNAUTHENTICATED,
        403: error("The job has another owner."),
        404: NOT_FOUND,
        409: error(
            "The job has no stored full-resolution mesh "
            "(unfinished, or made before meshes were kept)."
        ),
        429: SUBMISSIONS_LIMITED,
        503: error("The job could not be queued."),
    },
    tags=[JOB_API_TAG],
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@throttle_classes(throttles.JOB_API_SUBMIT)
@idempotent
def remesh(request, job_id):
    source = job_for(request, job_id, action="remesh")
    form = inputs.RemeshInput(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    options = clients.JobOptions(
        generate_type=data.get("generateType", source.generate_type),
        face_count=data.get("faceCount", source.face_count),
        enable_pbr=data.get("enablePBR", source.enable_pbr),
        polygon_type=data.get("polygonType", source.polygon_type),
        height_mm=data.get("heightMm", source.height_mm),
    )
    try:
        job = clients.remesh_job(source, options, **job_webhook(data, source.user))
    except clients.NoModel:
        raise errors.conflict("This job has no full-resolution mesh to remesh") from None
    except WebhookRefused as exc:  # its address changed since job_webhook checked it
        raise errors.bad_request(exc.message) from None
    except shared.QueueUnavailable:
        raise errors.service_unavailable() from None
    except clients.TooManyWaitingJobs as exc:
        raise throttles.TooMany("waiting jobs", exc.args[0]) from None
    return Response(JobCreated.render(job))


@extend_schema(
    summary="The caller's jobs",
    description="Newest first; empty without a token. With `limit`, in pages: each answer's "
    "`nextCursor` is the `cursor` of the next page (null on the last); jobs made or deleted "
    "between pages shift nothing.",
    parameters=[inputs.HistoryQuery],
    responses={200: JobHistory, 400: error("Invalid limit, cursor or filter."), 401: INVALID_TOKEN},
    tags=[JOB_API_TAG],
)
@api_view(["GET"])
def history(request):
    query = inputs.HistoryQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    wanted = query.validated_data
    states = selectors.states_for_status(wanted["status"]) if "status" in wanted else ()
    kinds = (wanted["kind"],) if "kind" in wanted else ()
    if "limit" not in wanted:
        jobs = selectors.history(request.user, states=states, kinds=kinds)
        return Response(JobHistory.render({"jobs": jobs}, site=site(request)))
    try:
        page = selectors.history_page(
            request.user,
            limit=wanted["limit"],
            cursor=wanted.get("cursor"),
            states=states,
            kinds=kinds,
        )
    except selectors.InvalidCursor:
        raise errors.bad_request("Invalid cursor") from None
    return Response(
        JobHistory.render({"jobs": page.jobs, "next_cursor": page.next_cursor}, site=site(request))
    )


@extend_schema(
    summary="Rename a job",
    parameters=[JOB_ID],
    request={"application/json": inputs.RenameInput},
    responses={
        200: Done,
        400: error("Invalid name."),
        401: UNAUTHENTICATED,
        403: error("The job has another owner."),
        404: NOT_FOUND,
    },
    tags=[JOB_API_TAG],
)
@api_view(["PATCH"])
@permission_classes([IsAuthenticated])
def rename(request, job_id):
    job = job_for(request, job_id, action="rename")
    form = inputs.RenameInput(data=request.data)
    form.is_valid(raise_exception=True)
    clients.rename_job(job, form.validated_data["name"])
    return Response(Done.render({"success": True, "message": "Job name updated"}))


@extend_schema(
    summary="Delete a job and its files",
    parameters=[JOB_ID],
    responses={
        200: Done,
        401: UNAUTHENTICATED,
        403: error("The job has another owner."),
        404: NOT_FOUND,
    },
    tags=[JOB_API_TAG],
)
@api_view(["DELETE"])
@permission_classes([IsAuthenticated])
def delete(request, job_id):
    job = job_for(request, job_id, action="delete")
    clients.delete_job(job)
    return Response(Done.render({"success": True, "message": "Job deleted"}))


@extend_schema(
    summary="Register a preview as a job",
    description="Idempotent on `job_id`: a preview made by /text-to-image gets its owner; an "
    "unknown id becomes a finished preview job, which keeps `previewImageUrl` as given. The id "
    "of a 3D job cannot be registered.",
    parameters=[IDEMPOTENCY_KEY],
    request={"application/json": inputs.RegisterJobInput},
    responses={
        200: JobRegistered,
        400: error("Invalid input."),
        401: INVALID_TOKEN,
        403: error("The job has another owner, or is not a preview."),
    },
    tags=[JOB_API_TAG],
)
@api_view(["POST"])
@idempotent
def register_job(request):
    form = inputs.RegisterJobInput(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    try:
        job = clients.register_job(
            job_id=data["job_id"],
            user=request.user,
            prompt=data.get("prompt"),
            preview_image_url=data["previewImageUrl"],
        )
    except clients.RegistrationRefused:
        raise errors.forbidden("You don't have permission to modify this job") from None
    return Response(JobRegistered.render({"success": True, "job_id": job.pk}))


@extend_schema(
    summary="Upload an image",
    parameters=[IDEMPOTENCY_KEY],
    request={"multipart/form-data": inputs.ImageUpload},
    responses={
        200: ImageUploaded,
        400: error("No file, or not a JPEG/PNG/WEBP image."),
        401: INVALID_TOKEN,
        413: error("Larger than 10 MB."),
        429: error("Too many uploads from this caller (see Retry-After)."),
        503: STORAGE_DOWN,
    },
    tags=[JOB_API_TAG],
)
@api_view(["POST"])
@throttle_classes(throttles.JOB_API_SUBMIT)
@idempotent
def upload_image(request):
    name = save_uploaded_image(request, "image")
    return Response(
        ImageUploaded.render({"success": True, "url": storage.url(name, site(request))})
    )


@extend_schema(
    summary="Bring your own model",
    description="A finished (`DONE`) job of the model uploaded in multipart field `mesh`: GLB, OBJ "
    "(alone, or zipped with its MTL and textures), STL, PLY or FBX, within the size limits "
    "(UPLOAD_MESH_MAX_BYTES, _VERTICES, _FACES). Every download format, remeshing and the print "
    "report work on it. A file that is refused leaves nothing behind.",
    parameters=[IDEMPOTENCY_KEY],
    request={"multipart/form-data": inputs.MeshUpload},
    responses={
        200: JobCreated,
        400: error("No file, or not a model this service reads, or over a limit."),
        401: UNAUTHENTICATED,
        413: error("Larger than UPLOAD_MESH_MAX_BYTES."),
        429: SUBMISSIONS_LIMITED,
        503: STORAGE_DOWN,
    },
    tags=[JOB_API_TAG],
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
@throttle_classes(throttles.JOB_API_SUBMIT)
@idempotent
def upload_mesh(request):
    form = inputs.MeshUpload(data=request.data)
    form.is_valid(raise_exception=True)
    upload = form.validated_data["mesh"]
    if upload.size > settings.UPLOAD_MESH_MAX_BYTES:
        limit = settings.UPLOAD_MESH_MAX_BYTES // (1024 * 1024)
        raise errors.ApiError(f"The model file is larger than {limit} MB", 413)
    try:
        job = clients.upload_mesh(
            user=request.user, data=upload.read(), name=form.validated_data.get("name")
        )
    except mesh_uploads.MeshRefused as exc:
        raise errors.bad_request(str(exc)) from None
    except storage.StorageUnavailable:
        raise errors.service_unavailable() from None
    return Response(JobCreated.render(job))


@extend_schema(**QUEUE_INFO, responses={200: QueueInfo, 401: INVALID_TOKEN}, tags=[JOB_API_TAG])
@api_view(["GET"])
def queue_info(request):
    return Response(QueueInfo.render(watcher.queue_info()))
