"""Payments: order create + pay + capture against the fake PayPal, and idempotent replays.

At a real ``platformctl serve`` (one process, like production's smallest deployment) with
PayPal pointed at :class:`platform_payments.fakepaypal.FakePayPal` on loopback:

- ``ORDERS`` orders, ``CONCURRENCY`` at a time, each: ``POST /orders``, ``POST .../pay``
  (the payer approves at the fake), ``POST .../capture``: requests/s and orders/s;
- ``REPLAYS`` sequential replays of one capture with its ``Idempotency-Key``: p50 and p95
  latency (target: p50 under 5 ms), sent from a raw asyncio client on one keep-alive
  connection (``_common.timed_one_by_one``), so that the figure is the server's and the
  loopback's: httpx alone spent 1 to 2 ms of CPU per request.

Run: ``.venv/bin/python bench/payments_orders.py`` (``BACKENDS=sqlite,postgresql`` by
default; PostgreSQL is skipped when unreachable).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import tomlkit
from _common import header, http_request, pg_reachable, row, timed_one_by_one
from platform_payments.fakepaypal import CLIENT_ID, CLIENT_SECRET, FakePayPal

from platform_core.testing import fresh_database, prepared, served

ORDERS = int(os.environ.get("ORDERS", "200"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "8"))
REPLAYS = int(os.environ.get("REPLAYS", "300"))
BACKENDS = os.environ.get("BACKENDS", "sqlite,postgresql").split(",")
BODY = {
    "currency": "USD",
    "items": [{"description": "Ticket", "quantity": 2, "unit_price": "12.50"}],
    "subject": {"plugin": "bench", "kind": "ticket", "id": "1"},
}


def write_config(path: Path, url: str, fake: FakePayPal) -> None:
    paypal = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": fake.url}
    doc = {
        "core": {"database_url": url, "secret_key": "k" * 40, "log_level": "WARNING"},
        "plugins": {"enabled": ["payments"], "payments": {"paypal": paypal}},
    }
    path.write_text(tomlkit.dumps(doc))


async def one_order(client: httpx.AsyncClient, fake: FakePayPal) -> int:
    """Create, pay, approve, capture: returns the number of requests made."""
    r = await client.post("/api/payments/orders", json=BODY)
    order_id = r.json()["id"]
    pay = await client.post(
        f"/api/payments/orders/{order_id}/pay",
        json={"provider": "paypal"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    fake.approve(pay.json()["provider_order_id"])
    cap = await client.post(
        f"/api/payments/orders/{order_id}/capture", headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert cap.status_code == 200 and cap.json()["status"] == "paid", cap.text
    return 3


async def run(backend: str, directory: Path) -> None:
    fake = FakePayPal().start()
    try:
        async with fresh_database(backend, directory) as url:
            config = directory / f"{backend}.toml"
            write_config(config, url, fake)
            async with prepared(config) as platform:
                token = await platform.token("member")
            async with (
                served(config) as base,
                httpx.AsyncClient(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
                ) as client,
            ):
                await one_order(client, fake)  # warm up
                queue = list(range(ORDERS))
                requests = 0

                async def worker() -> None:
                    nonlocal requests
                    while queue:
                        queue.pop()
                        made = await one_order(client, fake)
                        requests += made

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
                elapsed = time.perf_counter() - start
                header(f"payments orders on {backend}")
                row("orders created + paid + captured", f"{ORDERS} in {elapsed:.2f} s")
                row("requests/s (create, pay, capture)", f"{requests / elapsed:.0f}")
                row("orders/s", f"{ORDERS / elapsed:.1f}")

                r = await client.post("/api/payments/orders", json=BODY)
                order_id = r.json()["id"]
                pay = await client.post(
                    f"/api/payments/orders/{order_id}/pay",
                    json={"provider": "paypal"},
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                fake.approve(pay.json()["provider_order_id"])
                key = uuid.uuid4().hex
                path = f"/api/payments/orders/{order_id}/capture"
                first = await client.post(path, headers={"Idempotency-Key": key})
                assert first.status_code == 200, first.text
                captures = fake.calls["capture"]
                replay = http_request(
                    "POST",
                    path,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
                answers = await timed_one_by_one(base, replay, REPLAYS)
                for _ms, status, head in answers:
                    assert status == 200 and b"\r\nidempotent-replayed: true" in head.lower()
                assert fake.calls["capture"] == captures  # replays never reach PayPal
                times = sorted(ms for ms, _status, _head in answers)
                row("idempotent replay p50", f"{statistics.median(times):.2f} ms")
                row("idempotent replay p95", f"{times[int(len(times) * 0.95)]:.2f} ms")
    finally:
        fake.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for backend in BACKENDS:
            if backend == "postgresql" and not pg_reachable():
                header(f"payments orders on {backend}")
                row("skipped", "PostgreSQL unreachable")
                continue
            asyncio.run(run(backend, Path(tmp)))


if __name__ == "__main__":
    main()
