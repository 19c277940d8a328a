"""PayPal refunds that come back PENDING: they reserve their amount, move the order only
when they complete (polled by the reconcile job, or told by the refund webhook), and a
failed or cancelled one releases its reservation and says so in an event."""

from __future__ import annotations

import json
import uuid

import pytest
from platform_payments.models import Order, Transaction
from sqlalchemy import select, update

from platform_core import utcnow
from platform_core.testing import EventRecord

URL = "/api/payments/webhooks/paypal"


async def _reconcile(platform) -> dict:
    return await platform.ctx.jobs["payments.reconcile"].func(platform.ctx)


async def _ledger(platform) -> dict:
    return await platform.ctx.jobs["payments.ledger_check"].func(platform.ctx)


async def _order(shop, order_id) -> dict:
    return (await shop.admin.get(f"/api/payments/orders/{order_id}")).json()


async def _refund_txs(shop, order_id) -> list[tuple[str, str]]:
    r = await shop.admin.get(f"/api/payments/orders/{order_id}/transactions")
    return [(t["status"], t["amount"]) for t in r.json() if t["kind"] == "refund"]


async def _events(platform, name: str) -> list[dict]:
    async with platform.ctx.db.session() as s:
        return list(await s.scalars(select(EventRecord.payload).where(EventRecord.name == name)))


async def _pending_refund(shop, paypal, amount: str | None = "5.00") -> tuple[dict, str]:
    """A paid PayPal order with a refund of ``amount`` that PayPal answered PENDING."""
    paid = await shop.paid_paypal(paypal)
    paypal.fail_next("refund", "pending")
    r = await shop.refund(paid["id"], amount)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["transaction"]["status"] == "pending"
    return paid, out["transaction"]["provider_ref"]


def _refund_webhook(paypal, refund_id: str, status: str = "COMPLETED") -> bytes:
    refund = paypal.refunds[refund_id]
    resource = {
        "id": refund_id,
        "status": status,
        "amount": refund["amount"],
        "links": refund["links"],
    }
    event = {
        "id": f"WH-{uuid.uuid4().hex[:12]}",
        "event_type": "PAYMENT.CAPTURE.REFUNDED",
        "resource": resource,
    }
    return json.dumps(event).encode()


async def test_a_pending_refund_reserves_but_does_not_refund(shop, paypal, platform):
    paid, _ = await _pending_refund(shop, paypal, "5.00")
    got = await _order(shop, paid["id"])
    assert got["status"] == "paid", got  # not partially_refunded while PayPal is pending
    assert (got["refunded"], got["refund_pending"], got["refundable"]) == (
        "0.00",
        "5.00",
        "10.00",
    )
    # the reservation counts against what is left: 10.01 is too much, 10.00 is fine
    too_much = await shop.refund(paid["id"], "10.01")
    assert too_much.status_code == 409 and "exceeds" in too_much.json()["detail"]
    rest = await shop.refund(paid["id"], "10.00")
    assert rest.status_code == 201 and rest.json()["order"]["status"] == "partially_refunded"
    assert await _ledger(platform) == {"discrepancies": 0}
    await platform.deliver_events()
    refunded = await _events(platform, "payments.order.refunded")
    assert [e["amount"] for e in refunded] == ["10.00"]  # the pending one is not announced


async def test_reconcile_completes_a_pending_refund(shop, paypal, platform):
    paid, refund_id = await _pending_refund(shop, paypal, "5.00")
    still = await _reconcile(platform)
    assert still.get("refund_pending") == 1, still
    assert (await _order(shop, paid["id"]))["status"] == "paid"
    paypal.complete_refund(refund_id)
    counts = await _reconcile(platform)
    assert counts.get("refund_completed") == 1, counts
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refunded"], got["refund_pending"]) == (
        "partially_refunded",
        "5.00",
        "0.00",
    )
    assert await _refund_txs(shop, paid["id"]) == [("completed", "5.00")]
    assert (await _reconcile(platform)).get("refund_completed") is None  # done once
    assert await _ledger(platform) == {"discrepancies": 0}
    await platform.deliver_events()
    [event] = await _events(platform, "payments.order.refunded")
    assert event["amount"] == "5.00" and event["full"] is False
    assert paypal.calls["get_refund"] == 2


