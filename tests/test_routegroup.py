"""Route groups (platform_core.routegroup): a plugin's routes flattened, same answers."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request, WebSocket
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import NoMatchFound

from platform_core.routegroup import (
    GroupIndex,
    RouteGroup,
    expand_groups,
    flatten_included,
    index_groups,
)


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


def _indexed_app(*, catch_all_first: bool = False) -> FastAPI:
    """Two plugins' groups (``demo`` twice, ``other`` once) behind the app's own routes."""
    app = FastAPI()
    if catch_all_first:

        @app.get("/{anything:path}")
        async def anything(anything: str) -> dict[str, str]:
            return {"route": "catch-all", "path": anything}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"route": "healthz"}

    app.include_router(
        _plugin_router(), prefix="/api/demo", tags=["demo"], dependencies=[Depends(_guard)]
    )
    assert flatten_included(app, "/api/demo")
    second = APIRouter()

    @second.get("/extra")
    async def extra() -> dict[str, str]:
        return {"route": "demo-extra"}

    @second.post("/items/{item_id}")
    async def post_item(item_id: int) -> dict[str, object]:
        return {"route": "demo-post", "id": item_id}

    app.include_router(second, prefix="/api/demo")
    assert flatten_included(app, "/api/demo")
    other = APIRouter()

    @other.get("/items/{item_id}", name="other_item")
    async def other_item(item_id: int) -> dict[str, object]:
        return {"route": "other", "id": item_id}

    app.include_router(other, prefix="/api/other")
    assert flatten_included(app, "/api/other")
    return app


async def test_one_index_in_front_finds_each_plugins_groups_with_the_same_answers() -> None:
    app = _indexed_app()
    assert index_groups(app)
    assert isinstance(app.router.routes[0], GroupIndex)
    assert not any(isinstance(r, RouteGroup) for r in app.router.routes)
    for method, path, expected in [
        ("GET", "/api/demo/items/7", {"item": 7, "guarded": True}),
        ("GET", "/api/demo/extra", {"route": "demo-extra"}),  # the plugin's second group
        ("POST", "/api/demo/items/3", {"route": "demo-post", "id": 3}),
        ("GET", "/api/other/items/2", {"route": "other", "id": 2}),
        ("GET", "/healthz", {"route": "healthz"}),  # behind the index, still answered
    ]:
        r = await _call(app, method, path)
        assert (r.status_code, r.json()) == (200, expected), path
    # a path only the second group has with PUT: 405 naming the first group's methods
    assert (await _call(app, "PUT", "/api/demo/items/7")).headers["allow"] == "GET"
    assert (await _call(app, "GET", "/api/nobody/items/1")).status_code == 404
    assert (await _call(app, "GET", "/api/demoextra")).status_code == 404
    assert app.url_path_for("other_item", item_id=9) == "/api/other/items/9"
    paths = get_openapi(title="t", version="1", routes=expand_groups(app.routes))["paths"]
    assert {"/api/demo/items/{item_id}", "/api/demo/extra", "/api/other/items/{item_id}"} <= set(
        paths
    )


async def test_no_index_when_an_earlier_route_could_answer_under_api() -> None:
    """A route before the groups that might match an /api/ path keeps its precedence."""
    app = _indexed_app(catch_all_first=True)
    before = list(app.router.routes)
    assert not index_groups(app)
    assert app.router.routes == before
    r = await _call(app, "GET", "/api/demo/items/7")
    assert r.json() == {"route": "catch-all", "path": "api/demo/items/7"}


async def test_the_platform_app_routes_api_paths_through_one_index(tmp_path: Path) -> None:
    from platform_core.app import boot, create_app
    from platform_core.config import Config, CoreSettings

    core = CoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", secret_key="k" * 40
    )
    app = create_app(boot(Config(path=tmp_path / "plugins.toml", core=core, enabled=[])))
    assert isinstance(app.router.routes[0], GroupIndex)
    assert "/api/core/auth/token" in app.openapi()["paths"]
    # code that walks the routes reads each one's path (the CLI's serve test does)
    assert [r.path for r in app.routes][:3] == ["/api", "/openapi.json", "/healthz"]
