"""The gateway against the emulator: server-side apply, its 404 fallback, lists, deletes."""

from __future__ import annotations

import pytest
from platform_deployments.manifests import AppSpec, Placement, build_app_objects
from platform_deployments.service.gateway import (
    FIELD_MANAGER,
    ClusterUnreachable,
    connect,
)
from platform_deployments.settings import ClusterSettings


def objects() -> list[dict]:
    return build_app_objects(AppSpec(1, 1, "web", "nginx:1", 8080), Placement("u-1", "web"))


async def test_apply_of_an_absent_object_falls_back_to_create(kube) -> None:
    config_map = objects()[0]
    async with connect(ClusterSettings(host=kube.url)) as gw:
        await gw.apply(config_map)
        assert (await gw.get("ConfigMap", "u-1", "web-env"))["data"] == {}
        assert gw.writes == 2  # the apply (404), then the create
    applies = [r for r in kube.emu if str(r.method).upper().endswith("PATCH")]
    assert (
        applies[0].params["fieldManager"] == FIELD_MANAGER and applies[0].params["force"] == "true"
    )
    assert applies[0].headers["Content-Type"] == "application/apply-patch+yaml"


async def test_apply_of_an_existing_object_patches_it(kube) -> None:
    dep = objects()[2]
    async with connect(ClusterSettings(host=kube.url)) as gw:
        await gw.create(dep)
        dep["spec"]["replicas"] = 3
        await gw.apply(dep)
        assert (await gw.get("Deployment", "u-1", "web"))["spec"]["replicas"] == 3
        await gw.create(dep)  # exists: the create turns into an apply
        assert gw.writes == 4


async def test_list_filters_labels_on_our_side(kube) -> None:
    async with connect(ClusterSettings(host=kube.url)) as gw:
        for obj in objects():
            await gw.create(obj)
        await gw.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "foreign", "namespace": "u-1", "labels": {"x": "y"}},
            }
        )
        mine = await gw.list("ConfigMap", "u-1", {"deployments.platform.io/app-id": "1"})
        assert [o["metadata"]["name"] for o in mine] == ["web-env"]
        assert len(await gw.list("ConfigMap", "u-1")) == 2
        assert await gw.delete("ConfigMap", "u-1", "foreign") is True
        assert await gw.delete("ConfigMap", "u-1", "foreign") is False


async def test_unreachable_cluster_raises_unreachable(kube) -> None:
    await kube.stop()
    try:
        async with connect(ClusterSettings(host=kube.url), timeout=2) as gw:
            with pytest.raises(ClusterUnreachable):
                await gw.ping()
    finally:
        await kube.start()


async def test_kubeconfig_and_context_are_honoured(kube, tmp_path) -> None:
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "other",
        "clusters": [
            {"name": "emu", "cluster": {"server": kube.url}},
            {"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}},
        ],
        "users": [{"name": "dev", "user": {"token": "t0ken"}}],
        "contexts": [
            {"name": "emu", "context": {"cluster": "emu", "user": "dev"}},
            {"name": "other", "context": {"cluster": "nowhere", "user": "dev"}},
        ],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    async with connect(ClusterSettings(kubeconfig=str(path), context="emu")) as gw:
        await gw.ping()
    sent = list(kube.emu)[-1]
    assert sent.headers["Authorization"] == "Bearer t0ken"
    with pytest.raises(ClusterUnreachable):
        async with connect(ClusterSettings(kubeconfig=str(path)), timeout=2) as gw:
            await gw.ping()


async def test_readiness_checks_each_cluster(member_client, kube) -> None:
    checks = {c["name"]: c["ok"] for c in (await member_client.get("/readyz")).json()["checks"]}
    assert checks["deployments.cluster_test"] is True
    await kube.stop()
    try:
        r = await member_client.get("/readyz")
        assert r.status_code == 503
        checks = {c["name"]: c for c in r.json()["checks"]}
        assert checks["deployments.cluster_test"]["ok"] is False
    finally:
        await kube.start()
