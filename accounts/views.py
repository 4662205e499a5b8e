"""The caller's account, in the job API (mounted under ``/api/3d/``): ``/me`` (the profile and
job statistics), ``/sync-user``, and the user's API keys (``/api-keys``)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts import api_keys, services
from accounts.authentication import ClerkAuthentication
from accounts.serializers import (
    ApiKeyCreated,
    ApiKeyInput,
    ApiKeyList,
    Me,
    UserSynced,
)
from hydrilla import errors
from idempotency.http import idempotent
from jobs import selectors
from jobs.api.openapi import IDEMPOTENCY_KEY, JOB_API_TAG, UNAUTHENTICATED, error
from jobs.api.outputs import Done


@extend_schema(
    summary="The caller's profile and statistics",
    responses={200: Me, 401: UNAUTHENTICATED},
    tags=[JOB_API_TAG],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def me(request):
    user = services.sync_profile(request.user)
    return Response(Me.render({"user": user, "stats": selectors.user_stats(user)}))


@extend_schema(
    summary="Sync the caller's profile from Clerk",
    request=None,
    responses={200: UserSynced, 401: UNAUTHENTICATED},
    tags=[JOB_API_TAG],
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
def sync_user(request):
    user = services.sync_profile(request.user, force=True)
    return Response(UserSynced.render({"success": True, "user": user}))


# API keys are managed by a person signed in with Clerk, never with a key: a leaked key cannot
# make keys that outlive its revocation.
SIGNED_IN_PERSON = error("No valid Clerk token (an API key cannot manage API keys).")
KEY_ID = OpenApiParameter(
    "key_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The key's id."
)


@extend_schema(
    methods=["GET"],
    summary="The caller's API keys",
    description="Keys that still work, newest first; never the keys themselves.",
    responses={200: ApiKeyList, 401: SIGNED_IN_PERSON},
    tags=[JOB_API_TAG],
)
@extend_schema(
    methods=["POST"],
    summary="Make an API key",
    description="For servers: sent as `Authorization: Bearer <key>`, a key acts as its user on "
    "every endpoint, with limits of its own. The key is in this answer only. Live keys begin "
    "`hyd_live_`, test keys `hyd_test_`.",
    parameters=[IDEMPOTENCY_KEY],
    request={"application/json": ApiKeyInput},
    responses={201: ApiKeyCreated, 400: error("Invalid name or mode."), 401: SIGNED_IN_PERSON},
    tags=[JOB_API_TAG],
)
@api_view(["GET", "POST"])
@authentication_classes([ClerkAuthentication])
@permission_classes([IsAuthenticated])
@idempotent(unkept=("key",))
def api_key_list(request):
    if request.method == "GET":
        return Response(ApiKeyList.render({"api_keys": api_keys.keys_of(request.user)}))
    form = ApiKeyInput(data=request.data)
    form.is_valid(raise_exception=True)
    api_key, key = api_keys.create_key(request.user, **form.validated_data)
    api_key.key = key  # for this answer only: the row keeps its hash
    return Response(ApiKeyCreated.render(api_key), status=201)


@extend_schema(
    summary="Revoke an API key",
    description="Refused from the next request on, by every server process.",
    parameters=[KEY_ID],
    responses={
        200: Done,
        401: SIGNED_IN_PERSON,
        404: error("No working key of yours with this id."),
    },
    tags=[JOB_API_TAG],
)
@api_view(["DELETE"])
@authentication_classes([ClerkAuthentication])
@permission_classes([IsAuthenticated])
def api_key_detail(request, key_id):
    api_key = api_keys.key_of(request.user, key_id)
    if api_key is None:
        raise errors.not_found("API key not found")
    api_keys.revoke(api_key)
    return Response(Done.render({"success": True, "message": "API key revoked"}))
