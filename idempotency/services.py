"""Idempotent requests: the first request with a key is handled, its answer kept; a retry gets
that answer again instead of doing the work twice.

``begin`` writes the key's row, in a transaction of its own, before the request is handled: the
unique constraint on (caller, key) lets one of any number of racing duplicates through, and the
others wait for its answer (a replay) or, when it takes longer than IDEMPOTENCY_WAIT_SECONDS, get
StillInFlight. The request's handler then stores its answer (``finish``) or gives the key back
(``release``) when it created nothing, so that a retry tries again. A key is kept for
IDEMPOTENCY_KEY_TTL_SECONDS; a row still unanswered after IDEMPOTENCY_ABANDONED_AFTER_SECONDS (its
process died mid-request) is taken over by the next retry.
"""

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from idempotency.models import IdempotentRequest

logger = logging.getLogger(__name__)

# Visible ASCII, as in a UUID or any token a client makes; no spaces, no control characters.
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# How often a duplicate looks again for the first request's answer: soon, then less often.
FIRST_LOOK_SECONDS, LONGEST_LOOK_SECONDS = 0.02, 0.25
EXPIRY_BATCH = 1000


class KeyReused(Exception):
    """The key was sent before with another request (method, path or body)."""


class StillInFlight(Exception):
    """The first request with this key is still being handled."""


@dataclass(frozen=True)
class Answer:
    """The first request's answer, to be given again."""

    status: int
    body: object


def is_valid_key(key: str) -> bool:
    return VALID_KEY.fullmatch(key) is not None


def fingerprint(method: str, path: str, data, files=()) -> str:
    """What a request asks, in a form a retry reproduces: the method, the path, the parsed body
    (key order and whitespace aside), and the SHA-256 of each uploaded file by field name (a
    retried multipart body has another boundary)."""
    canonical = json.dumps(
        [method.upper(), path, data, sorted(files)],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def begin(caller: str, key: str, request_fingerprint: str) -> IdempotentRequest | Answer:
    """The row of a request to handle now (then ``finish`` or ``release`` it), or the answer a
    request with this key already got. Raises KeyReused for a key sent with another request,
    StillInFlight when the first is still being handled after IDEMPOTENCY_WAIT_SECONDS."""
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
    pause = FIRST_LOOK_SECONDS
    while True:
        claimed = _claim(caller, key, request_fingerprint)
        if claimed is not None:
            return claimed
        if time.monotonic() + pause > deadline:
            raise StillInFlight(key)
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_LOOK_SECONDS)


def _claim(caller: str, key: str, request_fingerprint: str) -> IdempotentRequest | Answer | None:
    """One try: the new row, the kept answer, or None while another request holds the key."""
    now = timezone.now()
    expired = now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    # Committed before the request is handled: a duplicate that arrives meanwhile sees the row.
    with transaction.atomic():
        IdempotentRequest.objects.filter(caller=caller, key=key, created_at__lt=expired).delete()
        try:
            with transaction.atomic():
                return IdempotentRequest.objects.create(
                    caller=caller, key=key, fingerprint=request_fingerprint, started_at=now
                )
        except IntegrityError:
            pass
        existing = IdempotentRequest.objects.filter(caller=caller, key=key).first()
    if existing is None:  # released between our insert and our read: the next try may win
        return None
    if existing.fingerprint != request_fingerprint:
        raise KeyReused(key)
    if existing.response_status is not None:
        return Answer(existing.response_status, json.loads(existing.response_body))
    abandoned = now - timedelta(seconds=settings.IDEMPOTENCY_ABANDONED_AFTER_SECONDS)
    if existing.started_at < abandoned and _take_over(existing, now):
        logger.warning(
            "Took over idempotency key %r of %s: its first request never ended", key, caller
        )
        return existing
    return None


def _take_over(existing: IdempotentRequest, now) -> bool:
    taken = IdempotentRequest.objects.filter(
        pk=existing.pk, response_status__isnull=True, started_at=existing.started_at
    ).update(started_at=now)
    existing.started_at = now
    return bool(taken)


def _held(claimed: IdempotentRequest):
    """The row as long as this request still holds it (not taken over since)."""
    return IdempotentRequest.objects.filter(
        pk=claimed.pk, response_status__isnull=True, started_at=claimed.started_at
    )


def finish(claimed: IdempotentRequest, status: int, body) -> None:
    """Keep the answer of the request that holds ``claimed``: retries get it again."""
    _held(claimed).update(
        response_status=status, response_body=json.dumps(body, cls=DjangoJSONEncoder)
    )


def release(claimed: IdempotentRequest) -> None:
    """Give the key back: the request created nothing, and a retry is to be handled anew."""
    _held(claimed).delete()


def delete_expired() -> int:
    """Forget the keys older than IDEMPOTENCY_KEY_TTL_SECONDS, a batch at a time; how many went."""
    expired = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted = 0
    while batch := list(
        IdempotentRequest.objects.filter(created_at__lt=expired).values_list("pk", flat=True)[
            :EXPIRY_BATCH
        ]
    ):
        deleted += IdempotentRequest.objects.filter(pk__in=batch).delete()[0]
    return deleted
