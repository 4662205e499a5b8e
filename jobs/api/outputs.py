"""The JSON bodies of both API halves: output serializers that render each response and are the
schema's description of it (``extend_schema(responses=...)``), one class per shape.

Views render with ``Output.render(instance, **context)`` (hydrilla.rendering): URLs in a body are
absolute, on the ``site`` (``scheme://host``) the client reached, and a job's status comes with its
``queue`` figures (from jobs.watch).
"""

from django.urls import reverse
from rest_framework import serializers

from accounts.serializers import IsoDateTimeField
from hydrilla.rendering import Output, context
from jobs import storage
from jobs.error_codes import CHOICES as ERROR_CODES
from jobs.formats import FORMATS
from jobs.models import JOB_API_STATUS, GenerateType, Job, JobKind, JobState, PolygonType


def preview_url(job: Job, site: str | None = None) -> str | None:
    return storage.url(job.preview_image, site) or job.registered_preview_url or None


class StorageUrl(serializers.URLField):
    """A stored file (a storage name), as its URL; null without one."""

    def get_attribute(self, job):
        return storage.url(super().get_attribute(job), context()["site"])


class PreviewUrl(serializers.URLField):
    """The job's preview image: ours, or the one registered with it."""

    def get_attribute(self, job):
        return preview_url(job, context()["site"])


class UnixTime(serializers.IntegerField):
    def to_representation(self, moment):
        return int(moment.timestamp())


# --- Both halves -----------------------------------------------------------------------------


class JobQueue(Output):
    # A job's place in line; the figures come in the context (``queue``), from jobs.watch.

    position = serializers.IntegerField(
        min_value=0, help_text="0: running or finished; 1+: waiting."
    )
    jobs_ahead = serializers.IntegerField(min_value=0)
    estimated_wait_seconds = serializers.IntegerField(min_value=0)
    estimated_total_seconds = serializers.IntegerField(min_value=0)
    queue_length = serializers.IntegerField(min_value=0)
    currently_processing = serializers.BooleanField()

    def get_attribute(self, instance):
        return context()["queue"]


class QueueInfo(Output):
    queue_length = serializers.IntegerField(min_value=0)
    currently_processing = serializers.BooleanField()
    waiting_jobs = serializers.IntegerField(min_value=0)
    estimated_wait_for_new_job_seconds = serializers.IntegerField(min_value=0)
    estimated_time_per_job_seconds = serializers.IntegerField(min_value=0)
    preview_queue_length = serializers.IntegerField(min_value=0)
    currently_generating_preview = serializers.BooleanField()
    preview_waiting = serializers.IntegerField(min_value=0)
    estimated_wait_for_preview_seconds = serializers.IntegerField(min_value=0)
    estimated_preview_time_seconds = serializers.IntegerField(min_value=0)


# --- The generation API (the root half) ------------------------------------------------------


class PreviewQueue(Output):
    # The preview queue's figures (``JobQueue``'s, in this endpoint's words).

    position = serializers.IntegerField(min_value=0)
    previews_ahead = serializers.IntegerField(min_value=0, source="jobs_ahead")
    estimated_wait_seconds = serializers.IntegerField(min_value=0)
    estimated_total_seconds = serializers.IntegerField(min_value=0)
    queue_length = serializers.IntegerField(min_value=0)
    currently_generating = serializers.BooleanField(source="currently_processing")


class PreviewReady(Output):
    success = serializers.BooleanField()
    preview_id = serializers.UUIDField()
    image_url = serializers.URLField()
    prompt = serializers.CharField()
    message = serializers.CharField()
    queue = PreviewQueue(help_text="The preview queue as it stood when the request arrived.")


class PreviewTimeout(Output):
    error = serializers.CharField()
    preview_id = serializers.UUIDField(
        required=False,
        help_text="When the wait timed out: the preview goes on; poll /status or register it.",
    )
    status_url = serializers.CharField(required=False)


class JobSubmitted(Output):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=[JobState.PENDING.value])
    message = serializers.CharField()
    status_url = serializers.CharField(help_text="/status/{job_id}")
    stream_url = serializers.CharField(help_text="/stream/{job_id}")


class ElapsedSeconds(serializers.FloatField):
    def get_attribute(self, job):
        return round(job.elapsed_seconds or 0.0, 2)


class FileUrlIfAny(serializers.URLField):
    """A file of the job's, as its URL; left out, not null, when the job has none."""

    def get_attribute(self, job):
        url = storage.url(super().get_attribute(job), context()["site"])
        if not url:
            raise serializers.SkipField()
        return url


class GeneratedImageUrl(serializers.URLField):
    """The preview a text-to-3D job made (left out when none); an image-to-3D job has none."""

    def get_attribute(self, job):
        url = preview_url(job, context()["site"]) if job.kind != JobKind.IMAGE_TO_3D else None
        if not url:
            raise serializers.SkipField()
        return url


class JobResult(Output):
    # What a completed job made (only a completed job's body has it).

    job_id = serializers.UUIDField(source="pk")
    mode = serializers.ChoiceField(choices=JobKind.values, source="kind")
    prompt = serializers.CharField(allow_null=True)
    elapsed_seconds = ElapsedSeconds(min_value=0)
    mesh_url = FileUrlIfAny(required=False, source="result_glb")
    generated_image_url = GeneratedImageUrl(required=False, source="*")
    processed_image_url = FileUrlIfAny(required=False, source="processed_image")

    def get_attribute(self, job):
        if job.state != JobState.COMPLETED:
            raise serializers.SkipField()
        return job


