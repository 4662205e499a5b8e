"""Input validation and the JSON shapes of both API halves."""

from urllib.parse import urlsplit

from django.urls import reverse
from rest_framework import serializers

from accounts.serializers import iso
from jobs import storage
from jobs.formats import FORMATS
from jobs.models import JOB_API_STATUS, GenerateType, Job, JobState, PolygonType

MAX_PROMPT_LENGTH = 1000
MIN_FACE_COUNT = 100
MAX_FACE_COUNT = 1_500_000

class StrictBooleanField(serializers.BooleanField):
    """JSON ``true``/``false`` only: ``"yes"`` or ``1`` is a client bug worth reporting."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """JSON strings only, like the strict booleans and integers: DRF's own field takes ``0`` as
    ``"0"``. (Form fields are strings anyway.)"""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class HttpUrlField(StrictCharField):
    """An absolute http(s) URL. Host names need no dot: the service's own URLs may be
    ``http://web:4000/…`` inside a compose network. Whether a host may be fetched is decided
    later, by address (jobs.remote_images)."""

    default_error_messages = {"invalid": "Enter a valid http(s) URL."}

    def to_internal_value(self, data):
        url = super().to_internal_value(data)
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError on a malformed port)
        except ValueError:
            self.fail("invalid")
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
            self.fail("invalid")
        return url


def refuse_quadrilaterals(value):
    # glTF stores triangles only; quads would be silently triangulated, so refuse them.
    if value == PolygonType.QUADRILATERAL:
        raise serializers.ValidationError("quadrilateral meshes are not supported: GLB files store triangles")
    return value


class GenerateInput(serializers.Serializer):
    # null, "" and absent all mean "not given" (BackendJob has both as ``string | null``).
    prompt = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_PROMPT_LENGTH, trim_whitespace=True
    )
    imageUrl = HttpUrlField(required=False, allow_blank=True, allow_null=True, max_length=2048)
    generateType = serializers.ChoiceField(choices=GenerateType.choices, required=False, default=GenerateType.NORMAL)
    faceCount = StrictIntegerField(required=False, allow_null=True, min_value=MIN_FACE_COUNT, max_value=MAX_FACE_COUNT)
    enablePBR = StrictBooleanField(required=False, default=False)
    polygonType = serializers.ChoiceField(choices=PolygonType.choices, required=False, allow_null=True)

    def validate_polygonType(self, value):
        return refuse_quadrilaterals(value)

    def validate(self, attrs):
        if not attrs.get("prompt") and not attrs.get("imageUrl"):
            raise serializers.ValidationError("Either prompt or imageUrl is required")
        return attrs


class RemeshInput(serializers.Serializer):
    """The options of ``/generate``; each one not given keeps the source job's."""

    generateType = serializers.ChoiceField(choices=GenerateType.choices, required=False)
    faceCount = StrictIntegerField(required=False, allow_null=True, min_value=MIN_FACE_COUNT, max_value=MAX_FACE_COUNT)
    enablePBR = StrictBooleanField(required=False)
    polygonType = serializers.ChoiceField(choices=PolygonType.choices, required=False, allow_null=True)

    def validate_polygonType(self, value):
        return refuse_quadrilaterals(value)


class RenameInput(serializers.Serializer):
    name = StrictCharField(max_length=255, trim_whitespace=True)


class RegisterJobInput(serializers.Serializer):
    job_id = serializers.UUIDField()
    prompt = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=MAX_PROMPT_LENGTH)
    previewImageUrl = HttpUrlField(max_length=2048)


def preview_url(job: Job, request=None) -> str | None:
    return storage.url(job.preview_image, request) or job.registered_preview_url or None


def backend_job(job: Job, request=None) -> dict:
    """The spec's ``BackendJob``: the job API's view of a job."""
    return {
        "id": str(job.pk),
        "userId": job.user_id,
        "status": JOB_API_STATUS[job.state],
        "prompt": job.prompt,
        "imageUrl": job.image_url,
        "generateType": job.generate_type,
        "faceCount": job.face_count,
        "enablePBR": job.enable_pbr,
        "polygonType": job.polygon_type,
        "resultGlbUrl": storage.url(job.result_glb, request),
        "previewImageUrl": preview_url(job, request),
        "errorCode": job.error_code,
        "errorMessage": job.error_message,
        "name": job.name,
        "progress": job.progress,
        "message": job.message,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
    }


def download_formats(job: Job, request) -> list[dict]:
    """Each format the finished model can be downloaded in, with its download URL."""
    if job.state != JobState.COMPLETED or not job.result_glb:
        return []
    path = reverse("job-download", args=[job.pk])
    return [
        {"format": name, "description": format.description, "url": request.build_absolute_uri(f"{path}?format={name}")}
        for name, format in FORMATS.items()
    ]


def generation_status(job: Job, queue: dict, request=None) -> dict:
    """The generation API's view of a job (``/status``, ``/stream``)."""
    body = {
        "job_id": str(job.pk),
        "user_id": job.user_id,
        "status": job.state,
        "progress": job.progress,
        "message": job.message,
        "created_at": int(job.created_at.timestamp()),
        "updated_at": int(job.updated_at.timestamp()),
        "queue": queue,
    }
    if job.state == JobState.COMPLETED:
        body["result"] = _result(job, request)
    elif job.state in (JobState.FAILED, JobState.CANCELLED):
        body["error"] = job.error_message or "Job failed"
        body["error_code"] = job.error_code
    return body


def _result(job: Job, request) -> dict:
    result = {
        "job_id": str(job.pk),
        "mode": job.kind,
        "prompt": job.prompt,
        "elapsed_seconds": round(job.elapsed_seconds or 0.0, 2),
    }
    optional = {
        "mesh_url": storage.url(job.result_glb, request),
        "generated_image_url": preview_url(job, request) if job.kind != "image-to-3d" else None,
        "processed_image_url": storage.url(job.processed_image, request),
    }
    return result | {key: value for key, value in optional.items() if value}
