"""X-Request-ID: accepted when sane or made, returned on every response (those the ASGI layer
answers itself too), and on every log line written while its request is handled."""

import logging
import re

import pytest
import requests

from hydrilla import request_id
from hydrilla.request_id import RequestIdFilter
from jobs.services import shared

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "sent",
    [
        "3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "Root=1-67891233-abcdef012345678912345678",
        "a",
        "x" * 128,
    ],
)
def test_a_sane_id_is_kept(sent):
    assert request_id.accepted_or_new(sent) == sent


@pytest.mark.parametrize(
    "sent", [None, "", "x" * 129, "two words", "line\nbreak", 'quote"d', "<script>", "ключ"]
)
def test_anything_else_is_replaced_by_a_new_id(sent):
    made = request_id.accepted_or_new(sent)

    assert NEW_ID.fullmatch(made)
    assert made != request_id.accepted_or_new(sent)


def test_the_id_is_bound_only_inside_and_records_carry_it():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)

    with request_id.bound("outer"):
        with request_id.bound("inner"):
            assert request_id.current() == "inner"
        assert request_id.current() == "outer"
        RequestIdFilter().filter(record)
    assert record.request_id == "outer"
    assert request_id.current() == ""
    RequestIdFilter().filter(record)
    assert record.request_id == "-"


def test_the_configured_log_format_names_the_request(settings):
    handler = settings.LOGGING["handlers"]["console"]
    assert "request_id" in handler["filters"]
    assert "[%(request_id)s]" in settings.LOGGING["formatters"][handler["formatter"]]["format"]


@pytest.fixture
def request_ids_logged(caplog):
    """The records of the test, each with the request id it was written under."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestIdFilter())
    return caplog


@pytest.mark.django_db
def test_a_request_gets_its_id_back_and_its_log_lines_carry_it(
    auth_client, user, monkeypatch, request_ids_logged
):
    monkeypatch.setattr(shared, "enqueue", lambda job: None)  # no broker here
    response = auth_client(user).post(
        "/api/3d/generate",
        {"prompt": "a lamp"},
        format="json",
        headers={"X-Request-ID": "trace-42"},
    )

    assert response.status_code == 200 and response["X-Request-ID"] == "trace-42"
    [created] = [r for r in request_ids_logged.records if r.getMessage().startswith("Created")]
    assert created.request_id == "trace-42"
    assert response.json()["jobId"] in created.getMessage()


@pytest.mark.django_db
@pytest.mark.parametrize("sent", [None, "bad id"])
def test_a_request_without_a_sane_id_gets_a_new_one(api_client, sent):
    headers = {"X-Request-ID": sent} if sent else {}
    first = api_client.get("/api/3d/queue/info", headers=headers)
    second = api_client.get("/api/3d/queue/info", headers=headers)

    assert NEW_ID.fullmatch(first["X-Request-ID"]) and NEW_ID.fullmatch(second["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
def test_errors_carry_the_id_too(api_client):
    response = api_client.get("/api/3d/status/not-a-job", headers={"X-Request-ID": "trace-404"})

    assert response.status_code == 404 and response["X-Request-ID"] == "trace-404"


def test_over_http_every_answer_carries_its_id_even_those_refused_before_django(asgi_server):
    kept = requests.get(f"{asgi_server.url}/health", headers={"X-Request-ID": "trace-1"}, timeout=5)
    made = requests.get(f"{asgi_server.url}/health", headers={"X-Request-ID": "no good"}, timeout=5)
    too_large = requests.post(
        f"{asgi_server.url}/api/3d/upload-image",
        headers={"X-Request-ID": "trace-413", "Content-Length": str(64 * 1024 * 1024)},
        timeout=5,
    )

    assert kept.headers["X-Request-ID"] == "trace-1"
    assert NEW_ID.fullmatch(made.headers["X-Request-ID"])
    assert too_large.status_code == 413 and too_large.headers["X-Request-ID"] == "trace-413"
