"""The reconcile and ledger-check jobs, the ledger health check, and the third-party
provider added through ``payments_providers`` only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from platform_payments.models import Order
from platform_payments.providers.base import ProviderResult, StartResult, StatusResult
from sqlalchemy import select, update

from platform_core import hookimpl, utcnow
from platform_core.testing import EventRecord


async def _age(platform, order_id: int, minutes: int) -> None:
    async with platform.ctx.db.session() as s:
        await s.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(created_at=utcnow() - timedelta(minutes=minutes))
        )


async def _reconcile(platform) -> dict:
    return await platform.ctx.jobs["payments.reconcile"].func(platform.ctx)


async def test_reconcile_expires_unapproved_orders_only_when_old(shop, paypal, platform):
    order = await shop.order()
    r = await shop.pay(order["id"], "paypal")
    fresh = await shop.order()
    assert (await _reconcile(platform)).get("expired") is None
    await _age(platform, order["id"], 181)
    await _age(platform, fresh["id"], 10)
    counts = await _reconcile(platform)
    assert counts["expired"] == 1, counts
    assert (await shop.buyer.get(f"/api/payments/orders/{order['id']}")).json()[
        "status"
    ] == "expired"
    assert (await shop.buyer.get(f"/api/payments/orders/{fresh['id']}")).json()[
        "status"
    ] == "created"
    assert r.status_code == 200
    await platform.deliver_events()
    async with platform.ctx.db.session() as s:
        names = list(await s.scalars(select(EventRecord.name)))
    assert "payments.order.expired" in names


async def test_reconcile_keeps_an_approved_order_and_manual_orders_wait_longer(
    shop, paypal, platform
):
    order = await shop.order()
    r = await shop.pay(order["id"], "paypal")
    paypal.approve(r.json()["provider_order_id"])
    manual = await shop.order()
    await shop.pay(manual["id"], "manual")
    await _age(platform, order["id"], 500)
    await _age(platform, manual["id"], 500)
    counts = await _reconcile(platform)
    assert counts.get("approved") == 1 and counts.get("waiting") == 1, counts


async def test_reconcile_retries_a_transient_capture_failure_with_its_key(shop, paypal, platform):
    order = await shop.order()
    r = await shop.pay(order["id"], "paypal")
    paypal.approve(r.json()["provider_order_id"])
    paypal.fail_next("capture", "500")
    assert (await shop.capture(order["id"], "cap-key-1")).status_code == 503
    counts = await _reconcile(platform)
    assert counts.get("captured") == 1, counts
    assert (await shop.buyer.get(f"/api/payments/orders/{order['id']}")).json()["status"] == "paid"
    assert [k for op, k in paypal.request_ids if op == "capture"] == ["cap-key-1", "cap-key-1"]


async def test_reconcile_survives_paypal_being_down(shop, paypal, platform):
    order = await shop.order()
    await shop.pay(order["id"], "paypal")
    paypal.fail_next("get", "500")
    counts = await _reconcile(platform)
    assert counts == {"provider_error": 1}


async def test_ledger_check_reports_a_discrepancy_as_event_and_in_health(shop, platform):
    paid = await shop.paid_manual()
    result = await platform.ctx.jobs["payments.ledger_check"].func(platform.ctx)
    assert result == {"discrepancies": 0}
    ok = await shop.admin.get("/api/payments/ledger")
    assert ok.json() == {"ok": True, "findings": []}
    async with platform.ctx.db.session() as s:
        await s.execute(update(Order).where(Order.id == paid["id"]).values(captured_minor=1400))
    result = await platform.ctx.jobs["payments.ledger_check"].func(platform.ctx)
    assert result == {"discrepancies": 1}
    async with platform.ctx.db.session() as s:
        payloads = list(
            await s.scalars(
                select(EventRecord.payload).where(EventRecord.name == "payments.ledger.discrepancy")
            )
        )
    assert payloads[0]["order_id"] == paid["id"]
    assert any("captured 1400" in p for p in payloads[0]["problems"])
    bad = (await shop.admin.get("/api/payments/ledger")).json()
    assert bad["ok"] is False and bad["findings"][0]["order_id"] == paid["id"]
    # A diagnostic for doctor, not a readiness check: every instance stays in rotation.
    ready = await platform.client().get("/readyz")
    assert ready.status_code == 200 and "payments.ledger" not in ready.text
    from platform_payments.plugin import platform_health

    [ledger] = platform_health(platform.ctx)
    assert ledger.name == "ledger" and ledger.readiness is False  # run by doctor only
    with pytest.raises(RuntimeError, match="disagree with their transactions"):
        await ledger.check()


async def test_ledger_is_admin_only(shop):
    r = await shop.buyer.get("/api/payments/ledger")
    assert r.status_code == 403


class InstantProvider:
    """A provider that takes the money at once (a prepaid wallet)."""

    name = "wallet"
    description = "A prepaid wallet"
    manual = False

    def __init__(self) -> None:
        self.refunds: list[int] = []
        self.voids: list[int] = []
        self.authorize_first = False

    def problem(self):
        return None

    async def start(self, order, *, request_id):
        if self.authorize_first:
            return StartResult(f"W-{order.id}", outcome="authorized", capture_ref=f"WA-{order.id}")
        return StartResult(f"W-{order.id}", outcome="completed", capture_ref=f"WC-{order.id}")

    async def capture(self, order, *, request_id):
        return ProviderResult("completed", f"WC-{order.id}", order.total_minor)

    async def void(self, order, *, request_id):
        self.voids.append(order.id)
        return ProviderResult("completed", f"WV-{order.id}", 0)

    async def refund(self, order, capture_ref, amount_minor, reason, *, request_id):
        self.refunds.append(amount_minor)
        return ProviderResult("completed", f"WR-{len(self.refunds)}", amount_minor)

    async def fetch_status(self, order):
        return StatusResult("captured", f"WC-{order.id}", order.total_minor)

    async def parse_webhook(self, headers, body):
        raise NotImplementedError


class WalletPlugin:
    """A test plugin adding a provider through the extension point only."""

    def __init__(self) -> None:
        self.provider = InstantProvider()

    @hookimpl
    def payments_providers(self, ctx):
        return [self.provider]


@pytest.fixture
def platform_extra_plugins():
    return {"wallet": WalletPlugin()}


async def test_a_plugin_adds_a_provider_through_the_hook(shop, platform, platform_extra_plugins):
    providers = [p["name"] for p in (await shop.buyer.get("/api/payments/providers")).json()]
    assert providers == ["manual", "paypal", "wallet"]
    order = await shop.order()
    r = await shop.pay(order["id"], "wallet")
    assert r.status_code == 200 and r.json()["status"] == "paid", r.text
    refund = await shop.refund(order["id"], "2.50")
    assert refund.status_code == 201 and refund.json()["transaction"]["provider_ref"] == "WR-1"
    assert platform_extra_plugins["wallet"].provider.refunds == [250]


async def test_an_authorizing_provider_holds_then_captures_or_voids(shop, platform_extra_plugins):
    wallet = platform_extra_plugins["wallet"].provider
    wallet.authorize_first = True
    order = await shop.order()
    r = await shop.pay(order["id"], "wallet")
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    r = await shop.capture(order["id"])
    assert r.status_code == 200 and r.json()["status"] == "paid", r.text
    held = await shop.order()
    assert (await shop.pay(held["id"], "wallet")).json()["status"] == "authorized"
    r = await shop.buyer.post(f"/api/payments/orders/{held['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert wallet.voids == [held["id"]]
    txs = (await shop.buyer.get(f"/api/payments/orders/{held['id']}/transactions")).json()
    assert [(t["kind"], t["status"]) for t in txs] == [
        ("authorize", "completed"),
        ("void", "completed"),
    ]
