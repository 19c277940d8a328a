"""Tenancy: one client's credentials can neither read nor change another client's data.

The test enumerates every operation under ``/api/pricing`` from the OpenAPI document, so a
new endpoint is covered the day it is added (an operation with a request body needs a body
in ``BODIES``, or the test fails and says so). For each operation taking ids, client B's
three credentials (client, client admin, agent) call it with client A's ids and with ids that
exist nowhere: the answers must be the same, and never a success: a 404 for A's ids is
indistinguishable from a 404 for nothing at all, so ids don't leak. List operations must not
show anything of A's, even when filtered by A's ids. Finally A's data, read back with A's own
token, is exactly what it was.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

MISSING = 2**31 - 1
NOW = datetime.now(UTC).replace(microsecond=0)
ISO = (NOW - timedelta(minutes=1)).isoformat()
POOL = {"region": "us-east-1", "zone": "us-east-1b", "instance_type": "m5.large"}


def rid() -> str:
    return f"r-{uuid.uuid4().hex}"


BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/clients/{client_id}"): lambda: {"policy": {"min_saving_percent": 50}},
    ("POST", "/clients/{client_id}/tokens"): lambda: {"name": "x", "admin": True},
    ("POST", "/clients"): lambda: {"name": f"x-{uuid.uuid4().hex[:8]}"},
    ("POST", "/agents/register"): lambda: {
        "name": f"a-{uuid.uuid4().hex[:8]}",
        "instance": {"cloud_id": f"i-{uuid.uuid4().hex[:12]}", "lifecycle": "spot", **POOL},
    },
    ("POST", "/agents/{agent_id}/heartbeat"): lambda: {"version": "9.9.9"},
    ("PUT", "/agents/{agent_id}/replica-config"): lambda: {"enabled": True, "standby_count": 3},
    ("POST", "/agents/{agent_id}/toggle-enabled"): lambda: {"enabled": False},
    ("PUT", "/agents/{agent_id}/config"): lambda: {"report_interval_seconds": 30},
    ("POST", "/agents/{agent_id}/reports/pricing"): lambda: {
        "report_id": rid(),
        "points": [{**POOL, "spot_price": 0.5, "on_demand_price": 0.9, "observed_at": ISO}],
    },
    ("POST", "/agents/{agent_id}/reports/switch"): lambda: {
        "report_id": rid(),
        "to": {**POOL, "lifecycle": "spot"},
        "new_cloud_id": f"i-{uuid.uuid4().hex[:12]}",
        "switched_at": ISO,
    },
    ("POST", "/agents/{agent_id}/reports/termination"): lambda: {
        "report_id": rid(),
        "noticed_at": ISO,
    },
    ("POST", "/agents/{agent_id}/reports/rebalance"): lambda: {
        "report_id": rid(),
        "noticed_at": ISO,
    },
    ("POST", "/agents/{agent_id}/reports/cleanup"): lambda: {
        "report_id": rid(),
        "resources": [],
        "finished_at": ISO,
    },
    ("POST", "/instances/{instance_id}/force-switch"): lambda: {
        "lifecycle": "on-demand",
        "reason": "test",
    },
    ("POST", "/agents/{agent_id}/commands/{command_id}/ack"): lambda: {"success": True},
    ("POST", "/agents/{agent_id}/replicas"): lambda: {**POOL, "lifecycle": "spot"},
    ("PATCH", "/agents/{agent_id}/replicas/{replica_id}"): lambda: {"cloud_id": "i-stolen"},
    ("POST", "/agents/{agent_id}/replicas/{replica_id}/promote"): lambda: {"reason": "takeover"},
    ("PUT", "/agents/{agent_id}/replicas/{replica_id}/status"): lambda: {
        "status": "standby",
        "cloud_id": "i-stolen",
    },
    ("PUT", "/agents/{agent_id}/replicas/{replica_id}/sync"): lambda: {
        "sync_status": "in-sync",
        "lag_seconds": 0,
    },
}

GLOBAL = {"/engines", "/engines/{name}/activate", "/engines/{name}/fallback"}
"""Platform-wide operations (engines): no client data behind them."""
GLOBAL_PREFIXES = ("/ml-models", "/ml-features")
"""Platform-wide, admin-only ML model management (``test_ml_models``: clients get 403)."""

ID_KEYS = ("client_id", "agent_id", "instance_id", "decision_id", "command_id", "replica_id")


def operations(app) -> list[tuple[str, str, dict[str, Any]]]:
    """Every ``/api/pricing`` operation: (METHOD, path relative to /api/pricing, operation)."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        if path.startswith("/api/pricing/"):
            for method, op in ops.items():
                out.append((method.upper(), path.removeprefix("/api/pricing"), op))
    return out


