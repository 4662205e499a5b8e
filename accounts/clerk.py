"""Clerk: session-token verification and the Backend API (user profiles, JWKS).

Keys come from, in order of preference: ``CLERK_JWT_KEY`` (the instance's PEM public key: no network
at all), ``CLERK_JWKS_URL``, or the Backend API's ``/v1/jwks`` with ``CLERK_SECRET_KEY``. Fetched
keys
are cached by ``kid``; an unknown ``kid`` triggers at most one refetch per ``JWKS_REFETCH_SECONDS``
(one per ``JWKS_RETRY_SECONDS`` after a failed fetch), so a flood of forged tokens cannot turn into
a
flood of requests to Clerk, even while Clerk is failing. A token whose key is not cached and cannot
be fetched now — Clerk is down, or the refetch allowance was just spent (perhaps by a forger's
unknown ``kid``, a moment before Clerk rotated in a new key) — can be neither accepted nor
refused: that is ``KeysUnavailable``, not ``InvalidToken``, so that a client is told to retry
rather than to sign in again. Only a ``kid`` missing from keys fetched for it is refused.
"""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
import requests
from django.conf import settings
from django.core.cache import caches

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
HTTP_TIMEOUT_SECONDS = 5
JWKS_REFETCH_SECONDS = 60
JWKS_RETRY_SECONDS = 5
USER_ID_PREFIX = "user_"
USER_ID_MAX_LENGTH = 64  # accounts.models.User.id


class InvalidToken(Exception):
    """The token must not be accepted; the message says why (for logs, not for the client)."""


class ClerkUnavailable(Exception):
    """Clerk's Backend API could not be reached or answered with an error."""


class KeysUnavailable(ClerkUnavailable):
    """The token's signing key is not cached and Clerk's keys cannot be fetched now."""


@dataclass(frozen=True)
class Profile:
    email: str
    first_name: str
    last_name: str
    image_url: str
    created_at: datetime | None


class _JwksCache:
    def __init__(self):
        self._keys: dict[str, object] = {}
        # Monotonic time before which no fetch is tried; None: fetch on the next unknown kid. (Not
        # "0.0 = long ago": the monotonic clock starts near 0 at boot.)
        self._next_fetch_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str):
        # Cached keys need no lock (refreshes replace the dict whole): a token signed by one never
        # waits for a fetch that another request is making, however long Clerk takes to answer.
        cached = self._keys.get(kid)
        if cached is not None:
            return cached
        with self._lock:
            if kid in self._keys:  # fetched by the request this one waited for
                return self._keys[kid]
            if not self._may_fetch():
                raise KeysUnavailable(
                    f"signing key {kid!r} not cached, and Clerk's keys were fetched just now"
                )
            self._refresh()
            try:
                return self._keys[kid]
            except KeyError:
                raise InvalidToken(f"unknown signing key {kid!r}") from None

    def _may_fetch(self) -> bool:
        return self._next_fetch_at is None or time.monotonic() >= self._next_fetch_at

    def _refresh(self) -> None:
        try:
            keys = _fetch_jwks()
        except KeysUnavailable:
            # Keep the keys we have; try again soon, but not on every request.
            self._next_fetch_at = time.monotonic() + JWKS_RETRY_SECONDS
            raise
        self._keys = keys
        self._next_fetch_at = time.monotonic() + JWKS_REFETCH_SECONDS

    def clear(self):
        with self._lock:
            self._keys, self._next_fetch_at = {}, None


_jwks = _JwksCache()


