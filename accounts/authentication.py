import logging
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from accounts import api_keys, clerk, services
from accounts.models import ApiKey

logger = logging.getLogger(__name__)

SESSION_COOKIE = "__session"
BEARER_CHALLENGE = 'Bearer realm="api"'
CROSS_SITE_REFUSED = "Cross-site request refused: its origin is not allowed"


class AuthenticationUnavailable(exceptions.APIException):
    """The spec's 503 for an external service that is down: the client retries, it does not sign in
    again."""

    status_code = 503
    default_detail = "Authentication service unavailable. Please try again later."


def bearer_token(request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None without a header. Any other header
    is refused."""
    header = authentication.get_authorization_header(request).decode("latin-1")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise exceptions.AuthenticationFailed("Invalid authorization header")
    return token.strip()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Our own API keys (``Authorization: Bearer hyd_live_…`` or ``hyd_test_…``), for servers.

    A key acts as its user on every endpoint; ``request.auth`` is its row (``accounts.models.
    ApiKey``), which the throttles and the test mode read. Any other bearer token is left to
    ``ClerkAuthentication``; a key that is unknown or revoked is refused, never anonymous. The
    key itself is never logged: only its prefix.
    """

    def authenticate(self, request):
        token = bearer_token(request)
        if token is None or not api_keys.is_api_key(token):
            return None
        api_key = api_keys.authenticate(token)
        if api_key is None:
            logger.info("Rejected API key %s…", api_keys.shown_prefix(token))
            raise exceptions.AuthenticationFailed("Invalid or revoked API key")
        return api_key.user, api_key

    def authenticate_header(self, request):
        return BEARER_CHALLENGE


def uses_test_key(request) -> bool:
    """Whether the caller presented a test key: its jobs run on the weight-free CPU path."""
    return isinstance(request.auth, ApiKey) and request.auth.is_test


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
        if not from_cookie and api_keys.is_api_key(token):
            # Only where keys are not accepted (managing keys: ApiKeyAuthentication comes first
            # everywhere else).
            raise exceptions.AuthenticationFailed("An API key cannot be used here: sign in")
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
        return BEARER_CHALLENGE

    @staticmethod
    def _token(request) -> tuple[str | None, bool]:
        """The token, and whether it came from the cookie."""
        token = bearer_token(request)
        if token is not None:
            return token, False
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
