import logging

from rest_framework import authentication, exceptions
from rest_framework.permissions import SAFE_METHODS

from accounts import clerk, services

logger = logging.getLogger(__name__)

SESSION_COOKIE = "__session"


class AuthenticationUnavailable(exceptions.APIException):
    """The spec's 503 for an external service that is down: the client retries, it does not sign in again."""

    status_code = 503
    default_detail = "Authentication service unavailable. Please try again later."


class ClerkAuthentication(authentication.BaseAuthentication):
    """Clerk session tokens, from ``Authorization: Bearer`` or Clerk's ``__session`` cookie.

    No token: anonymous (``optionalAuth`` endpoints go on, ``requireAuth`` ones answer 401).
    A token that is present but invalid is refused outright, never downgraded to anonymous, so a
    client with an expired session learns it instead of silently losing its history. A token that
    cannot be checked now (Clerk's keys unreachable) is a 503: the client retries, and signs in again
    only when told its token is bad.
    """

    def authenticate(self, request):
        token = self._token(request)
        if token is None:
            return None
        try:
            claims = clerk.verify_session_token(token)
        except clerk.InvalidToken as exc:
            logger.info("Rejected Clerk token: %s", exc)
            raise exceptions.AuthenticationFailed("Invalid or expired token") from exc
        except clerk.KeysUnavailable as exc:
            logger.info("Clerk token not verifiable now: %s", exc)  # the failed fetch itself is a warning
            raise AuthenticationUnavailable() from exc
        return services.user_from_claims(claims, for_read=request.method in SAFE_METHODS), claims

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

    @staticmethod
    def _token(request) -> str | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise exceptions.AuthenticationFailed("Invalid authorization header")
            return token.strip()
        return request.COOKIES.get(SESSION_COOKIE) or None
