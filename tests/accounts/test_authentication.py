"""Clerk session tokens at the API's door: who gets in, who is refused, and what Clerk is asked."""

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid

import jwt
import pytest
from rest_framework.test import APIClient

from accounts import clerk
from accounts.models import User
from jobs.models import JobState
from tests.factories import JobFactory, UserFactory
from tests.helpers.schema import assert_matches_schema

ATTACKER = "user_attacker"
INVALID_TOKEN = {"error": "Invalid or expired token"}
INVALID_HEADER = {"error": "Invalid authorization header"}
AUTH_REQUIRED = {"error": "Authentication required"}
AUTH_UNAVAILABLE = {"error": "Authentication service unavailable. Please try again later."}

# Every /api/3d endpoint that looks at the caller: (method, path, body).
SOME_JOB = "3f1c1a9e-9d3b-4a52-9a51-2f4f3b1f0c11"
REQUIRE_AUTH = [
    ("post", "/api/3d/generate", {"prompt": "A red sports car"}),
    ("patch", f"/api/3d/jobs/{SOME_JOB}/name", {"name": "Mine now"}),
    ("delete", f"/api/3d/jobs/{SOME_JOB}", None),
    ("get", "/api/3d/me", None),
    ("post", "/api/3d/sync-user", None),
]
OPTIONAL_AUTH = [
    ("get", "/api/3d/history", None),
    ("get", f"/api/3d/status/{SOME_JOB}", None),
    ("post", "/api/3d/upload-image", None),
    (
        "post",
        "/api/3d/register-job",
        {"job_id": SOME_JOB, "prompt": "mug", "previewImageUrl": "https://cdn.example.com/p.png"},
    ),
]


def call(client, method, path, body=None):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