async def test_a_full_pending_refund_refunds_the_order_when_completed(shop, paypal, platform):
    paid, refund_id = await _pending_refund(shop, paypal, None)
    assert (await _order(shop, paid["id"]))["refundable"] == "0.00"
    again = await shop.refund(paid["id"], "0.01")
    assert again.status_code == 409
    rest = await shop.refund(paid["id"])  # "all that is left" is nothing: never a 0 refund
    assert rest.status_code == 409 and "nothing is left" in rest.json()["detail"], rest.text
    assert paypal.calls["refund"] == 1
    paypal.complete_refund(refund_id)
    await _reconcile(platform)
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refunded"]) == ("refunded", "15.00")


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
async def test_a_failed_or_cancelled_refund_releases_the_reservation(
    shop, paypal, platform, status
):
    paid, refund_id = await _pending_refund(shop, paypal, "5.00")
    paypal.fail_refund(refund_id, status)
    counts = await _reconcile(platform)
    assert counts.get(f"refund_{status.lower()}") == 1, counts
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refunded"], got["refund_pending"], got["refundable"]) == (
        "paid",
        "0.00",
        "0.00",
        "15.00",
    )
    assert await _refund_txs(shop, paid["id"]) == [(status.lower(), "5.00")]
    assert await _ledger(platform) == {"discrepancies": 0}
    await platform.deliver_events()
    [failed] = await _events(platform, "payments.order.refund_failed")
    assert failed["status"] == status.lower() and failed["amount"] == "5.00"
    assert failed["refund_ref"] == refund_id
    assert await _events(platform, "payments.order.refunded") == []
    # the released amount may be refunded again, in full
    r = await shop.refund(paid["id"])
    assert r.status_code == 201 and r.json()["order"]["status"] == "refunded", r.text


async def test_the_refund_webhook_completes_a_pending_refund_once(
    shop, paypal, platform, anon_client, signer
):
    paid, refund_id = await _pending_refund(shop, paypal, "5.00")
    paypal.complete_refund(refund_id)
    raw = _refund_webhook(paypal, refund_id)
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.status_code == 200 and r.json()["outcome"] == "applied", r.text
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refunded"], got["refund_pending"]) == (
        "partially_refunded",
        "5.00",
        "0.00",
    )
    # the same event again under another transmission id, then the poll: nothing moves
    again = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert again.json()["outcome"] == "no_change"
    assert (await _reconcile(platform)).get("refund_completed") is None
    assert await _refund_txs(shop, paid["id"]) == [("completed", "5.00")]
    assert await _ledger(platform) == {"discrepancies": 0}
    await platform.deliver_events()
    assert len(await _events(platform, "payments.order.refunded")) == 1


async def test_a_pending_refund_webhook_changes_nothing(
    shop, paypal, platform, anon_client, signer
):
    paid, refund_id = await _pending_refund(shop, paypal, "5.00")
    raw = _refund_webhook(paypal, refund_id, "PENDING")
    r = await anon_client.post(URL, content=raw, headers=signer.headers(raw))
    assert r.json()["outcome"] == "no_change"
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refund_pending"]) == ("paid", "5.00")


async def test_a_refund_made_at_paypal_reported_pending_reserves_then_completes(
    shop, paypal, platform, anon_client, signer
):
    """A refund made in PayPal's dashboard (unknown here) arriving PENDING is recorded and
    reserved; its COMPLETED delivery later completes it."""
    paid = await shop.paid_paypal(paypal)
    [capture_id] = paypal.captures
    up = [{"href": f"{paypal.url}/v2/payments/captures/{capture_id}", "rel": "up"}]
    resource = {
        "id": "1RDASHBOARD",
        "status": "PENDING",
        "amount": {"currency_code": "USD", "value": "4.00"},
        "links": up,
    }
    event = {"id": "WH-d1", "event_type": "PAYMENT.CAPTURE.REFUNDED", "resource": resource}
    raw = json.dumps(event).encode()
    assert (await anon_client.post(URL, content=raw, headers=signer.headers(raw))).json()[
        "outcome"
    ] == "applied"
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refund_pending"]) == ("paid", "4.00")
    event["resource"] = resource | {"status": "COMPLETED"}
    raw = json.dumps(event).encode()
    assert (await anon_client.post(URL, content=raw, headers=signer.headers(raw))).json()[
        "outcome"
    ] == "applied"
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refunded"], got["refund_pending"]) == (
        "partially_refunded",
        "4.00",
        "0.00",
    )
    assert await _ledger(platform) == {"discrepancies": 0}


