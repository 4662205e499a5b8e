"""Per-caller limits: submissions per minute (DRF throttling), and how many streams and waiting
previews a caller may hold open at once. A caller is its Clerk user, or its IP address when
anonymous. Counters live in Django's cache (Redis in production: shared by every web process).
Over a limit the client gets 429 ``{"error": ...}`` with ``Retry-After``.
"""

import logging
import threading
import time
from collections import Counter

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions, throttling

logger = logging.getLogger(__name__)

# Each web process refreshes the counters it holds slots in this often (one thread, one touch per
# counter, however many slots); a counter left by a process that died expires after
# SLOT_TTL_SECONDS without refreshes.
SLOT_REFRESH_SECONDS = 15
SLOT_TTL_SECONDS = 4 * SLOT_REFRESH_SECONDS


def client_address(request) -> str:
    """The caller's IP address: the socket's, or the one ``TRUSTED_PROXY_COUNT`` proxies vouch
    for."""
    return throttling.BaseThrottle().get_ident(request)


def caller(request) -> str:
    user = getattr(request, "user", None)
    return f"user:{user.pk}" if user is not None else f"ip:{client_address(request)}"


class RateFromSettings(throttling.SimpleRateThrottle):
    """A DRF throttle whose rate ("20/min") is the Django setting ``rate_setting``, read when
    used."""

    rate_setting = ""

    def get_rate(self):
        return getattr(settings, self.rate_setting)


class SubmitPerUser(RateFromSettings):
    """Job submissions per signed-in user (``SUBMIT_RATE_USER``)."""

    scope, rate_setting = "submit-user", "SUBMIT_RATE_USER"

    def get_cache_key(self, request, view):
        if request.user is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class SubmitPerAddress(RateFromSettings):
    """Job submissions per IP address, signed in or not (``SUBMIT_RATE_IP``)."""

    scope, rate_setting = "submit-ip", "SUBMIT_RATE_IP"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class GenerationSubmitAnonymous(RateFromSettings):
    """Anonymous submissions to the generation half, which no browser calls
    (``GENERATION_SUBMIT_RATE_ANON``)."""

    scope, rate_setting = "generation-submit-anon", "GENERATION_SUBMIT_RATE_ANON"

    def get_cache_key(self, request, view):
        if request.user is not None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


JOB_API_SUBMIT = [SubmitPerUser, SubmitPerAddress]
GENERATION_API_SUBMIT = [SubmitPerUser, SubmitPerAddress, GenerationSubmitAnonymous]


class TooMany(exceptions.Throttled):
    """A cap on things a caller holds at once: try again once one of them has ended."""

    def __init__(self, what: str, limit: int):
        super().__init__(
            wait=SLOT_REFRESH_SECONDS, detail=f"Too many {what} at once (at most {limit})."
        )


class Slots:
    """At most ``limit`` things of one kind held at once per caller."""

    def __init__(self, name: str, what: str, limit_setting: str):
        self.name, self.what, self.limit_setting = name, what, limit_setting

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
        return Slot(key)


class Slot:
    def __init__(self, key: str):
        self.key, self.released = key, False

    def release(self) -> None:
        if not self.released:
            self.released = True
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


open_streams = Slots("streams", "event streams", "MAX_STREAMS_PER_CALLER")
waiting_previews = Slots("previews", "waiting previews", "MAX_WAITING_PREVIEWS_PER_CALLER")
