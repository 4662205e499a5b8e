"""API keys: made, found from what a caller presents, revoked.

A key is ``hyd_live_`` or ``hyd_test_`` and 43 characters of ``secrets.token_urlsafe(32)``. It is
shown once, when made; the database keeps its SHA-256 and its prefix. A presented key is looked up
by its prefix (not secret: lists show it) and accepted only when the SHA-256 of the whole key
matches the stored one under ``hmac.compare_digest``, so the time an answer takes tells nothing
about the secret part.

Lookups are never cached: each request with a key reads its row (one indexed query, joined to the
user), so a key revoked in one process is refused by every process from the next request on.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, ApiKeyMode, User

KEY_PREFIXES = {ApiKeyMode.LIVE: "hyd_live_", ApiKeyMode.TEST: "hyd_test_"}
# Characters of the random part shown after the mode's prefix (48 bits: rows rarely share one).
SHOWN_CHARACTERS = 8
SECRET_BYTES = 32
# ``last_used_at`` is written at most this often per key: a busy key costs no write per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def is_api_key(token: str) -> bool:
    """Whether a bearer token claims to be one of our keys (else it may be a Clerk token)."""
    return token.startswith(tuple(KEY_PREFIXES.values()))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def shown_prefix(key: str) -> str:
    """What of a key may be shown and logged: its mode's prefix and the first characters after."""
    mode_prefix = next(p for p in KEY_PREFIXES.values() if key.startswith(p))
    return key[: len(mode_prefix) + SHOWN_CHARACTERS]


def create_key(user: User, *, name: str, mode: str = ApiKeyMode.LIVE) -> tuple[ApiKey, str]:
    """A new key for ``user``: the row, and the key itself (never stored, shown once)."""
    key = KEY_PREFIXES[mode] + secrets.token_urlsafe(SECRET_BYTES)
    api_key = ApiKey.objects.create(
        user=user, name=name, mode=mode, prefix=shown_prefix(key), key_hash=_digest(key)
    )
    return api_key, key


def authenticate(key: str) -> ApiKey | None:
    """The live (unrevoked) key row that ``key`` is, with its user; None for anything else."""
    if not is_api_key(key):
        return None
    digest = _digest(key)
    candidates = ApiKey.objects.select_related("user").filter(
        prefix=shown_prefix(key), revoked_at__isnull=True
    )
    found = None
    for candidate in candidates:
        # Every candidate compared, whichever matches: the count of comparisons is the prefix's.
        if hmac.compare_digest(candidate.key_hash, digest):
            found = candidate
    if found is not None:
        _mark_used(found)
    return found


def _mark_used(api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_PRECISION:
        return
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_PRECISION)
    ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


def keys_of(user: User):
    """The user's keys that still work, newest first."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at", "-pk")


def key_of(user: User, key_id) -> ApiKey | None:
    """The user's working key with this id; None when there is none (staff revoke others' keys in
    admin, not through the API)."""
    try:
        key_id = int(key_id)
    except (TypeError, ValueError):
        return None
    return keys_of(user).filter(pk=key_id).first()


def revoke(api_key: ApiKey) -> None:
    """Refuse the key from now on, in every process (no process caches keys)."""
    revoke_all(ApiKey.objects.filter(pk=api_key.pk))
    api_key.revoked_at = timezone.now()


def revoke_all(keys) -> int:
    """Refuse every key of the queryset ``keys`` that still works; how many there were."""
    return keys.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