def b64url(part) -> str:
    raw = part if isinstance(part, bytes) else json.dumps(part, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assemble(header: dict, claims: dict, signature: bytes = b"") -> str:
    return f"{b64url(header)}.{b64url(claims)}.{b64url(signature)}"


def client_with(authorization: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=authorization)
    return client


def assert_refused(response, body=INVALID_TOKEN):
    assert response.status_code == 401, response.content
    assert response.json() == body
    assert response["WWW-Authenticate"].startswith("Bearer")


def assert_unavailable(response):
    """The spec's 503 ("show: service temporarily unavailable"), not a 401 that signs the user
    out."""
    assert response.status_code == 503, response.content
    assert response.json() == AUTH_UNAVAILABLE


# --- forged, broken and unacceptable tokens ---------------------------------------------------


def _alg_none(minter, alg):
    return assemble({"alg": alg, "typ": "JWT", "kid": minter.kid}, minter.claims(ATTACKER))


def _hs256_with_public_key(minter):
    """The classic confusion attack: HMAC "signed" with the verifier's public key as the secret."""
    header, claims = {"alg": "HS256", "typ": "JWT", "kid": minter.kid}, minter.claims(ATTACKER)
    signing_input = f"{b64url(header)}.{b64url(claims)}".encode()
    signature = hmac.new(minter.public_pem.encode(), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(signature)}"


def _tampered(minter):
    """A genuine token for someone else whose payload was swapped for the attacker's."""
    header, _, signature = minter.token("user_honest").split(".")
    return f"{header}.{b64url(minter.claims(ATTACKER))}.{signature}"


def _embedded_jwk(minter, forger):
    """Signed with the attacker's key, which the header offers as the key to check it with."""
    return jwt.encode(
        forger.claims(ATTACKER),
        forger.private_key,
        algorithm="RS256",
        headers={"kid": minter.kid, "jwk": forger.jwk()},
    )


def _other_rsa_alg(minter, alg):
    return jwt.encode(
        minter.claims(ATTACKER), minter.private_key, algorithm=alg, headers={"kid": minter.kid}
    )


ATTACKS = {
    "signed by another key with the right kid": lambda m, f: f.token(ATTACKER),
    "tampered payload": lambda m, f: _tampered(m),
    "signature stripped": lambda m, f: m.token(ATTACKER).rsplit(".", 1)[0] + ".",
    "trailing junk on the signature": lambda m, f: m.token(ATTACKER) + "AA",
    "alg none": lambda m, f: _alg_none(m, "none"),
    "alg None": lambda m, f: _alg_none(m, "None"),
    "alg NONE": lambda m, f: _alg_none(m, "NONE"),
    "HS256 signed with the public key": lambda m, f: _hs256_with_public_key(m),
    "RS512 with the right key": lambda m, f: _other_rsa_alg(m, "RS512"),
    "PS256 with the right key": lambda m, f: _other_rsa_alg(m, "PS256"),
    "attacker key embedded as jwk header": _embedded_jwk,
    "expired 30 s ago": lambda m, f: m.token(ATTACKER, exp=int(time.time()) - 30),
    "expired long ago": lambda m, f: m.token(
        ATTACKER, iat=1_600_000_000, nbf=1_600_000_000, exp=1_600_000_060
    ),
    "not valid for another 30 s": lambda m, f: m.token(ATTACKER, nbf=int(time.time()) + 30),
    "no exp": lambda m, f: m.token(ATTACKER, exp=None),
    "wrong azp": lambda m, f: m.token(ATTACKER, azp="https://evil.example"),
    "no azp while parties are configured": lambda m, f: m.token(ATTACKER, azp=None),
    "no sub": lambda m, f: m.token(None),
    "empty sub": lambda m, f: m.token(""),
    "numeric sub": lambda m, f: m.token(12345),
    "sub that is not a user id": lambda m, f: m.token("org_2abc"),
    "sub that is only the prefix": lambda m, f: m.token("user_"),
    "sub longer than any user id": lambda m, f: m.token("user_" + "x" * 200),
    "garbage": lambda m, f: "garbage",
    "three empty segments": lambda m, f: "..",
    "dots and letters": lambda m, f: "a.b.c",
    "header only": lambda m, f: b64url({"alg": "RS256", "kid": m.kid}),
    "header is a JSON list": lambda m, f: f"{b64url([1, 2])}.{b64url(m.claims(ATTACKER))}.AA",
    "kid is not a string": lambda m, f: assemble(
        {"alg": "RS256", "kid": ["x"]}, m.claims(ATTACKER), b"x"
    ),
    "non-ascii": lambda m, f: "tökén.wíth.ümlauts",
}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/3d/me", "/api/3d/history"])
@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
def test_a_bad_token_is_refused_and_creates_no_user(attack, path, token_minter, forger):
    token = attack(token_minter, forger)

    response = client_with(f"Bearer {token}").get(path)

    assert_refused(response)
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token {token}",
        "JWT {token}",
        "{token}",
        "Bearer",
        "Bearer    ",
    ],
    ids=["basic", "token scheme", "jwt scheme", "no scheme", "bearer alone", "bearer blank"],
)
@pytest.mark.parametrize("path", ["/api/3d/me", "/api/3d/history"])
def test_a_wrong_authorization_scheme_is_refused(authorization, path, token_minter):
    """Even a valid token is refused under another scheme: never quietly treated as anonymous."""
    response = client_with(authorization.format(token=token_minter.token(ATTACKER))).get(path)

    assert_refused(response, INVALID_HEADER)
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method, path, body", REQUIRE_AUTH + OPTIONAL_AUTH)
def test_every_endpoint_refuses_an_expired_token(method, path, body, token_minter):
    token = token_minter.token(ATTACKER, exp=int(time.time()) - 30)

    response = call(client_with(f"Bearer {token}"), method, path, body)

    assert_refused(response)
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method, path, body", REQUIRE_AUTH)
def test_require_auth_endpoints_answer_401_without_a_token(method, path, body):
    response = call(APIClient(), method, path, body)

    assert_refused(response, AUTH_REQUIRED)
    assert not User.objects.exists()


# --- the __session cookie ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_session_cookie_authenticates(token_minter):
    client = APIClient()
    client.cookies["__session"] = token_minter.token("user_cookie")

    response = client.get("/api/3d/me")

    assert response.status_code == 200
    assert response.json()["user"]["id"] == "user_cookie"
    assert User.objects.filter(pk="user_cookie").exists()


