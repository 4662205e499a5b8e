"""A local stand-in for a Clerk instance's signing key, for development and the demo only.

The service verifies these tokens exactly as Clerk's (RS256, by public key); only the key differs.
"""

import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

KID = "dev"


def key_dir() -> Path:
    return settings.VAR_DIR / "dev-clerk"


def ensure_keys() -> tuple[bytes, str]:
    """The dev private key (PEM) and public key (PEM text), made on first use."""
    folder = key_dir()
    private_path, public_path = folder / "private.pem", folder / "public.pem"
    if not private_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        private_path.chmod(0o600)
        public_path.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private_path.read_bytes(), public_path.read_text()


def mint_token(user_id: str, *, hours: float, email: str = "", azp: str = "") -> str:
    private_pem, _ = ensure_keys()
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "nbf": now, "exp": now + int(hours * 3600)}
    if email:
        claims["email"] = email
    if azp:
        claims["azp"] = azp
    return jwt.encode(claims, private_pem, algorithm="RS256", headers={"kid": KID})
