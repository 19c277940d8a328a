"""The whole flow against kmock's Kubernetes emulator: create, update, rollback, stop/start,
restart, status (the test plays the controller), pods, logs, events, drift, delete, and the
cluster going down and coming back. Cluster state is read with the official client."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio import client as k8s

API = "/api/deployments"
SPEC_HASH = "deployments.platform.io/spec-hash"


@pytest.fixture
async def kapi(kube) -> Any:
    """The official client's typed APIs on the emulator: ``(core, apps, networking)``."""
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        yield k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.NetworkingV1Api(api)


@pytest.fixture
async def app(member_client) -> dict[str, Any]:
    """A static-site app, created (pending)."""
    r = await member_client.post(
        f"{API}/apps",
        json={"name": "web", "template": "static-site", "variables": {"SITE_TITLE": "one"}},
    )
    assert r.status_code == 202, r.text
    return r.json()["app"]


async def get_app(client, app_id: int) -> dict[str, Any]:
    r = await client.get(f"{API}/apps/{app_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_apply_creates_every_object_with_our_labels(
    member_client, app, run_job, kapi
) -> None:
    core, apps_api, net = kapi
    result = await run_job("apply")
    assert result["synced"] == 1 and result["writes"] > 0
    shown = await get_app(member_client, app["id"])
    assert (
        shown["state"] == "synced"
        and shown["applied_revision"] == 1
        and shown["last_error"] is None
    )
    ns = app["namespace"]
    assert (await core.read_namespace(ns)).metadata.labels[
        "app.kubernetes.io/managed-by"
    ] == "platform-deployments"
    assert (await core.read_namespaced_resource_quota("user-quota", ns)).spec.hard["pods"] == "6"
    assert (await core.read_namespaced_limit_range("user-limits", ns)).spec.limits
    assert (await net.read_namespaced_network_policy("user-isolation", ns)).spec.policy_types == [
        "Ingress"
    ]
    assert (await core.read_namespaced_config_map("web-env", ns)).data == {"SITE_TITLE": "one"}
    dep = await apps_api.read_namespaced_deployment("web", ns)
    assert dep.spec.replicas == 1
    assert dep.metadata.labels["deployments.platform.io/app-id"] == str(app["id"])
    assert (await core.read_namespaced_service("web", ns)).spec.ports[0].port == 80
    ing = await net.read_namespaced_ingress("web", ns)
    assert ing.spec.rules[0].host == app["host"]


async def test_applying_the_same_revision_again_writes_nothing(member_client, app, run_job) -> None:
    await run_job("apply")
    again = await run_job("reconcile")
    assert again.get("writes", 0) == 0 and again["synced"] == 1
    # Force the apply job over it too: the stored revision is applied already.
    assert (await run_job("apply")).get("writes", 0) == 0


async def test_update_rollback_stop_start_restart(member_client, app, run_job, kapi) -> None:
    core, apps_api, _ = kapi
    ns, url = app["namespace"], f"{API}/apps/{app['id']}"
    await run_job("apply")
    before = (
        await apps_api.read_namespaced_deployment("web", ns)
    ).spec.template.metadata.annotations
    r = await member_client.patch(url, json={"variables": {"SITE_TITLE": "two"}})
    assert r.status_code == 202 and r.json()["revision"] == 2
    assert (await get_app(member_client, app["id"]))["state"] == "pending"
    await run_job("apply")
    assert (await core.read_namespaced_config_map("web-env", ns)).data["SITE_TITLE"] == "two"
    after = (
        await apps_api.read_namespaced_deployment("web", ns)
    ).spec.template.metadata.annotations
    assert (
        after["deployments.platform.io/config-checksum"]
        != before["deployments.platform.io/config-checksum"]
    )

    r = await member_client.post(f"{url}/rollback", json={"revision": 1})
    assert r.status_code == 202 and r.json()["revision"] == 3
    await run_job("apply")
    assert (await core.read_namespaced_config_map("web-env", ns)).data["SITE_TITLE"] == "one"
    assert (await get_app(member_client, app["id"]))["applied_revision"] == 3

    assert (await member_client.post(f"{url}/stop")).status_code == 202
    await run_job("apply")
    assert (await apps_api.read_namespaced_deployment("web", ns)).spec.replicas == 0
    assert (await get_app(member_client, app["id"]))["stopped"] is True
    assert (await member_client.post(f"{url}/start")).status_code == 202
    await run_job("apply")
    assert (await apps_api.read_namespaced_deployment("web", ns)).spec.replicas == 1

    assert (await member_client.post(f"{url}/restart")).status_code == 202
    await run_job("apply")
    annotations = (
        await apps_api.read_namespaced_deployment("web", ns)
    ).spec.template.metadata.annotations
    assert "kubectl.kubernetes.io/restartedAt" in annotations


