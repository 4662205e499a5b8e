"""The JSON shapes of a user (the job API's ``/me`` and ``/sync-user``) and of their API keys
(``/api-keys``)."""

from rest_framework import serializers

from accounts.models import ApiKeyMode
from hydrilla.rendering import Output


class IsoDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with a Z and milliseconds, as JavaScript's Date.toISOString writes it."""

    def to_representation(self, moment):
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EmptyAsNull:
    """A profile field Clerk left empty is ``null``, as the spec's user types have it."""

    def get_attribute(self, instance):
        return super().get_attribute(instance) or None


class OptionalText(EmptyAsNull, serializers.CharField):
    pass


class OptionalEmail(EmptyAsNull, serializers.EmailField):
    pass


class OptionalUrl(EmptyAsNull, serializers.URLField):
    pass


class SignUpTime(IsoDateTimeField):
    """When the user signed up: Clerk's date, or ours for a user Clerk has not described."""

    def get_attribute(self, user):
        return user.clerk_created_at or user.created_at


class SyncedUser(serializers.Serializer):
    id = serializers.CharField(source="pk")
    email = OptionalEmail(allow_null=True)
    firstName = OptionalText(source="first_name", allow_null=True)
    lastName = OptionalText(source="last_name", allow_null=True)


class UserProfile(SyncedUser):
    imageUrl = OptionalUrl(source="image_url", allow_null=True)
    createdAt = SignUpTime(allow_null=True)


class UserStats(Output):
    totalJobs = serializers.IntegerField(min_value=0)
    completedJobs = serializers.IntegerField(min_value=0)


class Me(Output):
    user = UserProfile()
    stats = UserStats()


class UserSynced(Output):
    success = serializers.BooleanField()
    user = SyncedUser()


# --- API keys ----------------------------------------------------------------------------------


class ApiKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the key is for, for people.")
    mode = serializers.ChoiceField(
        choices=ApiKeyMode.choices,
        default=ApiKeyMode.LIVE,
        help_text="`test`: jobs run through their whole lifecycle on the weight-free CPU path, "
        "never a GPU, for an integrator's CI.",
    )


class ApiKeyListed(Output):
    id = serializers.IntegerField()
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=ApiKeyMode.choices)
    prefix = serializers.CharField(help_text="The key's first characters, to tell keys apart.")
    createdAt = IsoDateTimeField(source="created_at")
    lastUsedAt = IsoDateTimeField(source="last_used_at", allow_null=True)


class ApiKeyCreated(Output):
    id = serializers.IntegerField()
    name = serializers.CharField()
    mode = serializers.ChoiceField(choices=ApiKeyMode.choices)
    prefix = serializers.CharField()
    key = serializers.CharField(
        allow_null=True,
        help_text="The key itself, shown only in this answer (only its hash is kept). Null in an "
        "answer given again to a retry with the same Idempotency-Key.",
    )
    createdAt = IsoDateTimeField(source="created_at")


class ApiKeyList(Output):
    apiKeys = ApiKeyListed(many=True, source="api_keys")
