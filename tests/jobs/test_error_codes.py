"""The error codes (``jobs.error_codes``): the OpenAPI schema lists every code as the ``errorCode``
enum of both API halves, each with its meaning, and stored jobs carry no retired code."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from jobs.error_codes import ErrorCode

BEFORE_MERGE = [("jobs", "0005_job_stages")]
MERGED = [("jobs", "0006_merge_invalid_image_codes")]


def test_the_schema_lists_every_code_with_its_meaning_for_both_halves(api_client):
    schemas = json.loads(api_client.get("/api/schema/", {"format": "json"}).content)["components"]
    enum = schemas["schemas"]["ErrorCodeEnum"]

    assert enum["enum"] == [code.value for code in ErrorCode]
    for code in ErrorCode:
        assert f"* `{code}` - {code.meaning}" in enum["description"]
    job_api = schemas["schemas"]["BackendJob"]["properties"]["errorCode"]
    generation_api = schemas["schemas"]["GenerationJob"]["properties"]["error_code"]
    for field in (job_api, generation_api):
        assert {"$ref": "#/components/schemas/ErrorCodeEnum"} in field["oneOf"]
        assert field["nullable"] is True


@pytest.fixture
def migrator():
    """A migration executor over the test database, which is migrated to the latest again after."""
    executor = MigrationExecutor(connection)
    yield executor
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_stored_image_invalid_codes_become_invalid_image_and_other_codes_stay(migrator):
    migrator.migrate(BEFORE_MERGE)
    Job = migrator.loader.project_state(BEFORE_MERGE).apps.get_model("jobs", "Job")
    failed = {
        code: Job.objects.create(kind="image-to-3d", state="failed", error_code=code).pk
        for code in ("IMAGE_INVALID", "INVALID_IMAGE", "IMAGE_TOO_LARGE")
    }
    running = Job.objects.create(kind="image-to-3d", state="processing").pk

    migrator.loader.build_graph()
    migrator.migrate(MERGED)

    Job = migrator.loader.project_state(MERGED).apps.get_model("jobs", "Job")
    codes = dict(Job.objects.values_list("pk", "error_code"))
    assert {code: codes[pk] for code, pk in failed.items()} == {
        "IMAGE_INVALID": "INVALID_IMAGE",
        "INVALID_IMAGE": "INVALID_IMAGE",
        "IMAGE_TOO_LARGE": "IMAGE_TOO_LARGE",
    }
    assert codes[running] is None