def leaks(payload: Any, a: dict[str, Any]) -> list[str]:
    """A's ids under their keys, or A's names anywhere, in a response."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ID_KEYS and a.get(key) is not None and value == a[key]:
                    found.append(f"{key}={value}")
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload)
    text = json.dumps(payload)
    found += [s for s in a["secrets"] if s in text]
    return found


async def seed(platform, tenants, admin_client) -> dict[str, Any]:
    """A client with an agent, prices, a decision, a command and a replica."""
    c = await tenants.client()
    agent = await tenants.agent(c, **POOL | {"zone": "us-east-1a"})
    points = [
        {**POOL, "zone": zone, "spot_price": price, "on_demand_price": 1.0, "observed_at": ISO}
        for zone, price in (("us-east-1a", 0.6), ("us-east-1b", 0.2))
    ]
    r = await agent.http.post(
        f"/api/pricing/agents/{agent.id}/reports/pricing",
        json={"report_id": rid(), "points": points},
    )
    assert r.status_code in (200, 201), r.text
    decision = await c.http.post(f"/api/pricing/agents/{agent.id}/decide")
    assert decision.status_code in (200, 201), decision.text
    force = await c.admin_http.post(
        f"/api/pricing/instances/{agent.instance_id}/force-switch",
        json={**POOL, "lifecycle": "spot", "reason": "seed"},
    )
    assert force.status_code in (200, 201), force.text
    command = force.json().get("command", force.json())
    r = await c.http.put(
        f"/api/pricing/agents/{agent.id}/replica-config", json={"enabled": True, "standby_count": 2}
    )
    assert r.status_code == 200, r.text
    replica = await c.http.post(
        f"/api/pricing/agents/{agent.id}/replicas", json={**POOL, "lifecycle": "spot"}
    )
    assert replica.status_code == 201, replica.text
    tokens = await admin_client.get(f"/api/pricing/clients/{c.id}/tokens")
    return {
        "handle": c,
        "agent": agent,
        "client_id": c.id,
        "agent_id": agent.id,
        "instance_id": agent.instance_id,
        "decision_id": decision.json()["id"],
        "command_id": command["id"],
        "replica_id": replica.json()["id"],
        "token_id": tokens.json()["items"][0]["id"],
        "secrets": [c.name, agent.body["agent"]["name"], agent.body["instance"]["cloud_id"]],
    }


async def snapshot(a: dict[str, Any]) -> dict[str, Any]:
    """A's data as A sees it."""
    http = a["handle"].admin_http
    paths = [
        f"/clients/{a['client_id']}",
        "/agents",
        "/instances",
        f"/agents/{a['agent_id']}/replicas",
        f"/agents/{a['agent_id']}/replica-config",
        "/commands",
        "/decisions",
        "/switches",
    ]
    out = {}
    for path in paths:
        r = await http.get("/api/pricing" + path)
        assert r.status_code == 200, (path, r.text)
        out[path] = r.json()
    return out


def fill(path: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


@pytest.mark.parametrize("who", ["client", "client_admin", "agent"])
async def test_no_endpoint_reads_or_changes_another_clients_data(
    platform, tenants, admin_client, who
):
    a = await seed(platform, tenants, admin_client)
    b = await seed(platform, tenants, admin_client)
    before = await snapshot(a)
    http = {
        "client": b["handle"].http,
        "client_admin": b["handle"].admin_http,
        "agent": b["agent"].http,
    }[who]
    a_ids = {k: a[k] for k in (*ID_KEYS, "token_id")}
    missing = dict.fromkeys(a_ids, MISSING)
    checked = 0
    for method, path, op in operations(platform.app):
        if path in GLOBAL or path.startswith(GLOBAL_PREFIXES):
            continue
        has_body = "requestBody" in op
        if has_body:
            assert (method, path) in BODIES, f"add a request body for {method} {path} to BODIES"
        params = re.findall(r"\{(\w+)\}", path)

        async def call(ids: dict[str, Any], method=method, path=path, op=op, has_body=has_body):
            query = {
                p["name"]: ids[p["name"]]
                for p in op.get("parameters", [])
                if p["in"] == "query" and p["name"] in ids
            }
            body = BODIES[(method, path)]() if has_body else None
            return await http.request(
                method, "/api/pricing" + fill(path, ids), params=query, json=body
            )

        if params:
            got_a, got_missing = await call(a_ids), await call(missing)
            assert got_a.status_code == got_missing.status_code, (
                f"{who}: {method} {path}: {got_a.status_code} for client A's ids, "
                f"{got_missing.status_code} for ids that don't exist: {got_a.text}"
            )
            assert got_a.status_code in (403, 404), (who, method, path, got_a.text)
            if got_a.status_code == 403:
                # Refused for every id alike: this credential may not call it at all.
                assert got_a.json()["detail"] == got_missing.json()["detail"]
        else:
            got = await call(a_ids)
            assert got.status_code < 500, (who, method, path, got.text)
            if got.status_code < 300 and got.content:
                assert not leaks(got.json(), a), (who, method, path, leaks(got.json(), a))
        checked += 1
    assert checked >= 45
    assert await snapshot(a) == before


async def test_a_pool_id_only_another_client_knows_is_refused_like_a_missing_one(tenants):
    a = await tenants.client()
    b = await tenants.client()
    a_agent = await tenants.agent(a, region="eu-west-1", zone="eu-west-1c")
    b_agent = await tenants.agent(b, region="us-west-2", zone="us-west-2a")
    a_pool = a_agent.body["instance"]["pool_id"]
    r = await b.http.put(
        f"/api/pricing/agents/{b_agent.id}/replica-config",
        json={"enabled": True, "standby_count": 2},
    )
    assert r.status_code == 200, r.text
    url = f"/api/pricing/agents/{b_agent.id}/replicas"
    theirs = await b.http.post(url, json={"pool_id": a_pool, "lifecycle": "spot"})
    nowhere = await b.http.post(url, json={"pool_id": MISSING, "lifecycle": "spot"})
    assert theirs.status_code == nowhere.status_code == 422, theirs.text
    assert [e["field"] for e in theirs.json()["errors"]] == ["pool_id"]
    assert "eu-west-1" not in theirs.text
    forced = await b.admin_http.post(
        f"/api/pricing/instances/{b_agent.instance_id}/force-switch",
        json={"pool_id": a_pool, "lifecycle": "spot", "reason": "probe"},
    )
    assert forced.status_code == 422, forced.text
    assert "eu-west-1" not in forced.text
