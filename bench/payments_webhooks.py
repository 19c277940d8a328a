"""Payments: verified PayPal webhook deliveries processed per second on PostgreSQL.

Two real ``platformctl serve`` processes on one fresh PostgreSQL database, with local
signature verification (RSA-SHA256, the certificate served by the fake PayPal and cached).
Rounds alternate between two configurations, ``ROUNDS`` of each: "1 process" (every
connection to the first server) and "2 processes" (connections spread round robin over
both, as a load balancer would; the machine this was written on has 2 cores, see
docs/scaling.md). Each round has its own ``ORDERS`` pending PayPal orders and sends
``DELIVERIES`` signed deliveries plus redeliveries, ``CONCURRENCY`` at a time: a
``PAYMENT.CAPTURE.COMPLETED`` for each order (each pays it), a redelivery of every third
of those (a duplicate: stored once) and unknown events (stored, ignored). Deliveries are
signed, and their HTTP requests built, before the clock starts; they go out over
keep-alive connections from a raw asyncio client (``_common.send_all``): httpx spent about
2 ms of CPU per request, so on this 2-core machine it, not the server, set the pace. Each
server's ``[core.database] pool_size`` is ``CONCURRENCY``, so no request opens a
connection of its own (see docs/scaling.md, Sizing).

Prints, per configuration, the deliveries/s of each round and their median (target: at
least 500/s), and the CPU time per delivery of the servers, of PostgreSQL and of the
client (from ``/proc``: steadier than a rate on a shared machine, and it shows what the
machine's two cores were spent on); checks that every order ended paid exactly once; and,
for scale, one server's ``GET /healthz`` requests/s with the same client and concurrency.

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import tomlkit
from _common import (
    children_cpu_seconds,
    header,
    http_request,
    median,
    named_cpu_seconds,
    pg_reachable,
    row,
    send_all,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from platform_payments.fakepaypal import CLIENT_ID, CLIENT_SECRET, FakePayPal
from sqlalchemy import func, select

from platform_core.testing import fresh_database, prepared, served

ORDERS = int(os.environ.get("ORDERS", "1500"))  # per round
DELIVERIES = int(os.environ.get("DELIVERIES", "4500"))  # per round, before redeliveries
CONCURRENCY = int(os.environ.get("CONCURRENCY", "16"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))  # per configuration
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


async def seed(config: Path, count: int) -> list[str]:
    """``count`` pending PayPal orders written directly; returns their PayPal order ids."""
    from platform_payments.models import Order

    from platform_core import utcnow

    async with prepared(config) as platform:
        user = await platform.user("member")
        ids = [f"5OBENCH{i:06d}" for i in range(count)]
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


def deliveries(
    key: rsa.RSAPrivateKey, cert_url: str, ids: list[str], count: int = DELIVERIES
) -> list[tuple[bytes, dict]]:
    """``count`` signed deliveries: a capture-completed of each of ``ids`` (one in three),
    unknown events, and a redelivery of every third capture."""
    out = []
    for i in range(count):
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


@dataclass
class Round:
    """One timed round: deliveries/s and the CPU milliseconds per delivery of the servers,
    of PostgreSQL and of this (the client) process."""

    rate: float
    server_ms: float
    postgres_ms: float
    client_ms: float


async def timed_round(bases: list[str], work: list[tuple[bytes, dict]]) -> tuple[Round, Counter]:
    """Send ``work`` to ``bases`` (connections spread round robin); the round and the
    deliveries' outcomes."""
    path = "/api/payments/webhooks/paypal"
    requests = [http_request("POST", path, body, headers) for body, headers in work]
    server, database = children_cpu_seconds(), named_cpu_seconds("postgres")
    client, start = time.process_time(), time.perf_counter()
    answers = await send_all(bases, requests, CONCURRENCY)
    elapsed = time.perf_counter() - start
    per = 1000 / len(work)
    measured = Round(
        rate=len(work) / elapsed,
        server_ms=(children_cpu_seconds() - server) * per,
        postgres_ms=(named_cpu_seconds("postgres") - database) * per,
        client_ms=(time.process_time() - client) * per,
    )
    outcomes: Counter[str] = Counter(
        json.loads(body).get("outcome", str(status)) for status, body in answers
    )
    return measured, outcomes


CONFIGURATIONS = ("1 process", "2 processes")


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
            total = ORDERS * ROUNDS * len(CONFIGURATIONS)
            ids = await seed(config, total)
            rounds: dict[str, list[Round]] = {name: [] for name in CONFIGURATIONS}
            outcomes: Counter[str] = Counter()
            async with served(config) as first, served(config) as second:
                warm = json.dumps({"id": "w", "event_type": "WARM.UP"}).encode()
                async with httpx.AsyncClient(timeout=60) as c:
                    for base in (first, second):  # the certificate, the pools, imports
                        headers = signed(key, cert_url, warm, f"warm-{base}")
                        await c.post(
                            f"{base}/api/payments/webhooks/paypal", content=warm, headers=headers
                        )
                for _ in range(ROUNDS):
                    for name, bases in zip(CONFIGURATIONS, ([first], [first, second]), strict=True):
                        batch, ids = ids[:ORDERS], ids[ORDERS:]
                        measured, seen = await timed_round(bases, deliveries(key, cert_url, batch))
                        rounds[name].append(measured)
                        outcomes.update(seen)
                # the same client on /healthz of one server: what this machine allows at all
                probes = [http_request("GET", "/healthz")] * (DELIVERIES * 10 // 9)
                t = time.perf_counter()
                probed = Counter(status for status, _ in await send_all(first, probes, CONCURRENCY))
                baseline = len(probes) / (time.perf_counter() - t)
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(url)
            async with engine.connect() as conn:
                paid = await conn.scalar(
                    select(func.count()).select_from(Order).where(Order.status == "paid")
                )
            await engine.dispose()
            header("payments webhooks on postgresql")
            row(
                "rounds (alternating)",
                f"{ROUNDS} per configuration, {CONCURRENCY} connections; each: {ORDERS} "
                f"captures, {DELIVERIES - ORDERS} unknown events, {ORDERS // 3} redeliveries",
            )
            for name, measured in rounds.items():
                rates = ", ".join(f"{r.rate:.0f}" for r in measured)
                row(
                    f"{name}: deliveries/s (rounds: {rates})",
                    f"{median([r.rate for r in measured]):.0f}",
                )
                cpu = (
                    f"servers {median([r.server_ms for r in measured]):.2f}, "
                    f"PostgreSQL {median([r.postgres_ms for r in measured]):.2f}, "
                    f"client {median([r.client_ms for r in measured]):.2f}"
                )
                row(f"{name}: CPU ms per delivery (medians)", cpu)
            row("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
            row("orders paid (each once)", f"{paid} of {total}")
            row(
                "baseline: GET /healthz, one server, req/s",
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
