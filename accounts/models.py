from django.db import models


class User(models.Model):
    """A Clerk user, keyed by Clerk's own id (``user_…``).

    Not Django's auth user: API callers never log in here, they present Clerk tokens. Staff who use
    Django admin are ordinary ``auth.User`` rows; ``is_staff`` here grants API-side staff rights
    (seeing, renaming, deleting and cancelling anyone's jobs).
    """

    id = models.CharField(primary_key=True, max_length=64)
    email = models.EmailField(blank=True, db_index=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    image_url = models.URLField(max_length=2048, blank=True)
    clerk_created_at = models.DateTimeField(null=True, blank=True)
    is_staff = models.BooleanField(default=False)
    profile_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.email or self.id

    # DRF and Django check these on ``request.user``.
    is_authenticated = True
    is_anonymous = False


class ApiKeyMode(models.TextChoices):
    """Live keys run jobs for real; test keys run them through the whole lifecycle on the
    weight-free CPU path, never a GPU (an integrator's CI, for free)."""

    LIVE = "live"
    TEST = "test"


class ApiKey(models.Model):
    """A key a server presents (``Authorization: Bearer hyd_live_…``) to act as its user.

    Only the SHA-256 of the key is stored: keys are 256 random bits, so a fast hash is as safe as a
    slow one and costs nothing per request. ``prefix`` (the mode's prefix and the key's first
    characters) is shown in lists so that a user can tell keys apart, and finds the row a key
    claims before its hash is compared in constant time (``accounts.api_keys``).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    mode = models.CharField(max_length=8, choices=ApiKeyMode.choices, default=ApiKeyMode.LIVE)
    prefix = models.CharField(max_length=32, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # A revoked key is kept (who had it, when it went) but refused from that moment on.
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="api_key_owner_idx")]

    def __str__(self):
        return f"{self.prefix}… ({self.name})"

    @property
    def is_test(self) -> bool:
        return self.mode == ApiKeyMode.TEST
