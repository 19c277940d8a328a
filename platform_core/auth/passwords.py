"""Password hashing with Argon2 (pwdlib)."""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MIN_PASSWORD_LENGTH = 8


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password``."""
    return _hasher().hash(password)


def verify_password(password: str, hashed: str | None) -> bool:
    """True when ``password`` matches; a missing hash still costs one verification."""
    if hashed is None:
        _hasher().verify(password, _dummy_hash())
        return False
    try:
        return _hasher().verify(password, hashed)
    except Exception:  # a corrupt stored hash is a failed login, not a crash
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("not-a-real-password-but-equal-cost")
