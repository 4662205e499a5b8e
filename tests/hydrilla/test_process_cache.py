"""The process's own memory cache (hydrilla.cache.ObjectMemoryCache): objects kept as they are."""

import time

from django.core.cache import caches

from hydrilla.cache import ObjectMemoryCache


def test_the_process_cache_keeps_objects_unpickled_until_they_expire():
    cache = caches["process"]
    assert isinstance(cache, ObjectMemoryCache)
    claims = {"sub": "user_kept", "exp": 1}
    cache.set("claims", claims, 0.2)
    assert cache.get("claims") is claims  # the same object: no pickling on the way
    assert not cache.add("claims", {"sub": "another"})
    time.sleep(0.3)
    assert cache.get("claims", "expired") == "expired"
    assert cache.add("claims", claims)
    assert cache.get("claims") is claims
