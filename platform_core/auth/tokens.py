"""Credential formats: personal API tokens (``plt_...``) and short-lived JWTs."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt

from platform_core.db import utcnow

API_TOKEN_PREFIX = "plt_"
JWT_ALGORITHM = "HS256"
JWT_AUDIENCE = "platform"


def new_api_token() -> tuple[str, str, str]:
    """A fresh token: ``(secret shown once, display prefix, digest to store)``."""
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return secret, secret[: len(API_TOKEN_PREFIX) + 6], token_digest(secret)


def token_digest(secret: str) -> str:
    """SHA-256 hex digest of a token secret (tokens carry 256 bits; no slow hash needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def is_api_token(credential: str) -> bool:
    """True when the credential looks like a personal API token."""
    return credential.startswith(API_TOKEN_PREFIX)


def encode_jwt(key: str, user_id: int, scopes: list[str], ttl: timedelta) -> tuple[str, datetime]:
    """A signed access token for ``user_id`` and its expiry time."""
    now = utcnow()
    exp = now + ttl
    claims = {
        "sub": str(user_id),
        "aud": JWT_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int(exp.timestamp()),
        "jti": uuid.uuid4().hex,
        "scope": " ".join(scopes),
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM), exp


def decode_jwt(key: str, token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired token; None for anything else."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.PyJWTError:
        return None
    return claims
