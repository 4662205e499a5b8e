"""What both API halves accept: the request bodies, validated (the responses are
jobs.api.outputs)."""

from urllib.parse import urlsplit

from rest_framework import serializers

from jobs.models import JOB_API_STATUS, GenerateType, JobKind, PolygonType
from jobs.selectors import HISTORY_PAGE_MAX
from webhooks.models import EventType

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
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in url)
        ):
            self.fail("invalid")
        return url


class EventsField(serializers.ListField):
    """Webhook event types, each once, in the order given; at least one."""

    child = serializers.ChoiceField(choices=EventType.choices)

    def __init__(self, **kwargs):
        super().__init__(allow_empty=False, **kwargs)

    def to_internal_value(self, data):
        return list(dict.fromkeys(super().to_internal_value(data)))


class JobWebhookFields(serializers.Serializer):
    # A job's own webhook receiver, in every submit body (see docs/webhooks.md).
    webhookUrl = HttpUrlField(
        required=False,
        max_length=2048,
        help_text="Receives this job's events, signed with your secret (GET "
        "/api/3d/webhooks/secret); signed-in callers only. https on a public address.",
    )
    webhookEvents = EventsField(
        required=False,
        help_text="The events webhookUrl receives; by default every one but job.progress.",
    )


def refuse_quadrilaterals(value):
    # glTF stores triangles only; quads would be silently triangulated, so refuse them.
    if value == PolygonType.QUADRILATERAL:
        raise serializers.ValidationError(
            "quadrilateral meshes are not supported: GLB files store triangles"
        )
    return value


# --- The job API (/api/3d) ------------------------------------------------------------------


class GenerateInput(JobWebhookFields):
    # null, "" and absent all mean "not given" (BackendJob has both as ``string | null``).
    prompt = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=MAX_PROMPT_LENGTH,
        trim_whitespace=True,
    )
    imageUrl = HttpUrlField(required=False, allow_blank=True, allow_null=True, max_length=2048)
    generateType = serializers.ChoiceField(
        choices=GenerateType.choices, required=False, default=GenerateType.NORMAL
    )
    faceCount = StrictIntegerField(
        required=False, allow_null=True, min_value=MIN_FACE_COUNT, max_value=MAX_FACE_COUNT
    )
    enablePBR = StrictBooleanField(required=False, default=False)
    polygonType = serializers.ChoiceField(
        choices=PolygonType.choices, required=False, allow_null=True
    )

    def validate_polygonType(self, value):
        return refuse_quadrilaterals(value)

    def validate(self, attrs):
        if not attrs.get("prompt") and not attrs.get("imageUrl"):
            raise serializers.ValidationError("Either prompt or imageUrl is required")
        return attrs


class RemeshInput(JobWebhookFields):
    """The options of ``/generate``; each one not given keeps the source job's."""

    generateType = serializers.ChoiceField(choices=GenerateType.choices, required=False)
    faceCount = StrictIntegerField(
        required=False, allow_null=True, min_value=MIN_FACE_COUNT, max_value=MAX_FACE_COUNT
    )
    enablePBR = StrictBooleanField(required=False)
    polygonType = serializers.ChoiceField(
        choices=PolygonType.choices, required=False, allow_null=True
    )

    def validate_polygonType(self, value):
        return refuse_quadrilaterals(value)


class RenameInput(serializers.Serializer):
    name = StrictCharField(max_length=255, trim_whitespace=True)


class RegisterJobInput(serializers.Serializer):
    job_id = serializers.UUIDField()
    prompt = StrictCharField(
        required=False, allow_blank=True, allow_null=True, max_length=MAX_PROMPT_LENGTH
    )
    previewImageUrl = HttpUrlField(max_length=2048)


class ImageUpload(serializers.Serializer):
    image = serializers.FileField(help_text="A JPEG, PNG or WEBP image of at most 10 MB.")


# --- The generation API (the root half) ----------------------------------------------------


class PromptInput(JobWebhookFields):
    prompt = StrictCharField(max_length=MAX_PROMPT_LENGTH, trim_whitespace=True)
    user_id = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Optional; when given, it must be the caller's own (Clerk token) user id.",
    )


class ImageTo3DInput(JobWebhookFields):
    image_url = HttpUrlField(
        required=False,
        allow_blank=True,
        max_length=2048,
        help_text="Required unless image_file is sent. http(s) to a public address.",
    )
    user_id = StrictCharField(required=False, allow_blank=True, max_length=64)


class ImageTo3DUpload(ImageTo3DInput):
    """Documentation only: the multipart form, with its file."""

    image_file = serializers.FileField(
        required=False, help_text="A JPEG, PNG or WEBP image, 10 MB at most."
    )


class HistoryQuery(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1,
        max_value=HISTORY_PAGE_MAX,
        required=False,
        help_text="Answer in pages of this many jobs, with `nextCursor`; without it, every job.",
    )
    cursor = serializers.CharField(
        required=False, help_text="The `nextCursor` of the page before (with `limit`)."
    )
    status = serializers.ChoiceField(
        choices=sorted(set(JOB_API_STATUS.values())),
        required=False,
        help_text="Only jobs with this status.",
    )
    kind = serializers.ChoiceField(
        choices=JobKind.values, required=False, help_text="Only jobs of this kind."
    )

    def validate(self, data):
        if "cursor" in data and "limit" not in data:
            raise serializers.ValidationError("cursor needs limit")
        return data
