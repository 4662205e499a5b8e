"""A client of its own for the configured S3 endpoint (moto's server on loopback in tests)."""

import boto3
from django.conf import settings


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
