"""The job API, ``/api/3d/*`` (the spec's "Node.js backend")."""

from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts import services as account_services
from accounts.serializers import user_profile
from jobs import errors, selectors, serializers, services, storage
from jobs.models import JobKind
from jobs.views.common import caller, create_job_or_503, job_for, save_uploaded_image


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def generate(request):
    form = serializers.GenerateInput(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    job = create_job_or_503(
        request,
        kind=JobKind.IMAGE_TO_3D if data.get("imageUrl") else JobKind.TEXT_TO_3D,
        user=request.user,
        prompt=data.get("prompt"),
        image_url=data.get("imageUrl"),
        options=services.JobOptions(
            generate_type=data["generateType"],
            face_count=data.get("faceCount"),
            enable_pbr=data["enablePBR"],
            polygon_type=data.get("polygonType"),
        ),
    )
    return Response({"jobId": str(job.pk)})


@api_view(["GET"])
def status(request, job_id):
    job = job_for(request, job_id, action="view")
    return Response({"job": serializers.backend_job(job, request), "queue": selectors.job_queue(job)})


@api_view(["GET"])
def history(request):
    jobs = selectors.history(caller(request))
    return Response({"jobs": [serializers.backend_job(job, request) for job in jobs]})


@api_view(["PATCH"])
@permission_classes([IsAuthenticated])
def rename(request, job_id):
    job = job_for(request, job_id, action="rename")
    form = serializers.RenameInput(data=request.data)
    form.is_valid(raise_exception=True)
    services.rename_job(job, form.validated_data["name"])
    return Response({"success": True, "message": "Job name updated"})


@api_view(["DELETE"])
@permission_classes([IsAuthenticated])
def delete(request, job_id):
    job = job_for(request, job_id, action="delete")
    services.delete_job(job)
    return Response({"success": True, "message": "Job deleted"})


@api_view(["POST"])
def register_job(request):
    form = serializers.RegisterJobInput(data=request.data)
    form.is_valid(raise_exception=True)
    data = form.validated_data
    existing = selectors.get_job(data["job_id"])
    if existing is not None and not selectors.can_manage(caller(request), existing):
        raise errors.forbidden("You don't have permission to modify this job")
    job = services.register_job(
        job_id=data["job_id"],
        user=caller(request),
        prompt=data.get("prompt"),
        preview_image_url=data["previewImageUrl"],
        request=request,
    )
    return Response({"success": True, "job_id": str(job.pk)})


@api_view(["POST"])
def upload_image(request):
    name = save_uploaded_image(request, "image")
    return Response({"success": True, "url": storage.url(name, request)})


@api_view(["GET"])
def queue_info(request):
    return Response(selectors.queue_info())


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def me(request):
    user = account_services.sync_profile(request.user)
    return Response({"user": user_profile(user), "stats": selectors.user_stats(user)})


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def sync_user(request):
    user = account_services.sync_profile(request.user, force=True)
    profile = user_profile(user)
    return Response({"success": True, "user": {key: profile[key] for key in ("id", "email", "firstName", "lastName")}})
