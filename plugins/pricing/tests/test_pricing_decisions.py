"""Decisions and engines: inputs from reported prices, outcomes, storage, engine selection and
fallback, and tenant isolation of every decision endpoint."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from platform_pricing.engines import Decision
from platform_pricing.models import Client
from sqlalchemy import update

from platform_core import hookimpl

API = "/api/pricing"
OD = 0.10


async def decide(agent: Any, http: Any = None) -> dict[str, Any]:
    r = await (http or agent.http).post(f"{API}/agents/{agent.id}/decide")
    assert r.status_code == 200, r.text
    return r.json()


async def pool_of(agent: Any, zone: str) -> int:
    """The pool id of ``zone`` as the agent's last decision saw it."""
    body = await decide(agent)
    return next(p["pool_id"] for p in body["inputs"]["pools"] if p["zone"] == zone)


# -- outcomes ------------------------------------------------------------------------------


async def test_decide_stays_when_the_current_pool_is_cheapest(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030), ("us-east-1b", 0.035))
    body = await decide(a)
    assert body["outcome"] == "stay"
    assert body["target_pool_id"] is None
    assert body["engine"] == body["requested_engine"] == "rules"
    assert body["fallback_reason"] is None
    assert body["details"]["rule"] == "saving-absolute"  # pool b would cost more
    assert body["id"] is not None
    assert {p["zone"] for p in body["inputs"]["pools"]} == {"us-east-1a", "us-east-1b"}


async def test_decide_switches_to_a_cheaper_pool(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030), ("us-east-1c", 0.040))
    body = await decide(a)
    assert body["outcome"] == "switch"
    target = next(p for p in body["inputs"]["pools"] if p["pool_id"] == body["target_pool_id"])
    assert target["zone"] == "us-east-1b"
    assert body["expected_saving_per_hour"] == pytest.approx(0.02)
    assert "saves" in body["reason"]


async def test_decide_ignores_other_instance_types_and_regions(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050))
    other = {
        "report_id": "other",
        "points": [
            {
                "region": "us-east-1",
                "zone": "us-east-1b",
                "instance_type": "c5.large",
                "spot_price": 0.001,
                "on_demand_price": OD,
                "observed_at": datetime.now(UTC).isoformat(),
            },
            {
                "region": "eu-west-1",
                "zone": "eu-west-1a",
                "instance_type": "m5.large",
                "spot_price": 0.001,
                "on_demand_price": OD,
                "observed_at": datetime.now(UTC).isoformat(),
            },
        ],
    }
    r = await a.http.post(f"{API}/agents/{a.id}/reports/pricing", json=other)
    assert r.status_code == 201, r.text
    body = await decide(a)
    assert body["outcome"] == "stay"
    assert [p["zone"] for p in body["inputs"]["pools"]] == ["us-east-1a"]


async def test_decide_ignores_pools_priced_only_by_another_client(tenants):
    c1, c2 = await tenants.client(), await tenants.client()
    a1, a2 = await tenants.agent(c1), await tenants.agent(c2)
    await a1.report_prices(("us-east-1a", 0.050))
    await a2.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.001))
    body = await decide(a1)
    assert body["outcome"] == "stay"
    assert len(body["inputs"]["pools"]) == 1


async def test_decide_goes_on_demand_when_spot_is_above_on_demand(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.12), ("us-east-1b", 0.15))
    body = await decide(a)
    assert body["outcome"] == "on-demand"
    assert body["target_pool_id"] is None
    assert body["details"]["rule"] == "overpriced-on-demand"
    assert body["expected_saving_per_hour"] == pytest.approx(0.02)


async def test_decide_leaves_a_pool_with_a_rebalance_notice(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030), ("us-east-1b", 0.033))
    assert (await decide(a))["outcome"] == "stay"
    r = await a.http.post(
        f"{API}/agents/{a.id}/reports/rebalance",
        json={"report_id": "rb-1", "noticed_at": datetime.now(UTC).isoformat()},
    )
    assert r.status_code in (200, 201), r.text
    body = await decide(a)
    assert body["inputs"]["current_pool_interrupted"] is True
    assert body["outcome"] == "switch"
    assert body["details"]["rule"] == "interrupted-switch"


async def test_decide_avoids_a_recently_interrupted_pool(tenants):
    c = await tenants.client()
    a, b = await tenants.agent(c), await tenants.agent(c, zone="us-east-1b")
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    r = await b.http.post(
        f"{API}/agents/{b.id}/reports/rebalance",
        json={"report_id": "rb-b", "noticed_at": datetime.now(UTC).isoformat()},
    )
    assert r.status_code in (200, 201), r.text
    body = await decide(a)
    pool_b = next(p for p in body["inputs"]["pools"] if p["zone"] == "us-east-1b")
    assert pool_b["interruptions_recent"] == 1
    assert pool_b["last_interruption_at"] is not None
    assert body["inputs"]["current_pool_interrupted"] is False
    assert body["outcome"] == "stay"
    assert "interrupted" in body["details"]["excluded"][0]["reason"]