@pytest.mark.django_db
def test_an_invalid_session_cookie_is_refused_not_ignored(token_minter, forger):
    client = APIClient()
    client.cookies["__session"] = forger.token(ATTACKER)

    response = client.get("/api/3d/history")

    assert_refused(response)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_the_authorization_header_wins_over_the_cookie(bearer, token_minter):
    client = bearer(user_id="user_from_header")
    client.cookies["__session"] = token_minter.token("user_from_cookie")

    response = client.get("/api/3d/me")

    assert response.json()["user"]["id"] == "user_from_header"
    assert not User.objects.filter(pk="user_from_cookie").exists()


@pytest.mark.django_db
def test_the_bearer_scheme_is_case_insensitive(token_minter):
    response = client_with(f"bearer {token_minter.token('user_lower')}").get("/api/3d/me")

    assert response.status_code == 200
    assert response.json()["user"]["id"] == "user_lower"


# --- time claims and the authorized party ---------------------------------------------------------


@pytest.mark.django_db
def test_a_token_expired_3_s_ago_is_still_accepted(bearer):
    response = bearer(user_id="user_late", exp=int(time.time()) - 3).get("/api/3d/me")

    assert response.status_code == 200
    assert response.json()["user"]["id"] == "user_late"


@pytest.mark.django_db
def test_a_token_valid_from_3_s_ahead_is_accepted(bearer):
    """Clock skew between Clerk and us: a few seconds of leeway both ways."""
    response = bearer(user_id="user_early", nbf=int(time.time()) + 3).get("/api/3d/me")

    assert response.status_code == 200


@pytest.mark.django_db
def test_a_token_expired_30_s_ago_is_refused(bearer):
    response = bearer(user_id="user_late", exp=int(time.time()) - 30).get("/api/3d/me")

    assert_refused(response)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_any_of_several_authorized_parties_is_accepted(settings, bearer):
    settings.CLERK_AUTHORIZED_PARTIES = ["https://hydrilla.co", "https://app.hydrilla.co"]

    accepted = bearer(user_id="user_app", azp="https://app.hydrilla.co").get("/api/3d/me")
    refused = bearer(user_id="user_local", azp="http://localhost:3000").get("/api/3d/me")

    assert accepted.status_code == 200
    assert_refused(refused)
    assert list(User.objects.values_list("pk", flat=True)) == ["user_app"]


@pytest.mark.django_db
def test_without_authorized_parties_any_azp_is_accepted(settings, bearer):
    settings.CLERK_AUTHORIZED_PARTIES = []

    other = bearer(user_id="user_other", azp="https://elsewhere.example").get("/api/3d/me")
    missing = bearer(user_id="user_noazp", azp=None).get("/api/3d/me")

    assert other.status_code == 200
    assert missing.status_code == 200


@pytest.mark.django_db
def test_with_an_issuer_set_only_its_tokens_are_accepted(settings, bearer):
    settings.CLERK_ISSUER = "https://clerk.hydrilla.co"

    accepted = bearer(user_id="user_ours", iss="https://clerk.hydrilla.co").get("/api/3d/me")
    foreign = bearer(user_id="user_foreign", iss="https://clerk.elsewhere.example").get(
        "/api/3d/me"
    )
    missing = bearer(user_id="user_noiss", iss=None).get("/api/3d/me")

    assert accepted.status_code == 200
    assert_refused(foreign)
    assert_refused(missing)
    assert list(User.objects.values_list("pk", flat=True)) == ["user_ours"]


@pytest.mark.django_db
def test_without_an_issuer_set_any_iss_is_accepted(settings, bearer):
    settings.CLERK_ISSUER = ""

    assert (
        bearer(user_id="user_any", iss="https://clerk.elsewhere.example")
        .get("/api/3d/me")
        .status_code
        == 200
    )


# --- where the keys come from ---------------------------------------------------------------------


@pytest.mark.django_db
def test_pem_mode_never_calls_clerk_even_with_a_secret_key(
    settings, clerk_secret_key, token_minter, bearer
):
    settings.CLERK_JWT_KEY = token_minter.public_pem

    for user_id in ("user_a", "user_b", "user_a"):
        assert bearer(user_id=user_id).get("/api/3d/history").status_code == 200
    other_kid = token_minter.token("user_c", kid="ins_some_other_kid")  # PEM mode ignores kid
    assert bearer(other_kid).get("/api/3d/history").status_code == 200

    assert clerk_secret_key.requests == []


