"""Every error is RFC 9457 problem+json with the right status and no internals."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends
from pydantic import BaseModel

from platform_core import Conflict, hookimpl

PROBLEM = "application/problem+json"


class Item(BaseModel):
    """Body of the test route."""

    name: str
    size: int


class ErrorsPlugin:
    """Routes that fail in every way a client can see."""

    @hookimpl
    def platform_routes(self):
        router = APIRouter()

        @router.post("/items", status_code=201)
        async def create(item: Item) -> Item:
            if item.name == "taken":
                raise Conflict("item 'taken' already exists")
            return item

        @router.get("/boom")
        async def boom() -> dict:
            raise RuntimeError("secret internal detail /etc/passwd")

        return [router]


@pytest.fixture
def platform_extra_plugins():
    return {"errs": ErrorsPlugin()}


def assert_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= set(body)
    return body


async def test_unknown_path_is_404_problem(admin_client):
    assert_problem(await admin_client.get("/api/nowhere"), 404)


async def test_wrong_method_is_405_problem(admin_client):
    assert_problem(await admin_client.delete("/api/errs/items"), 405)


async def test_invalid_body_is_422_naming_each_field(admin_client):
    body = assert_problem(await admin_client.post("/api/errs/items", json={"size": "big"}), 422)
    fields = {e["field"] for e in body["errors"]}
    assert fields == {"name", "size"}
    assert "name" in body["detail"] and "size" in body["detail"]


async def test_malformed_json_is_400_saying_where(admin_client):
    r = await admin_client.post(
        "/api/errs/items", content=b"{not json", headers={"content-type": "application/json"}
    )
    body = assert_problem(r, 400)
    assert body["detail"].startswith("the body is not valid JSON: Expecting property name")
    assert "line 1, column 2" in body["detail"] and "errors" not in body


async def test_wrong_content_type_is_415(admin_client):
    r = await admin_client.post(
        "/api/errs/items", content=b"name=a&size=1", headers={"content-type": "text/plain"}
    )
    body = assert_problem(r, 415)
    assert "application/json" in body["detail"]


async def test_oversized_body_is_413(platform_factory):
    platform = await platform_factory(
        extra_plugins={"errs": ErrorsPlugin()}, core={"max_body_bytes": 1024}
    )
    client = await platform.client_for("admin")
    r = await client.post("/api/errs/items", json={"name": "x" * 5000, "size": 1})
    assert_problem(r, 413)


async def test_domain_conflict_is_409(admin_client):
    body = assert_problem(
        await admin_client.post("/api/errs/items", json={"name": "taken", "size": 1}), 409
    )
    assert body["detail"] == "item 'taken' already exists"


async def test_unhandled_error_is_500_without_internals(admin_client, caplog):
    r = await admin_client.get("/api/errs/boom")
    body = assert_problem(r, 500)
    assert "secret internal detail" not in r.text
    assert "Traceback" not in r.text
    assert body["request_id"] == r.headers["x-request-id"]
    assert any("unhandled error" in rec.message for rec in caplog.records)


async def test_missing_credentials_is_401_and_missing_scope_is_403(platform, anon_client):
    assert_problem(await anon_client.get("/api/errs/boom"), 401)
    reader = await platform.client_for("member", scopes=["core:read"])
    assert_problem(await reader.post("/api/errs/items", json={"name": "a", "size": 1}), 403)


async def test_request_id_is_echoed(admin_client):
    r = await admin_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"


async def test_unreachable_database_is_503_problem(platform_factory):
    platform = await platform_factory()
    client = await platform.client_for("admin")  # the token is made while the database is up
    await platform.ctx.db.dispose()
    from platform_core.db import Database

    platform.ctx.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    platform.ctx.state["credential_cache"].clear()
    r = await client.get("/api/core/me")
    body = assert_problem(r, 503)
    assert "database is unavailable" in body["detail"]


class Echo:
    """Stores a text value: NUL characters are refused by PostgreSQL."""

    @hookimpl
    def platform_routes(self):
        from sqlalchemy import text

        from platform_core.auth.deps import get_session

        router = APIRouter()

        @router.post("/echo")
        async def echo(item: Item, session=Depends(get_session, scope="function")) -> dict:
            await session.execute(text("SELECT CAST(:v AS TEXT)"), {"v": item.name})
            return {"ok": True}

        return [router]


async def test_value_the_database_refuses_is_422_not_500(platform_factory):
    platform = await platform_factory(extra_plugins={"echo": Echo()})
    client = await platform.client_for("admin")
    r = await client.post("/api/echo/echo", json={"name": "nul\u0000byte", "size": 1})
    # PostgreSQL refuses NUL in text (SQLSTATE 22021); SQLite stores it.
    assert r.status_code in (200, 422), r.text
    if platform.ctx.db.dialect == "postgresql":
        assert_problem(r, 422)
