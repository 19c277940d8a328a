"""Per-user MongoDB against mockupdb (a real wire-protocol peer with a stateful handler)."""

from __future__ import annotations

from typing import Any

import pytest

API = "/api/deployments"


@pytest.fixture
def deploy_settings(mongo_server) -> dict[str, Any]:
    _, uri = mongo_server
    return {
        "mongo": {
            "admin_uri": uri,
            "internal_host": "mongo.internal:27017",
            "external_host": "db.example.org:27017",
            "timeout_seconds": 3,
        }
    }


async def test_provision_creates_a_read_write_user_and_returns_uris(
    member_client, mongo_server, platform
) -> None:
    fake, _ = mongo_server
    r = await member_client.post(f"{API}/mongo")
    assert r.status_code == 201, r.text
    body = r.json()
    db = body["database"]
    assert fake.users[(db, body["username"])] == {
        "pwd": body["password"],
        "roles": [{"role": "readWrite", "db": db}],
    }
    assert body["uri_internal"].startswith(f"mongodb://{body['username']}:")
    assert (
        "@mongo.internal:27017/" in body["uri_internal"]
        and "@db.example.org:27017/" in body["uri_external"]
    )
    # Stored encrypted, never in clear.
    from platform_deployments.models import MongoDatabase
    from sqlalchemy import select

    async with platform.ctx.db.session() as session:
        row = (await session.scalars(select(MongoDatabase))).one()
    assert body["password"] not in row.password_enc
    again = await member_client.post(f"{API}/mongo")
    assert again.status_code == 200 and again.json()["password"] == body["password"]
    assert [c for c in fake.commands if c[0] == "createUser"] == [("createUser", db)]


async def test_credentials_need_a_database(member_client) -> None:
    r = await member_client.get(f"{API}/mongo")
    assert r.status_code == 404


async def test_rotate_changes_the_password_on_the_server(member_client, mongo_server) -> None:
    fake, _ = mongo_server
    first = (await member_client.post(f"{API}/mongo")).json()
    r = await member_client.post(f"{API}/mongo/rotate")
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["password"] != first["password"] and rotated["rotated_at"]
    assert fake.users[(first["database"], first["username"])]["pwd"] == rotated["password"]
    assert (await member_client.get(f"{API}/mongo")).json()["password"] == rotated["password"]


async def test_usage_reads_db_stats(member_client, mongo_server, admin_client) -> None:
    fake, _ = mongo_server
    db = (await member_client.post(f"{API}/mongo")).json()["database"]
    fake.stats[db] = {"dataSize": 2048, "storageSize": 8192, "collections": 3}
    usage = (await member_client.get(f"{API}/mongo/usage")).json()
    assert (usage["data_size"], usage["storage_size"], usage["collections"]) == (2048, 8192, 3)
    assert (await member_client.get(f"{API}/quotas")).json()["mongo_storage_bytes"] == 8192
    assert (await admin_client.get(f"{API}/admin/totals")).json()["mongo_storage_bytes"] == 8192


async def test_admin_drops_user_and_database(member_client, admin_client, mongo_server) -> None:
    fake, _ = mongo_server
    mine = (await member_client.post(f"{API}/mongo")).json()
    assert (await member_client.delete(f"{API}/admin/mongo/{mine['user_id']}")).status_code == 403
    r = await admin_client.delete(f"{API}/admin/mongo/{mine['user_id']}")
    assert r.status_code == 204, r.text
    assert (mine["database"], mine["username"]) not in fake.users
    assert fake.dropped == [mine["database"]]
    assert (await member_client.get(f"{API}/mongo")).status_code == 404


async def test_existing_server_user_is_taken_over_with_a_new_password(
    member_client, mongo_server, platform
) -> None:
    fake, _ = mongo_server
    me = (await member_client.get(f"{API}/quotas")).json()["user_id"]
    fake.users[(f"u{me}", f"u{me}")] = {"pwd": "old", "roles": []}
    body = (await member_client.post(f"{API}/mongo")).json()
    assert fake.users[(f"u{me}", f"u{me}")]["pwd"] == body["password"] != "old"


