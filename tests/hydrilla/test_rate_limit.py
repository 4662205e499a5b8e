"""The binding limit of a request: fewest requests left, then the one that frees up last."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.request import Request

from hydrilla.rate_limit import RateLimit, rate_limit_headers, record


def answered(*limits: RateLimit, wrapped=False) -> HttpResponse:
    request = RequestFactory().post("/api/3d/generate")
    for limit in limits:
        record(Request(request) if wrapped else request, limit)
    return rate_limit_headers(lambda _: HttpResponse())(request)


def headers(response) -> tuple:
    return tuple(
        response.get(name) for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
    )


@pytest.mark.parametrize("wrapped", [False, True])
def test_the_limit_with_the_fewest_requests_left_binds(wrapped):
    response = answered(RateLimit(30, 29, 60), RateLimit(20, 3, 12.2), wrapped=wrapped)

    assert headers(response) == ("20", "3", "13")


def test_of_two_exhausted_limits_the_one_that_frees_up_last_binds():
    assert headers(answered(RateLimit(20, 0, 5), RateLimit(5, 0, 40))) == ("5", "0", "40")
    assert headers(answered(RateLimit(5, 0, 40), RateLimit(20, 0, 5))) == ("5", "0", "40")


def test_an_answer_without_limits_has_no_headers():
    assert headers(answered()) == (None, None, None)


def test_nothing_negative_is_shown():
    assert headers(answered(RateLimit(20, -1, -0.5))) == ("20", "0", "0")
