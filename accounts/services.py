import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone

from accounts import clerk
from accounts.models import User

logger = logging.getLogger(__name__)


# A user seen in the last minute is not read again for a read: a poll authenticates with no
# database round trip. Staff rights granted or withdrawn reach a web process within this time.
SEEN_USER_SECONDS = 60


def user_from_claims(claims: dict, *, for_read: bool = False) -> User:
    """The user a verified token speaks for, created on first sight. ``for_read``: a copy this
    process saw in the last minute will do; a write reads the row (it may have been deleted)."""
    user = caches["process"].get(_seen_key(claims["sub"])) if for_read else None
    if user is None:
        user, created = User.objects.get_or_create(id=claims["sub"])
        if created and not settings.CLERK_SECRET_KEY:
            _apply_profile(user, clerk.profile_from_claims(claims))
        _remember(user)
    return user


def _seen_key(user_id: str) -> str:
    return f"user:{user_id}"


def _remember(user: User) -> None:
    caches["process"].set(_seen_key(user.pk), user, SEEN_USER_SECONDS)


def sync_profile(user: User, *, force: bool = False) -> User:
    """Refresh the cached profile from Clerk when a secret key is set and the copy is stale.

    A Clerk outage keeps the cached copy: a profile a little out of date beats a failed request.
    """
    user, _ = User.objects.get_or_create(pk=user.pk)  # the row, not a copy this process kept
    if not settings.CLERK_SECRET_KEY:
        return user
    max_age = timedelta(seconds=settings.CLERK_PROFILE_MAX_AGE_SECONDS)
    if not force and user.profile_synced_at and timezone.now() - user.profile_synced_at < max_age:
        return user
    try:
        profile = clerk.fetch_profile(user.id)
    except clerk.ClerkUnavailable as exc:
        logger.warning("Clerk profile of %s not refreshed: %s", user.id, exc)
        return user
    _apply_profile(user, profile)
    return user


def _apply_profile(user: User, profile: clerk.Profile) -> None:
    user.email = profile.email
    user.first_name = profile.first_name
    user.last_name = profile.last_name
    user.image_url = profile.image_url
    user.clerk_created_at = profile.created_at or user.clerk_created_at
    user.profile_synced_at = timezone.now()
    user.save()
    _remember(user)
