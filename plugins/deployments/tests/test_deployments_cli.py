"""``platformctl deployments``: apps list/status/logs/rollback, templates, reconcile, mongo."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import yaml

API = "/api/deployments"


@pytest.fixture
def cli(run_cli: Any) -> Any:
    return functools.partial(run_cli, "deployments")


@pytest.fixture
async def app(member_client) -> dict[str, Any]:
    r = await member_client.post(f"{API}/apps", json={"name": "web", "template": "static-site"})
    assert r.status_code == 202, r.text
    return r.json()["app"]


async def test_reconcile_applies_then_checks(cli, app, member_client) -> None:
    result = await cli("reconcile")
    assert result.exit_code == 0, result.output
    assert "apply: " in result.stdout and "synced=1" in result.stdout
    assert (await member_client.get(f"{API}/apps/{app['id']}")).json()["state"] == "synced"
    again = await cli("reconcile")
    assert "writes=0" in again.stdout.splitlines()[1]


async def test_apps_list_and_status(cli, app) -> None:
    result = await cli("apps", "list")
    assert result.exit_code == 0, result.output
    assert "web" in result.stdout and "pending" in result.stdout
    await cli("reconcile")
    status = await cli("apps", "status", str(app["id"]))
    assert status.exit_code == 0, status.output
    assert "synced" in status.stdout and "rollout: progressing" in status.stdout


async def test_apps_rollback_makes_a_new_revision(cli, app, member_client) -> None:
    await member_client.patch(f"{API}/apps/{app['id']}", json={"variables": {"SITE_TITLE": "b"}})
    result = await cli("apps", "rollback", str(app["id"]), "1")
    assert result.exit_code == 0, result.output
    assert "revision 3" in result.stdout
    shown = (await member_client.get(f"{API}/apps/{app['id']}")).json()
    assert shown["revision"] == 3 and shown["variables"]["SITE_TITLE"] == "My site"


async def test_rollback_to_a_missing_revision_is_one_line_error(cli, app) -> None:
    result = await cli("apps", "rollback", str(app["id"]), "42")
    assert result.exit_code == 1 and result.stderr.startswith("error: ")


async def test_apps_logs(cli, app, kube) -> None:
    from kubernetes.aio import client as k8s

    await cli("reconcile")
    pod = {
        "metadata": {"name": "web-1", "labels": {"deployments.platform.io/app-id": str(app["id"])}},
        "spec": {"containers": [{"name": "app", "image": "x"}]},
    }
    async with k8s.ApiClient(k8s.Configuration(host=kube.url)) as api:
        await k8s.CoreV1Api(api).create_namespaced_pod(app["namespace"], pod)
    kube.emu[f"get /api/v1/namespaces/{app['namespace']}/pods/web-1/log"] << b"a\nb\nc\n"
    result = await cli("apps", "logs", str(app["id"]), "web-1", "--tail", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["b", "c"]


async def test_templates_export_then_import(cli, tmp_path, admin_client) -> None:
    out = tmp_path / "t.yaml"
    result = await cli("templates", "export", "--output", str(out))
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    assert "static-site" in {t["name"] for t in doc["templates"]}
    doc["templates"] = [t for t in doc["templates"] if t["name"] == "static-site"]
    doc["templates"][0]["spec"]["port"] = 8181
    doc["templates"].append({"name": "fresh", "spec": {"image": "ghcr.io/acme/fresh:1"}})
    out.write_text(yaml.safe_dump(doc))
    result = await cli("templates", "import", str(out))
    assert result.exit_code == 0, result.output
    assert "created 1, updated 1, unchanged 0" in result.stdout
    assert (await admin_client.get(f"{API}/templates/static-site")).json()["version"] == 2


async def test_templates_import_names_the_bad_field(cli, tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("templates:\n  - name: x\n    spec: {port: 1}\n")
    result = await cli("templates", "import", str(bad))
    assert result.exit_code == 1 and "templates.0.spec" in result.stderr


async def test_mongo_provision_without_a_server_names_the_setting(cli, member_client) -> None:
    me = (await member_client.get(f"{API}/quotas")).json()["user_id"]
    result = await cli("mongo", "provision", str(me))
    assert result.exit_code == 1 and "admin_uri" in result.stderr
