"""Route groups (platform_core.routegroup): a plugin's routes flattened, same answers."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import NoMatchFound

from platform_core.routegroup import RouteGroup, expand_groups, flatten_included


def _plugin_router() -> APIRouter:
    items = APIRouter()

    @items.get("/items/{item_id}", name="one_item")
    async def item(item_id: int, request: Request) -> dict[str, object]:
        return {"item": item_id, "guarded": request.state.guarded}

    @items.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        return None

    @items.get("/items-count", tags=["count"])
    async def count() -> dict[str, int]:
        return {"count": 3}

    tags = APIRouter(prefix="/tags")

    @tags.get("/{name:path}")
    async def tag(name: str) -> dict[str, str]:
        return {"tag": name}

    top = APIRouter()
    top.include_router(items)
    top.include_router(tags, prefix="/meta")
    return top


async def _guard(request: Request) -> None:
    request.state.guarded = True


def _app(flatten: bool = True) -> tuple[FastAPI, bool]:
    app = FastAPI()
    app.include_router(
        _plugin_router(), prefix="/api/demo", tags=["demo"], dependencies=[Depends(_guard)]
    )
    return app, flatten and flatten_included(app, "/api/demo")


async def _call(app: FastAPI, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path)


async def test_a_plugin_router_becomes_one_group_of_plain_routes() -> None:
    app, flattened = _app()
    assert flattened
    (group,) = [r for r in app.router.routes if isinstance(r, RouteGroup)]
    assert all(isinstance(r, APIRoute) for r in group.routes)
    assert [r.path for r in group.routes] == [
        "/api/demo/items/{item_id}",
        "/api/demo/items/{item_id}",
        "/api/demo/items-count",
        "/api/demo/meta/tags/{name:path}",
    ]
    assert group.routes[2].tags == ["demo", "count"]  # the inclusion's tags, then its own


async def test_grouped_routes_answer_as_included_ones() -> None:
    app, _ = _app()
    included, _ = _app(flatten=False)
    r = await _call(app, "GET", "/api/demo/items/7")
    assert (r.status_code, r.json()) == (200, {"item": 7, "guarded": True})  # inclusion's deps
    assert (await _call(app, "GET", "/api/demo/items-count")).json() == {"count": 3}
    assert (await _call(app, "GET", "/api/demo/meta/tags/x/y")).json() == {"tag": "x/y"}
    assert (await _call(app, "DELETE", "/api/demo/items/7")).status_code == 204
    wrong_method = await _call(app, "PUT", "/api/demo/items/7")
    assert wrong_method.status_code == 405
    # as FastAPI answers it: the first route of that path names its methods
    assert wrong_method.headers["allow"] == "GET"
    assert (await _call(included, "PUT", "/api/demo/items/7")).headers["allow"] == "GET"
    assert (await _call(app, "GET", "/api/demo/items/x")).status_code == 422
    assert (await _call(app, "GET", "/api/demo/nothing")).status_code == 404
    assert (await _call(app, "GET", "/api/other/items/7")).status_code == 404


async def test_url_for_and_openapi_see_the_grouped_routes() -> None:
    app, _ = _app()
    assert app.url_path_for("one_item", item_id=5) == "/api/demo/items/5"
    try:
        app.url_path_for("no_such_route")
    except NoMatchFound:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("an unknown route name must raise NoMatchFound")
    paths = get_openapi(title="t", version="1", routes=expand_groups(app.routes))["paths"]
    assert set(paths) >= {"/api/demo/items/{item_id}", "/api/demo/items-count"}
    assert paths["/api/demo/items-count"]["get"]["tags"] == ["demo", "count"]
    assert len(expand_groups(app.router.routes)) > len(app.router.routes)


async def test_a_router_with_a_websocket_route_stays_included() -> None:
    router = APIRouter()

    @router.websocket("/live")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    @router.get("/items")
    async def items() -> list[int]:
        return [1]

    app = FastAPI()
    app.include_router(router, prefix="/api/demo")
    before = list(app.router.routes)
    assert not flatten_included(app, "/api/demo")
    assert app.router.routes == before
    assert (await _call(app, "GET", "/api/demo/items")).json() == [1]


async def test_routes_indexed_by_first_segment_still_match_in_declaration_order() -> None:
    """A route whose first segment is a parameter is tried with every segment's routes, in
    the order they were declared, so the first declared match still wins."""
    router = APIRouter()

    @router.get("/{kind}/special")
    async def any_kind(kind: str) -> dict[str, str]:
        return {"route": "any", "kind": kind}

    @router.get("/items/special")
    async def items_special() -> dict[str, str]:
        return {"route": "items"}

    @router.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, object]:
        return {"route": "item", "id": item_id}

    @router.get("/items")
    async def items() -> dict[str, str]:
        return {"route": "items-list"}

    @router.get("/it{rest}")
    async def it(rest: str) -> dict[str, str]:
        return {"route": "it", "rest": rest}

    @router.get("")
    async def root() -> dict[str, str]:
        return {"route": "root"}

    app = FastAPI()
    app.include_router(router, prefix="/api/demo")
    assert flatten_included(app, "/api/demo")
    for path, expected in [
        ("/api/demo/items/special", {"route": "any", "kind": "items"}),  # declared first
        ("/api/demo/tools/special", {"route": "any", "kind": "tools"}),
        ("/api/demo/items/4", {"route": "item", "id": 4}),
        ("/api/demo/items", {"route": "items-list"}),
        ("/api/demo/itself", {"route": "it", "rest": "self"}),
        ("/api/demo", {"route": "root"}),
    ]:
        r = await _call(app, "GET", path)
        assert (r.status_code, r.json()) == (200, expected), path
    assert (await _call(app, "GET", "/api/demo/other")).status_code == 404
    assert (await _call(app, "GET", "/api/demoitems")).status_code == 404