async def test_the_ledger_check_agrees_with_pending_refunds(shop, paypal, platform):
    """A pending refund counted as refunded (the old rule) is a discrepancy now; so is a
    reservation no pending refund explains."""
    paid, _ = await _pending_refund(shop, paypal, "5.00")
    assert await _ledger(platform) == {"discrepancies": 0}
    async with platform.ctx.db.session() as s:
        await s.execute(
            update(Order)
            .where(Order.id == paid["id"])
            .values(refunded_minor=500, refund_pending_minor=0, status="partially_refunded")
        )
    bad = (await shop.admin.get("/api/payments/ledger")).json()
    [finding] = bad["findings"]
    assert any("refunded 500 but completed refunds sum to 0" in p for p in finding["problems"])
    assert any("refund_pending 0 but pending refunds sum to 500" in p for p in finding["problems"])
    async with platform.ctx.db.session() as s:
        await s.execute(
            update(Order)
            .where(Order.id == paid["id"])
            .values(refunded_minor=0, refund_pending_minor=1100, status="paid")
        )
        await s.execute(
            update(Transaction).values(amount_minor=1100).where(Transaction.kind == "refund")
        )
    ok = await shop.refund(paid["id"], "4.00")
    assert ok.status_code == 201
    assert await _ledger(platform) == {"discrepancies": 0}  # 4 + 11 pending = 15 captured


async def test_a_poll_failing_at_paypal_keeps_the_refund_pending(shop, paypal, platform):
    paid, refund_id = await _pending_refund(shop, paypal, "5.00")
    paypal.complete_refund(refund_id)
    paypal.fail_next("get_refund", "500")
    counts = await _reconcile(platform)
    assert counts.get("provider_error") == 1, counts
    assert (await _order(shop, paid["id"]))["refund_pending"] == "5.00"
    assert (await _reconcile(platform)).get("refund_completed") == 1


async def test_the_migration_moves_pending_refunds_out_of_refunded(shop, paypal, platform):
    """Rows written under payments_0001 counted a pending refund as refunded; upgrading
    moves it to the reservation and the order back to ``paid``; downgrading restores it."""
    from sqlalchemy import text

    paid = await shop.paid_paypal(paypal)
    await platform.migrate("payments", "payments_0001")
    async with platform.ctx.db.session() as s:
        await s.execute(
            text(
                "UPDATE payments_orders SET refunded_minor = 500, status = 'partially_refunded'"
                " WHERE id = :id"
            ),
            {"id": paid["id"]},
        )
        s.add(  # the transactions table is the same at both revisions
            Transaction(
                order_id=paid["id"],
                kind="refund",
                status="pending",
                amount_minor=500,
                provider="paypal",
                provider_ref="1ROLD",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    await platform.migrate("payments", "heads")
    got = await _order(shop, paid["id"])
    assert (got["status"], got["refunded"], got["refund_pending"]) == ("paid", "0.00", "5.00")
    assert await _ledger(platform) == {"discrepancies": 0}
    await platform.migrate("payments", "payments_0001")
    async with platform.ctx.db.session() as s:
        row = (
            await s.execute(
                text("SELECT status, refunded_minor FROM payments_orders WHERE id = :id"),
                {"id": paid["id"]},
            )
        ).one()
    assert tuple(row) == ("partially_refunded", 500)
    await platform.migrate("payments", "heads")
