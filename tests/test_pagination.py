"""platform_core.pagination: cursors, keyset pages and the shared route types, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, tuple_

from platform_core import Permission, PluginMeta, ValidationFailed, hookimpl
from platform_core.auth.deps import DbSession
from platform_core.http import NO_CONTENT, Cursor, IdCursor, IdPath, Limit, OptionalId
from platform_core.pagination import (
    DEFAULT_LIMIT,
    IdPage,
    Page,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    fetch_page,
    page_by_id,
)

metadata = MetaData()
rows_table = Table(
    "pagetest_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), nullable=False),
    Column("owner", Integer, nullable=False),
)
NAMES = ["g", "c", "a", "e", "b", "f", "d"]  # ids 1..7


class RowOut(BaseModel):
    id: int
    name: str


class RowPage(IdPage[RowOut]):
    """A page of rows by id."""


class NamePage(Page[RowOut]):
    """A page of rows by name."""


router = APIRouter()


@router.get("/rows", response_model=RowPage)
async def list_rows(
    session: DbSession, owner: OptionalId = None, cursor: IdCursor = None, limit: Limit = 3
) -> RowPage:
    stmt = select(rows_table)
    if owner is not None:
        stmt = stmt.where(rows_table.c.owner == owner)
    rows, nxt = await page_by_id(
        session, stmt, rows_table.c.id, cursor=cursor, limit=limit, scalars=False
    )
    return RowPage(items=[RowOut(id=r.id, name=r.name) for r in rows], next_cursor=nxt)


@router.get("/by-name", response_model=NamePage)
async def by_name(session: DbSession, cursor: Cursor = None, limit: Limit = 3) -> NamePage:
    rows, nxt = await _by_name(session, cursor, limit)
    return NamePage(items=[RowOut(id=r.id, name=r.name) for r in rows], next_cursor=nxt)


@router.delete("/rows/{row_id}", **NO_CONTENT)
async def delete_row(row_id: IdPath, session: DbSession) -> None:
    await session.execute(rows_table.delete().where(rows_table.c.id == row_id))


async def _by_name(session: Any, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    after = None
    if cursor:
        payload = decode_cursor(cursor, required=("n", "i"))
        after = tuple_(rows_table.c.name, rows_table.c.id) > tuple_(payload["n"], payload["i"])
    return await fetch_page(
        session,
        select(rows_table),
        order_by=[rows_table.c.name, rows_table.c.id],
        limit=limit,
        after=after,
        scalars=False,
        key=lambda r: encode_cursor({"n": r.name, "i": r.id}),
    )


class PagePlugin:
    @hookimpl
    def platform_plugin_meta(self) -> PluginMeta:
        return PluginMeta(core=">=0.1,<1")

    @hookimpl
    def platform_permissions(self) -> list[Permission]:
        roles = ("admin", "operator", "member")
        return [Permission("pagetest:read", "r", roles), Permission("pagetest:write", "w", roles)]

    @hookimpl
    def platform_routes(self) -> list[APIRouter]:
        return [router]


@pytest.fixture
async def paged(platform_factory):
    platform = await platform_factory(extra_plugins={"pagetest": PagePlugin()})
    async with platform.ctx.db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(
            insert(rows_table),
            [{"id": i + 1, "name": n, "owner": 1 + i % 2} for i, n in enumerate(NAMES)],
        )
    return platform


def test_cursor_round_trip_and_tampering_is_422_naming_cursor():
    payload = {"s": "name", "v": "rack-1", "i": 42}
    cursor = encode_cursor(payload)
    assert decode_cursor(cursor, required=("i",)) == payload
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    # edit one character of the payload part: the checksum no longer matches
    edited = ("B" if cursor[5] != "B" else "C").join((cursor[:5], cursor[6:]))
    forged = encode_cursor({"s": "name", "v": "rack-1", "i": 42})[:-2] + "AA"
    for bad in (edited, cursor[:-3], forged, "not a cursor!", "", "x" * 600):
        with pytest.raises(ValidationFailed) as caught:
            decode_cursor(bad)
        assert caught.value.extra["errors"][0]["field"] == "cursor", bad
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_cursor({"i": 1}), required=("i", "s"))


def test_clamp_limit():
    assert clamp_limit(None, 50, 200) == 50
    assert clamp_limit(500, 50, 200) == 200
    assert clamp_limit(7, 50, 200) == 7


async def test_page_by_id_ascending_and_descending(paged):
    async with paged.ctx.db.session() as session:
        seen, cursor = [], None
        while True:
            rows, cursor = await page_by_id(
                session, select(rows_table), rows_table.c.id, cursor=cursor, limit=3, scalars=False
            )
            seen.append([r.id for r in rows])
            if cursor is None:
                break
        assert seen == [[1, 2, 3], [4, 5, 6], [7]]
        rows, cursor = await page_by_id(
            session,
            select(rows_table),
            rows_table.c.id,
            cursor=None,
            limit=4,
            descending=True,
            scalars=False,
        )
        assert ([r.id for r in rows], cursor) == ([7, 6, 5, 4], 4)
        rows, cursor = await page_by_id(
            session,
            select(rows_table),
            rows_table.c.id,
            cursor=4,
            limit=4,
            descending=True,
            scalars=False,
        )
        assert ([r.id for r in rows], cursor) == ([3, 2, 1], None)
        rows, cursor = await page_by_id(
            session, select(rows_table), rows_table.c.id, cursor=None, limit=None, scalars=False
        )
        assert (len(rows), cursor) == (7, None)


async def test_routes_page_by_id_with_filters_and_bounds(paged):
    client = await paged.client_for("member")
    r = await client.get("/api/pagetest/rows")
    assert r.json() == {
        "items": [{"id": 1, "name": "g"}, {"id": 2, "name": "c"}, {"id": 3, "name": "a"}],
        "next_cursor": 3,
    }
    r = await client.get("/api/pagetest/rows", params={"cursor": 3, "limit": 10, "owner": 1})
    assert r.json() == {
        "items": [{"id": 5, "name": "b"}, {"id": 7, "name": "d"}],
        "next_cursor": None,
    }
    for params, field in (
        ({"cursor": 0}, "cursor"),
        ({"cursor": 2**31}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"owner": -1}, "owner"),
    ):
        r = await client.get("/api/pagetest/rows", params=params)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["field"] == field
    assert DEFAULT_LIMIT == 50


async def test_routes_page_by_opaque_cursor(paged):
    client = await paged.client_for("member")
    names, cursor = [], None
    while True:
        r = await client.get("/api/pagetest/by-name", params={"cursor": cursor} if cursor else {})
        assert r.status_code == 200
        body = r.json()
        names += [item["name"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert names == sorted(NAMES)
    r = await client.get("/api/pagetest/by-name", params={"cursor": "AAAA"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cursor"
    r = await client.get("/api/pagetest/by-name", params={"cursor": "x" * 513})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cursor"


async def test_no_content_route_and_schema_names(paged):
    client = await paged.client_for("member")
    r = await client.delete("/api/pagetest/rows/7")
    assert r.status_code == 204
    assert r.content == b""
    assert "content-type" not in r.headers
    r = await client.delete("/api/pagetest/rows/0")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "row_id"
    doc = (await client.get("/openapi.json")).json()
    assert {"RowPage", "NamePage"} <= set(doc["components"]["schemas"])
    assert doc["components"]["schemas"]["RowPage"]["properties"]["next_cursor"]["anyOf"] == [
        {"type": "integer"},
        {"type": "null"},
    ]
    assert "204" in doc["paths"]["/api/pagetest/rows/{row_id}"]["delete"]["responses"]