async def test_mongo_app_gets_the_uri_as_a_secret(
    member_client, mongo_server, run_job, kube
) -> None:
    from kubernetes.aio import client as k8s

    creds = (await member_client.post(f"{API}/mongo")).json()
    r = await member_client.post(f"{API}/apps", json={"name": "m", "template": "mongo-app"})
    assert r.status_code == 202, r.text
    app = r.json()["app"]
    assert "MONGODB_URI" not in r.text
    await run_job("apply")
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        secret = await k8s.CoreV1Api(api).read_namespaced_secret("m-env", app["namespace"])
    assert secret.string_data["MONGODB_URI"] == creds["uri_internal"]
    rotated = (await member_client.post(f"{API}/mongo/rotate")).json()
    assert (await member_client.get(f"{API}/apps/{app['id']}")).json()["state"] == "pending"
    await run_job("apply")
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        secret = await k8s.CoreV1Api(api).read_namespaced_secret("m-env", app["namespace"])
    assert secret.string_data["MONGODB_URI"] == rotated["uri_internal"] != creds["uri_internal"]


async def test_usage_job_samples_every_database(member_client, mongo_server, run_job) -> None:
    fake, _ = mongo_server
    db = (await member_client.post(f"{API}/mongo")).json()["database"]
    fake.stats[db] = {"dataSize": 1, "storageSize": 4096, "collections": 1}
    assert await run_job("mongo_usage") == {"sampled": 1, "failed": 0}
    assert (await member_client.get(f"{API}/quotas")).json()["mongo_storage_bytes"] == 4096


@pytest.mark.parametrize("deploy_settings", [{}])
async def test_without_a_server_provisioning_names_the_setting(
    member_client, deploy_settings
) -> None:
    r = await member_client.post(f"{API}/mongo")
    assert r.status_code == 409 and "[plugins.deployments.mongo] admin_uri" in r.json()["detail"]


async def test_cli_provisions_by_username(run_cli, platform, mongo_server) -> None:
    fake, _ = mongo_server
    user = await platform.user("member", "dora")
    result = await run_cli("deployments", "mongo", "provision", "dora")
    assert result.exit_code == 0, result.output
    assert f"database u{user.id} provisioned" in result.stdout
    assert (f"u{user.id}", f"u{user.id}") in fake.users
    again = await run_cli("deployments", "mongo", "provision", str(user.id))
    assert "already provisioned" in again.stdout


async def test_viewer_needs_a_database(member_client) -> None:
    r = await member_client.post(f"{API}/viewer/start")
    assert r.status_code == 409 and "mongo" in r.json()["detail"]
    assert (await member_client.get(f"{API}/viewer")).status_code == 404


async def test_viewer_runs_mongo_express_with_basic_auth_then_stops(
    member_client, kube, mongo_server
) -> None:
    from kubernetes.aio import client as k8s

    creds = (await member_client.post(f"{API}/mongo")).json()
    r = await member_client.post(f"{API}/viewer/start")
    assert r.status_code == 200, r.text
    viewer = r.json()
    assert (
        viewer["state"] == "running"
        and viewer["url"] == f"https://db-u{creds['user_id']}.apps.test/"
    )
    assert viewer["username"] and len(viewer["password"]) >= 20
    ns = viewer["namespace"]
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        core, apps_api = k8s.CoreV1Api(api), k8s.AppsV1Api(api)
        dep = await apps_api.read_namespaced_deployment("mongo-viewer", ns)
        assert dep.spec.template.spec.containers[0].image.startswith("mongo-express")
        secret = (await core.read_namespaced_secret("mongo-viewer", ns)).string_data
        assert secret["ME_CONFIG_BASICAUTH_PASSWORD"] == viewer["password"]
        assert secret["ME_CONFIG_MONGODB_URL"] == creds["uri_internal"]
        r = await member_client.post(f"{API}/viewer/stop")
        assert r.status_code == 200 and r.json()["state"] == "stopped"
        assert [
            d.metadata.name for d in (await apps_api.list_namespaced_deployment(ns)).items
        ] == []
    again = (await member_client.post(f"{API}/viewer/start")).json()
    assert again["password"] == viewer["password"]  # the login is kept across restarts


async def test_idle_viewer_is_stopped_by_the_job(
    member_client, platform, run_job, mongo_server
) -> None:
    from datetime import timedelta

    from platform_deployments.models import Viewer

    from platform_core import utcnow

    await member_client.post(f"{API}/mongo")
    viewer = (await member_client.post(f"{API}/viewer/start")).json()
    assert await run_job("viewer_idle") == {"stopped": 0, "failed": 0}
    async with platform.ctx.db.session() as session:
        row = await session.get(Viewer, viewer["user_id"])
        row.last_used_at = utcnow() - timedelta(days=1)
    assert await run_job("viewer_idle") == {"stopped": 1, "failed": 0}
    assert (await member_client.get(f"{API}/viewer")).json()["state"] == "stopped"
