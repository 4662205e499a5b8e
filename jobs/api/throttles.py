"""Per-caller limits: submissions per minute (DRF throttling), and how many streams and waiting
previews a caller may hold open at once. A caller is its user (by Clerk token or API key), or its
IP address when anonymous; an API key has limits of its own, in place of those of browsers.
Counters live in Django's cache (Redis in production: shared by every web process). Each answer
shows the limit that binds in the IETF ``RateLimit`` headers (hydrilla.rate_limit); over a limit
the client gets 429 ``{"error": ...}`` with ``Retry-After``.
"""

import logging
import threading
import time
from collections import Counter

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions, throttling

from accounts.models import ApiKey
from hydrilla import metrics, rate_limit

logger = logging.getLogger(__name__)

# Each web process refreshes the counters it holds slots in this often (one thread, one touch per
# counter, however many slots); a counter left by a process that died expires after
# SLOT_TTL_SECONDS without refreshes.
SLOT_REFRESH_SECONDS = 15
SLOT_TTL_SECONDS = 4 * SLOT_REFRESH_SECONDS


def api_key(request) -> ApiKey | None:
    """The API key the caller presented; None for a Clerk token or no credentials."""
    return request.auth if isinstance(request.auth, ApiKey) else None


class RateFromSettings(throttling.SimpleRateThrottle):
    """A DRF throttle whose rate ("20/min") is the Django setting ``rate_setting``, read when
    used. Where it applies to a request, it notes how much of it is left, for the ``RateLimit``
    headers of the answer."""

    rate_setting = ""
    key = None  # set by allow_request when the limit applies to the caller

    def get_rate(self):
        return getattr(settings, self.rate_setting)

    def allow_request(self, request, view):
        allowed = super().allow_request(request, view)
        if self.key is not None:
            oldest = self.history[-1] if self.history else self.now
            rate_limit.record(
                request,
                rate_limit.RateLimit(
                    limit=self.num_requests,
                    remaining=self.num_requests - len(self.history),
                    reset_seconds=oldest + self.duration - self.now,
                ),
            )
        if not allowed:
            metrics.LIMITED_REQUESTS.labels(limit=self.scope).inc()
        return allowed


class SubmitPerUser(RateFromSettings):
    """Job submissions per user signed in with a Clerk token (``SUBMIT_RATE_USER``)."""

    scope, rate_setting = "submit-user", "SUBMIT_RATE_USER"

    def get_cache_key(self, request, view):
        if request.user is None or api_key(request) is not None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class SubmitPerAddress(RateFromSettings):
    """Job submissions per IP address, of every caller without an API key (``SUBMIT_RATE_IP``):
    a key is a server's, which may well share its address with others."""

    scope, rate_setting = "submit-ip", "SUBMIT_RATE_IP"

    def get_cache_key(self, request, view):
        if api_key(request) is not None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class PerApiKey(RateFromSettings):
    """A limit of each API key's own, whoever else its user is signed in as."""

    def get_cache_key(self, request, view):
        key = api_key(request)
        if key is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": key.pk}


class SubmitPerApiKey(PerApiKey):
    """Job submissions per API key (``SUBMIT_RATE_API_KEY``)."""

    scope, rate_setting = "submit-api-key", "SUBMIT_RATE_API_KEY"


class RequestsPerApiKey(PerApiKey):
    """Requests of any kind per API key, on every endpoint (``API_KEY_RATE``)."""

    scope, rate_setting = "api-key", "API_KEY_RATE"


class GenerationSubmitAnonymous(RateFromSettings):
    """Anonymous submissions to the generation half, which no browser calls
    (``GENERATION_SUBMIT_RATE_ANON``)."""

    scope, rate_setting = "generation-submit-anon", "GENERATION_SUBMIT_RATE_ANON"

    def get_cache_key(self, request, view):
        if request.user is not None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# Every endpoint's (REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES), and those of the submit endpoints.
EVERY_REQUEST = [RequestsPerApiKey]
JOB_API_SUBMIT = [*EVERY_REQUEST, SubmitPerUser, SubmitPerAddress, SubmitPerApiKey]
GENERATION_API_SUBMIT = [*JOB_API_SUBMIT, GenerationSubmitAnonymous]


class TooMany(exceptions.Throttled):
    """A cap on things a caller holds at once: try again once one of them has ended."""

    def __init__(self, what: str, limit: int):
        metrics.LIMITED_REQUESTS.labels(limit=what.replace(" ", "-")).inc()
        super().__init__(
            wait=SLOT_REFRESH_SECONDS, detail=f"Too many {what} at once (at most {limit})."
        )


class Slots:
    """At most ``limit`` things of one kind held at once per caller."""

    def __init__(self, name: str, what: str, limit_setting: str, gauge):
        self.name, self.what, self.limit_setting = name, what, limit_setting
        self.gauge = gauge  # the slots of this kind held in this process

    def take(self, caller: str) -> "Slot":
        """A slot for the caller, or TooMany."""
        limit = getattr(settings, self.limit_setting)
        key = f"slots:{self.name}:{caller}"
        cache.add(key, 0, SLOT_TTL_SECONDS)
        try:
            held = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, SLOT_TTL_SECONDS)
            held = 1
        if held > limit:
            _decrement(key)
            raise TooMany(self.what, limit)
        cache.touch(key, SLOT_TTL_SECONDS)
        _held.hold(key)
        self.gauge.inc()
        return Slot(key, self.gauge)


class Slot:
    def __init__(self, key: str, gauge):
        self.key, self.gauge, self.released = key, gauge, False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gauge.dec()
            _held.let_go(self.key)
            _decrement(self.key)


class _HeldCounters:
    """The counters this process holds slots in, kept alive by one thread while any are held."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held: Counter = Counter()
        self._thread: threading.Thread | None = None

    def hold(self, key: str) -> None:
        with self._lock:
            self._held[key] += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._refresh, name="slot-counters", daemon=True
                )
                self._thread.start()

    def let_go(self, key: str) -> None:
        with self._lock:
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]

    def _refresh(self) -> None:
        while True:
            time.sleep(SLOT_REFRESH_SECONDS)
            with self._lock:
                keys = list(self._held)
                if not keys:
                    self._thread = None
                    return
            for key in keys:
                try:
                    cache.touch(key, SLOT_TTL_SECONDS)
                except Exception:  # the cache is down: the counter may expire, the limit loosens
                    logger.warning("Could not refresh the slot counter %s", key, exc_info=True)


_held = _HeldCounters()


def _decrement(key: str) -> None:
    try:
        cache.decr(key)
    except ValueError:  # expired: nothing left to give back
        pass


open_streams = Slots("streams", "event streams", "MAX_STREAMS_PER_CALLER", metrics.OPEN_STREAMS)
waiting_previews = Slots(
    "previews", "waiting previews", "MAX_WAITING_PREVIEWS_PER_CALLER", metrics.WAITING_PREVIEWS
)
