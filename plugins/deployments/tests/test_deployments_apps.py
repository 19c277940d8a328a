"""Apps through the API: validation, uniqueness, quotas, revisions, rollback, secrets."""

from __future__ import annotations

from typing import Any

import pytest

API = "/api/deployments"


@pytest.fixture
async def demo(admin_client) -> str:
    """A template with one variable of each type, and a secret."""
    body = {
        "name": "demo",
        "spec": {
            "image": "ghcr.io/acme/demo:1.0",
            "port": 8080,
            "replicas": 1,
            "variables": [
                {"name": "TITLE", "type": "string", "default": "hello"},
                {"name": "WORKERS", "type": "int", "default": 2},
                {"name": "DEBUG", "type": "bool", "default": False},
                {"name": "MODE", "type": "enum", "choices": ["a", "b"], "required": True},
                {"name": "API_KEY", "type": "string", "secret": True, "required": True},
            ],
        },
    }
    r = await admin_client.post(f"{API}/templates", json=body)
    assert r.status_code == 201, r.text
    return "demo"


def app_body(name: str = "web", **extra: Any) -> dict[str, Any]:
    return {"name": name, "template": "demo", "variables": {"MODE": "a", "API_KEY": "k-1"}} | extra


async def test_create_answers_202_with_revision_1_pending(member_client, demo) -> None:
    r = await member_client.post(f"{API}/apps", json=app_body())
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["revision"] == 1
    app = body["app"]
    assert app["state"] == "pending" and app["applied_revision"] is None
    assert app["variables"] == {"TITLE": "hello", "WORKERS": "2", "DEBUG": "false", "MODE": "a"}
    assert app["secret_variables"] == ["API_KEY"]
    assert "k-1" not in r.text
    assert app["host"].endswith(".apps.test") and app["namespace"].startswith("u-")


async def test_secret_values_are_never_shown(member_client, demo) -> None:
    app = (await member_client.post(f"{API}/apps", json=app_body())).json()["app"]
    for path in (f"/apps/{app['id']}", f"/apps/{app['id']}/revisions", "/apps"):
        r = await member_client.get(API + path)
        assert r.status_code == 200 and "k-1" not in r.text and "API_KEY" in r.text


async def test_bad_names_are_refused(member_client, demo) -> None:
    for name in ("Web", "-web", "web-", "a" * 41, "we_b"):
        r = await member_client.post(f"{API}/apps", json=app_body(name))
        assert r.status_code == 422, name
        assert r.json()["errors"][0]["field"].endswith("name"), r.text


async def test_name_is_unique_per_user_only(platform, demo) -> None:
    alice, bob = await platform.client_for("member"), await platform.client_for("member")
    assert (await alice.post(f"{API}/apps", json=app_body())).status_code == 202
    r = await alice.post(f"{API}/apps", json=app_body())
    assert r.status_code == 409 and "name" in r.json()["detail"]
    assert (await bob.post(f"{API}/apps", json=app_body())).status_code == 202


async def test_custom_host_is_unique_across_the_platform(platform, demo) -> None:
    alice, bob = await platform.client_for("member"), await platform.client_for("member")
    assert (
        await alice.post(f"{API}/apps", json=app_body(host="shop.example.org"))
    ).status_code == 202
    r = await bob.post(f"{API}/apps", json=app_body("other", host="shop.example.org"))
    assert r.status_code == 409
    assert "host" in r.json()["detail"] and "shop.example.org" in r.json()["detail"]


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"MODE": "c", "API_KEY": "x"}, "variables.MODE"),
        ({"MODE": "a", "API_KEY": "x", "WORKERS": "many"}, "variables.WORKERS"),
        ({"MODE": "a", "API_KEY": "x", "DEBUG": "perhaps"}, "variables.DEBUG"),
        ({"MODE": "a", "API_KEY": "x", "NOPE": "1"}, "variables.NOPE"),
        ({"MODE": "a"}, "variables.API_KEY"),
        ({"MODE": "a", "API_KEY": "x", "TITLE": "bad\x00"}, "variables.TITLE"),
    ],
)
async def test_every_bad_variable_is_named(member_client, demo, variables, field) -> None:
    r = await member_client.post(f"{API}/apps", json=app_body(variables=variables))
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]], r.text


