"""Liveness, readiness, metrics and structured logs."""

from __future__ import annotations

import asyncio
import json
import logging

from platform_core import HealthCheck, MetricsSource, hookimpl
from platform_core.observability import JsonFormatter


class Sick:
    """A plugin whose readiness check fails."""

    @hookimpl
    def platform_health(self):
        async def check():
            raise ConnectionError("upstream down")

        return [HealthCheck("upstream", check)]


async def test_healthz_is_public(anon_client):
    r = await anon_client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_readyz_checks_database(anon_client):
    r = await anon_client.get("/readyz")
    assert r.status_code == 200
    assert {"name": "core.database", "ok": True} in r.json()["checks"]


async def test_readyz_fails_when_a_plugin_check_fails(platform_factory):
    platform = await platform_factory(extra_plugins={"sick": Sick()})
    r = await platform.client().get("/readyz")
    assert r.status_code == 503
    failing = [c for c in r.json()["checks"] if not c["ok"]]
    assert failing == [
        {"name": "sick.upstream", "ok": False, "error": "ConnectionError: upstream down"}
    ]


async def test_metrics_count_requests_by_route_template(admin_client, anon_client):
    await admin_client.get("/api/core/users/12345")
    text = (await anon_client.get("/metrics")).text
    labels = 'method="GET",route="/api/core/users/{user_id}",status="404"'
    assert f"platform_http_requests_total{{{labels}}} 1.0" in text
    assert "platform_plugins" in text


class Gauges:
    """A plugin adding metrics: one good source, one that raises, one that hangs."""

    @hookimpl
    def platform_metrics(self):
        async def good():
            return "# TYPE gauges_widgets gauge\ngauges_widgets 3.0"

        async def broken():
            raise RuntimeError("no database")

        async def slow():
            await asyncio.sleep(5)
            return b"gauges_never 1.0\n"

        return [
            MetricsSource("good", good),
            MetricsSource("broken", broken),
            MetricsSource("slow", slow, timeout=0.2),
        ]


async def test_plugin_metrics_sources_join_the_core_metrics(platform_factory, caplog):
    platform = await platform_factory(extra_plugins={"gauges": Gauges()})
    with caplog.at_level(logging.WARNING, logger="platform.metrics"):
        r = await platform.client().get("/metrics")
    assert r.status_code == 200
    assert "platform_plugins" in r.text  # the core's own
    assert "\ngauges_widgets 3.0\n" in r.text  # a newline added after the source's text
    assert "gauges_never" not in r.text  # timed out: left out, the rest still answers
    failed = " ".join(rec.getMessage() for rec in caplog.records)
    assert "gauges.broken failed: RuntimeError: no database" in failed
    assert "gauges.slow failed: TimeoutError" in failed


async def test_metrics_can_be_restricted_to_admins(platform_factory):
    platform = await platform_factory(core={"metrics_public": False})
    assert (await platform.client().get("/metrics")).status_code == 401
    member = await platform.client_for("member")
    assert (await member.get("/metrics")).status_code == 403
    admin = await platform.client_for("admin")
    assert (await admin.get("/metrics")).status_code == 200


def test_json_log_lines_carry_extra_fields():
    record = logging.LogRecord(
        "platform_core.access", logging.INFO, __file__, 1, "request", (), None
    )
    record.request_id, record.status = "abc", 201
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request"
    assert line["request_id"] == "abc" and line["status"] == 201
    assert line["level"] == "info"


def test_route_template_is_the_route_path_with_parameters_named():
    from starlette.routing import Route

    from platform_core.observability import route_template

    route = Route("/api/x/items/{item_id:int}/files/{name:path}", lambda r: None)
    params = {"item_id": 7, "name": "a/b.txt"}
    derived = {"path": "/api/x/items/7/files/a/b.txt", "path_params": params, "endpoint": 1}
    expected = "/api/x/items/{item_id}/files/{name}"
    assert route_template(derived) == expected  # no route object: from the path and params
    assert route_template({**derived, "route": route}) == expected  # the route's own
    mounted = {**derived, "route": route, "root_path": "/base", "path": "/base/api/x/items/7"}
    mounted["path_params"] = {"item_id": 7}
    assert route_template(mounted) == "/base/api/x/items/{item_id}"  # the path as served
    assert route_template({"path": "/nowhere"}) == "(unmatched)"
