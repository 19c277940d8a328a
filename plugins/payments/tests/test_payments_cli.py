"""``platformctl payments orders list|show|refund``, ``providers list``, ``ledger check``."""

from __future__ import annotations

import functools

import pytest
from platform_payments.models import Order
from sqlalchemy import update


@pytest.fixture
def cli(run_cli):
    return functools.partial(run_cli, "payments")


async def test_orders_list_and_show(cli, shop):
    paid = await shop.paid_manual()
    listed = await cli("orders", "list")
    assert listed.exit_code == 0, listed.output
    assert (
        "shop/cart/42" in listed.stdout and "15.00 USD" in listed.stdout and "paid" in listed.stdout
    )
    shown = await cli("orders", "show", str(paid["id"]))
    assert shown.exit_code == 0, shown.output
    assert (
        "2 x Mug @ 7.50 USD" in shown.stdout
        and "capture completed 15.00 USD manual BANK-123" in shown.stdout
    )


async def test_orders_list_refuses_an_unknown_status(cli):
    result = await cli("orders", "list", "--status", "nope")
    assert result.exit_code == 2 and "--status" in result.stderr


async def test_orders_refund_with_amount_and_too_much(cli, shop):
    paid = await shop.paid_manual()
    result = await cli(
        "orders", "refund", str(paid["id"]), "--amount", "5.00", "--reason", "goodwill"
    )
    assert result.exit_code == 0, result.output
    assert "now partially_refunded" in result.stdout
    result = await cli("orders", "refund", str(paid["id"]), "--amount", "11", "--reason", "x")
    assert result.exit_code == 1 and "exceeds" in result.stderr
    got = (await shop.admin.get(f"/api/payments/orders/{paid['id']}")).json()
    assert got["refunded"] == "5.00"


async def test_refund_of_a_missing_order_is_one_line(cli):
    result = await cli("orders", "refund", "999", "--reason", "x")
    assert result.exit_code == 1 and result.stderr.startswith("error: order 999 not found")


async def test_providers_list_never_shows_credentials(cli):
    from platform_payments.fakepaypal import CLIENT_SECRET

    result = await cli("providers", "list")
    assert result.exit_code == 0, result.output
    assert "manual" in result.stdout and "paypal" in result.stdout
    assert "[plugins.payments.paypal]" not in result.stdout  # configured here: no problem shown
    assert CLIENT_SECRET not in result.output


async def test_ledger_check_exits_1_on_a_discrepancy(cli, shop, platform):
    paid = await shop.paid_manual()
    ok = await cli("ledger", "check")
    assert ok.exit_code == 0 and "ledger ok" in ok.stdout
    async with platform.ctx.db.session() as s:
        await s.execute(update(Order).where(Order.id == paid["id"]).values(refunded_minor=5))
    bad = await cli("ledger", "check")
    assert bad.exit_code == 1 and f"order {paid['id']}:" in bad.stdout


async def test_doctor_shows_a_ledger_discrepancy(run_cli, shop, platform):
    paid = await shop.paid_manual()
    async with platform.ctx.db.session() as s:
        await s.execute(update(Order).where(Order.id == paid["id"]).values(refunded_minor=5))
    result = await run_cli("doctor")
    assert result.exit_code != 0
    line = next(x for x in result.output.splitlines() if "payments.ledger" in x)
    assert "disagree with their transactions" in line and str(paid["id"]) in line


async def test_providers_list_shows_why_paypal_is_not_configured(
    platform_factory, tmp_path, monkeypatch
):
    from platform_core.testing import PlatformCli

    p = await platform_factory(enabled=["payments"])
    result = await PlatformCli(p, tmp_path, monkeypatch)("payments", "providers", "list")
    assert result.exit_code == 0, result.output
    assert "set [plugins.payments.paypal] client_id" in " ".join(result.stdout.split())


async def _refund_actors(shop, order_id):
    r = await shop.admin.get(f"/api/payments/orders/{order_id}/transactions")
    return [t["actor"] for t in r.json() if t["kind"] == "refund"]


async def test_a_cli_refund_records_the_os_user_like_the_core_cli(cli, shop, monkeypatch):
    """Without ``--actor`` a refund is recorded as ``platformctl:<os user>`` (what the core's
    ``platformctl users`` commands record), not as an anonymous ``system``."""
    monkeypatch.setenv("LOGNAME", "alice-ops")
    paid = await shop.paid_manual()
    result = await cli("orders", "refund", str(paid["id"]), "--amount", "1.00", "--reason", "x")
    assert result.exit_code == 0, result.output
    assert await _refund_actors(shop, paid["id"]) == ["platformctl:alice-ops"]
    shown = await cli("orders", "show", str(paid["id"]))
    assert "(by platformctl:alice-ops)" in shown.stdout


async def test_a_cli_refund_records_an_explicit_actor(cli, shop):
    paid = await shop.paid_manual()
    result = await cli(
        "orders", "refund", str(paid["id"]), "--reason", "x", "--actor", "support:bob"
    )
    assert result.exit_code == 0, result.output
    assert "now refunded" in result.stdout
    assert await _refund_actors(shop, paid["id"]) == ["support:bob"]


async def test_a_cli_refund_refuses_a_bad_actor(cli, shop):
    paid = await shop.paid_manual()
    result = await cli("orders", "refund", str(paid["id"]), "--reason", "x", "--actor", "a\nb")
    assert result.exit_code == 2 and "--actor" in result.stderr
    assert await _refund_actors(shop, paid["id"]) == []
