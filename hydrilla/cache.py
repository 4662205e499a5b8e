"""One Redis connection pool per web process for Django's Redis cache, and the process's own
memory cache that keeps objects unpickled.

Django makes a cache client per thread, and per request context under ASGI, and each client would
open a pool of its own: a burst of requests would open a Redis connection each (Redis refuses more
than 10,000). The pool is thread-safe; one per process and URL serves them all, and a burst
waits a moment for one of its connections rather than failing.
"""

import os
import threading

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from redis import BlockingConnectionPool


class SharedConnectionPool(BlockingConnectionPool):
    _pools: dict = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url, **kwargs):
        key = (os.getpid(), url, tuple(sorted(kwargs.items())))
        with cls._lock:
            if key not in cls._pools:
                cls._pools[key] = super().from_url(
                    url, **{"max_connections": 64, "timeout": 10, **kwargs}
                )
            return cls._pools[key]


class ObjectMemoryCache(LocMemCache):
    """Django's memory cache without the pickling: values are kept as they are and shared by the
    process's threads. LocMemCache pickles every value so that no caller can change what another
    reads; the values kept here (verified token claims, a user as read) are only read, on every
    authenticated request, where unpickling them was most of the token path's cost."""

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            if self._has_expired(key):
                self._set(key, value, timeout)
                return True
            return False

    def get(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            if self._has_expired(key):
                self._delete(key)
                return default
            self._cache.move_to_end(key, last=False)
            return self._cache[key]

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            self._set(key, value, timeout)
