"""The IETF ``RateLimit`` headers (``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset``) on every answer of an endpoint with per-caller limits, for the limit that
binds: the one with the fewest requests left (of two with none left, the one that frees up last).

Each throttle that applies to a request records its state on it (``record``); the middleware
writes the binding one's into the response, a 429 included.
"""

import math
from dataclasses import dataclass

from asgiref.sync import iscoroutinefunction
from django.utils.decorators import sync_and_async_middleware

ATTRIBUTE = "rate_limit"


@dataclass(frozen=True)
class RateLimit:
    limit: int  # requests allowed in the window
    remaining: int  # of them, left now
    reset_seconds: float  # until the oldest request counted leaves the window

    def binds_over(self, other: "RateLimit") -> bool:
        return (self.remaining, -self.reset_seconds) < (other.remaining, -other.reset_seconds)

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(max(math.ceil(self.reset_seconds), 0)),
        }


def record(request, limit: RateLimit) -> None:
    """Note one limit that applies to ``request`` (Django's request, or DRF's around it); the
    answer shows the binding one of those noted."""
    request = getattr(request, "_request", request)  # DRF's Request wraps Django's
    noted = getattr(request, ATTRIBUTE, None)
    if noted is None or limit.binds_over(noted):
        setattr(request, ATTRIBUTE, limit)


def _with_headers(request, response):
    limit = getattr(request, ATTRIBUTE, None)
    if limit is not None:
        for name, value in limit.headers().items():
            response[name] = value
    return response


@sync_and_async_middleware
def rate_limit_headers(get_response):
    """Write the binding limit of a request into its response."""
    if iscoroutinefunction(get_response):

        async def middleware(request):
            return _with_headers(request, await get_response(request))

    else:

        def middleware(request):
            return _with_headers(request, get_response(request))

    return middleware