async def test_decide_on_demand_instance_returns_to_spot(tenants):
    c = await tenants.client()
    a = await tenants.agent(c, lifecycle="on-demand")
    await a.report_prices(("us-east-1a", 0.030))
    body = await decide(a)
    assert body["inputs"]["current_lifecycle"] == "on-demand"
    assert body["inputs"]["current_pool_id"] is None
    assert body["outcome"] == "switch"
    assert body["expected_saving_per_hour"] == pytest.approx(0.07)


async def test_decide_treats_stale_prices_as_unpriced(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050))
    await a.report_prices(("us-east-1b", 0.010), ago=2 * 3600)  # older than the 1 h window
    body = await decide(a)
    stale = next(p for p in body["inputs"]["pools"] if p["zone"] == "us-east-1b")
    assert stale["spot_price"] is None
    assert body["outcome"] == "stay"


async def test_decide_computes_window_statistics(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.040), ago=600)
    await a.report_prices(("us-east-1a", 0.020), ago=60)
    body = await decide(a)
    pool = body["inputs"]["pools"][0]
    assert pool["spot_price"] == pytest.approx(0.020)
    assert pool["recent_avg"] == pytest.approx(0.030)
    assert pool["recent_max"] == pytest.approx(0.040)
    assert pool["volatility"] == pytest.approx(1 / 3)


async def test_decide_without_prices_is_a_conflict(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    r = await a.http.post(f"{API}/agents/{a.id}/decide")
    assert r.status_code == 409
    assert "on-demand price" in r.json()["detail"]


async def test_client_policy_overrides_the_defaults(tenants):
    c = await tenants.client(policy={"min_saving_percent": 50})
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))  # saves 40 %
    body = await decide(a)
    assert body["inputs"]["policy"]["min_saving_percent"] == 50
    assert body["inputs"]["policy"]["min_saving_per_hour"] == 0.005  # the default
    assert body["outcome"] == "stay"
    assert body["details"]["rule"] == "saving-percent"


