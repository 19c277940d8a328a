"""Route gates (platform_core.routegate): routers skipped by path, same answers as without."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from platform_core.routegate import GATE_ATTRIBUTE, gate_routers


def _routers() -> tuple[APIRouter, APIRouter, APIRouter]:
    items = APIRouter()

    @items.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @items.get("/items-count")
    async def count() -> dict[str, int]:
        return {"count": 3}

    tags = APIRouter(prefix="/tags")

    @tags.get("")
    async def all_tags() -> list[str]:
        return ["a"]

    @tags.get("/{name:path}")
    async def tag(name: str) -> dict[str, str]:
        return {"tag": name}

    top = APIRouter()
    top.include_router(items)
    top.include_router(tags, prefix="/meta")
    return top, items, tags


def _app(top: APIRouter, prefix: str) -> FastAPI:
    app = FastAPI()
    app.include_router(top, prefix=prefix)
    gate_routers([(top, prefix)])
    return app


async def _get(app: FastAPI, path: str, root_path: str = "") -> tuple[int, object]:
    transport = httpx.ASGITransport(app=app, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(path)
    return response.status_code, response.json()


async def test_gates_are_the_literal_prefixes_of_each_router() -> None:
    top, items, tags = _routers()
    _app(top, "/api/demo")
    assert getattr(top, GATE_ATTRIBUTE) == "/api/demo/"
    assert getattr(items, GATE_ATTRIBUTE) == "/api/demo/items"
    assert getattr(tags, GATE_ATTRIBUTE) == "/api/demo/meta/tags"


async def test_gated_routers_answer_as_before() -> None:
    top, _, _ = _routers()
    app = _app(top, "/api/demo")
    assert await _get(app, "/api/demo/items/7") == (200, {"item": 7})
    assert await _get(app, "/api/demo/items-count") == (200, {"count": 3})
    assert await _get(app, "/api/demo/meta/tags") == (200, ["a"])
    assert await _get(app, "/api/demo/meta/tags/x/y") == (200, {"tag": "x/y"})
    assert (await _get(app, "/api/demo/nothing"))[0] == 404
    assert (await _get(app, "/api/other/items/7"))[0] == 404
    assert (await _get(app, "/api/demo/items/x"))[0] == 422  # matched, then validated


async def test_a_router_mounted_in_two_apps_keeps_a_gate_valid_for_both() -> None:
    top, items, _ = _routers()
    first = _app(top, "/api/one")
    second = _app(top, "/api/two")
    assert getattr(items, GATE_ATTRIBUTE) == "/api/"
    assert await _get(first, "/api/one/items/1") == (200, {"item": 1})
    assert await _get(second, "/api/two/items/2") == (200, {"item": 2})


async def test_the_gate_ignores_the_root_path() -> None:
    top, _, _ = _routers()
    app = _app(top, "/api/demo")
    assert await _get(app, "/behind/proxy/api/demo/items/5", "/behind/proxy") == (
        200,
        {"item": 5},
    )


async def test_many_apps_in_one_process_wrap_a_router_once() -> None:
    """Plugin routers are module-level: every boot of a process gates them again (a test
    session boots hundreds of platforms). The class is wrapped once, not once per boot,
    which used to end in a RecursionError after about a thousand boots."""
    top, items, _ = _routers()
    apps = [_app(top, "/api/demo") for _ in range(1200)]
    assert type(items).__mro__[1] is APIRouter  # one gated layer over APIRouter
    assert await _get(apps[-1], "/api/demo/items/3") == (200, {"item": 3})
