"""Opt-in: against a real cluster (``KUBECONFIG``) and a real MongoDB (``MONGODB_URI``).

Skipped (and reported as skipped) unless those variables are set. What the emulator cannot
show is checked here: label selectors, a real apply, rollout by a real controller, garbage
collection on delete, and createUser/dbStats on a real server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest

API = "/api/deployments"
KUBECONFIG = os.environ.get("KUBECONFIG")
MONGODB_URI = os.environ.get("MONGODB_URI")


@pytest.fixture
async def kube() -> Any:
    """No emulator here: the real cluster is used."""
    return None


@pytest.fixture
def platform_settings() -> dict[str, dict[str, Any]]:
    settings: dict[str, Any] = {"namespace_prefix": f"pt{uuid.uuid4().hex[:6]}-"}
    if KUBECONFIG:
        settings["clusters"] = {
            "real": {"kubeconfig": KUBECONFIG, "context": os.environ.get("KUBE_CONTEXT")}
        }
    if MONGODB_URI:
        settings["mongo"] = {"admin_uri": MONGODB_URI}
    return {"deployments": settings}


@pytest.mark.skipif(not KUBECONFIG, reason="KUBECONFIG is not set: no real cluster to test against")
async def test_real_cluster_create_rollout_delete(member_client, run_job) -> None:
    r = await member_client.post(f"{API}/apps", json={"name": "web", "template": "static-site"})
    assert r.status_code == 202, r.text
    app = r.json()["app"]
    await run_job("apply")
    assert (await member_client.get(f"{API}/apps/{app['id']}")).json()["state"] == "synced"
    assert (await run_job("reconcile")).get("writes", 0) == 0
    for _ in range(60):
        status = (await member_client.get(f"{API}/apps/{app['id']}/status")).json()
        if status["rollout"]["state"] in ("available", "failed"):
            break
        await asyncio.sleep(2)
    assert status["rollout"]["state"] == "available", status
    assert status["pods"] and all(p["ready"] for p in status["pods"])
    await member_client.delete(f"{API}/apps/{app['id']}")
    for _ in range(30):
        await run_job("apply")
        if (await member_client.get(f"{API}/apps/{app['id']}")).status_code == 404:
            break
        await asyncio.sleep(2)
    assert (await member_client.get(f"{API}/apps/{app['id']}")).status_code == 404


@pytest.mark.skipif(
    not MONGODB_URI, reason="MONGODB_URI is not set: no real MongoDB to test against"
)
async def test_real_mongodb_provision_rotate_drop(member_client, admin_client) -> None:
    from pymongo import AsyncMongoClient

    mine = (await member_client.post(f"{API}/mongo")).json()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        MONGODB_URI,
        username=mine["username"],
        password=mine["password"],
        authSource=mine["database"],
    )
    try:
        await client[mine["database"]]["t"].insert_one({"a": 1})
    finally:
        await client.close()
    usage = (await member_client.get(f"{API}/mongo/usage")).json()
    assert usage["collections"] >= 1
    assert (await member_client.post(f"{API}/mongo/rotate")).status_code == 200
    assert (await admin_client.delete(f"{API}/admin/mongo/{mine['user_id']}")).status_code == 204
