"""What the OpenAPI description of both API halves needs besides the response bodies (those are
the output serializers of jobs.api.outputs; Clerk's security scheme is accounts.openapi): the tags,
the job id parameter, the error responses they share, and the hook that adds the errors of
authentication to every operation that reads a token.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers as drf

# The schema names the halves as the spec does (the pipeline API is its "generation API").
PIPELINE_API_TAG = "Generation API"
JOB_API_TAG = "Job API (/api/3d)"

JOB_ID = OpenApiParameter(
    "job_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The job's id (a UUID)."
)


class Error(drf.Serializer):
    error = drf.CharField(help_text="What went wrong, for people.")


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(Error, description=description)


AUTHENTICATION_OUTAGE = (
    "A token was sent, but Clerk's signing keys cannot be fetched to check it: retry later."
)
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


UNAUTHENTICATED = error("No valid Clerk token (missing, invalid or expired).")
# Where a token is optional, one that is sent must still be valid.
INVALID_TOKEN = error("The token sent is invalid or expired.")
NOT_FOUND = error("No job with this id.")
STORAGE_DOWN = error("The storage or the broker is unavailable.")
SUBMISSIONS_LIMITED = error(
    "Too many submissions, or too many waiting jobs, for this caller (see Retry-After)."
)

QUEUE_INFO = {
    "summary": "Queue statistics",
    "description": "The 3D and preview queues, for time estimates (same body on both halves).",
}
