"""Templates: built-ins seeded by migration, admin versions and retirement, YAML export/import."""

from __future__ import annotations

from typing import Any

import yaml

API = "/api/deployments/templates"


def template(name: str = "hello", **spec: Any) -> dict[str, Any]:
    base = {
        "image": "ghcr.io/acme/hello:1.0",
        "port": 8080,
        "variables": [{"name": "GREETING", "type": "string", "default": "hi"}],
    }
    return {"name": name, "title": "Hello", "spec": base | spec}


async def test_builtin_templates_are_seeded(member_client) -> None:
    r = await member_client.get(API)
    assert r.status_code == 200, r.text
    names = {t["name"] for t in r.json()["items"]}
    assert {"static-site", "python-web", "node-app", "mongo-app"} <= names
    mongo = next(t for t in r.json()["items"] if t["name"] == "mongo-app")
    assert mongo["builtin"] is True and mongo["spec"]["mongo"] is True


async def test_admin_creates_template_and_member_cannot(admin_client, member_client) -> None:
    r = await admin_client.post(API, json=template())
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    assert (await member_client.post(API, json=template("other"))).status_code == 403
    r = await admin_client.post(API, json=template())
    assert r.status_code == 409
    assert "hello" in r.json()["detail"]


async def test_new_version_keeps_the_old_one(admin_client) -> None:
    await admin_client.post(API, json=template())
    r = await admin_client.put(
        f"{API}/hello", json={"spec": template(image="ghcr.io/acme/hello:2.0")["spec"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert (await admin_client.get(f"{API}/hello")).json()["spec"][
        "image"
    ] == "ghcr.io/acme/hello:2.0"
    old = await admin_client.get(f"{API}/hello", params={"version": 1})
    assert old.json()["spec"]["image"] == "ghcr.io/acme/hello:1.0"
    versions = (await admin_client.get(f"{API}/hello/versions")).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]


async def test_retired_template_leaves_the_catalogue(admin_client) -> None:
    await admin_client.post(API, json=template())
    r = await admin_client.post(f"{API}/hello/retire")
    assert r.status_code == 200 and r.json()["retired"] is True
    assert "hello" not in {t["name"] for t in (await admin_client.get(API)).json()["items"]}
    listed = (await admin_client.get(API, params={"include_retired": True})).json()["items"]
    assert "hello" in {t["name"] for t in listed}


async def test_bad_variable_definitions_are_named(admin_client) -> None:
    cases = [
        ({"name": "lower", "type": "string"}, "name"),
        ({"name": "MODE", "type": "enum"}, "enum"),
        ({"name": "N", "type": "int", "default": "many"}, "integer"),
        ({"name": "S", "type": "string", "secret": True, "default": "x"}, "secret"),
    ]
    for variable, word in cases:
        r = await admin_client.post(API, json=template(variables=[variable]))
        assert r.status_code == 422, (variable, r.text)
        assert word in r.text, (variable, r.text)
    dup = [{"name": "A"}, {"name": "A"}]
    r = await admin_client.post(API, json=template(variables=dup))
    assert r.status_code == 422 and "named twice" in r.text


async def test_bad_image_and_port_are_refused(admin_client) -> None:
    r = await admin_client.post(API, json=template(image="Not An Image"))
    assert r.status_code == 422 and "image" in r.text
    r = await admin_client.post(API, json=template(port=70000))
    assert r.status_code == 422 and "port" in r.text


async def test_unknown_template_is_404(member_client) -> None:
    assert (await member_client.get(f"{API}/nope")).status_code == 404


async def test_export_then_import_round_trips(admin_client, platform) -> None:
    await admin_client.post(API, json=template())
    text = (await admin_client.get(f"{API}/export")).json()["yaml"]
    doc = yaml.safe_load(text)
    assert "hello" in {t["name"] for t in doc["templates"]}
    # Unchanged import: nothing new.
    r = await admin_client.post(f"{API}/import", json={"yaml": text})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == [] and r.json()["updated"] == []
    # A changed spec becomes a new version; a new name a new template.
    for t in doc["templates"]:
        if t["name"] == "hello":
            t["spec"]["port"] = 9090
    doc["templates"].append(template("brand-new"))
    r = await admin_client.post(f"{API}/import", json={"yaml": yaml.safe_dump(doc)})
    assert r.json()["updated"] == ["hello"] and r.json()["created"] == ["brand-new"]
    assert (await admin_client.get(f"{API}/hello")).json()["version"] == 2


async def test_import_names_the_bad_entry(admin_client) -> None:
    r = await admin_client.post(
        f"{API}/import", json={"yaml": "templates: [{name: x, spec: {port: 1}}]"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"].startswith("templates.0.spec")
    r = await admin_client.post(f"{API}/import", json={"yaml": "{{{"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "yaml"
