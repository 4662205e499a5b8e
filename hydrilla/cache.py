"""One Redis connection pool per web process for Django's Redis cache.

Django makes a cache client per thread, and per request context under ASGI, and each client would
open a pool of its own: a burst of requests would open a Redis connection each (Redis refuses more
than 10,000). The pool is thread-safe; one per process and URL serves them all, and a burst
waits a moment for one of its connections rather than failing.
"""

import os
import threading

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
