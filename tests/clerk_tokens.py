"""Clerk-shaped session tokens signed with a key pair made for the test run."""

import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class TokenMinter:
    def __init__(self, kid: str = "ins_test_key"):
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def claims(self, user_id: str, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 60,
            "iss": "https://clerk.example.test",
            "azp": "http://localhost:3000",
            "sid": "sess_test",
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def token(self, user_id: str, *, kid: str | None = None, **overrides) -> str:
        return jwt.encode(
            self.claims(user_id, **overrides),
            self.private_key,
            algorithm="RS256",
            headers={"kid": kid or self.kid},
        )

    def jwk(self) -> dict:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return jwk | {"kid": self.kid, "alg": "RS256", "use": "sig"}
