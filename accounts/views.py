"""The caller's account, in the job API (mounted under ``/api/3d/``): ``/me`` (the profile and
job statistics) and ``/sync-user``."""

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts import services
from accounts.serializers import Me, UserSynced
from jobs import selectors
from jobs.api.openapi import JOB_API_TAG, UNAUTHENTICATED


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