async def test_status_follows_the_controller(member_client, app, run_job, kapi, platform) -> None:
    _, apps_api, _ = kapi
    ns, url = app["namespace"], f"{API}/apps/{app['id']}/status"
    await run_job("apply")
    r = await member_client.get(url)
    assert r.status_code == 200, r.text
    assert r.json()["rollout"]["state"] == "progressing"
    progressing = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
    await apps_api.patch_namespaced_deployment_status(
        "web",
        ns,
        {
            "status": {
                "observedGeneration": 1,
                "replicas": 1,
                "updatedReplicas": 1,
                "readyReplicas": 1,
                "availableReplicas": 1,
                "conditions": [progressing],
            }
        },
    )
    rollout = (await member_client.get(url)).json()["rollout"]
    assert rollout["state"] == "available" and rollout["available_replicas"] == 1
    failed = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet web-1 has timed out progressing.",
    }
    await apps_api.patch_namespaced_deployment_status(
        "web", ns, {"status": {"availableReplicas": 0, "conditions": [failed]}}
    )
    rollout = (await member_client.get(url)).json()["rollout"]
    assert rollout["state"] == "failed" and rollout["reason"] == "ProgressDeadlineExceeded"
    # The health job turns it into an event for the owner.
    assert (await run_job("health"))["unhealthy"] == 1
    assert (await get_app(member_client, app["id"]))["health"] == "unhealthy"
    assert (await run_job("health"))["unhealthy"] == 1  # still unhealthy: no second event
    from sqlalchemy import select

    from platform_core.testing import EventRecord

    async with platform.ctx.db.session() as session:
        names = (await session.scalars(select(EventRecord.name))).all()
    assert names.count("deployments.app.unhealthy") == 1


async def test_pods_logs_and_events(member_client, app, run_job, kapi, kube) -> None:
    core, _, _ = kapi
    ns, url = app["namespace"], f"{API}/apps/{app['id']}"
    await run_job("apply")
    labels = {"deployments.platform.io/app-id": str(app["id"]), "app.kubernetes.io/instance": "web"}
    pod = {
        "metadata": {"name": "web-abc", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
    }
    await core.create_namespaced_pod(ns, pod)
    stranger = {
        "metadata": {"name": "other-1", "labels": {"deployments.platform.io/app-id": "999"}},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
    }
    await core.create_namespaced_pod(ns, stranger)
    await core.patch_namespaced_pod_status(
        "web-abc",
        ns,
        {
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": "app",
                        "ready": True,
                        "restartCount": 2,
                        "image": "x",
                        "imageID": "",
                        "started": True,
                    }
                ],
            }
        },
    )
    pods = (await member_client.get(f"{url}/pods")).json()["items"]
    assert [(p["name"], p["phase"], p["ready"], p["restarts"]) for p in pods] == [
        ("web-abc", "Running", True, 2)
    ]

    kube.emu[f"get /api/v1/namespaces/{ns}/pods/web-abc/log"] << b"line 1\nline 2\nline 3\n"
    r = await member_client.get(f"{url}/logs", params={"pod": "web-abc", "tail": 2})
    assert r.status_code == 200, r.text
    assert r.json()["lines"] == ["line 2", "line 3"]
    assert (await member_client.get(f"{url}/logs", params={"pod": "other-1"})).status_code == 404
    sent = [req for req in kube.emu if req.url.path.endswith("/pods/web-abc/log")]
    assert sent and sent[-1].params.get("tailLines") == "2"

    event = {
        "metadata": {"name": "web.1"},
        "involvedObject": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet",
        "message": "Scaled up to 1",
        "type": "Normal",
        "lastTimestamp": "2026-12-07T00:00:00Z",
        "count": 1,
    }
    other = {
        "metadata": {"name": "x.1"},
        "involvedObject": {"kind": "Pod", "name": "unrelated"},
        "reason": "Pulled",
        "message": "nope",
        "type": "Normal",
    }
    await core.create_namespaced_event(ns, event)
    await core.create_namespaced_event(ns, other)
    events = (await member_client.get(f"{url}/events")).json()["items"]
    assert [(e["reason"], e["object"]) for e in events] == [("ScalingReplicaSet", "Deployment/web")]


async def test_reconcile_repairs_drift(member_client, app, run_job, kapi) -> None:
    core, _, _ = kapi
    ns = app["namespace"]
    await run_job("apply")
    await core.patch_namespaced_config_map(
        "web-env",
        ns,
        {"metadata": {"annotations": {SPEC_HASH: "tampered"}}, "data": {"SITE_TITLE": "hacked"}},
    )
    result = await run_job("reconcile")
    assert result["writes"] >= 1 and result["synced"] == 1
    assert (await core.read_namespaced_config_map("web-env", ns)).data["SITE_TITLE"] == "one"
    shown = await get_app(member_client, app["id"])
    assert shown["state"] == "synced" and "ConfigMap/web-env" in shown["message"]
    assert (await run_job("reconcile")).get("writes", 0) == 0


