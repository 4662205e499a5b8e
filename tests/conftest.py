import boto3
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from storages.backends.s3 import S3Storage

from tests.clerk_tokens import TokenMinter
from tests.factories import UserFactory


@pytest.fixture(scope="session")
def token_minter():
    return TokenMinter()


@pytest.fixture(autouse=True)
def clerk_public_key(settings, token_minter):
    """Networkless verification with the test key pair, unless a test configures otherwise."""
    settings.CLERK_JWT_KEY = token_minter.public_pem
    settings.CLERK_SECRET_KEY = ""
    settings.CLERK_JWKS_URL = ""
    settings.CLERK_AUTHORIZED_PARTIES = ["http://localhost:3000"]
    settings.CLERK_ISSUER = ""


@pytest.fixture(scope="session", autouse=True)
def shared_boto3_session():
    """S3 storages share one boto3 session per set of credentials.

    Each settings change builds a new storage, and a new boto3 session loads botocore's service
    models again (some 150 ms); one session makes the next resource cost some 20 ms.
    """
    sessions = {}
    create_session = S3Storage._create_session

    def shared(storage):
        key = (storage.session_profile, storage.access_key, storage.secret_key, storage.security_token)
        if key not in sessions:
            sessions[key] = create_session(storage)
        return sessions[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S3Storage, "_create_session", shared)
        yield


def s3_client():
    """A boto3 client for the configured S3 endpoint (moto's server on loopback in tests)."""
    options = settings.STORAGES["default"]["OPTIONS"]
    return boto3.client(
        "s3",
        endpoint_url=options["endpoint_url"],
        region_name=options["region_name"],
        aws_access_key_id=options["access_key"],
        aws_secret_access_key=options["secret_key"],
    )


@pytest.fixture(scope="session", autouse=True)
def s3_bucket():
    """The configured bucket exists on the S3 endpoint (moto's server) before any test stores."""
    if not settings.S3_BUCKET:
        return None
    client = s3_client()
    existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
    if settings.S3_BUCKET not in existing:
        client.create_bucket(Bucket=settings.S3_BUCKET)
    return client


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def auth_client(token_minter):
    """A client that presents a valid Clerk token for ``user``."""

    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_minter.token(user.pk)}")
        return client

    return make
