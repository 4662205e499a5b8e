"""The OpenAPI schema: served, valid, complete for both halves, and true to the API.

Real responses are checked against it throughout tests/jobs/api (``assert_matches_schema``); here
the
whole API is also explored from the schema alone (schemathesis, in process through WSGI, with a
fixed seed and a bounded number of examples) and must never answer a 5xx or anything the schema
does not describe.
"""

import json

import pytest
import schemathesis
import yaml
from django.core.wsgi import get_wsgi_application
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from jobs.models import JobKind
from jobs.services import shared
from tests.helpers.jobs import finish_preview, start
from tests.helpers.schema import openapi_document

GENERATION_PATHS = {
    "/text-to-image": {"post"},
    "/text-to-3d": {"post"},
    "/image-to-3d": {"post"},
    "/status/{job_id}": {"get"},
    "/stream/{job_id}": {"get"},
    "/cancel/{job_id}": {"post"},
    "/queue/info": {"get"},
    "/health": {"get"},
    "/health/ready": {"get"},
}
JOB_API_PATHS = {
    "/api/3d/generate": {"post"},
    "/api/3d/status/{job_id}": {"get"},
    "/api/3d/history": {"get"},
    "/api/3d/jobs/{job_id}/name": {"patch"},
    "/api/3d/jobs/{job_id}": {"delete"},
    "/api/3d/jobs/{job_id}/download": {"get"},
    "/api/3d/jobs/{job_id}/remesh": {"post"},
    "/api/3d/register-job": {"post"},
    "/api/3d/upload-image": {"post"},
    "/api/3d/queue/info": {"get"},
    "/api/3d/me": {"get"},
    "/api/3d/sync-user": {"post"},
    "/api/3d/api-keys": {"get", "post"},
    "/api/3d/api-keys/{key_id}": {"delete"},
}
WEBHOOK_PATHS = {
    "/api/3d/webhooks": {"get", "post"},
    "/api/3d/webhooks/secret": {"get", "post"},
    "/api/3d/webhooks/{endpoint_id}": {"delete"},
    "/api/3d/webhooks/{endpoint_id}/deliveries": {"get"},
    "/api/3d/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend": {"post"},
}


def test_the_schema_is_served_as_json_and_yaml_and_is_valid_openapi_3(api_client):
    as_json = api_client.get("/api/schema/", {"format": "json"})
    as_yaml = api_client.get("/api/schema/")

    assert as_json.status_code == as_yaml.status_code == 200
    document = json.loads(as_json.content)
    assert yaml.safe_load(as_yaml.content) == document
    assert document["openapi"].startswith("3.")
    validate_schema(document)  # against the OpenAPI 3 meta-schema


def test_the_schema_is_public_whatever_token_comes_with_the_request(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer expired")

    assert api_client.get("/api/schema/").status_code == 200


def test_every_endpoint_of_both_halves_is_described_with_its_method():
    paths = openapi_document()["paths"]

    described = {path: set(operations) - {"parameters"} for path, operations in paths.items()}
    assert described == GENERATION_PATHS | JOB_API_PATHS | WEBHOOK_PATHS


def _routes(resolver: URLResolver, prefix=""):
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, route)
        elif isinstance(pattern, URLPattern):
            yield route


def test_no_route_of_the_api_is_left_out_of_the_schema():
    import re

    served = {
        "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        for route in _routes(get_resolver())
        # Not the API: the admin, the schema itself, local files, and Prometheus' scrape
        # endpoint (docs/metrics.md).
        if not route.startswith(("admin/", "api/schema", "api/docs", "^media", "metrics"))
    }
    assert served == set(GENERATION_PATHS) | set(JOB_API_PATHS) | set(WEBHOOK_PATHS)


