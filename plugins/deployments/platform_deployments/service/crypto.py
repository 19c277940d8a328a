"""Encryption of stored secrets (MongoDB passwords, secret variables) with the secret key."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) keyed by HKDF of the platform's secret key."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("the platform has no secret key")
        raw = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"platform-deployments/secrets"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, value: str) -> str:
        """The value encrypted and authenticated, as text."""
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, token: str) -> str:
        """The value back; ``ValueError`` when the token was not sealed with this key."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: sealed with another secret key") from exc
