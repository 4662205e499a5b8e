"""The OpenAPI description of both API halves: the response shapes (documentation-only
serializers; the bodies themselves are built in ``jobs.serializers``), the Clerk security scheme
and the shared error responses. The views carry their ``extend_schema`` annotations inline.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers as drf

from accounts.authentication import SESSION_COOKIE
from jobs.formats import FORMATS
from jobs.models import JOB_API_STATUS, GenerateType, JobKind, JobState, PolygonType

GENERATION_TAG = "Generation API"
JOB_TAG = "Job API (/api/3d)"

JOB_ID = OpenApiParameter(
    "job_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The job's id (a UUID)."
)


class ClerkAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ClerkAuthentication"
    name = ["clerkBearer", "clerkSession"]

    def get_security_requirement(self, auto_schema):
        return [{"clerkBearer": []}, {"clerkSession": []}]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "A Clerk session token: `Authorization: Bearer <token>`.",
            },
            {
                "type": "apiKey",
                "in": "cookie",
                "name": SESSION_COOKIE,
                "description": "Clerk's session cookie, as a browser on the same site sends it. "
                "With it, POST, PATCH and DELETE need an `Origin` (or `Referer`) among the "
                "allowed origins, or answer 403.",
            },
        ]


# --- Shared ----------------------------------------------------------------------------------


class Error(drf.Serializer):
    error = drf.CharField(help_text="What went wrong, for people.")


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(Error, description=description)


AUTHENTICATION_OUTAGE = "A token was sent, but Clerk's signing keys cannot be fetched to check it: retry later."
CROSS_SITE = "The session cookie came with a request from an origin that is not allowed."
UNSAFE_METHODS = ("post", "put", "patch", "delete")


def document_authentication_outage(result, generator, request, public):
    """Postprocessing hook: every operation that reads a token may answer 503 while Clerk is
    unreachable (``accounts.authentication.AuthenticationUnavailable``), and every one that
    changes something 403 to a cookie sent cross-site, whatever the view does."""
    for operations in result["paths"].values():
        for method, operation in operations.items():
            if "security" not in operation:
                continue
            _add_error(operation["responses"], "503", AUTHENTICATION_OUTAGE)
            if method in UNSAFE_METHODS:
                _add_error(operation["responses"], "403", CROSS_SITE)
    return result


def _add_error(responses: dict, status: str, description: str) -> None:
    if status in responses:
        responses[status]["description"] += f" Or: {description}"
    else:
        responses[status] = {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            "description": description,
        }


class JobQueue(drf.Serializer):
    position = drf.IntegerField(min_value=0, help_text="0: running or finished; 1+: waiting.")
    jobs_ahead = drf.IntegerField(min_value=0)
    estimated_wait_seconds = drf.IntegerField(min_value=0)
    estimated_total_seconds = drf.IntegerField(min_value=0)
    queue_length = drf.IntegerField(min_value=0)
    currently_processing = drf.BooleanField()


class QueueInfo(drf.Serializer):
    queue_length = drf.IntegerField(min_value=0)
    currently_processing = drf.BooleanField()
    waiting_jobs = drf.IntegerField(min_value=0)
    estimated_wait_for_new_job_seconds = drf.IntegerField(min_value=0)
    estimated_time_per_job_seconds = drf.IntegerField(min_value=0)
    preview_queue_length = drf.IntegerField(min_value=0)
    currently_generating_preview = drf.BooleanField()
    preview_waiting = drf.IntegerField(min_value=0)
    estimated_wait_for_preview_seconds = drf.IntegerField(min_value=0)
    estimated_preview_time_seconds = drf.IntegerField(min_value=0)


# --- Generation API --------------------------------------------------------------------------


class PreviewQueue(drf.Serializer):
    position = drf.IntegerField(min_value=0)
    previews_ahead = drf.IntegerField(min_value=0)
    estimated_wait_seconds = drf.IntegerField(min_value=0)
    estimated_total_seconds = drf.IntegerField(min_value=0)
    queue_length = drf.IntegerField(min_value=0)
    currently_generating = drf.BooleanField()


class PreviewReady(drf.Serializer):
    success = drf.BooleanField()
    preview_id = drf.UUIDField()
    image_url = drf.URLField()
    prompt = drf.CharField()
    message = drf.CharField()
    queue = PreviewQueue(help_text="The preview queue as it stood when the request arrived.")


class PreviewTimeout(drf.Serializer):
    error = drf.CharField()
    preview_id = drf.UUIDField(
        required=False, help_text="When the wait timed out: the preview goes on; poll /status or register it."
    )
    status_url = drf.CharField(required=False)


class JobSubmitted(drf.Serializer):
    job_id = drf.UUIDField()
    status = drf.ChoiceField(choices=[JobState.PENDING.value])
    message = drf.CharField()
    status_url = drf.CharField(help_text="/status/{job_id}")
    stream_url = drf.CharField(help_text="/stream/{job_id}")


class JobResult(drf.Serializer):
    job_id = drf.UUIDField()
    mode = drf.ChoiceField(choices=JobKind.values)
    prompt = drf.CharField(allow_null=True)
    mesh_url = drf.URLField(required=False)
    generated_image_url = drf.URLField(required=False)
    processed_image_url = drf.URLField(required=False)
    elapsed_seconds = drf.FloatField(min_value=0)


class GenerationJob(drf.Serializer):
    job_id = drf.UUIDField()
    user_id = drf.CharField(allow_null=True)
    status = drf.ChoiceField(choices=JobState.values)
    progress = drf.IntegerField(min_value=0, max_value=100)
    message = drf.CharField(allow_blank=True)
    created_at = drf.IntegerField(help_text="Unix time, seconds.")
    updated_at = drf.IntegerField(help_text="Unix time, seconds.")
    queue = JobQueue()
    result = JobResult(required=False, help_text="Only when completed.")
    error = drf.CharField(required=False, help_text="Only when failed or cancelled.")
    error_code = drf.CharField(
        required=False, allow_null=True, help_text="Only when failed or cancelled: why, for programs."
    )


class JobCancelled(drf.Serializer):
    job_id = drf.UUIDField()
    status = drf.ChoiceField(choices=[JobState.CANCELLED.value])
    message = drf.CharField()


class Health(drf.Serializer):
    status = drf.ChoiceField(choices=["ok"])


class Readiness(drf.Serializer):
    status = drf.ChoiceField(choices=["ok", "unavailable"])
    database = drf.CharField(help_text='"ok", or "error: <kind>"')
    broker = drf.CharField(help_text='"ok", or "error: <kind>"')
    storage = drf.CharField(help_text='"ok", or "error: <kind>"')
    gpu_workers = drf.IntegerField(
        allow_null=True, min_value=0,
        help_text="Workers consuming the GPU queue; null when it cannot be told.",
    )


# --- Job API ---------------------------------------------------------------------------------


class BackendJob(drf.Serializer):
    id = drf.UUIDField()
    userId = drf.CharField(allow_null=True)
    status = drf.ChoiceField(choices=sorted(set(JOB_API_STATUS.values())))
    prompt = drf.CharField(allow_null=True)
    imageUrl = drf.URLField(allow_null=True)
    generateType = drf.ChoiceField(choices=GenerateType.values)
    faceCount = drf.IntegerField(allow_null=True)
    enablePBR = drf.BooleanField()
    polygonType = drf.ChoiceField(choices=PolygonType.values, allow_null=True)
    resultGlbUrl = drf.URLField(allow_null=True)
    previewImageUrl = drf.URLField(allow_null=True)
    errorCode = drf.CharField(allow_null=True)
    errorMessage = drf.CharField(allow_null=True)
    name = drf.CharField(allow_null=True)
    progress = drf.IntegerField(min_value=0, max_value=100)
    message = drf.CharField(allow_blank=True)
    createdAt = drf.DateTimeField()
    updatedAt = drf.DateTimeField()


class DownloadFormat(drf.Serializer):
    format = drf.ChoiceField(choices=list(FORMATS))
    description = drf.CharField()
    url = drf.URLField()


class JobStatus(drf.Serializer):
    job = BackendJob()
    queue = JobQueue()
    formats = DownloadFormat(many=True, help_text="Where to download the finished model in each "
                             "format (an addition to the spec's body; empty until the job is DONE).")


class JobHistory(drf.Serializer):
    jobs = BackendJob(many=True)


class JobCreated(drf.Serializer):
    jobId = drf.UUIDField()


class Done(drf.Serializer):
    success = drf.BooleanField()
    message = drf.CharField()


class JobRegistered(drf.Serializer):
    success = drf.BooleanField()
    job_id = drf.UUIDField()


class ImageUploaded(drf.Serializer):
    success = drf.BooleanField()
    url = drf.URLField()


class ImageUpload(drf.Serializer):
    image = drf.FileField(help_text="A JPEG, PNG or WEBP image of at most 10 MB.")


class UserProfile(drf.Serializer):
    id = drf.CharField()
    email = drf.EmailField(allow_null=True)
    firstName = drf.CharField(allow_null=True)
    lastName = drf.CharField(allow_null=True)
    imageUrl = drf.URLField(allow_null=True)
    createdAt = drf.DateTimeField(allow_null=True)


class UserStats(drf.Serializer):
    totalJobs = drf.IntegerField(min_value=0)
    completedJobs = drf.IntegerField(min_value=0)


class Me(drf.Serializer):
    user = UserProfile()
    stats = UserStats()


class SyncedUser(drf.Serializer):
    id = drf.CharField()
    email = drf.EmailField(allow_null=True)
    firstName = drf.CharField(allow_null=True)
    lastName = drf.CharField(allow_null=True)


class UserSynced(drf.Serializer):
    success = drf.BooleanField()
    user = SyncedUser()


UNAUTHENTICATED = error("No valid Clerk token (missing, invalid or expired).")
# Where a token is optional, one that is sent must still be valid.
INVALID_TOKEN = error("The token sent is invalid or expired.")
NOT_FOUND = error("No job with this id.")
STORAGE_DOWN = error("The storage or the broker is unavailable.")
SUBMISSIONS_LIMITED = error("Too many submissions, or too many waiting jobs, for this caller (see Retry-After).")

QUEUE_INFO = {
    "summary": "Queue statistics",
    "description": "The 3D and preview queues, for time estimates (same body on both halves).",
}
