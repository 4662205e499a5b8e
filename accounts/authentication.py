import logging
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from accounts import clerk, services

logger = logging.getLogger(__name__)

SESSION_COOKIE = "__session"
CROSS_SITE_REFUSED = "Cross-site request refused: its origin is not allowed"


class AuthenticationUnavailable(exceptions.APIException):
    """The spec's 503 for an external service that is down: the client retries, it does not sign in
    again."""

    status_code = 503
    default_detail = "Authentication service unavailable. Please try again later."


class ClerkAuthentication(authentication.BaseAuthentication):
    """Clerk session tokens, from ``Authorization: Bearer`` or Clerk's ``__session`` cookie.

    No token: anonymous (``optionalAuth`` endpoints go on, ``requireAuth`` ones answer 401).
    A token that is present but invalid is refused outright, never downgraded to anonymous, so a
    client with an expired session learns it instead of silently losing its history. A token that
    cannot be checked now (Clerk's keys unreachable) is a 503: the client retries, and signs in
    again
    only when told its token is bad.

    A browser sends the cookie with any site's form or fetch, so a cookie-borne token changes
    nothing (POST, PATCH, DELETE) unless the request comes from an allowed origin (see
    ``require_allowed_origin``); a Bearer header can only be set by script the CORS rules allow.
    """

    def authenticate(self, request):
        token, from_cookie = self._token(request)
        if token is None:
            return None
        if from_cookie and request.method not in permissions.SAFE_METHODS:
            require_allowed_origin(request)
        try:
            claims = clerk.verify_session_token(token)
        except clerk.InvalidToken as exc:
            logger.info("Rejected Clerk token: %s", exc)
            raise exceptions.AuthenticationFailed("Invalid or expired token") from exc
        except clerk.KeysUnavailable as exc:
            logger.info(
                "Clerk token not verifiable now: %s", exc
            )  # the failed fetch itself is a warning
            raise AuthenticationUnavailable() from exc
        return services.user_from_claims(
            claims, for_read=request.method in permissions.SAFE_METHODS
        ), claims

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

    @staticmethod
    def _token(request) -> tuple[str | None, bool]:
        """The token, and whether it came from the cookie."""
        header = authentication.get_authorization_header(request).decode("latin-1")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise exceptions.AuthenticationFailed("Invalid authorization header")
            return token.strip(), False
        return request.COOKIES.get(SESSION_COOKIE) or None, True


def require_allowed_origin(request) -> None:
    """Refuse (403) a request whose ``Origin``, or failing that ``Referer``, is not the service's
    own origin, a frontend origin (``CORS_ALLOWED_ORIGINS``) or a trusted one
    (``CSRF_TRUSTED_ORIGINS``). Browsers send one of them with every cross-site POST; a request
    with neither is refused too."""
    source = request.META.get("HTTP_ORIGIN") or request.META.get("HTTP_REFERER") or ""
    try:
        parts = urlsplit(source)
    except ValueError:  # "http://[not-an-address": no origin at all
        parts = urlsplit("")
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    own = f"{request.scheme}://{request.get_host()}".lower()
    allowed = {
        own,
        *(
            o.lower().rstrip("/")
            for o in settings.CORS_ALLOWED_ORIGINS + settings.CSRF_TRUSTED_ORIGINS
        ),
    }
    if not parts.scheme or not parts.netloc or origin not in allowed:
        logger.info(
            "Refused a cookie-authenticated %s from origin %r", request.method, source[:200]
        )
        raise exceptions.PermissionDenied(CROSS_SITE_REFUSED)
