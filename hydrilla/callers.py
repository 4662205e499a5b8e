"""Who is calling: the key of a caller for the per-caller limits and the idempotency keys. A caller
is its user (whether by Clerk token or API key), or its IP address when anonymous."""

from rest_framework import throttling


def client_address(request) -> str:
    """The caller's IP address: the socket's, or the one ``TRUSTED_PROXY_COUNT`` proxies vouch
    for."""
    return throttling.BaseThrottle().get_ident(request)


def caller(request) -> str:
    user = getattr(request, "user", None)
    return f"user:{user.pk}" if user is not None else f"ip:{client_address(request)}"