async def test_delete_removes_every_object_then_the_row(member_client, app, run_job, kapi) -> None:
    core, apps_api, net = kapi
    ns = app["namespace"]
    await run_job("apply")
    r = await member_client.delete(f"{API}/apps/{app['id']}")
    assert r.status_code == 202 and r.json()["app"]["state"] == "deleting"
    assert (
        await member_client.patch(f"{API}/apps/{app['id']}", json={"replicas": 2})
    ).status_code == 409
    await run_job("apply")
    assert (await member_client.get(f"{API}/apps/{app['id']}")).status_code == 404
    assert [d.metadata.name for d in (await apps_api.list_namespaced_deployment(ns)).items] == []
    assert [c.metadata.name for c in (await core.list_namespaced_config_map(ns)).items] == []
    assert [s.metadata.name for s in (await core.list_namespaced_service(ns)).items] == []
    assert [i.metadata.name for i in (await net.list_namespaced_ingress(ns)).items] == []


async def test_cluster_down_keeps_the_change_pending_then_applies_it(
    member_client, app, run_job, kube, kapi
) -> None:
    core, _, _ = kapi
    await kube.stop()
    result = await run_job("apply")
    assert result["pending"] == 1
    shown = await get_app(member_client, app["id"])
    assert shown["state"] == "pending" and shown["last_error"]
    # Reachable again: the retry (tiny backoff in these tests) applies it.
    await kube.start()
    import asyncio

    await asyncio.sleep(0.06)
    await run_job("apply")
    shown = await get_app(member_client, app["id"])
    assert shown["state"] == "synced" and shown["last_error"] is None
    assert (await core.read_namespaced_config_map("web-env", app["namespace"])).data == {
        "SITE_TITLE": "one"
    }


async def test_status_answers_503_when_the_cluster_is_down(
    member_client, app, run_job, kube
) -> None:
    await run_job("apply")
    await kube.stop()
    r = await member_client.get(f"{API}/apps/{app['id']}/status")
    assert r.status_code == 503 and "unreachable" in r.json()["detail"]
    await kube.start()


async def test_refused_apply_is_an_error_with_the_message_and_an_event(
    member_client, app, run_job, kube, platform
) -> None:
    from sqlalchemy import select

    from platform_core.testing import EventRecord

    # The apply of the absent Deployment answers 404, so the create is what gets refused.
    path = f"/apis/apps/v1/namespaces/{app['namespace']}/deployments"
    (
        kube.emu[f"post {path}"]
        << 422
        << {"kind": "Status", "message": "Deployment.apps web is invalid: Invalid value"}
    )
    await run_job("apply")
    shown = await get_app(member_client, app["id"])
    assert shown["state"] == "error", shown
    assert "Invalid value" in shown["last_error"]
    async with platform.ctx.db.session() as session:
        names = (await session.scalars(select(EventRecord.name))).all()
    assert "deployments.app.failed" in names and "deployments.app.created" in names


@pytest.mark.parametrize(
    ("deploy_settings", "lists"),
    [
        # per_user mode: Namespace, then one list per kind across all namespaces (3 namespace
        # kinds, 6 app kinds: IngressRoute too, to find objects left by a change of ingress_kind)
        ({"reconcile_lists": "auto"}, 10),
        ({"reconcile_lists": "namespace"}, 19),  # Namespace, then 9 kinds x 2 namespaces
    ],
)
async def test_no_op_reconcile_reads_in_bulk_and_writes_nothing(
    platform, run_job, kube, deploy_settings, lists
) -> None:
    for _ in range(2):  # two users: two namespaces
        client = await platform.client_for("member")
        for name in ("a", "b"):
            assert (
                await client.post(f"{API}/apps", json={"name": name, "template": "static-site"})
            ).status_code == 202
    await run_job("apply")
    before = len(list(kube.emu))
    result = await run_job("reconcile")
    during = list(kube.emu)[before:]
    assert result == {"writes": 0, "synced": 4, "apps": 4}
    assert all(str(r.method).upper().endswith("GET") for r in during)
    assert len(during) == lists, [str(r.url) for r in during]


async def test_delete_waits_for_the_cluster_to_confirm(member_client, app, run_job, kube) -> None:
    import asyncio

    await run_job("apply")
    await member_client.delete(f"{API}/apps/{app['id']}")
    await kube.stop()
    await run_job("apply")
    shown = await get_app(member_client, app["id"])
    assert shown["state"] == "deleting" and shown["last_error"]
    await kube.start()
    await asyncio.sleep(0.06)  # past the (test-sized) backoff
    await run_job("apply")
    assert (await member_client.get(f"{API}/apps/{app['id']}")).status_code == 404
