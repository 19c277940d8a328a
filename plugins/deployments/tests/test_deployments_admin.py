"""Admin views, the cleanup job, the shared-namespace mode, and the owner's notifications."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio import client as k8s

API = "/api/deployments"


async def create(client, name: str = "web") -> dict[str, Any]:
    r = await client.post(f"{API}/apps", json={"name": name, "template": "static-site"})
    assert r.status_code == 202, r.text
    return r.json()["app"]


async def test_suspend_stops_every_app_of_a_user(platform, admin_client, run_job) -> None:
    member = await platform.client_for("member")
    a, b = await create(member, "a"), await create(member, "b")
    r = await admin_client.post(f"{API}/admin/users/{a['user_id']}/suspend")
    assert r.status_code == 200, r.text
    assert sorted(x["id"] for x in r.json()["items"]) == sorted([a["id"], b["id"]])
    assert (await member.post(f"{API}/admin/users/{a['user_id']}/suspend")).status_code == 403
    await run_job("apply")
    for app in (a, b):
        shown = (await member.get(f"{API}/apps/{app['id']}")).json()
        assert shown["stopped"] is True and shown["state"] == "synced"


async def test_totals_and_quota_list(platform, admin_client) -> None:
    member = await platform.client_for("member")
    await create(member)
    totals = (await admin_client.get(f"{API}/admin/totals")).json()
    assert (
        totals["apps"] == 1
        and totals["replicas"] == 1
        and totals["apps_by_state"] == {"pending": 1}
    )
    assert totals["requested_cpu_millis"] == 50
    quotas = (await admin_client.get(f"{API}/admin/quotas")).json()["items"]
    assert [q["apps"] for q in quotas] == [1]
    assert (await member.get(f"{API}/admin/totals")).status_code == 403


async def test_force_delete_then_cleanup_removes_the_orphans(
    platform, admin_client, run_job, kube
) -> None:
    member = await platform.client_for("member")
    app = await create(member)
    await run_job("apply")
    assert (await admin_client.delete(f"{API}/admin/apps/{app['id']}")).status_code == 204
    assert (await member.get(f"{API}/apps/{app['id']}")).status_code == 404
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        apps_api = k8s.AppsV1Api(api)
        assert [
            d.metadata.name
            for d in (await apps_api.list_namespaced_deployment(app["namespace"])).items
        ] == ["web"]
        result = await run_job("cleanup")
        assert result["orphans_deleted"] == 5  # ConfigMap, Secret, Deployment, Service, Ingress
        assert (await apps_api.list_namespaced_deployment(app["namespace"])).items == []
        # The user still exists: their namespace stays.
        assert (await k8s.CoreV1Api(api).read_namespace(app["namespace"])).metadata.name == app[
            "namespace"
        ]
        assert (await run_job("cleanup")).get("orphans_deleted", 0) == 0


async def test_cleanup_removes_namespaces_of_deleted_users(platform, run_job, kube) -> None:
    ns = {
        "metadata": {
            "name": "u-9999",
            "labels": {
                "app.kubernetes.io/managed-by": "platform-deployments",
                "deployments.platform.io/user-id": "9999",
            },
        }
    }
    foreign = {"metadata": {"name": "kube-system"}}
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        core = k8s.CoreV1Api(api)
        await core.create_namespace(ns)
        await core.create_namespace(foreign)
        result = await run_job("cleanup")
        assert result["namespaces_deleted"] == 1
        names = [n.metadata.name for n in (await core.list_namespace()).items]
    assert names == ["kube-system"]


@pytest.mark.parametrize(
    "deploy_settings", [{"namespace_mode": "shared", "shared_namespace": "apps"}]
)
async def test_shared_namespace_mode_prefixes_names(
    platform, run_job, kube, deploy_settings
) -> None:
    member = await platform.client_for("member")
    app = await create(member)
    assert app["namespace"] == "apps"
    await run_job("apply")
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        deps = (await k8s.AppsV1Api(api).list_namespaced_deployment("apps")).items
        policies = (await k8s.NetworkingV1Api(api).list_namespaced_network_policy("apps")).items
    assert [d.metadata.name for d in deps] == [f"u{app['user_id']}-web"]
    assert [p.metadata.name for p in policies] == [f"u{app['user_id']}-isolation"]


async def test_owner_is_notified_of_the_deploy(platform, run_job) -> None:
    member = await platform.client_for("member")
    app = await create(member)
    await run_job("apply")
    await platform.deliver_events()
    r = await member.get("/api/core/notifications")
    assert r.status_code == 200, r.text
    titles = [n["title"] for n in r.json()["items"]]
    assert f"App {app['name']} deployed (revision 1)" in titles
    assert f"App {app['name']} created" in titles


async def test_prometheus_gauges(platform, admin_client) -> None:
    member = await platform.client_for("member")
    app = await create(member)
    r = await admin_client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "platform_http_requests_total" in r.text  # the core's own, in the same answer
    assert 'deployments_apps{state="pending"} 1.0' in r.text
    assert f'deployments_user_cpu_millis{{user_id="{app["user_id"]}"}} 50.0' in r.text
