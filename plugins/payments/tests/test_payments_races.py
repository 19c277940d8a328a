"""Races at a running ``platformctl serve`` (SQLite and PostgreSQL) with PayPal on the fake:

- 20 concurrent refunds that together exceed the captured amount refund at most it, also
  when PayPal answers them PENDING (the reservations never exceed it);
- 20 concurrent captures of one order capture once (at PayPal too);
- concurrent duplicates with one Idempotency-Key reach PayPal once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomlkit
from platform_payments.fakepaypal import FakePayPal

from platform_core.testing import fresh_database, prepared, served

N = 20
BODY = {
    "currency": "USD",
    "items": [{"description": "Seat", "quantity": 1, "unit_price": "15.00"}],
    "subject": {"plugin": "shop", "kind": "seat", "id": "1"},
}


def _config(path: Path, url: str, fake: FakePayPal) -> None:
    paypal = {
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
        "base_url": fake.url,
        "timeout_seconds": 5.0,
    }
    doc = {
        "core": {
            "database_url": url,
            "secret_key": "k" * 40,
            "log_level": "WARNING",
            "background": False,
        },
        "plugins": {"enabled": ["payments"], "payments": {"paypal": paypal}},
    }
    path.write_text(tomlkit.dumps(doc))


@pytest.fixture(params=["sqlite", "postgresql"])
async def server(request, tmp_path) -> Any:
    """``platformctl serve`` with payments on a fresh database, PayPal on the fake."""
    fake = FakePayPal().start()
    try:
        async with fresh_database(request.param, tmp_path) as url:
            config = tmp_path / "plugins.toml"
            _config(config, url, fake)
            async with prepared(config) as platform:
                tokens = {role: await platform.token(role) for role in ("admin", "member")}
            async with served(config) as base:
                clients = {
                    role: httpx.AsyncClient(
                        base_url=base, headers={"Authorization": f"Bearer {t}"}, timeout=60
                    )
                    for role, t in tokens.items()
                }
                try:
                    yield {"clients": clients, "paypal": fake}
                finally:
                    for c in clients.values():
                        await c.aclose()
    finally:
        fake.stop()


async def _approved(member: httpx.AsyncClient, fake: FakePayPal) -> dict:
    r = await member.post("/api/payments/orders", json=BODY)
    assert r.status_code == 201, r.text
    pay = await member.post(
        f"/api/payments/orders/{r.json()['id']}/pay",
        json={"provider": "paypal"},
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert pay.status_code == 200, pay.text
    fake.approve(pay.json()["provider_order_id"])
    return pay.json()


def _capture(client: httpx.AsyncClient, order_id: int, key: str) -> Any:
    return client.post(f"/api/payments/orders/{order_id}/capture", headers={"Idempotency-Key": key})


async def test_concurrent_captures_capture_once(server):
    member, fake = server["clients"]["member"], server["paypal"]
    order = await _approved(member, fake)
    answers = await asyncio.gather(
        *(_capture(member, order["id"], uuid.uuid4().hex) for _ in range(N))
    )
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 409: N - 1}, [r.text for r in answers if r.status_code >= 500]
    for r in answers:
        if r.status_code == 409:
            assert r.json()["current_state"] == "paid", r.text
    assert fake.calls["capture"] == 1 and len(fake.captures) == 1
    got = (await member.get(f"/api/payments/orders/{order['id']}")).json()
    assert got["status"] == "paid" and got["captured"] == "15.00"


async def test_concurrent_refunds_never_exceed_the_captured_amount(server):
    admin, member, fake = server["clients"]["admin"], server["clients"]["member"], server["paypal"]
    order = await _approved(member, fake)
    assert (await _capture(member, order["id"], uuid.uuid4().hex)).status_code == 200
    answers = await asyncio.gather(
        *(
            admin.post(
                f"/api/payments/orders/{order['id']}/refunds",
                json={"amount": "1.00", "reason": f"race {i}"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            for i in range(N)
        )
    )
    codes = Counter(r.status_code for r in answers)
    assert codes == {201: 15, 409: 5}, [r.text for r in answers if r.status_code >= 500]
    got = (await member.get(f"/api/payments/orders/{order['id']}")).json()
    assert got["status"] == "refunded" and got["refunded"] == "15.00"
    [capture] = fake.captures.values()
    assert capture["refunded"] == "15.00" and fake.calls["refund"] == 15
    ledger = (await admin.get("/api/payments/ledger")).json()
    assert ledger["ok"], ledger


async def test_concurrent_pending_refunds_never_reserve_more_than_captured(server):
    admin, member, fake = server["clients"]["admin"], server["clients"]["member"], server["paypal"]
    order = await _approved(member, fake)
    assert (await _capture(member, order["id"], uuid.uuid4().hex)).status_code == 200
    fake.fail_next("refund", "pending", times=N)
    answers = await asyncio.gather(
        *(
            admin.post(
                f"/api/payments/orders/{order['id']}/refunds",
                json={"amount": "1.00", "reason": f"race {i}"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            for i in range(N)
        )
    )
    codes = Counter(r.status_code for r in answers)
    assert codes == {201: 15, 409: 5}, [r.text for r in answers if r.status_code >= 500]
    assert {r.json()["transaction"]["status"] for r in answers if r.status_code == 201} == {
        "pending"
    }
    got = (await member.get(f"/api/payments/orders/{order['id']}")).json()
    assert (got["status"], got["refunded"], got["refund_pending"], got["refundable"]) == (
        "paid",
        "0.00",
        "15.00",
        "0.00",
    )
    assert fake.calls["refund"] == 15
    ledger = (await admin.get("/api/payments/ledger")).json()
    assert ledger["ok"], ledger


async def test_concurrent_duplicates_of_one_key_reach_paypal_once(server):
    member, fake = server["clients"]["member"], server["paypal"]
    order = await _approved(member, fake)
    key = uuid.uuid4().hex
    answers = await asyncio.gather(*(_capture(member, order["id"], key) for _ in range(10)))
    codes = Counter(r.status_code for r in answers)
    assert set(codes) <= {200, 409}, codes
    assert codes[200] >= 1
    for r in answers:
        if r.status_code == 409:
            assert r.json()["state"] == "running", r.text  # in progress, not a second capture
    assert [k for op, k in fake.request_ids if op == "capture"] == [key]
