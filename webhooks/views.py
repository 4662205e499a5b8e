"""The webhooks' endpoints, under ``/api/3d/webhooks``: the user's signing secret, the account's
endpoints, and each endpoint's deliveries. Signed-in callers only; each sees their own."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from hydrilla import errors
from idempotency.http import idempotent
from jobs.api.openapi import IDEMPOTENCY_KEY, UNAUTHENTICATED, error
from jobs.api.outputs import Done
from webhooks import selectors, services
from webhooks.inputs import WebhookInput
from webhooks.outputs import WebhookDeliveries, WebhookEndpoint, WebhookEndpoints, WebhookSecret

TAG = "Webhooks (/api/3d/webhooks)"
ENDPOINT_ID = OpenApiParameter(
    "endpoint_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The endpoint's id."
)
DELIVERY_ID = OpenApiParameter(
    "delivery_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The delivery's id."
)
NO_ENDPOINT = error("You have no webhook endpoint with this id.")


@extend_schema(
    methods=["GET"],
    summary="Your signing secret",
    description="Verifies the webhooks of your jobs' own receivers (a submit's `webhookUrl`); made "
    "on first use.",
    responses={200: WebhookSecret, 401: UNAUTHENTICATED},
    tags=[TAG],
)
@extend_schema(
    methods=["POST"],
    summary="Rotate your signing secret",
    description="A new secret; for WEBHOOK_SECRET_ROTATION_SECONDS (a day) webhooks carry both "
    "signatures, the new one's and the previous one's.",
    request=None,
    responses={200: WebhookSecret, 401: UNAUTHENTICATED},
    tags=[TAG],
)
@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated])
def secret(request):
    if request.method == "POST":
        return Response(WebhookSecret.render(services.rotate_secret(request.user)))
    return Response(WebhookSecret.render(services.signing_secret(request.user)))


@extend_schema(
    methods=["GET"],
    summary="Your webhook endpoints",
    responses={200: WebhookEndpoints, 401: UNAUTHENTICATED},
    tags=[TAG],
)
@extend_schema(
    methods=["POST"],
    summary="Add a webhook endpoint",
    description="It receives `events` of every job of yours, signed with a secret of its own. "
    "`https` on a public address only; checked again at every delivery.",
    parameters=[IDEMPOTENCY_KEY],
    request={"application/json": WebhookInput},
    responses={
        201: WebhookEndpoint,
        400: error("Invalid input, or a URL that may not receive webhooks."),
        401: UNAUTHENTICATED,
    },
    tags=[TAG],
)
@api_view(["GET", "POST"])
@permission_classes([IsAuthenticated])
@idempotent(unkept=("secret",))
def endpoints(request):
    if request.method == "GET":
        return Response(WebhookEndpoints.render({"webhooks": selectors.endpoints(request.user)}))
    form = WebhookInput(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        endpoint = services.create_endpoint(
            request.user, form.validated_data["url"], form.validated_data.get("events")
        )
    except services.WebhookRefused as exc:
        raise errors.bad_request(exc.message) from None
    return Response(WebhookEndpoint.render(endpoint), status=201)


@extend_schema(
    summary="Remove a webhook endpoint",
    description="Nothing more is sent to it, not even what waited for a retry.",
    parameters=[ENDPOINT_ID],
    responses={200: Done, 401: UNAUTHENTICATED, 404: NO_ENDPOINT},
    tags=[TAG],
)
@api_view(["DELETE"])
@permission_classes([IsAuthenticated])
def endpoint(request, endpoint_id):
    services.delete_endpoint(_endpoint_for(request, endpoint_id))
    return Response(Done.render({"success": True, "message": "Webhook endpoint deleted"}))


@extend_schema(
    summary="An endpoint's deliveries",
    description="Every attempt at delivering an event to it, newest first (the latest 100).",
    parameters=[ENDPOINT_ID],
    responses={200: WebhookDeliveries, 401: UNAUTHENTICATED, 404: NO_ENDPOINT},
    tags=[TAG],
)
@api_view(["GET"])
@permission_classes([IsAuthenticated])
def deliveries(request, endpoint_id):
    found = selectors.deliveries(_endpoint_for(request, endpoint_id))
    return Response(WebhookDeliveries.render({"deliveries": found}))


@extend_schema(
    summary="Send a delivery's event again",
    description="Now, under the same `webhook-id`: one more attempt, then the retries the "
    "schedule has left.",
    parameters=[ENDPOINT_ID, DELIVERY_ID],
    request=None,
    responses={
        200: Done,
        401: UNAUTHENTICATED,
        404: error("No such endpoint of yours, or no such delivery of it."),
        409: error("The endpoint is disabled."),
    },
    tags=[TAG],
)
@api_view(["POST"])
@permission_classes([IsAuthenticated])
def resend(request, endpoint_id, delivery_id):
    delivery = selectors.delivery_of(_endpoint_for(request, endpoint_id), delivery_id)
    if delivery is None:
        raise errors.not_found("Delivery not found")
    try:
        services.resend(delivery)
    except services.EndpointDisabled:
        raise errors.conflict(
            f"The endpoint is disabled: {delivery.message.endpoint.disabled_reason}"
        ) from None
    return Response(Done.render({"success": True, "message": "Queued for delivery"}))


def _endpoint_for(request, endpoint_id):
    found = selectors.endpoint_of(request.user, endpoint_id)
    if found is None:
        raise errors.not_found("Webhook endpoint not found")
    return found