async def test_recent_switch_blocks_a_price_driven_switch(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    r = await a.http.post(
        f"{API}/agents/{a.id}/reports/switch",
        json={
            "report_id": "sw-1",
            "to": {
                "region": "us-east-1",
                "zone": "us-east-1c",
                "instance_type": "m5.large",
                "lifecycle": "spot",
            },
            "new_cloud_id": "i-new-1",
            "reason": "test",
            "downtime_seconds": 0,
            "switched_at": datetime.now(UTC).isoformat(),
        },
    )
    assert r.status_code in (200, 201), r.text
    await a.report_prices(("us-east-1c", 0.050))
    body = await decide(a)
    assert body["inputs"]["last_switch_at"] is not None
    assert body["outcome"] == "stay"
    assert body["details"]["rule"] == "min-time"


# -- stored decisions ----------------------------------------------------------------------


async def test_decisions_are_stored_and_listed_newest_first(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    first = await decide(a)
    second = await decide(a)
    r = await c.http.get(f"{API}/decisions")
    assert r.status_code == 200
    assert [d["id"] for d in r.json()["items"]] == [second["id"], first["id"]]
    one = await c.http.get(f"{API}/decisions/{first['id']}")
    assert one.status_code == 200
    stored = one.json()
    assert stored["outcome"] == "switch"
    assert stored["inputs"] == first["inputs"]
    assert stored["elapsed_ms"] >= 0
    assert stored["details"] is None  # details are returned when deciding, not stored


async def test_decisions_filter_and_page(tenants):
    c = await tenants.client()
    a, b = await tenants.agent(c), await tenants.agent(c, zone="us-east-1b")
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    for _ in range(3):
        await decide(a)
    await decide(b)
    page = (await c.http.get(f"{API}/decisions", params={"limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    rest = (
        await c.http.get(f"{API}/decisions", params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    switches = (await c.http.get(f"{API}/decisions", params={"outcome": "switch"})).json()
    assert len(switches["items"]) == 3
    assert all(d["instance_id"] == a.instance_id for d in switches["items"])
    mine = (await c.http.get(f"{API}/decisions", params={"instance_id": b.instance_id})).json()
    assert [d["outcome"] for d in mine["items"]] == ["stay"]
    none = (await c.http.get(f"{API}/decisions", params={"engine": "cheapest"})).json()
    assert none["items"] == []
    bad = await c.http.get(f"{API}/decisions", params={"outcome": "maybe"})
    assert bad.status_code == 422


async def test_agent_sees_only_its_own_decisions(tenants):
    c = await tenants.client()
    a, b = await tenants.agent(c), await tenants.agent(c, zone="us-east-1b")
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    mine = await decide(a)
    theirs = await decide(b)
    listed = (await a.http.get(f"{API}/decisions")).json()["items"]
    assert [d["id"] for d in listed] == [mine["id"]]
    assert (await a.http.get(f"{API}/decisions/{theirs['id']}")).status_code == 404


async def test_switch_recommendation_is_not_stored(tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    r = await c.http.get(f"{API}/agents/{a.id}/switch-recommendation")
    assert r.status_code == 200
    assert r.json()["id"] is None
    assert r.json()["outcome"] == "switch"
    assert (await c.http.get(f"{API}/decisions")).json()["items"] == []


async def test_decision_endpoints_of_another_client_are_not_found(tenants):
    c1, c2 = await tenants.client(), await tenants.client()
    a1, a2 = await tenants.agent(c1), await tenants.agent(c2)
    await a1.report_prices(("us-east-1a", 0.050))
    d = await decide(a1)
    for http in (c2.http, c2.admin_http, a2.http):
        assert (await http.post(f"{API}/agents/{a1.id}/decide")).status_code == 404
        assert (await http.get(f"{API}/agents/{a1.id}/switch-recommendation")).status_code == 404
        assert (await http.get(f"{API}/decisions/{d['id']}")).status_code == 404
        listed = await http.get(f"{API}/decisions", params={"instance_id": a1.instance_id})
        assert listed.json()["items"] == []
    assert (await c1.http.post(f"{API}/agents/999999/decide")).status_code == 404
    assert (await c1.http.get(f"{API}/decisions/999999")).status_code == 404


async def test_admin_sees_every_clients_decisions(admin_client, tenants):
    c1, c2 = await tenants.client(), await tenants.client()
    a1, a2 = await tenants.agent(c1), await tenants.agent(c2)
    await a1.report_prices(("us-east-1a", 0.050))
    await a2.report_prices(("us-east-1a", 0.050))
    await decide(a1)
    await decide(a2, admin_client)
    items = (await admin_client.get(f"{API}/decisions")).json()["items"]
    assert {d["client_id"] for d in items} == {c1.id, c2.id}


# -- engines --------------------------------------------------------------------------------


class Broken:
    name = "broken"
    description = "raises"

    def decide(self, inputs):
        raise RuntimeError("boom")


class Slow:
    name = "slow"
    description = "sleeps past any budget"

    async def decide(self, inputs):
        await asyncio.sleep(0.5)
        return Decision("stay", reason="too late")


class Wrong:
    name = "wrong"
    description = "switches to a pool that does not exist"

    def decide(self, inputs):
        return Decision("switch", target_pool_id=987654, reason="nonsense")


class Impostor:
    name = "rules"
    description = "claims the built-in name"

    def decide(self, inputs):
        raise AssertionError("must never run")


class EnginesPlugin:
    @hookimpl
    def pricing_decision_engines(self):
        return [Broken(), Slow(), Wrong(), Impostor()]


class RaisingEnginesPlugin:
    @hookimpl
    def pricing_decision_engines(self):
        raise RuntimeError("engine registry exploded")


@pytest.fixture
def platform_extra_plugins():
    return {"testengines": EnginesPlugin(), "raisingengines": RaisingEnginesPlugin()}


@pytest.fixture
def platform_settings():
    return {"pricing": {"engine_budget_ms": 50}}


async def activate(admin_client: Any, name: str, key: str = "activate") -> dict[str, Any]:
    r = await admin_client.post(f"{API}/engines/{name}/{key}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_engines_are_listed_with_the_platform_choice(tenants):
    c = await tenants.client()
    r = await c.http.get(f"{API}/engines")
    assert r.status_code == 200
    assert list(r.json()) == ["items"]
    engines = {e["name"]: e for e in r.json()["items"]}
    assert set(engines) == {"rules", "cheapest", "onnx", "broken", "slow", "wrong"}
    assert engines["rules"]["plugin"] == "pricing"  # the impostor was refused
    assert engines["rules"]["active"] and engines["rules"]["fallback"]
    assert engines["broken"]["plugin"] == "testengines"
    assert not engines["cheapest"]["active"]


async def test_duplicate_engine_name_is_refused_with_a_warning(tenants, caplog):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030))
    with caplog.at_level(logging.WARNING, logger="platform_pricing.decisions"):
        body = await decide(a)
    assert body["engine"] == "rules" and body["fallback_reason"] is None
    assert any("duplicate name" in rec.getMessage() for rec in caplog.records)


async def test_activated_engine_decides(admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.047))
    assert (await decide(a))["outcome"] == "stay"  # rules: saving under 10 %
    out = await activate(admin_client, "cheapest")
    assert out["active"] is True
    body = await decide(a)
    assert body["engine"] == body["requested_engine"] == "cheapest"
    assert body["outcome"] == "switch"
    listed = {e["name"]: e["active"] for e in (await c.http.get(f"{API}/engines")).json()["items"]}
    assert listed == {
        "rules": False,
        "cheapest": True,
        "onnx": False,
        "broken": False,
        "slow": False,
        "wrong": False,
    }


async def test_a_raising_engines_hook_is_skipped_and_logged_with_its_plugin(tenants, caplog):
    c = await tenants.client()
    with caplog.at_level(logging.WARNING, logger="platform_core.extension"):
        r = await c.http.get(f"{API}/engines")
    assert {e["plugin"] for e in r.json()["items"]} == {"pricing", "testengines"}
    failed = [rec for rec in caplog.records if getattr(rec, "plugin", None) == "raisingengines"]
    assert failed and "engine registry exploded" in failed[0].getMessage()


async def test_engine_that_raises_falls_back_to_rules(admin_client, tenants, caplog):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    await activate(admin_client, "broken")
    with caplog.at_level(logging.WARNING, logger="platform_pricing"):
        body = await decide(a)
    fell_back = [r for r in caplog.records if "fell back" in r.getMessage()]
    assert fell_back and getattr(fell_back[0], "plugin", None) == "testengines"
    assert "'testengines'" in fell_back[0].getMessage()
    assert body["engine"] == "rules"
    assert body["requested_engine"] == "broken"
    assert "RuntimeError: boom" in body["fallback_reason"]
    assert body["outcome"] == "switch"
    stored = (await c.http.get(f"{API}/decisions/{body['id']}")).json()
    assert stored["requested_engine"] == "broken" and stored["fallback_reason"]


async def test_engine_over_budget_falls_back(admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.030))
    await activate(admin_client, "slow")
    body = await decide(a)
    assert body["engine"] == "rules" and body["requested_engine"] == "slow"
    assert "budget of 50 ms" in body["fallback_reason"]
    assert body["elapsed_ms"] < 500


async def test_engine_with_an_invalid_answer_falls_back(admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030))
    await activate(admin_client, "wrong")
    body = await decide(a)
    assert body["engine"] == "rules" and body["outcome"] == "stay"
    assert "987654" in body["fallback_reason"]


async def test_configured_fallback_engine_is_used(admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.047))
    await activate(admin_client, "broken")
    out = await activate(admin_client, "cheapest", "fallback")
    assert out["fallback"] is True
    body = await decide(a)
    assert body["engine"] == "cheapest" and body["requested_engine"] == "broken"
    assert body["outcome"] == "switch"


async def test_failing_fallback_engine_gives_way_to_rules(admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030))
    await activate(admin_client, "slow")
    await activate(admin_client, "broken", "fallback")
    body = await decide(a)
    assert body["engine"] == "rules"
    assert "fallback engine 'broken' failed" in body["fallback_reason"]


async def test_client_engine_overrides_the_platform_choice(admin_client, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.050), ("us-east-1b", 0.047))
    await activate(admin_client, "broken")
    r = await admin_client.patch(f"{API}/clients/{c.id}", json={"engine": "cheapest"})
    assert r.status_code == 200, r.text
    body = await decide(a)
    assert body["engine"] == body["requested_engine"] == "cheapest"