@pytest.mark.django_db
def test_jwks_by_secret_key_is_fetched_once_for_many_requests(clerk_secret_key, bearer):
    for index in range(5):
        response = bearer(user_id=f"user_n{index}").get("/api/3d/history")
        assert response.status_code == 200

    assert clerk_secret_key.requests_to("/v1/jwks") == 1
    assert clerk_secret_key.requests[0].authorization == f"Bearer {clerk_secret_key.secret_key}"
    assert User.objects.count() == 5


@pytest.mark.django_db
def test_a_wrong_secret_key_gets_no_keys_and_no_user(settings, clerk_secret_key, bearer):
    settings.CLERK_SECRET_KEY = "sk_test_not_the_right_one"

    response = bearer(user_id="user_nokey").get("/api/3d/history")

    assert_unavailable(response)  # the server's configuration is at fault, not the caller's token
    assert clerk_secret_key.requests_to("/v1/jwks") == 1
    assert not User.objects.exists()


@pytest.mark.django_db
def test_jwks_url_mode_fetches_the_public_keys_once(settings, fake_clerk, bearer):
    settings.CLERK_JWT_KEY = ""
    settings.CLERK_SECRET_KEY = ""
    settings.CLERK_JWKS_URL = fake_clerk.public_jwks_url

    for user_id in ("user_x", "user_y", "user_x"):
        assert bearer(user_id=user_id).get("/api/3d/history").status_code == 200

    assert fake_clerk.requests_to("/.well-known/jwks.json") == 1
    assert fake_clerk.requests_to("/v1/jwks") == 0


@pytest.mark.django_db
def test_an_unknown_kid_is_refused_and_creates_no_user(clerk_secret_key, rotated_minter):
    response = client_with(f"Bearer {rotated_minter.token(ATTACKER)}").get("/api/3d/history")

    assert_refused(response)
    assert not User.objects.exists()


@pytest.mark.django_db
def test_keys_are_fetched_on_the_first_request_after_boot(clerk_secret_key, clock, bearer):
    """A machine up for less than the refetch interval must still fetch the keys it has none of."""
    clock.now = 1.5

    response = bearer(user_id="user_early_bird").get("/api/3d/history")

    assert response.status_code == 200
    assert clerk_secret_key.requests_to("/v1/jwks") == 1


@pytest.mark.django_db
def test_key_rotation_new_kid_is_fetched_at_most_once_per_interval(
    clerk_secret_key, clock, bearer, token_minter, rotated_minter
):
    assert bearer(user_id="user_r").get("/api/3d/history").status_code == 200
    clerk_secret_key.serve_keys(token_minter.jwk(), rotated_minter.jwk())
    new_kid_token = rotated_minter.token("user_r")

    # Keys were fetched a second ago: an unknown kid does not send us back to Clerk yet, and the
    # token may be good (a key just rotated in): retry, not sign in again.
    clock.advance(1)
    assert_unavailable(bearer(new_kid_token).get("/api/3d/history"))
    assert clerk_secret_key.requests_to("/v1/jwks") == 1

    clock.advance(clerk.JWKS_REFETCH_SECONDS)
    assert bearer(new_kid_token).get("/api/3d/history").status_code == 200
    assert bearer(user_id="user_r").get("/api/3d/history").status_code == 200  # the old kid too
    assert bearer(rotated_minter.token("user_s")).get("/api/3d/history").status_code == 200
    assert clerk_secret_key.requests_to("/v1/jwks") == 2


@pytest.mark.django_db
def test_a_flood_of_unknown_kids_costs_at_most_one_fetch_per_interval(
    clerk_secret_key, clock, bearer, forger
):
    assert bearer(user_id="user_r").get("/api/3d/history").status_code == 200
    clock.advance(clerk.JWKS_REFETCH_SECONDS + 1)

    tokens = [forger.token(ATTACKER, kid=f"ins_{uuid.uuid4().hex}") for _ in range(10)]
    # The first is checked against freshly fetched keys; the others arrive before the next fetch.
    assert_refused(client_with(f"Bearer {tokens[0]}").get("/api/3d/history"))
    for token in tokens[1:]:
        assert_unavailable(client_with(f"Bearer {token}").get("/api/3d/history"))

    assert clerk_secret_key.requests_to("/v1/jwks") == 2
    assert not User.objects.filter(pk=ATTACKER).exists()


