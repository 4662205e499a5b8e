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