async def test_engine_activation_bad_names(admin_client, tenants):
    c = await tenants.client()
    for key in ("activate", "fallback"):
        r = await admin_client.post(f"{API}/engines/nope/{key}")
        assert r.status_code == 404
        assert "nope" in r.json()["detail"]
        r = await admin_client.post(f"{API}/engines/bad name!/{key}")
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "name"
        r = await admin_client.post(f"{API}/engines/{'x' * 201}/{key}")
        assert r.status_code == 422
        for http in (c.http, c.admin_http):
            assert (await http.post(f"{API}/engines/cheapest/{key}")).status_code == 403
    listed = {e["name"]: e for e in (await admin_client.get(f"{API}/engines")).json()["items"]}
    assert listed["rules"]["active"] and listed["rules"]["fallback"]


async def test_uninstalled_client_engine_falls_back(platform, tenants):
    c = await tenants.client()
    a = await tenants.agent(c)
    await a.report_prices(("us-east-1a", 0.030))
    async with platform.ctx.db.session() as s:  # its plugin was uninstalled since
        await s.execute(update(Client).where(Client.id == c.id).values(engine="gone"))
    body = await decide(a)
    assert body["engine"] == "rules" and body["requested_engine"] == "gone"
    assert body["fallback_reason"] == "engine 'gone' is not installed"