async def test_quota_breach_names_the_quota(platform, admin_client, demo) -> None:
    member = await platform.client_for("member")
    me = (await member.get(f"{API}/quotas")).json()
    r = await admin_client.put(
        f"{API}/admin/quotas/{me['user_id']}",
        json={"max_apps": 1, "max_replicas": 2, "cpu_millis": 1000, "memory_mib": 1024},
    )
    assert r.status_code == 200, r.text
    r = await member.post(f"{API}/apps", json=app_body(replicas=3))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "quota.max_replicas"
    assert (await member.post(f"{API}/apps", json=app_body())).status_code == 202
    r = await member.post(f"{API}/apps", json=app_body("second"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "quota.max_apps"
    big = {
        "cpu_request_millis": 2000,
        "memory_request_mib": 128,
        "cpu_limit_millis": 2000,
        "memory_limit_mib": 256,
    }
    app_id = (await member.get(f"{API}/apps")).json()["items"][0]["id"]
    r = await member.patch(f"{API}/apps/{app_id}", json={"resources": big})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "quota.cpu_millis"
    quota = (await member.get(f"{API}/quotas")).json()
    assert quota["apps"] == 1 and quota["replicas"] == 1 and quota["custom"] is True


async def test_image_tag_may_change_but_not_the_repository(platform, admin_client, demo) -> None:
    member = await platform.client_for("member")
    r = await member.post(f"{API}/apps", json=app_body(image_tag="1.1"))
    assert r.json()["app"]["image"] == "ghcr.io/acme/demo:1.1"
    r = await member.post(f"{API}/apps", json=app_body("evil", image="docker.io/evil/miner:1"))
    assert r.status_code == 403 and "image" in r.json()["detail"]
    me = (await member.get(f"{API}/quotas")).json()
    await admin_client.put(
        f"{API}/admin/quotas/{me['user_id']}",
        json={
            "max_apps": 5,
            "max_replicas": 5,
            "cpu_millis": 2000,
            "memory_mib": 2048,
            "allow_image_override": True,
        },
    )
    r = await member.post(f"{API}/apps", json=app_body("evil", image="docker.io/evil/miner:1"))
    assert r.status_code == 202


async def test_every_change_is_a_revision_and_rollback_is_a_new_one(member_client, demo) -> None:
    app = (await member_client.post(f"{API}/apps", json=app_body())).json()["app"]
    url = f"{API}/apps/{app['id']}"
    r = await member_client.patch(url, json={"variables": {"TITLE": "v2"}})
    assert r.status_code == 202 and r.json()["revision"] == 2
    r = await member_client.patch(url, json={"replicas": 2, "image_tag": "1.2"})
    assert r.json()["revision"] == 3 and r.json()["app"]["image"] == "ghcr.io/acme/demo:1.2"
    r = await member_client.post(f"{url}/rollback", json={"revision": 1})
    assert r.status_code == 202, r.text
    rolled = r.json()
    assert rolled["revision"] == 4
    assert rolled["app"]["variables"]["TITLE"] == "hello" and rolled["app"]["replicas"] == 1
    assert rolled["app"]["image"] == "ghcr.io/acme/demo:1.0"
    revs = (await member_client.get(f"{url}/revisions")).json()["items"]
    assert [v["number"] for v in revs] == [4, 3, 2, 1]
    assert revs[0]["current"] is True and revs[0]["reason"] == "rollback to 1"


async def test_secret_kept_when_not_given_again(member_client, platform, demo) -> None:
    app = (await member_client.post(f"{API}/apps", json=app_body())).json()["app"]
    r = await member_client.patch(f"{API}/apps/{app['id']}", json={"variables": {"TITLE": "x"}})
    assert r.json()["app"]["secret_variables"] == ["API_KEY"]


async def test_no_change_and_bad_rollback_are_named(member_client, demo) -> None:
    app = (await member_client.post(f"{API}/apps", json=app_body())).json()["app"]
    url = f"{API}/apps/{app['id']}"
    r = await member_client.patch(url, json={"replicas": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    r = await member_client.post(f"{url}/rollback", json={"revision": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "revision"
    r = await member_client.post(f"{url}/rollback", json={"revision": 99})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "revision"


@pytest.mark.parametrize("deploy_settings", [{"history_limit": 3}])
async def test_history_keeps_the_configured_count(member_client, demo, deploy_settings) -> None:
    app = (await member_client.post(f"{API}/apps", json=app_body())).json()["app"]
    for i in range(5):
        await member_client.patch(f"{API}/apps/{app['id']}", json={"variables": {"TITLE": f"t{i}"}})
    revs = (await member_client.get(f"{API}/apps/{app['id']}/revisions")).json()["items"]
    assert [v["number"] for v in revs] == [6, 5, 4]
    r = await member_client.post(f"{API}/apps/{app['id']}/rollback", json={"revision": 2})
    assert r.status_code == 422 and "history" in r.text


async def test_members_see_only_their_own_apps(platform, admin_client, demo) -> None:
    alice, bob = await platform.client_for("member"), await platform.client_for("member")
    app = (await alice.post(f"{API}/apps", json=app_body())).json()["app"]
    for path in ("", "/revisions", "/logs?pod=web-1", "/events", "/status"):
        assert (await bob.get(f"{API}/apps/{app['id']}{path}")).status_code == 404, path
    assert (await bob.patch(f"{API}/apps/{app['id']}", json={"replicas": 2})).status_code == 404
    assert (await bob.get(f"{API}/apps")).json()["items"] == []
    assert (await admin_client.get(f"{API}/apps/{app['id']}")).status_code == 200
    assert len((await admin_client.get(f"{API}/apps")).json()["items"]) == 1


async def test_unknown_or_retired_template_is_named(admin_client, member_client, demo) -> None:
    r = await member_client.post(f"{API}/apps", json=app_body(template="nope"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "template"
    await admin_client.post(f"{API}/templates/demo/retire")
    r = await member_client.post(f"{API}/apps", json=app_body())
    assert r.status_code == 422 and "retired" in r.text


async def test_mongo_template_needs_a_database_first(member_client) -> None:
    r = await member_client.post(f"{API}/apps", json={"name": "m", "template": "mongo-app"})
    assert r.status_code == 409 and "mongo" in r.json()["detail"]


@pytest.mark.parametrize("deploy_settings", [{"clusters": {}}])
async def test_no_cluster_configured_is_a_clear_problem(
    member_client, platform, demo, deploy_settings
) -> None:
    r = await member_client.post(f"{API}/apps", json=app_body())
    assert r.status_code == 422
    error = r.json()["errors"][0]
    assert (
        error["field"] == "cluster" and "[plugins.deployments.clusters.<name>]" in error["message"]
    )
    assert (await member_client.get(f"{API}/templates")).status_code == 200
    ready = await member_client.get("/readyz")
    names = {c["name"]: c["ok"] for c in ready.json()["checks"]}
    assert names.get("deployments.no_cluster_configured") is True


async def test_unknown_cluster_is_named(member_client, demo) -> None:
    r = await member_client.post(f"{API}/apps", json=app_body(cluster="elsewhere"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cluster"


async def test_app_keeps_its_template_version_until_redeployed(
    admin_client, member_client, demo
) -> None:
    app = (await member_client.post(f"{API}/apps", json=app_body())).json()["app"]
    spec = (await admin_client.get(f"{API}/templates/demo")).json()["spec"]
    spec["image"] = "ghcr.io/acme/demo:2.0"
    spec["variables"].append({"name": "EXTRA", "type": "string", "required": True})
    assert (await admin_client.put(f"{API}/templates/demo", json={"spec": spec})).status_code == 200
    shown = (await member_client.get(f"{API}/apps/{app['id']}")).json()
    assert shown["template_version"] == 1 and shown["image"] == "ghcr.io/acme/demo:1.0"
    r = await member_client.patch(f"{API}/apps/{app['id']}", json={"template_version": 2})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "variables.EXTRA"
    r = await member_client.patch(
        f"{API}/apps/{app['id']}", json={"template_version": 2, "variables": {"EXTRA": "x"}}
    )
    assert r.status_code == 202, r.text
    assert (
        r.json()["app"]["template_version"] == 2
        and r.json()["app"]["image"] == "ghcr.io/acme/demo:2.0"
    )
    assert r.json()["app"]["secret_variables"] == ["API_KEY"]


async def test_non_scalar_variable_value_is_named(member_client, demo) -> None:
    r = await member_client.post(
        f"{API}/apps", json=app_body(variables={"MODE": ["a"], "API_KEY": "x"})
    )
    assert r.status_code == 422
    assert any(e["field"] == "variables.MODE" for e in r.json()["errors"]), r.text
