"""Signing outbound webhook requests the way Stripe does, and verifying such signatures.

Each request carries ``Platform-Signature: t=<unix seconds>,v1=<hex>`` where ``<hex>`` is
HMAC-SHA256, keyed with the webhook's secret, over ``f"{t}.".encode() + body`` (the raw
request body bytes). Receivers recompute it, compare in constant time and refuse stale
timestamps (replays). During a secret rotation's overlap the header holds two ``v1=``
signatures (new secret first, then the old one), so a receiver holding either verifies.
:func:`verify_signature` is the exact function documented in
``docs/webhooks.md`` for receivers to copy (standard library only); a test keeps the two
identical.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

SIGNATURE_HEADER = "Platform-Signature"
SCHEME = "v1"


def encode_body(envelope: dict[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON of the event envelope (the bytes that are signed)."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>." + body`` keyed with ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str | Sequence[str], body: bytes, timestamp: int | None = None) -> str:
    """The ``Platform-Signature`` header value for ``body`` (signed now unless told when).

    Given several secrets (the current one first, then the previous one during a rotation's
    overlap), the header carries one ``v1=`` signature per secret, in that order.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    keys = [secret] if isinstance(secret, str) else list(secret)
    if not keys:
        raise ValueError("at least one secret is needed to sign")
    return ",".join([f"t={ts}"] + [f"{SCHEME}={compute_signature(k, ts, body)}" for k in keys])


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """True when ``header`` (Platform-Signature) signs ``body`` with ``secret`` and is fresh.

    ``body`` is the raw request body (bytes, exactly as received). A timestamp more than
    ``tolerance`` seconds away from ``now`` (default: the current time) is refused.
    """
    timestamp: int | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.encode("utf-8", "replace"))
    if timestamp is None or not signatures:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    message = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest().encode()
    return any(hmac.compare_digest(expected, s) for s in signatures)