def _fetch_jwks() -> dict:
    if settings.CLERK_JWKS_URL:
        url, headers = settings.CLERK_JWKS_URL, {}
    elif settings.CLERK_SECRET_KEY:
        url = f"{settings.CLERK_API_URL}/v1/jwks"
        headers = {"Authorization": f"Bearer {settings.CLERK_SECRET_KEY}"}
    else:
        logger.warning(
            "No Clerk key is configured (CLERK_JWT_KEY, CLERK_JWKS_URL or CLERK_SECRET_KEY)"
        )
        raise KeysUnavailable("no Clerk key is configured")
    try:
        response = requests.get(url, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        keys = response.json()["keys"]
        if not isinstance(keys, list):
            raise ValueError("'keys' is not a list")
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        # Also a refused secret key: the caller's token is not at fault, the configuration is.
        logger.warning("Could not fetch Clerk JWKS: %s", exc)
        raise KeysUnavailable(f"Clerk's keys could not be fetched: {exc}") from exc
    usable = {}
    for key in keys:
        if (
            not isinstance(key, dict)
            or key.get("kty") != "RSA"
            or not isinstance(key.get("kid"), str)
        ):
            continue
        try:
            usable[key["kid"]] = jwt.PyJWK(key, algorithm=ALGORITHM).key
        except jwt.PyJWTError as exc:
            logger.warning("Skipping unusable Clerk JWK %r: %s", key.get("kid"), exc)
    return usable


def _signing_key(header: dict):
    if settings.CLERK_JWT_KEY:
        return settings.CLERK_JWT_KEY
    kid = header.get("kid")
    if not kid:
        raise InvalidToken("token has no kid")
    return _jwks.key(kid)


# A token verified in the last minute is not verified again (decoding and the RSA check are most of
# a poll's cost); its expiry still is. Keyed by the token and the settings it was checked against.
VERIFIED_TOKEN_SECONDS = 60


def verify_session_token(token: str) -> dict:
    """Return the claims of a valid Clerk session token; raise InvalidToken, or KeysUnavailable."""
    key = _verified_key(token)
    claims = caches["process"].get(key)
    if claims is None:
        claims = _verify(token)
        lifetime = min(
            VERIFIED_TOKEN_SECONDS, claims["exp"] + settings.CLERK_LEEWAY_SECONDS - _now()
        )
        if lifetime > 0:
            caches["process"].set(key, claims, lifetime)
    elif claims["exp"] + settings.CLERK_LEEWAY_SECONDS < _now():
        raise InvalidToken("Signature has expired")
    return claims


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _verified_key(token: str) -> str:
    checked_against = (
        settings.CLERK_ISSUER,
        tuple(settings.CLERK_AUTHORIZED_PARTIES),
        settings.CLERK_JWT_KEY,
        settings.CLERK_JWKS_URL,
        settings.CLERK_SECRET_KEY,
    )
    return "token:" + hashlib.sha256(repr((token, checked_against)).encode()).hexdigest()


def _verify(token: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"malformed token: {exc}") from exc
    # Checked before any key is used: "none" and HMAC tokens (signed with our public key as the
    # secret) must never reach a verifier.
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not allowed")
    issuer = settings.CLERK_ISSUER
    try:
        claims = jwt.decode(
            token,
            key=_signing_key(header),
            algorithms=[ALGORITHM],
            leeway=settings.CLERK_LEEWAY_SECONDS,
            issuer=issuer or None,
            options={"require": ["exp", "sub", *(["iss"] if issuer else [])], "verify_aud": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    parties = settings.CLERK_AUTHORIZED_PARTIES
    if parties and claims.get("azp") not in parties:
        raise InvalidToken(f"azp {claims.get('azp')!r} is not an authorized party")
    if not _is_user_id(claims["sub"]):
        raise InvalidToken(f"sub {claims['sub']!r} is not a user id")
    return claims


def _is_user_id(sub) -> bool:
    """``user_…``, and short enough for ``accounts.models.User.id``."""
    return (
        isinstance(sub, str)
        and sub.startswith(USER_ID_PREFIX)
        and len(USER_ID_PREFIX) < len(sub) <= USER_ID_MAX_LENGTH
    )


def fetch_profile(user_id: str) -> Profile:
    """The user's profile from Clerk's Backend API (``GET /v1/users/{id}``)."""
    try:
        response = requests.get(
            f"{settings.CLERK_API_URL}/v1/users/{requests.utils.quote(user_id, safe='')}",
            headers={"Authorization": f"Bearer {settings.CLERK_SECRET_KEY}"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ClerkUnavailable(str(exc)) from exc
    return Profile(
        email=_primary_email(data),
        first_name=data.get("first_name") or "",
        last_name=data.get("last_name") or "",
        image_url=data.get("image_url") or "",
        created_at=_from_millis(data.get("created_at")),
    )


def profile_from_claims(claims: dict) -> Profile:
    """What a token can tell about its user, for instances without a secret key.

    Clerk's default session token carries no profile; instances that add ``email``, ``first_name``,
    ``last_name`` or ``image_url`` through a session-token template get them used here.
    """
    return Profile(
        email=claims.get("email") or "",
        first_name=claims.get("first_name") or claims.get("given_name") or "",
        last_name=claims.get("last_name") or claims.get("family_name") or "",
        image_url=claims.get("image_url") or claims.get("picture") or "",
        created_at=None,
    )


def _primary_email(data: dict) -> str:
    addresses = data.get("email_addresses") or []
    primary_id = data.get("primary_email_address_id")
    for address in addresses:
        if address.get("id") == primary_id:
            return address.get("email_address") or ""
    return addresses[0].get("email_address", "") if addresses else ""


def _from_millis(value) -> datetime | None:
    if not isinstance(value, (int, float)):
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def clear_jwks_cache() -> None:
    """Forget every fetched signing key (tests; or after changing where keys come from)."""
    _jwks.clear()
