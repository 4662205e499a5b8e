"""Responses checked against the published OpenAPI schema (/api/schema/): every documented field, of
its type, and nothing else."""

import functools
import json

from jsonschema import Draft202012Validator
from rest_framework.test import APIClient


@functools.cache
def openapi_document() -> dict:
    response = APIClient().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _json_schema(node, *, strict: bool):
    """OpenAPI 3.0 schema objects as JSON Schema: ``nullable`` becomes a null alternative, and
    (strict) objects accept no property that the schema does not describe."""
    if isinstance(node, list):
        return [_json_schema(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value, strict=strict) for key, value in node.items()}
    if strict and "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    if converted.pop("nullable", False):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


def response_schema(path: str, method: str, status: int, media_type="application/json") -> dict:
    document = openapi_document()
    operation = document["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, undocumented"
    content = responses[str(status)]["content"]
    assert media_type in content, f"{method} {path} {status}: {media_type} is undocumented"
    return content[media_type]["schema"]


def assert_matches_schema(response, path: str, method: str = "GET", body=None):
    """The response (or ``body``, for one event of a stream) is what the schema says ``path``
    answers with this status code: every documented field, of its type, and nothing else."""
    media_type = "application/json"
    schema = response_schema(path, method, response.status_code, media_type)
    document = openapi_document()
    validator = Draft202012Validator(
        {
            **_json_schema(schema, strict=True),
            "components": _json_schema(document["components"], strict=True),
        },
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    if body is None:
        assert response["Content-Type"].split(";")[0] == media_type, response["Content-Type"]
    instance = response.json() if body is None else body
    problems = sorted(str(error) for error in validator.iter_errors(instance))
    assert not problems, (
        f"{method} {path} {response.status_code} does not match the schema:\n" + "\n".join(problems)
    )
    return instance
