from django.db import models


class IdempotentRequest(models.Model):
    """A request sent with an ``Idempotency-Key``: who sent it, what it asked, and once it has
    been answered, its answer, which a retry with the same key gets again.

    The row is written before the request is handled, in a transaction of its own, and the
    unique constraint on (caller, key) lets exactly one of any number of racing duplicates write
    it: the others wait for its answer instead of creating anything.
    """

    caller = models.CharField(max_length=128)
    key = models.CharField(max_length=255)
    # SHA-256 of the method, path and body: a retry must ask the very same thing.
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When the handling now in progress began (a takeover after a crash starts it again).
    started_at = models.DateTimeField()
    # Empty while the first request is being handled.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # JSON text, not a JSON column: PostgreSQL's jsonb would reorder the keys of the replay.
    response_body = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["caller", "key"], name="idempotent_request_once")
        ]

    def __str__(self):
        return f"{self.caller} {self.key}"