def test_every_operation_documents_its_errors_as_error_bodies():
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # 201 where the interface says so: a new API key
            assert {"200", "201"} & set(operation["responses"]), (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/health/ready":
                    schema = response["content"]["application/json"]["schema"]["$ref"]
                    assert schema in (
                        "#/components/schemas/Error",
                        "#/components/schemas/PreviewTimeout",
                    ), (method, path, status)
    assert document["components"]["schemas"]["Error"] == {
        "type": "object",
        "properties": {"error": {"type": "string", "description": "What went wrong, for people."}},
        "required": ["error"],
    }


def test_request_bodies_are_the_media_types_the_spec_gives():
    paths = openapi_document()["paths"]

    def media(path, method):
        return set(paths[path][method]["requestBody"]["content"])

    assert "application/x-www-form-urlencoded" in media(
        "/text-to-image", "post"
    )  # as the frontend sends it
    assert "application/x-www-form-urlencoded" in media("/text-to-3d", "post")
    assert "multipart/form-data" in media("/image-to-3d", "post")  # image_file
    assert media("/api/3d/generate", "post") == {"application/json"}
    assert media("/api/3d/upload-image", "post") == {"multipart/form-data"}
    multipart = paths["/image-to-3d"]["post"]["requestBody"]["content"]["multipart/form-data"][
        "schema"
    ]["$ref"]
    upload = openapi_document()["components"]["schemas"][multipart.rsplit("/", 1)[1]]
    assert upload["properties"]["image_file"] == {
        "type": "string",
        "format": "binary",
        "description": "A JPEG, PNG or WEBP image, 10 MB at most.",
    }


def test_the_interactive_documentation_page_points_at_the_schema(api_client):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "swagger-ui" in page and "/api/schema/" in page


# --- Property-based: the whole API explored from its schema ------------------------------------


def _run_previews_at_once(job):
    """An instant preview worker, so that /text-to-image answers rather than waits."""
    if job.kind == JobKind.PREVIEW:
        finish_preview(job.pk, start(job.pk))


@pytest.fixture
def inline_previews(monkeypatch, settings):
    monkeypatch.setattr(shared, "enqueue", _run_previews_at_once)
    settings.PREVIEW_WAIT_SECONDS = 5


# Loaded through the app itself, as a client would (Django is set up before test modules load).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,  # the same examples every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_as_its_schema_says_and_never_with_a_5xx(
    case, transactional_db, inline_previews
):
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            ignored_auth,
        ]
    )


@pytest.fixture
def signed_in(token_minter, user):
    return {"Authorization": f"Bearer {token_minter.token(user.pk)}"}


@schema.include(
    path_regex=r"^/(api/3d/(generate|jobs/|me|sync-user|history|webhooks)|text-to-|image-to-3d|cancel/)"
).parametrize()
@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_signed_in_calls_never_answer_a_5xx_either(
    case, transactional_db, inline_previews, signed_in
):
    case.call_and_validate(
        headers=signed_in,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


# --- What integrators rely on: who may call, retries, ids, limits -------------------------------

CLERK = [{"clerkBearer": []}, {"clerkSession": []}]
KEY_OR_CLERK = [{"apiKey": []}, *CLERK]
CREATING_POSTS = {
    "/api/3d/generate",
    "/api/3d/jobs/{job_id}/remesh",
    "/api/3d/register-job",
    "/api/3d/upload-image",
    "/api/3d/api-keys",
    "/api/3d/webhooks",
    "/text-to-image",
    "/text-to-3d",
    "/image-to-3d",
}


@pytest.mark.parametrize(
    ("path", "method", "security"),
    [
        ("/api/3d/generate", "post", KEY_OR_CLERK),
        ("/api/3d/history", "get", [*KEY_OR_CLERK, {}]),
        ("/text-to-image", "post", [*KEY_OR_CLERK, {}]),
        ("/text-to-3d", "post", [*KEY_OR_CLERK, {}]),
        ("/image-to-3d", "post", [*KEY_OR_CLERK, {}]),
        ("/api/3d/api-keys", "get", CLERK),
        ("/api/3d/api-keys", "post", CLERK),
        ("/api/3d/api-keys/{key_id}", "delete", CLERK),
        ("/status/{job_id}", "get", None),
    ],
)
def test_each_operation_says_exactly_what_it_accepts(path, method, security):
    assert openapi_document()["paths"][path][method].get("security") == security


def test_the_anonymous_option_follows_generation_api_require_token(api_client, settings):
    settings.GENERATION_API_REQUIRE_TOKEN = True

    served = api_client.get("/api/schema/", {"format": "json"}).json()  # made afresh
    assert served["paths"]["/text-to-3d"]["post"]["security"] == KEY_OR_CLERK


def test_every_creating_post_takes_an_idempotency_key_and_documents_its_refusals():
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            takes_key = (path, method) in {(p, "post") for p in CREATING_POSTS}
            assert ("Idempotency-Key" in names) is takes_key, (method, path)
            if takes_key:
                assert {"409", "422"} <= set(operation["responses"]), (method, path)
                success = operation["responses"].get("200") or operation["responses"]["201"]
                assert "Idempotent-Replayed" in success["headers"]


def test_every_operation_takes_and_answers_a_request_id_and_limits_show_their_headers():
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            names = {parameter["name"] for parameter in operation["parameters"]}
            assert "X-Request-ID" in names, (method, path)
            for status, response in operation["responses"].items():
                headers = set(response["headers"])
                assert "X-Request-ID" in headers, (method, path, status)
                if "429" in operation["responses"]:
                    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= headers
