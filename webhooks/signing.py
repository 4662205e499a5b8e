"""Secrets and signed headers in the Standard Webhooks format, made by the specification's own
library (``standardwebhooks``), the one receivers verify with."""

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # as the specification's reference service makes them


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers(webhook_id: str, sent_at: datetime, body: str, keys: list[str]) -> dict[str, str]:
    """The headers of one attempt: ``webhook-signature`` holds one ``v1,…`` per secret in
    ``keys``, separated by spaces (two during a rotation)."""
    signatures = " ".join(Webhook(key).sign(webhook_id, sent_at, body) for key in keys)
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
    }
