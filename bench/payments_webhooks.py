"""Payments: verified PayPal webhook deliveries processed per second on PostgreSQL.

At a real ``platformctl serve`` on a fresh PostgreSQL database, with local signature
verification (RSA-SHA256, the certificate served by the fake PayPal and cached): ``ORDERS``
pending PayPal orders, then ``DELIVERIES`` signed deliveries sent ``CONCURRENCY`` at a time,
a mix of ``PAYMENT.CAPTURE.COMPLETED`` (one per order: each pays it), repeats of those
deliveries (duplicates: stored once) and unknown events (stored, ignored). Deliveries are
signed, and their HTTP requests built, before the clock starts; they go out over
``CONCURRENCY`` keep-alive connections from a raw asyncio client (``_common.send_all``):
httpx spent about 2 ms of CPU per request, so on this 2-core machine it, not the server,
set the pace. The server's ``[core.database] pool_size`` is ``CONCURRENCY``, so no request
opens a connection of its own (see docs/scaling.md, Sizing).

Prints deliveries/s (target: at least 500/s) and the server's CPU time per delivery (from
``/proc``: steadier than a rate on a shared machine), checks that every order ended paid
exactly once, and, for scale, the same server's ``GET /healthz`` requests/s with the same
client and concurrency.

Run: ``.venv/bin/python bench/payments_webhooks.py``; skipped when PostgreSQL is unreachable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import time
import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import tomlkit
from _common import children_cpu_seconds, header, http_request, pg_reachable, row, send_all
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from platform_payments.fakepaypal import CLIENT_ID, CLIENT_SECRET, FakePayPal
from sqlalchemy import func, select

from platform_core.testing import fresh_database, prepared, served

ORDERS = int(os.environ.get("ORDERS", "2000"))
DELIVERIES = int(os.environ.get("DELIVERIES", "6000"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "16"))
WEBHOOK_ID = "WH-BENCH"


def certificate(fake: FakePayPal) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    fake.certs["bench.pem"] = cert.public_bytes(serialization.Encoding.PEM)
    return key, f"{fake.url}/certs/bench.pem"


def signed(key: rsa.RSAPrivateKey, cert_url: str, body: bytes, tid: str) -> dict[str, str]:
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"{tid}|{when}|{WEBHOOK_ID}|{zlib.crc32(body) & 0xFFFFFFFF}".encode()
    sig = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {
        "PAYPAL-TRANSMISSION-ID": tid,
        "PAYPAL-TRANSMISSION-TIME": when,
        "PAYPAL-TRANSMISSION-SIG": base64.b64encode(sig).decode(),
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        "Content-Type": "application/json",
    }


async def seed(config: Path) -> list[str]:
    """``ORDERS`` pending PayPal orders written directly; returns their PayPal order ids."""
    from platform_payments.models import Order

    from platform_core import utcnow

    async with prepared(config) as platform:
        user = await platform.user("member")
        ids = [f"5OBENCH{i:06d}" for i in range(ORDERS)]
        async with platform.ctx.db.session() as session:
            session.add_all(
                Order(
                    buyer_id=user.id,
                    subject_plugin="bench",
                    subject_kind="ticket",
                    subject_id=str(i),
                    currency="USD",
                    total_minor=2500,
                    captured_minor=0,
                    refunded_minor=0,
                    status="pending",
                    provider="paypal",
                    provider_order_id=pid,
                    capture_attempts=0,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
                for i, pid in enumerate(ids)
            )
    return ids


def deliveries(key: rsa.RSAPrivateKey, cert_url: str, ids: list[str]) -> list[tuple[bytes, dict]]:
    out = []
    for i in range(DELIVERIES):
        kind = i % 3
        if kind == 0 and ids:
            pid = ids.pop()
            event = {
                "id": f"WH-{uuid.uuid4().hex[:12]}",
                "event_type": "PAYMENT.CAPTURE.COMPLETED",
                "resource": {
                    "id": f"CAP{pid}",
                    "status": "COMPLETED",
                    "amount": {"currency_code": "USD", "value": "25.00"},
                    "supplementary_data": {"related_ids": {"order_id": pid}},
                },
            }
        else:
            event = {"id": f"WH-{uuid.uuid4().hex[:12]}", "event_type": "RISK.DISPUTE.CREATED"}
        body = json.dumps(event).encode()
        tid = str(uuid.uuid4())
        out.append((body, signed(key, cert_url, body, tid)))
        if kind == 0 and i % 9 == 0:
            out.append((body, out[-1][1]))  # a redelivery of the same transmission
    return out


async def run(directory: Path) -> None:
    from platform_payments.models import Order

    fake = FakePayPal().start()
    try:
        key, cert_url = certificate(fake)
        async with fresh_database("postgresql", directory) as url:
            config = directory / "plugins.toml"
            paypal = {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "base_url": fake.url,
                "webhook_id": WEBHOOK_ID,
                "cert_url_prefixes": [f"{fake.url}/certs/"],
            }
            doc = {
                "core": {
                    "database_url": url,
                    "secret_key": "k" * 40,
                    "log_level": "WARNING",
                    "background": False,
                    "database": {"pool_size": CONCURRENCY},
                },
                "plugins": {"enabled": ["payments"], "payments": {"paypal": paypal}},
            }
            config.write_text(tomlkit.dumps(doc))
            ids = await seed(config)
            work = deliveries(key, cert_url, list(ids))
            async with served(config) as base, httpx.AsyncClient(base_url=base, timeout=60) as c:
                path = "/api/payments/webhooks/paypal"
                warm = json.dumps({"id": "w", "event_type": "WARM.UP"}).encode()
                await c.post(path, content=warm, headers=signed(key, cert_url, warm, "warm"))
                requests = [http_request("POST", path, body, headers) for body, headers in work]
                cpu, start = children_cpu_seconds(), time.perf_counter()
                answers = await send_all(base, requests, CONCURRENCY)
                elapsed = time.perf_counter() - start
                server_cpu = children_cpu_seconds() - cpu
                outcomes: Counter[str] = Counter(
                    json.loads(body).get("outcome", str(status)) for status, body in answers
                )
                # the same server and client on /healthz: what this machine allows at all
                probes = [http_request("GET", "/healthz")] * len(work)
                t = time.perf_counter()
                probed = Counter(status for status, _ in await send_all(base, probes, CONCURRENCY))
                baseline = len(work) / (time.perf_counter() - t)
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(url)
            async with engine.connect() as conn:
                paid = await conn.scalar(
                    select(func.count()).select_from(Order).where(Order.status == "paid")
                )
            await engine.dispose()
            header("payments webhooks on postgresql")
            row("deliveries (verified, stored, applied)", f"{len(work)} in {elapsed:.2f} s")
            row("deliveries/s", f"{len(work) / elapsed:.0f}")
            row("server CPU ms per delivery", f"{server_cpu / len(work) * 1000:.2f}")
            row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
            row("orders paid (each once)", f"{paid} of {ORDERS}")
            row(
                "baseline: GET /healthz on the same server, req/s",
                f"{baseline:.0f} ({', '.join(f'{k}: {v}' for k, v in sorted(probed.items()))})",
            )
    finally:
        fake.stop()


def main() -> None:
    if not pg_reachable():
        header("payments webhooks on postgresql")
        row("skipped", "PostgreSQL unreachable")
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp)))


if __name__ == "__main__":
    main()