@pytest.mark.django_db
def test_a_key_rotated_in_just_after_a_forgers_kid_spent_the_refetch_is_retried_not_refused(
    clerk_secret_key, clock, bearer, forger, token_minter, rotated_minter
):
    assert bearer(user_id="user_r").get("/api/3d/history").status_code == 200
    clock.advance(clerk.JWKS_REFETCH_SECONDS + 1)
    assert_refused(
        client_with(f"Bearer {forger.token(ATTACKER, kid='ins_forged')}").get("/api/3d/history")
    )
    clerk_secret_key.serve_keys(token_minter.jwk(), rotated_minter.jwk())  # Clerk rotates

    assert_unavailable(bearer(rotated_minter.token("user_r")).get("/api/3d/history"))

    clock.advance(clerk.JWKS_REFETCH_SECONDS)
    assert bearer(rotated_minter.token("user_r")).get("/api/3d/history").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("outage", ["500", "connection refused"])
def test_cached_keys_keep_working_during_a_clerk_outage(
    outage, clerk_secret_key, clock, bearer, forger
):
    assert bearer(user_id="user_r").get("/api/3d/history").status_code == 200
    clock.advance(clerk.JWKS_REFETCH_SECONDS + 1)
    if outage == "500":
        clerk_secret_key.fail_with(500)
    else:
        clerk_secret_key.go_down()

    assert bearer(user_id="user_r").get("/api/3d/history").status_code == 200
    # Unknown kids during the outage (a rotated key, or a forgery): not verifiable, so not accepted,
    # and Clerk is not hammered.
    for _ in range(5):
        token = forger.token(ATTACKER, kid=f"ins_{uuid.uuid4().hex}")
        assert_unavailable(client_with(f"Bearer {token}").get("/api/3d/history"))

    assert clerk_secret_key.requests_to("/v1/jwks") == (2 if outage == "500" else 1)
    assert not User.objects.filter(pk=ATTACKER).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("method, path, body", REQUIRE_AUTH + OPTIONAL_AUTH[:1])
def test_without_any_keys_every_endpoint_answers_503(
    method, path, body, clerk_secret_key, token_minter
):
    clerk_secret_key.go_down()

    response = call(client_with(f"Bearer {token_minter.token('user_w')}"), method, path, body)

    assert_unavailable(response)
    assert_matches_schema(response, path.replace(SOME_JOB, "{job_id}"), method.upper())
    assert not User.objects.exists()


@pytest.mark.django_db
def test_without_any_keys_tokens_get_503_until_clerk_is_back(
    clerk_secret_key, clock, bearer, forger
):
    clerk_secret_key.fail_with(500)

    assert_unavailable(bearer(user_id="user_w").get("/api/3d/history"))
    clerk_secret_key.fail_with(None)
    clock.advance(1)
    assert_unavailable(
        bearer(user_id="user_w").get("/api/3d/history")
    )  # a failed fetch is not retried at once
    assert clerk_secret_key.requests_to("/v1/jwks") == 1
    assert not User.objects.exists()

    clock.advance(clerk.JWKS_RETRY_SECONDS)  # ...but well before the normal refetch interval
    assert bearer(user_id="user_w").get("/api/3d/history").status_code == 200
    assert clerk_secret_key.requests_to("/v1/jwks") == 2
    # Keys fetched again: once the refetch interval allows a check against fresh keys, a token
    # signed by none of them is refused, no longer "unavailable".
    clock.advance(clerk.JWKS_REFETCH_SECONDS)
    assert_refused(
        client_with(f"Bearer {forger.token(ATTACKER, kid='ins_unknown')}").get("/api/3d/history")
    )


