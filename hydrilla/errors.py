"""Every error leaves the API as ``{"error": "..."}`` with the status code the spec gives."""

import logging

from django import db
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from hydrilla.outages import Outage

logger = logging.getLogger(__name__)

SERVICE_UNAVAILABLE = "External service unavailable. Please try again later."


class ApiError(exceptions.APIException):
    """An error whose message is meant for the client as it is."""

    def __init__(self, message: str, status_code: int = status.HTTP_400_BAD_REQUEST):
        super().__init__(message)
        self.status_code = status_code


def bad_request(message: str) -> ApiError:
    return ApiError(message, status.HTTP_400_BAD_REQUEST)


def not_found(message: str) -> ApiError:
    return ApiError(message, status.HTTP_404_NOT_FOUND)


def forbidden(message: str) -> ApiError:
    return ApiError(message, status.HTTP_403_FORBIDDEN)


def conflict(message: str) -> ApiError:
    return ApiError(message, status.HTTP_409_CONFLICT)


def service_unavailable(message: str = SERVICE_UNAVAILABLE) -> ApiError:
    return ApiError(message, status.HTTP_503_SERVICE_UNAVAILABLE)


def _first_message(detail) -> str:
    """DRF nests validation messages in dicts and lists; the client gets the first, readable."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        message = _first_message(value)
        return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else "Invalid input"
    return str(detail)


def json_exception_handler(exc, context):
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = "Authentication required"
    elif isinstance(exc, (Outage, db.OperationalError, db.InterfaceError)):
        # Whichever view reached the service or the database: an outage is the spec's 503, never
        # a 500 (a database that cannot be reached raises these two; other database errors are
        # bugs).
        logger.warning("%s unavailable in %s: %s", type(exc).__name__, context.get("view"), exc)
        exc = service_unavailable()
    response = exception_handler(exc, context)
    if response is None:
        # Not an API exception: a bug. Log it whole, tell the client only that it happened.
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        return json_response("Internal server error", 500)
    response.data = {"error": _first_message(exc.detail)}
    return response


def json_not_found(request, exception=None):
    return json_response("Not found", 404)


def json_server_error(request):
    return json_response("Internal server error", 500)


def json_bad_request(request, exception=None):
    return json_response("Bad request", 400)


def json_permission_denied(request, exception=None):
    return json_response("Forbidden", 403)


def json_response(message: str, status_code: int) -> JsonResponse:
    """An error from a plain Django view, shaped like the API's."""
    return JsonResponse({"error": message}, status=status_code)