class IfEndedUnsuccessfully:
    """A field only the body of a failed or cancelled job has."""

    def get_attribute(self, job):
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise serializers.SkipField()
        return super().get_attribute(job)


class FailureMessage(IfEndedUnsuccessfully, serializers.CharField):
    def get_attribute(self, job):
        return super().get_attribute(job) or "Job failed"


class FailureCode(IfEndedUnsuccessfully, serializers.ChoiceField):
    pass


class GenerationJob(Output):
    # ``/status`` and ``/stream``: a job in this half's words.

    job_id = serializers.UUIDField(source="pk")
    user_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=JobState.values, source="state")
    progress = serializers.IntegerField(min_value=0, max_value=100)
    message = serializers.CharField(allow_blank=True)
    created_at = UnixTime(help_text="Unix time, seconds.")
    updated_at = UnixTime(help_text="Unix time, seconds.")
    queue = JobQueue()
    result = JobResult(required=False, help_text="Only when completed.")
    error = FailureMessage(
        required=False, source="error_message", help_text="Only when failed or cancelled."
    )
    error_code = FailureCode(
        ERROR_CODES,
        required=False,
        allow_null=True,
        help_text="Only when failed or cancelled: why, for programs.",
    )


class JobCancelled(Output):
    job_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=[JobState.CANCELLED.value])
    message = serializers.CharField()


class Health(Output):
    status = serializers.ChoiceField(choices=["ok"])


class Readiness(Output):
    status = serializers.ChoiceField(choices=["ok", "unavailable"])
    database = serializers.CharField(help_text='"ok", or "error: <kind>"')
    broker = serializers.CharField(help_text='"ok", or "error: <kind>"')
    storage = serializers.CharField(help_text='"ok", or "error: <kind>"')
    gpu_workers = serializers.IntegerField(
        allow_null=True,
        min_value=0,
        help_text="Workers consuming the GPU queue; null when it cannot be told.",
    )


# --- The job API (/api/3d) -------------------------------------------------------------------


class JobApiStatus(serializers.ChoiceField):
    def to_representation(self, state):
        return JOB_API_STATUS[state]


class JobRecord(Output):
    # A job in the job API's words: the spec's ``BackendJob``.

    id = serializers.UUIDField(source="pk")
    userId = serializers.CharField(allow_null=True, source="user_id")
    status = JobApiStatus(choices=sorted(set(JOB_API_STATUS.values())), source="state")
    prompt = serializers.CharField(allow_null=True)
    imageUrl = serializers.URLField(allow_null=True, source="image_url")
    generateType = serializers.ChoiceField(choices=GenerateType.values, source="generate_type")
    faceCount = serializers.IntegerField(allow_null=True, source="face_count")
    enablePBR = serializers.BooleanField(source="enable_pbr")
    polygonType = serializers.ChoiceField(
        choices=PolygonType.values, allow_null=True, source="polygon_type"
    )
    resultGlbUrl = StorageUrl(allow_null=True, source="result_glb")
    previewImageUrl = PreviewUrl(allow_null=True, source="*")
    errorCode = serializers.ChoiceField(ERROR_CODES, allow_null=True, source="error_code")
    errorMessage = serializers.CharField(allow_null=True, source="error_message")
    name = serializers.CharField(allow_null=True)
    progress = serializers.IntegerField(min_value=0, max_value=100)
    message = serializers.CharField(allow_blank=True)
    createdAt = IsoDateTimeField(source="created_at")
    updatedAt = IsoDateTimeField(source="updated_at")

    class Meta:
        ref_name = "BackendJob"  # the spec's name for it


class DownloadFormats(serializers.ListSerializer):
    """Each format the finished model can be downloaded in; none before it is finished."""

    def get_attribute(self, job):
        if job.state != JobState.COMPLETED or not job.result_glb:
            return []
        path = reverse("job-download", args=[job.pk])
        return [
            {"format": name, "description": format.description, "location": f"{path}?format={name}"}
            for name, format in FORMATS.items()
        ]


class SiteUrl(serializers.URLField):
    """A path of this service, as a URL on the request's site."""

    def to_representation(self, location):
        return storage.absolute(location, context()["site"])


class DownloadFormat(Output):
    format = serializers.ChoiceField(choices=list(FORMATS))
    description = serializers.CharField()
    url = SiteUrl(source="location")

    class Meta:
        list_serializer_class = DownloadFormats


class JobStatus(Output):
    job = JobRecord(source="*")
    queue = JobQueue()
    formats = DownloadFormat(
        many=True,
        source="*",
        help_text="Where to download the finished model in each "
        "format (an addition to the spec's body; empty until the job is DONE).",
    )


class NextCursor(serializers.CharField):
    """In a page of history only: absent from the unpaged answer, as the spec has it."""

    def get_attribute(self, history):
        if "next_cursor" not in history:
            raise serializers.SkipField()
        return history["next_cursor"]


class JobHistory(Output):
    jobs = JobRecord(many=True)
    nextCursor = NextCursor(
        required=False,
        allow_null=True,
        help_text="With `limit` only: the `cursor` of the next page; null on the last one.",
    )


class JobCreated(Output):
    jobId = serializers.UUIDField(source="pk")


class Done(Output):
    success = serializers.BooleanField()
    message = serializers.CharField()


class JobRegistered(Output):
    success = serializers.BooleanField()
    job_id = serializers.UUIDField()


class ImageUploaded(Output):
    success = serializers.BooleanField()
    url = serializers.URLField()