def test_a_cached_key_does_not_wait_for_a_fetch_in_progress(
    clerk_secret_key, clock, token_minter, monkeypatch
):
    """Clerk hanging on one request's refetch must not stall everyone whose key is cached."""
    token = token_minter.token("user_r")
    assert clerk.verify_session_token(token)["sub"] == "user_r"  # the keys are fetched and cached
    clock.advance(clerk.JWKS_REFETCH_SECONDS + 1)
    fetching, answer = threading.Event(), threading.Event()

    def hanging_fetch():
        fetching.set()
        answer.wait(30)
        raise clerk.KeysUnavailable("Clerk timed out")

    monkeypatch.setattr(clerk, "_fetch_jwks", hanging_fetch)
    results = {}

    def verify(name, token):
        try:
            results[name] = clerk.verify_session_token(token)["sub"]
        except clerk.ClerkUnavailable as exc:
            results[name] = type(exc)

    unknown_kid = threading.Thread(
        target=verify, args=("unknown", token_minter.token("user_r", kid="ins_new"))
    )
    unknown_kid.start()
    try:
        assert fetching.wait(10)
        cached_kid = threading.Thread(target=verify, args=("cached", token))
        cached_kid.start()
        cached_kid.join(10)
        assert results.get("cached") == "user_r"  # answered while the fetch still hangs
    finally:
        answer.set()
        unknown_kid.join(10)
    assert results["unknown"] is clerk.KeysUnavailable


@pytest.mark.django_db
def test_with_no_clerk_key_configured_a_token_is_a_503_and_no_user(settings, bearer):
    settings.CLERK_JWT_KEY = settings.CLERK_JWKS_URL = settings.CLERK_SECRET_KEY = ""

    assert_unavailable(bearer(user_id="user_n").get("/api/3d/history"))
    assert not User.objects.exists()


@pytest.mark.django_db
def test_an_unusable_key_in_the_jwks_does_not_hide_the_good_one(
    clerk_secret_key, token_minter, bearer
):
    broken = {"kty": "RSA", "kid": "ins_broken", "n": "!!", "e": "AQAB"}
    clerk_secret_key.serve_keys(broken, {"kty": "EC", "kid": "ins_ec"}, token_minter.jwk())

    assert bearer(user_id="user_k").get("/api/3d/history").status_code == 200


# --- optional endpoints: anonymous vs a user
# -------------------------------------------------------


@pytest.mark.django_db
def test_history_is_empty_for_anonymous_callers():
    JobFactory.create_batch(2)
    JobFactory(user=None)

    response = APIClient().get("/api/3d/history")

    assert response.status_code == 200
    assert response.json() == {"jobs": []}


@pytest.mark.django_db
def test_history_lists_the_callers_own_jobs_only(auth_client):
    owner, other = UserFactory(), UserFactory()
    own = [JobFactory(user=owner, state=JobState.COMPLETED), JobFactory(user=owner)]
    JobFactory(user=other)
    JobFactory(user=None)

    response = auth_client(owner).get("/api/3d/history")

    assert response.status_code == 200
    jobs = response.json()["jobs"]
    assert sorted(job["id"] for job in jobs) == sorted(str(job.pk) for job in own)
    assert {job["userId"] for job in jobs} == {owner.pk}


@pytest.mark.django_db
def test_a_user_is_created_on_first_sight(bearer):
    assert bearer(user_id="user_newcomer").get("/api/3d/history").json() == {"jobs": []}

    assert list(User.objects.values_list("pk", flat=True)) == ["user_newcomer"]


@pytest.mark.django_db
def test_anonymous_callers_may_use_the_optional_endpoints():
    client = APIClient()
    ownerless = JobFactory(user=None)

    status = client.get(f"/api/3d/status/{ownerless.pk}")
    # Past authentication into the view's own checks (an empty form: no storage involved).
    upload = client.post("/api/3d/upload-image", {}, format="multipart")
    registered = client.post("/api/3d/register-job", OPTIONAL_AUTH[3][2], format="json")

    assert status.status_code == 200
    assert status.json()["job"]["userId"] is None
    assert upload.status_code == 400
    assert upload.json() == {"error": "No image file provided (multipart field 'image')"}
    assert registered.status_code == 200, registered.content
    assert registered.json() == {"success": True, "job_id": SOME_JOB}
    assert client.get(f"/api/3d/status/{SOME_JOB}").json()["job"]["userId"] is None
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_users_job_is_hidden_from_anonymous_callers_but_not_from_its_owner(auth_client):
    owner = UserFactory()
    job = JobFactory(user=owner)

    anonymous = APIClient().get(f"/api/3d/status/{job.pk}")
    own = auth_client(owner).get(f"/api/3d/status/{job.pk}")

    assert anonymous.status_code == 403
    assert anonymous.json() == {"error": "You don't have permission to view this job"}
    assert own.status_code == 200
    assert own.json()["job"]["userId"] == owner.pk
