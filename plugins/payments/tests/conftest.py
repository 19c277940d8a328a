"""Fixtures of the payments tests: the platform with payments enabled and PayPal pointed at a
stateful fake on loopback, a webhook signer holding a key and certificate made here, and
helpers that create and pay orders through the API."""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from platform_payments.fakepaypal import CLIENT_ID, CLIENT_SECRET, FakePayPal

WEBHOOK_ID = "WH-FAKE-0001"


@pytest.fixture
def paypal() -> Any:
    """A fresh fake PayPal served on loopback for one test."""
    fake = FakePayPal(slow_seconds=1.5).start()
    yield fake
    fake.stop()


def paypal_settings(fake: FakePayPal, **extra: Any) -> dict[str, Any]:
    """``[plugins.payments.paypal]`` pointing at ``fake``."""
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": fake.url,
        "webhook_id": WEBHOOK_ID,
        "cert_url_prefixes": [f"{fake.url}/certs/"],
        "timeout_seconds": 0.5,
        **extra,
    }


@pytest.fixture
def platform_plugins() -> list[str]:
    """The ``platform`` fixture enables payments only."""
    return ["payments"]


@pytest.fixture
def platform_settings(paypal: FakePayPal) -> dict[str, dict[str, Any]]:
    """PayPal configured against the fake."""
    return {"payments": {"paypal": paypal_settings(paypal)}}


@pytest.fixture
async def platform(
    platform_factory: Any,
    platform_plugins: list[str],
    platform_settings: dict[str, dict[str, Any]],
    platform_extra_plugins: dict[str, Any],
) -> Any:
    """The started platform without its background loops: the tests run the jobs (and
    deliver events) themselves, so a scheduled reconcile never races them."""
    return await platform_factory(
        enabled=platform_plugins,
        settings=platform_settings,
        extra_plugins=platform_extra_plugins,
        core={"background": False},
    )


class Signer:
    """Signs PayPal webhook deliveries with a key and self-signed certificate made in-test."""

    def __init__(self, fake: FakePayPal, name: str = "cert.pem") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        fake.certs[name] = cert.public_bytes(serialization.Encoding.PEM)
        self.cert_url = f"{fake.url}/certs/{name}"

    def headers(
        self, body: bytes, *, transmission_id: str | None = None, webhook_id: str = WEBHOOK_ID
    ) -> dict[str, str]:
        """The PAYPAL-* headers of a genuine delivery of ``body``."""
        tid = transmission_id or str(uuid.uuid4())
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"{tid}|{when}|{webhook_id}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()
        sig = self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "PAYPAL-TRANSMISSION-ID": tid,
            "PAYPAL-TRANSMISSION-TIME": when,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(sig).decode(),
            "PAYPAL-CERT-URL": self.cert_url,
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "Content-Type": "application/json",
        }


@pytest.fixture
def signer(paypal: FakePayPal) -> Signer:
    """A webhook signer whose certificate the fake serves."""
    return Signer(paypal)


def event_body(event_type: str, resource: dict[str, Any]) -> bytes:
    """A PayPal webhook event's JSON body."""
    return json.dumps(
        {
            "id": f"WH-{uuid.uuid4().hex[:16]}",
            "event_version": "1.0",
            "event_type": event_type,
            "resource_type": "capture",
            "resource": resource,
        }
    ).encode()


ORDER = {
    "currency": "USD",
    "items": [{"description": "Mug", "quantity": 2, "unit_price": "7.50"}],
    "subject": {"plugin": "shop", "kind": "cart", "id": "42"},
}


@dataclass
class Shop:
    """Creates and pays orders through the API."""

    platform: Any
    buyer: httpx.AsyncClient
    admin: httpx.AsyncClient

    async def order(self, client: httpx.AsyncClient | None = None, **overrides: Any) -> dict:
        """A new ``created`` order (15.00 USD unless overridden)."""
        r = await (client or self.buyer).post("/api/payments/orders", json=ORDER | overrides)
        assert r.status_code == 201, r.text
        return r.json()

    async def pay(self, order_id: int, provider: str, key: str | None = None) -> httpx.Response:
        """``POST .../pay`` with a fresh (or the given) idempotency key."""
        return await self.buyer.post(
            f"/api/payments/orders/{order_id}/pay",
            json={"provider": provider},
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def capture(self, order_id: int, key: str | None = None) -> httpx.Response:
        """``POST .../capture`` with a fresh (or the given) idempotency key."""
        return await self.buyer.post(
            f"/api/payments/orders/{order_id}/capture",
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def refund(
        self, order_id: int, amount: str | None = None, key: str | None = None, **extra: Any
    ) -> httpx.Response:
        """``POST .../refunds`` as the admin."""
        body = {"reason": "customer request", **extra}
        if amount is not None:
            body["amount"] = amount
        return await self.admin.post(
            f"/api/payments/orders/{order_id}/refunds",
            json=body,
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )

    async def paid_manual(self) -> dict:
        """An order paid through the manual provider."""
        order = await self.order()
        assert (await self.pay(order["id"], "manual")).status_code == 200
        r = await self.admin.post(
            f"/api/payments/orders/{order['id']}/mark-paid",
            json={"reference": "BANK-123"},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def paid_paypal(self, fake: FakePayPal) -> dict:
        """An order paid through (the fake) PayPal."""
        order = await self.order()
        r = await self.pay(order["id"], "paypal")
        assert r.status_code == 200, r.text
        fake.approve(r.json()["provider_order_id"])
        r = await self.capture(order["id"])
        assert r.status_code == 200 and r.json()["status"] == "paid", r.text
        return r.json()


@pytest.fixture
async def shop(
    platform: Any, member_client: httpx.AsyncClient, admin_client: httpx.AsyncClient
) -> Shop:
    """Orders of a member, an admin who marks paid and refunds."""
    return Shop(platform, member_client, admin_client)
