"""Every text input of every route refuses control characters and unpaired surrogates.

The walk reads the OpenAPI document of a platform with every installed plugin enabled, so a
new route or field is covered without touching this file: each string path and query
parameter, each string form field and each string anywhere in a JSON body (nested objects,
array items, map values and keys) is sent with a NUL character, and each JSON string also with
an unpaired surrogate (``"\\ud800"``), and must be answered 422 naming that field. Both
databases must answer the same (the suite runs on SQLite and, with
``PLATFORM_TEST_DATABASE_URL``, on PostgreSQL): before the core text types, a NUL was stored on
SQLite and a 422 naming no field on PostgreSQL, and a surrogate was a 500 on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from platform_core.manager import discover
from platform_core.testing import TestPlatform

NUL = "a\x00b"
SURROGATE = "a\ud800b"
# string_unicode: pydantic itself refuses a surrogate where it validates a str
OUR_TYPES = {"control_character", "unpaired_surrogate", "string_unicode"}
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Leaf:
    """A string somewhere in a JSON body: its path, and whether only our types may refuse it."""

    path: tuple[str | int, ...]
    plain: bool  # no enum, pattern or format: only the text type can refuse a NUL
    key: bool = False  # the string is a map key, not a value


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def _is_plain_string(schema: dict[str, Any]) -> bool:
    branches = [schema, *schema.get("anyOf", [])]
    keys = ("enum", "const", "pattern", "format", "contentMediaType")  # the last: a file
    return not any(k in b for b in branches for k in keys)


def _leaves(
    doc: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...], depth: int = 0
) -> Iterator[Leaf]:
    schema = _resolve(doc, schema)
    if depth > 6:
        return
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        yield from _leaves(doc, branch, path, depth + 1)
    kind = schema.get("type")
    if kind == "string" or ("type" not in schema and not schema.get("anyOf") and path):
        # an untyped value (Any) takes strings too
        yield Leaf(path, kind == "string" and _is_plain_string(schema))
    if kind == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            yield from _leaves(doc, sub, (*path, name), depth + 1)
        extra = schema.get("additionalProperties")
        if extra:
            yield Leaf((*path, "k"), True, key=True)
            yield from _leaves(
                doc, extra if isinstance(extra, dict) else {}, (*path, "k"), depth + 1
            )
    if kind == "array" and isinstance(schema.get("items"), dict):
        yield from _leaves(doc, schema["items"], (*path, 0), depth + 1)


def _place(path: tuple[str | int, ...], value: Any, key: bool = False) -> Any:
    """A JSON value with ``value`` at ``path`` (as a key of the last object when ``key``)."""
    if key:
        *rest, _ = path
        return _place(tuple(rest), {value: "v"})
    if not path:
        return value
    head, *rest = path
    inner = _place(tuple(rest), value)
    return [inner] if isinstance(head, int) else {head: inner}


def _string_params(doc: dict[str, Any], op: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for param in op.get("parameters", []):
        if param["in"] not in ("path", "query"):
            continue
        schema = _resolve(doc, param.get("schema", {}))
        kinds = [schema, *schema.get("anyOf", [])]
        if any(_resolve(doc, k).get("type") == "string" for k in kinds):
            yield param


def _url(path: str, op: dict[str, Any], target: str | None, value: str) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            # Another path parameter gets a value its own validation refuses, so no dependency
            # loads an object before the body is validated; the error we look for is still listed.
            filler = value if param["name"] == target else "x"
            path = path.replace("{" + param["name"] + "}", quote(filler, safe=""))
    return path


def _named(response: httpx.Response, field: str, where: str, *, ours: bool, key: bool) -> bool:
    errors = response.json().get("errors", [])
    for error in errors:
        named = error.get("field") == field or (key and error.get("field", "").startswith(field))
        if named and error.get("in") == where and (not ours or error.get("type") in OUR_TYPES):
            return True
    return False


@pytest.fixture
def platform_plugins() -> list[str]:
    """Every installed plugin, so every route is walked."""
    return sorted(discover())


async def test_every_text_input_refuses_control_characters_and_surrogates(
    platform: TestPlatform,
) -> None:
    client = platform.client(await platform.token("admin"))
    doc = platform.app.openapi()
    failures: list[str] = []
    checked = {"path": 0, "query": 0, "form": 0, "body": 0}

    async def expect(
        what: str, response: httpx.Response, field: str, where: str, ours: bool, key: bool
    ) -> None:
        if response.status_code != 422 or not _named(response, field, where, ours=ours, key=key):
            failures.append(f"{what}: {response.status_code} {response.text[:300]}")

    for path, item in doc["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            name = f"{method.upper()} {path}"
            for param in _string_params(doc, op):
                where, pname = param["in"], param["name"]
                plain = _is_plain_string(_resolve(doc, param.get("schema", {})))
                if where == "path":
                    url, params = _url(path, op, pname, NUL), None
                else:
                    url, params = _url(path, op, None, "x"), {pname: NUL}
                r = await client.request(method, url, params=params)
                await expect(f"{name} {where} {pname}", r, pname, where, plain, False)
                checked[where] += 1
            content = op.get("requestBody", {}).get("content", {})
            url = _url(path, op, None, "x")
            for media, spec in content.items():
                schema = _resolve(doc, spec.get("schema", {}))
                if media == "application/json":
                    for leaf in _leaves(doc, schema, ()):
                        named = leaf.path[:-1] if leaf.key else leaf.path
                        field = ".".join(str(p) for p in named)
                        for bad in (NUL, SURROGATE):
                            body = json.dumps(_place(leaf.path, bad, leaf.key)).encode()
                            r = await client.request(
                                method,
                                url,
                                content=body,
                                headers={"content-type": "application/json"},
                            )
                            label = f"{name} body {field or '(root)'} {bad!r}"
                            await expect(label, r, field, "body", leaf.plain, leaf.key)
                        checked["body"] += 1
                elif media in ("application/x-www-form-urlencoded", "multipart/form-data"):
                    for fname, sub in schema.get("properties", {}).items():
                        sub = _resolve(doc, sub)
                        kinds = [sub, *sub.get("anyOf", [])]
                        if not any(k.get("type") == "string" for k in kinds):
                            continue
                        r = await client.request(method, url, data={fname: NUL})
                        plain = _is_plain_string(sub)  # a pattern or a file may refuse it
                        await expect(f"{name} form {fname}", r, fname, "body", plain, False)
                        checked["form"] += 1
    print("checked", checked)
    assert not failures, f"{len(failures)} text inputs not refused:\n" + "\n".join(failures)
    # The walk found what it should: login form, string path and query params, body fields.
    assert checked["form"] >= 2, checked
    assert checked["path"] >= 2 and checked["query"] >= 5 and checked["body"] >= 50, checked


# -- the defects one by one, on both databases ----------------------------------------------


async def test_nul_on_the_login_form_and_in_a_search_is_422_naming_the_field(platform):
    anon = platform.client()
    r = await anon.post("/api/core/auth/token", data={"username": "ad\x00min", "password": "x" * 8})
    assert r.status_code == 422, r.text
    assert [(e["field"], e["type"]) for e in r.json()["errors"]] == [
        ("username", "control_character")
    ]
    admin = platform.client(await platform.token("admin"))
    r = await admin.get("/api/inventory/devices", params={"q": "a\x00"})
    assert r.status_code == 422, r.text
    error = r.json()["errors"][0]
    assert (error["field"], error["in"]) == ("q", "query")
    assert "U+0000" in error["message"]


async def test_text_is_refused_the_same_on_both_databases(platform):
    """NUL, DEL, C1 and surrogates are 422 naming the field; tab and LF only in free text."""
    admin = platform.client(await platform.token("admin"))
    for bad in ("a\x00", "a\x7f", "a\x85", "a\x1b[31m", "tab\there", "line\nbreak"):
        r = await admin.post("/api/inventory/manufacturers", json={"name": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"] == "name"
    r = await admin.post(
        "/api/inventory/manufacturers",
        content=b'{"name": "lone \\ud800 surrogate"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name", r.text
    # Unicode beyond the controls, and a surrogate pair (one character), are text.
    r = await admin.post(
        "/api/inventory/manufacturers",
        content=b'{"name": "Caf\\u00e9 \\ud83d\\ude00 \\u4e2d"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Café 😀 中"
    # Free text keeps its line breaks and tabs (a booking's purpose), not its NULs.
    r = await admin.post(
        "/api/scheduler/policies", json={"name": "p", "tag": "t\x00", "auto_approve": True}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "tag", r.text


async def test_surrogates_and_nul_in_device_tags_and_custom_fields_are_422(platform):
    admin = platform.client(await platform.token("admin"))
    maker = (await admin.post("/api/inventory/manufacturers", json={"name": "Acme"})).json()
    dtype = await admin.post(
        "/api/inventory/device-types",
        json={
            "manufacturer_id": maker["id"],
            "model": "S1",
            "custom_fields": [{"name": "note", "type": "string"}],
        },
    )
    assert dtype.status_code == 201, dtype.text
    base = {"name": "d1", "device_type_id": dtype.json()["id"]}
    cases = [
        ({"tags": ["ok", "\ud800"]}, "tags.1"),
        ({"tags": ["a\x00"]}, "tags.0"),
        ({"custom_fields": {"note": "x\x00y"}}, "custom_fields.note"),
        ({"custom_fields": {"note": "\udfff"}}, "custom_fields.note"),
    ]
    for extra, field in cases:
        body = json.dumps(base | extra).encode()  # ASCII escapes: the surrogate survives
        r = await admin.post(
            "/api/inventory/devices", content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 422, (extra, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], r.text
    # A multi-line custom field value is free text: stored.
    r = await admin.post(
        "/api/inventory/devices", json=base | {"custom_fields": {"note": "two\nlines"}}
    )
    assert r.status_code == 201, r.text
    assert (await admin.get("/api/inventory/devices")).json()["items"][0]["custom_fields"] == {
        "note": "two\nlines"
    }


async def test_malformed_json_is_400_with_its_position_not_a_field(platform):
    admin = platform.client(await platform.token("admin"))
    r = await admin.post(
        "/api/inventory/manufacturers",
        content=b'{"name":\n  "x",,}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert body["detail"].startswith("the body is not valid JSON: ")
    assert (body["line"], body["column"], body["position"]) == (2, 7, 15)
    assert "line 2, column 7" in body["detail"]
    assert "errors" not in body  # no field named after an offset


async def test_deep_json_is_400_on_every_route_and_the_import(platform):
    admin = platform.client(await platform.token("admin"))
    deep = b"[" * 5000 + b"]" * 5000
    for url in (
        "/api/inventory/manufacturers",
        "/api/inventory/import",
        "/api/core/webhooks",
        "/api/scheduler/bookings",
    ):
        r = await admin.post(url, content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400, (url, r.text)
        assert "nested too deeply" in r.json()["detail"], r.text
    # Brackets inside strings do not count; 64 levels are fine.
    ok = b'{"name": "' + b"[" * 90 + b'"}'
    r = await admin.post(
        "/api/inventory/manufacturers", content=ok, headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text
    r = await admin.post(
        "/api/inventory/devices",
        content=b'{"custom_fields": {"a": ' + b"[" * 62 + b"]" * 62 + b"}}",  # 64 levels
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "nested" not in r.text, r.text  # validated, not refused


async def test_token_lifetime_beyond_the_limit_is_422_naming_expires_in(platform):
    admin = platform.client(await platform.token("admin"))
    r = await admin.post("/api/core/tokens", json={"name": "t", "expires_in": "999999w"})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["expires_in"]
    assert "at most 3660 days" in r.json()["detail"]
    r = await admin.post("/api/core/tokens", json={"name": "t", "expires_in": "3650d"})
    assert r.status_code == 201, r.text


def test_json_depth_ignores_brackets_in_strings_and_stops_at_the_limit():
    from platform_core.types import json_depth, json_too_deep

    assert json_depth(b"1") == 0 and json_depth(b'"[[["') == 0
    assert json_depth(b'{"a": [1, {"b": "]]]}"}]}') == 3
    assert json_depth(rb'["\\", [[1]]]') == 3  # an escaped backslash ends no string
    assert json_depth(rb'["\"]]", [[1]]]') == 3  # an escaped quote ends no string
    assert json_depth(b'["[", "]"]') == 1
    assert json_depth(b"[" * 10_000 + b"]" * 10_000, limit=64) == 65
    assert not json_too_deep(b"[" * 64 + b"]" * 64) and json_too_deep(b"[" * 65 + b"]" * 65)
    assert not json_too_deep(b'["' + b"[" * 1000 + b'"]')
