"""``/api/core/jobs``: jobs, manual runs and history for admins."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from platform_core import JobSpec, hookimpl
from platform_core.jobs import service

PROBLEM = "application/problem+json"


class DemoJobs:
    """An in-test plugin with an on-demand job and a failing one."""

    def __init__(self) -> None:
        self.calls = 0

    async def hello(self) -> dict[str, str]:
        """Count and greet."""
        self.calls += 1
        return {"hello": "world"}

    async def broken(self) -> None:
        """Always fail."""
        raise RuntimeError("nope")

    @hookimpl
    def platform_jobs(self) -> list[JobSpec]:
        """Both jobs, on demand."""
        return [
            JobSpec("hello", self.hello, description="say hello"),
            JobSpec("broken", self.broken),
        ]


@pytest.fixture
def platform_extra_plugins() -> dict[str, Any]:
    """The ``platform`` fixture registers the demo jobs plugin."""
    return {"demo": DemoJobs()}


async def _wait_state(client: Any, run_id: int, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        body = (await client.get(f"/api/core/jobs/runs/{run_id}")).json()
        if body["state"] == state or time.monotonic() > deadline:
            return dict(body)
        await asyncio.sleep(0.05)


async def test_admin_lists_jobs_with_schedule_and_last_state(platform, admin_client):
    r = await admin_client.get("/api/core/jobs")
    assert r.status_code == 200
    jobs = {j["name"]: j for j in r.json()}
    assert jobs["demo.hello"]["schedule"] == "on demand"
    assert jobs["demo.hello"]["description"] == "say hello"
    assert jobs["demo.hello"]["last_state"] is None
    assert jobs["demo.hello"]["next_run"] is None


async def test_admin_run_is_accepted_then_executed_by_the_embedded_runner(platform, admin_client):
    r = await admin_client.post("/api/core/jobs/demo.hello/run")
    assert r.status_code == 202
    run = r.json()
    assert (run["job"], run["attempt"], run["trigger"], run["state"]) == (
        "demo.hello",
        1,
        "manual",
        "queued",
    )
    done = await _wait_state(admin_client, run["id"], "succeeded")
    assert done["state"] == "succeeded"
    assert done["result"] == '{"hello": "world"}'
    listed = {j["name"]: j for j in (await admin_client.get("/api/core/jobs")).json()}
    assert listed["demo.hello"]["last_state"] == "succeeded"


async def test_history_filters_by_job_and_state(platform, admin_client):
    ctx = platform.ctx
    await service.enqueue(ctx, "demo.hello")
    broken = await service.enqueue(ctx, "demo.broken")
    await _wait_state(admin_client, broken.id, "failed")
    r = await admin_client.get("/api/core/jobs/runs", params={"state": "failed"})
    assert r.status_code == 200
    assert [(x["job"], x["error"]) for x in r.json()] == [("demo.broken", "RuntimeError: nope")]
    r = await admin_client.get("/api/core/jobs/runs", params={"job": "demo.hello", "limit": 1})
    assert [x["job"] for x in r.json()] == ["demo.hello"]


async def test_run_of_unknown_job_is_404_problem(platform, admin_client):
    r = await admin_client.post("/api/core/jobs/demo.nope/run")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "unknown job 'demo.nope'" in r.json()["detail"]


async def test_unknown_run_id_is_404_problem(platform, admin_client):
    r = await admin_client.get("/api/core/jobs/runs/424242")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith(PROBLEM)


async def test_history_with_unknown_state_is_422(platform, admin_client):
    r = await admin_client.get("/api/core/jobs/runs", params={"state": "exploded"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/core/jobs"),
        ("post", "/api/core/jobs/demo.hello/run"),
        ("get", "/api/core/jobs/runs"),
        ("get", "/api/core/jobs/runs/1"),
    ],
)
async def test_members_are_refused_jobs_endpoints(platform, member_client, method, path):
    r = await member_client.request(method, path)
    assert r.status_code == 403
    assert await service.list_runs(platform.ctx) == []  # a refused POST enqueued nothing
