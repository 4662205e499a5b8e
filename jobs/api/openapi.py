"""What the OpenAPI description of both API halves needs besides the response bodies (those are
the output serializers of jobs.api.outputs; Clerk's security scheme is accounts.openapi): the tags,
the job id parameter, the error responses they share, and the hook that adds the errors of
authentication to every operation that reads a token.
"""

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers as drf

from hydrilla import request_id

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


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's, with anonymous calls (``{}`` in ``security``) wherever the view's
    permissions let them in: a permission with ``allows_anonymous`` true says so."""

    def get_auth(self):
        auths = super().get_auth()
        if {} not in auths and any(
            getattr(permission, "allows_anonymous", False)
            for permission in self.view.get_permissions()
        ):
            auths.append({})
        return auths


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="1 to 255 visible ASCII characters (a UUID, say). A retry with the same key and "
    "body gets the first answer again (with `Idempotent-Replayed: true`) and creates nothing; "
    "the key with another body is a 422; a retry while the first is still handled waits for it, "
    "then gets a 409. Keys are kept a day.",
)
API_KEY_LIMITED = "Too many requests with this API key (API_KEY_RATE; see Retry-After)."
KEY_REUSED = "This Idempotency-Key was already used with another request."
KEY_IN_FLIGHT = "A request with this Idempotency-Key is still being handled (see Retry-After)."
REQUEST_ID_DESCRIPTION = (
    "The request's id: the one sent (up to 128 of `A-Za-z0-9._:+/=-`), or one made. Returned on "
    "every answer, written in the service's logs and in those of every stage of a job the "
    "request creates."
)
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": "Requests allowed in the window of the limit that binds.",
    "RateLimit-Remaining": "Of them, how many are left.",
    "RateLimit-Reset": "Seconds until the oldest counted request leaves the window.",
}


def document_integration_headers(result, generator, request, public):
    """Postprocessing hook: the headers every operation shares. ``X-Request-ID`` on every
    request and answer; the 429 of an API key's own limit wherever a key is accepted; the
    ``RateLimit`` headers on every answer of an operation with limits (it documents a 429); for
    operations that take an ``Idempotency-Key``, its 409 and 422 and the ``Idempotent-Replayed``
    header of a replay."""
    for operations in result["paths"].values():
        for operation in operations.values():
            parameters = operation.setdefault("parameters", [])
            parameters.append(_header_parameter(request_id.HEADER, REQUEST_ID_DESCRIPTION))
            if {"apiKey": []} in operation.get("security", []):
                _add_error(operation["responses"], "429", API_KEY_LIMITED)
            idempotent = any(p["name"] == IDEMPOTENCY_KEY.name for p in parameters)
            if idempotent:
                _add_error(operation["responses"], "409", KEY_IN_FLIGHT)
                _add_error(operation["responses"], "422", KEY_REUSED)
            limited = "429" in operation["responses"]
            for status, response in operation["responses"].items():
                headers = response.setdefault("headers", {})
                headers[request_id.HEADER] = _header(REQUEST_ID_DESCRIPTION)
                if limited:
                    headers.update(
                        {
                            name: _header(text, "integer")
                            for name, text in RATE_LIMIT_HEADERS.items()
                        }
                    )
                if idempotent and status.startswith("2"):
                    headers["Idempotent-Replayed"] = _header(
                        "`true` on an answer given again to a retry with the same Idempotency-Key."
                    )
    return result


def _header(description: str, kind: str = "string") -> dict:
    return {"schema": {"type": kind}, "description": description}


def _header_parameter(name: str, description: str) -> dict:
    return {"in": "header", "name": name, "required": False, **_header(description)}


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
